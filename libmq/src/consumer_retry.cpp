// Handing a record back (see consumer_state.hpp): nack parks it in the group's retry table with its backoff, or
// dead-letters it after its last attempt; dead_letter sends it to TOPIC.dlq at once. The dead-letter topic is made
// on first use, by mqd when the source was opened through it.
#include "consumer_state.hpp"

#include "libmq/client.hpp"

#include <grp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace mq {

namespace {

// The delay before the retry after a record's `failures`-th failure under `policy`, jitter drawn from a per-thread
// generator (xorshift; retries only need spreading, not secrecy).
std::chrono::nanoseconds backoff_for(const RetryPolicy& policy, std::uint32_t failures) {
  thread_local std::uint64_t state = static_cast<std::uint64_t>(mono_ns()) * 0x9e3779b97f4a7c15ULL | 1;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  const double unit = static_cast<double>(state >> 11) / static_cast<double>(std::uint64_t{1} << 53);  // [0, 1)
  double ms = static_cast<double>(policy.backoff.count());
  for (std::uint32_t i = 1; i < failures && ms < static_cast<double>(policy.max_backoff.count()); ++i)
    ms *= policy.factor;
  ms = std::min(ms, static_cast<double>(policy.max_backoff.count())) * (1.0 - policy.jitter * unit);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6));
}

}  // namespace

TopicOptions dead_letter_options(const Topic& source) {
  const TopicInfo info = source.info();
  const OpenOptions where = source.segment()->where();
  TopicOptions options;
  options.capacity = std::max<std::size_t>(kMinCapacity, std::min<std::size_t>(info.capacity, 1 << 20));
  while (options.capacity / 4 < info.max_message + 4096 && options.capacity < kMaxCapacity) options.capacity *= 2;
  options.block_timeout = info.block_timeout;
  options.storage = where.storage;
  options.directory = where.directory;
  options.ns = where.ns;
  // The source's access rights: its mode and its file's group (mqd's `mq`, say), so whoever may use the topic may
  // read and replay its dead letters.
  options.mode = info.mode;
  if (struct stat st{}; ::stat(source.file().c_str(), &st) == 0) {
    // getgrgid_r: members on other threads may dead-letter at the same time (getgrgid's result is one static).
    ::group entry{};
    ::group* found = nullptr;
    std::vector<char> buffer(4096);
    int err = 0;
    while ((err = ::getgrgid_r(st.st_gid, &entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
           buffer.size() < (std::size_t{1} << 20))
      buffer.resize(buffer.size() * 2);
    if (err == 0 && found != nullptr) options.access_group = found->gr_name;
  }
  options.groups = {std::string(kDeadLetterGroup)};
  return options;
}

// The dead-letter topic of a source opened through mqd: mqd creates it (with the source's rights, owned like the
// source) and says where it is. No mqd answering: Errc::no_daemon.
Result<Topic> Consumer::State::dead_letter_from_daemon() {
  auto client = Client::connect({.socket = this->topic.daemon_socket()});
  if (!client) return std::move(client).error();
  return client->create_dead_letter(seg->name());
}

// Publishes `m` to the dead-letter topic (made on first use, beside the source and like it: by mqd when the source
// was opened through it, else here), with its key, headers and timestamp and the dlq_header ones. The caller acks it
// after.
Result<void> Consumer::State::dead_letter(const Message& m, std::int64_t first_failure, std::string_view error) {
  if (!dlq) {
    const std::string name = seg->name() + std::string(kDeadLetterSuffix);
    if (auto valid = validate_topic_name(name); !valid)
      return Error(Errc::invalid_name, "the dead-letter topic's name would be invalid (" +
                                           std::string(valid.error().message()) + "): " + context());
    auto topic = Topic::open(name, seg->where());
    if (!topic && topic.error().code() == Errc::not_found && !this->topic.daemon_socket().empty()) {
      // mqd gone (stopped, restarting): the dead letter must not wait for it; made here below, mqd adopts it.
      if (auto made = dead_letter_from_daemon(); made || made.error().code() != Errc::no_daemon)
        topic = std::move(made);
    }
    if (!topic && topic.error().code() == Errc::not_found)
      topic = Topic::open_or_create(name, dead_letter_options(this->topic));
    if (!topic)
      return Error(topic.error().code(), "cannot open the dead-letter topic: " + std::string(topic.error().message()));
    auto producer = Producer::make(*topic);
    if (!producer) return std::move(producer).error();
    dlq.emplace(std::move(*producer));
  }
  const auto text = [](std::string_view v) { return std::as_bytes(std::span<const char>(v.data(), v.size())); };
  const std::string offset = std::to_string(m.offset_);
  const std::string attempts = std::to_string(m.attempt_);
  const std::string first = std::to_string(first_failure);
  std::vector<Header> headers(m.headers().begin(), m.headers().end());
  headers.push_back({dlq_header::topic, text(seg->name())});
  headers.push_back({dlq_header::offset, text(offset)});
  headers.push_back({dlq_header::group, text(options.group)});
  headers.push_back({dlq_header::attempts, text(attempts)});
  headers.push_back({dlq_header::first_failure, text(first)});
  headers.push_back({dlq_header::error, text(error.substr(0, kMaxDeadLetterError))});
  Record record{m.payload_, m.key_, headers, m.timestamp_ns_};
  if (auto published = dlq->publish(record); !published)
    return Error(published.error().code(), "cannot dead-letter offset " + offset + ": " + context() + ": " +
                                               std::string(published.error().message()));
  return {};
}

Result<void> Consumer::State::may_hand_back(const Message& m, std::string_view op) const {
  if (fork_gen != fork_generation())
    return Error(Errc::wrong_process, "consumer was created in another process (before fork): " + context());
  if (!holds(m))
    return Error(Errc::invalid_argument, "record not held by this consumer (acked already?): " + context() +
                                             " offset=" + std::to_string(m.offset_));
  if (seg->policy() != Policy::block)
    return Error(Errc::invalid_argument, std::string(op) + " needs a block topic (an overwrite topic's producers " +
                                             "would overwrite a record waiting for its retry): " + context());
  return {};
}

// The dead letter of `m` (its first failure now if it never failed before), then its ack.
Result<void> Consumer::State::dead_letter_and_ack(const Message& m, std::string_view error) {
  const std::int64_t first = m.first_failure_ns_ != 0 ? m.first_failure_ns_ : realtime_ns();
  if (auto sent = dead_letter(m, first, error); !sent) return sent.error();
  test_point(TestPoint::dead_lettered);
  (void)ack_held(m.run_, m.after_, m.done_);
  return {};
}

Result<Consumer::Nacked> Consumer::State::nack(Message& m, std::optional<std::chrono::milliseconds> delay,
                                               std::string_view error) {
  if (auto allowed = may_hand_back(m, "nack"); !allowed) return allowed.error();
  const RetryPolicy policy = load_retry_policy(*group);
  if (m.attempt_ >= policy.max_attempts) {
    if (auto sent = dead_letter_and_ack(m, error); !sent) return sent.error();
    return Consumer::Nacked::dead_lettered;
  }
  const std::int64_t now = realtime_ns();
  const std::int64_t first = m.first_failure_ns_ != 0 ? m.first_failure_ns_ : now;
  const std::chrono::nanoseconds wait =
      delay ? std::chrono::nanoseconds(std::clamp(*delay, std::chrono::milliseconds(0), kMaxBackoff))
            : backoff_for(policy, m.attempt_);
  // Key ordering: under the key lock, so that no member takes a later record of its key between the entry and the ack.
  std::optional<KeyLock> keys;
  if (keyed) keys.emplace(*seg, group_index, TableLock::kTableLockWait);
  // Win a free entry, fill it, then make it a run: from then on any member may take it, and producers count it.
  const std::uint64_t mark = kRetryFilling | (member_index() << 6);
  RetryEntry* entry = nullptr;
  for (auto& e : seg->retries(group_index).entries) {
    std::uint64_t free = 0;
    if (e.run.load(std::memory_order_relaxed) == 0 && e.run.compare_exchange_strong(free, mark)) {
      entry = &e;
      break;
    }
  }
  // A full table: swap with a record that is due (its entry stays counted, so the count stays). Not under key
  // ordering, whose due record may not be this member's to take.
  const bool swapped = entry == nullptr && !keyed && swap_with_due(mark, entry);
  if (entry == nullptr)
    return Error(Errc::limit, "the group's retry table is full (" + std::to_string(kRetrySlots) +
                                  " records wait for a retry, none due yet); the record stays held: " + context() +
                                  " offset=" + std::to_string(m.offset_));
  entry->due_ns.store(now + wait.count(), std::memory_order_relaxed);
  entry->first_ns.store(first, std::memory_order_relaxed);
  if (!swapped) group->retry_count.fetch_add(1);  // before the run word: a hint, high for a moment rather than low
  entry->run.store(make_run(m.position_, m.attempt_));
  group->gen.fetch_add(2);  // a producer's scan that missed the entry but sees the ack below looks again
  test_point(TestPoint::retry_parked);
  const std::uint64_t from = head;
  (void)ack_through(m.run_, m.after_, m.done_);
  if (keys && *keys) release_acked(from);
  wake_consumers(*seg);  // sleeping members learn when it is due
  return Consumer::Nacked::retry;
}

Result<Consumer::Nacked> Consumer::nack(Message&& message, std::string_view error) {
  return state_->nack(message, std::nullopt, error);
}

Result<Consumer::Nacked> Consumer::nack(Message&& message, std::chrono::milliseconds delay, std::string_view error) {
  return state_->nack(message, delay, error);
}

Result<void> Consumer::dead_letter(Message&& message, std::string_view error) {
  if (auto allowed = state_->may_hand_back(message, "dead_letter"); !allowed) return allowed.error();
  return state_->dead_letter_and_ack(message, error);
}

Result<std::size_t> Consumer::nack(std::span<Message> messages, std::optional<std::chrono::milliseconds> delay,
                                   std::string_view error) {
  // In receive order (each nack acks what came before it), every one held before any is nacked.
  std::vector<Message*> order;
  for (auto& m : messages) {
    if (!state_->holds(m))
      return Error(Errc::invalid_argument, "record not held by this consumer (acked already?): " + state_->context() +
                                               " offset=" + std::to_string(m.offset_));
    order.push_back(&m);
  }
  std::sort(order.begin(), order.end(), [](const Message* a, const Message* b) {
    return a->run_ != b->run_ ? a->run_ < b->run_ : a->done_ < b->done_;
  });
  std::size_t dead = 0;
  for (Message* m : order) {
    auto nacked = state_->nack(*m, delay, error);
    if (!nacked) return nacked.error();
    dead += *nacked == Nacked::dead_lettered ? 1 : 0;
  }
  return dead;
}

}  // namespace mq
