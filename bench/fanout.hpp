// Many-process throughput of one libmq topic: P producer processes into G consumer groups of M member processes
// each (4P -> 1 group of 2, 1P -> 3 groups; 1P -> a group of 2 with keyed records, ordering none against key). With more processes than the 2 cores nobody is pinned, and the
// consumers use the default wait (spin, then futex): busy-polling here would measure the scheduler.
// Each message carries (sequence, producer); each member checks that each producer's sequence only grows, and at
// the end every group must have received exactly what the producers sent (a lost or doubled record fails the case).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "libmq/libmq.hpp"
#include "libmq_transport.hpp"

namespace mqbench {

struct Fanout {
  int producers = 1;
  int groups = 1;
  int members = 1;  // per group
  std::string pattern;
  std::uint64_t keys = 0;  // > 0: each record carries one of this many keys (its sequence modulo keys)
  mq::Ordering ordering = mq::Ordering::none;
};

namespace fanout_detail {

inline constexpr int kMaxProcesses = 16;
inline constexpr std::uint64_t kEnd = ~std::uint64_t{0};

struct alignas(64) Counter {
  std::atomic<std::uint64_t> value{0};
};
struct Board {
  Counter start, stop, failed, ready;
  Counter sent[kMaxProcesses];      // per producer, written by it only
  Counter received[kMaxProcesses];  // per consumer, written by it only
  Counter ends[kMaxProcesses];      // per group: end markers taken by its members
};

// `message` with the key "user-<key>".
inline mq::Result<mq::Offset> publish_keyed(mq::Producer& producer, std::span<const std::byte> message,
                                            std::uint64_t key) {
  char text[24];
  const int n = std::snprintf(text, sizeof text, "user-%llu", static_cast<unsigned long long>(key));
  const auto bytes = std::as_bytes(std::span<const char>(text, static_cast<std::size_t>(n)));
  return producer.publish(mq::Record{message, bytes, {}, std::nullopt});
}

inline int produce(const std::string& topic_name, int id, std::size_t payload, std::uint64_t keys, Board& b) {
  unpin();
  auto topic = mq::Topic::open(topic_name);
  auto producer = topic ? mq::Producer::make(*topic) : mq::Result<mq::Producer>(topic.error());
  if (!producer) {
    std::fprintf(stderr, "producer %d: %s\n", id, std::string(producer.error().message()).c_str());
    b.failed.value.store(1);
    return 1;
  }
  b.ready.value.fetch_add(1);
  if (!spin_until([&] { return b.start.value.load() != 0 || b.failed.value.load() != 0; }, kPeerTimeoutNs)) return 1;
  std::vector<std::byte> message(payload);
  const std::uint64_t who = static_cast<std::uint64_t>(id);
  std::memcpy(message.data() + 8, &who, sizeof who);
  std::uint64_t seq = 0;
  // relaxed: the flags only end the loop; the counters are read after the processes exit (or as a rate).
  while (b.stop.value.load(std::memory_order_relaxed) == 0 && b.failed.value.load(std::memory_order_relaxed) == 0) {
    put_seq(message, seq);
    auto r = keys == 0 ? producer->publish(message) : publish_keyed(*producer, message, seq % keys);
    if (!r) {
      std::fprintf(stderr, "producer %d: publish: %s\n", id, std::string(r.error().message()).c_str());
      b.failed.value.store(1);
      return 1;
    }
    b.sent[id].value.store(++seq, std::memory_order_relaxed);
  }
  put_seq(message, kEnd);
  return producer->publish(message) ? 0 : 1;
}

inline int consume(const std::string& topic_name, int id, int group, int producers, std::uint64_t keys, Board& b) {
  unpin();
  auto topic = mq::Topic::open(topic_name);
  auto consumer = topic ? mq::Consumer::make(*topic, {.group = "g" + std::to_string(group),
                                                      .start = mq::Start::earliest,
                                                      .wait = mq::Wait::spin_futex,
                                                      .auto_ack = true})
                        : mq::Result<mq::Consumer>(topic.error());
  if (!consumer) {
    std::fprintf(stderr, "consumer %d: %s\n", id, std::string(consumer.error().message()).c_str());
    b.failed.value.store(1);
    return 1;
  }
  b.ready.value.fetch_add(1);
  // The next sequence expected per producer, or per producer and key for keyed records (a member of a group with
  // key ordering may get an earlier record of one key after a later one of another: one parked for its key).
  const std::uint64_t lanes = std::max<std::uint64_t>(keys, 1);
  std::vector<std::uint64_t> next(static_cast<std::size_t>(producers) * lanes, 0);
  std::uint64_t count = 0;
  std::uint64_t idle_since = 0;
  for (;;) {
    // Short polls: a member whose group has taken every end marker (possibly by the other member) stops.
    auto msg = consumer->poll(std::chrono::milliseconds(20));
    if (!msg) {
      if (msg.error().code() != mq::Errc::timed_out) {
        std::fprintf(stderr, "consumer %d: poll: %s\n", id, std::string(msg.error().message()).c_str());
        b.failed.value.store(1);
        return 1;
      }
      if (b.ends[group].value.load() == static_cast<std::uint64_t>(producers) || b.failed.value.load() != 0) break;
      const std::uint64_t now = now_ns();
      if (idle_since == 0)
        idle_since = now;
      else if (now - idle_since > kPeerTimeoutNs) {
        std::fprintf(stderr, "consumer %d: nothing for 10 s and the producers have not ended\n", id);
        b.failed.value.store(1);
        return 1;
      }
      continue;
    }
    idle_since = 0;
    const auto p = msg->payload();
    std::uint64_t seq = 0, who = 0;
    std::memcpy(&seq, p.data(), sizeof seq);
    std::memcpy(&who, p.data() + 8, sizeof who);
    if (who >= static_cast<std::uint64_t>(producers)) {
      std::fprintf(stderr, "consumer %d: a record from producer %llu\n", id, static_cast<unsigned long long>(who));
      b.failed.value.store(1);
      return 1;
    }
    if (seq == kEnd) {
      b.ends[group].value.fetch_add(1);
      continue;
    }
    const std::size_t lane = static_cast<std::size_t>(who * lanes + seq % lanes);
    if (seq < next[lane]) {  // competing members see a subsequence: it may skip ahead, never go back
      std::fprintf(stderr, "consumer %d: producer %llu's record %llu after %llu\n", id,
                   static_cast<unsigned long long>(who), static_cast<unsigned long long>(seq),
                   static_cast<unsigned long long>(next[lane] - 1));
      b.failed.value.store(1);
      return 1;
    }
    next[lane] = seq + 1;
    b.received[id].value.store(++count, std::memory_order_relaxed);
  }
  return 0;
}

inline std::uint64_t total(const Counter* counters, int n) {
  std::uint64_t sum = 0;
  for (int i = 0; i < n; ++i) sum += counters[i].value.load();
  return sum;
}

inline void sleep_for(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

}  // namespace fanout_detail

// msgs_per_s = records moved through the topic per second (what each group receives); with G groups every record
// is delivered G times.
inline CaseResult fanout_throughput(const Fanout& f, std::size_t payload, double seconds, double warmup_seconds,
                                    int case_number) {
  using namespace fanout_detail;
  CaseResult r{.transport = "libmq",
               .mode = "default",
               .kind = "throughput",
               .pattern = f.pattern,
               .api = "publish",
               .payload = payload,
               .load_before = load_average()};
  const int consumers = f.groups * f.members;
  if (f.producers + consumers > kMaxProcesses || payload < 16) {
    r.error = "fanout: at most 16 processes and 16-byte payloads";
    return r;
  }
  SharedPages pages(sizeof(Board));
  if (pages.get() == nullptr) return r.error = "mmap of the board failed", r;
  Board& b = *new (pages.get()) Board{};
  const std::string name = "fanout" + std::to_string(case_number);
  mq::TopicOptions options{.capacity = ring_for(payload), .policy = mq::Policy::block};
  auto made = mq::Topic::create(name, options);
  if (!made) {
    r.error = "create topic " + name + ": " + std::string(made.error().message());
    return r;
  }
  for (int g = 0; g < f.groups; ++g)
    if (auto group = made->create_group("g" + std::to_string(g), mq::Start::earliest, {}, f.ordering); !group) {
      r.error = "create group on " + name + ": " + std::string(group.error().message());
      return r;
    }
  std::vector<std::unique_ptr<Child>> children;
  for (int c = 0; c < consumers; ++c)
    children.push_back(std::make_unique<Child>([&, c] { return consume(name, c, c / f.members, f.producers, f.keys, b); }));
  for (int p = 0; p < f.producers; ++p)
    children.push_back(std::make_unique<Child>([&, p] { return produce(name, p, payload, f.keys, b); }));
  const auto everyone = static_cast<std::uint64_t>(f.producers + consumers);
  if (!spin_until([&] { return b.ready.value.load() == everyone || b.failed.value.load() != 0; }, kPeerTimeoutNs) ||
      b.failed.value.load() != 0) {
    r.error = "the processes did not start (see their messages)";
  } else {
    b.start.value.store(1);
    sleep_for(warmup_seconds);  // the measurement's warm-up interval, not a stand-in for a condition
    // As the 1P->1C driver: the median of kSlices slices of the window, and the whole window's mean.
    std::vector<double> slice_rates;
    const std::uint64_t t0 = now_ns();
    const std::uint64_t got0 = total(b.received, consumers);
    std::uint64_t at = t0, got = got0;
    for (std::size_t k = 0; k < kSlices; ++k) {
      sleep_for(seconds / kSlices);  // the measurement's interval
      const std::uint64_t got_now = total(b.received, consumers), now = now_ns();
      slice_rates.push_back(static_cast<double>(got_now - got) / f.groups * 1e9 / static_cast<double>(now - at));
      at = now;
      got = got_now;
    }
    b.stop.value.store(1);
    r.seconds = static_cast<double>(at - t0) / 1e9;
    r.mean_msgs_per_s = static_cast<double>(got - got0) / f.groups / r.seconds;
    r.msgs_per_s = median(slice_rates);
    r.bytes_per_s = r.msgs_per_s * static_cast<double>(payload);
  }
  if (!r.error.empty()) b.stop.value.store(1);
  for (auto& child : children) {
    if (const int code = child->wait(kReapTimeout); code != 0 && r.error.empty())
      r.error = "a process exited with " + std::to_string(code);
  }
  (void)mq::Topic::remove(name);
  if (r.error.empty()) {
    const std::uint64_t sent = total(b.sent, f.producers);
    for (int g = 0; g < f.groups; ++g) {
      const std::uint64_t got = total(b.received + g * f.members, f.members);
      if (got != sent) {
        r.error = "group g" + std::to_string(g) + " received " + std::to_string(got) + " of " + std::to_string(sent) +
                  " records";
        break;
      }
    }
  }
  if (!r.error.empty()) r.msgs_per_s = r.mean_msgs_per_s = r.bytes_per_s = 0;
  if (f.groups > 1) r.note = "every record is delivered to each of the " + std::to_string(f.groups) + " groups";
  return r;
}

}  // namespace mqbench
