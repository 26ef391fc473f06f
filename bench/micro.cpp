// micro: single-process Google Benchmark micro-benchmarks of libmq's hot paths, one thread, no peer:
// publish 64 B (copy), claim + fill + commit 64 B (zero-copy), a publish + poll + ack round trip, an empty poll(0),
// the batch forms (32 publishes, 32 polls, one cumulative ack), and beside them the floor: a raw SPSC ring's push
// + pop of 64 B (bench/floors.hpp, the ring ipc_libmq measures across processes); the consuming side alone (poll +
// ack by a lone member and by competing ones, beside the raw ring's pop). Every benchmark also reports allocs/op:
// heap allocations per operation, counted by the replaced global operator new below (the data path must make none).
// Cross-process latency and throughput live in ipc_libmq.cpp; these show the per-call cost with hot caches.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "floors.hpp"
#include "libmq/libmq.hpp"

// Every heap allocation of the process, counted (relaxed: a statistic read by the same thread between runs).
std::atomic<std::uint64_t> g_allocations{0};

void* operator new(std::size_t bytes) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
// g++ 12 takes free() in a replaced operator delete for a mismatch with new; it is the replacement pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

// With MQ_MICRO_ITERATIONS=N in the environment every benchmark runs exactly N iterations, once (no calibration
// runs): what bench/instructions.py needs to turn callgrind's count of a benchmark into instructions per record.
void fixed_iterations(benchmark::internal::Benchmark* b) {
  const char* n = std::getenv("MQ_MICRO_ITERATIONS");
  if (n != nullptr && std::atoll(n) > 0) b->Iterations(std::atoll(n));
}

// Reports allocations per record over the timed loop (set-up before start() is not counted).
class AllocationCount {
 public:
  explicit AllocationCount(benchmark::State& state, std::int64_t records_per_iteration = 1)
      : state_(state), per_iteration_(records_per_iteration) {}
  ~AllocationCount() {
    const auto ops = std::max<std::int64_t>(1, state_.iterations() * per_iteration_);
    state_.counters["allocs/op"] =
        static_cast<double>(g_allocations.load(std::memory_order_relaxed) - start_) / static_cast<double>(ops);
  }
  void start() { start_ = g_allocations.load(std::memory_order_relaxed); }

 private:
  benchmark::State& state_;
  std::int64_t per_iteration_;
  std::uint64_t start_ = 0;
};

// A fresh topic in a private namespace per benchmark run, removed when the run ends.
class ScopedTopic {
 public:
  explicit ScopedTopic(bool with_group) {
    static int counter = 0;
    name_ = "micro-" + std::to_string(counter++);
    mq::TopicOptions options{.capacity = std::size_t{1} << 20, .ns = ns()};
    if (with_group) options.groups = {"bench"};
    topic_ = mq::Topic::create(name_, options).value();  // throws mq::Error: the benchmark aborts with the reason
  }
  ~ScopedTopic() { (void)mq::Topic::remove(name_, {.ns = ns()}); }
  ScopedTopic(const ScopedTopic&) = delete;
  ScopedTopic& operator=(const ScopedTopic&) = delete;
  const mq::Topic& topic() const { return *topic_; }

 private:
  static std::string ns() { return "micro-" + std::to_string(::getpid()); }
  std::string name_;
  std::optional<mq::Topic> topic_;
};

std::array<std::byte, 64> payload() {
  std::array<std::byte, 64> p{};
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::byte>(i);
  return p;
}

mq::ProducerOptions exclusive_producer() {
  mq::ProducerOptions options;
  options.exclusive = true;
  return options;
}

// No group: the ring keeps the newest records and the producer never waits.
void publish64(benchmark::State& state, const mq::ProducerOptions& options) {
  ScopedTopic t(false);
  mq::Producer producer(t.topic(), options);
  const auto p = payload();
  AllocationCount allocations(state);
  allocations.start();
  for (auto _ : state) {
    auto r = producer.publish(p);
    if (!r) {
      state.SkipWithError(std::string(r.error().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(*r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(p.size()));
}
void BM_Publish64(benchmark::State& state) { publish64(state, {}); }
BENCHMARK(BM_Publish64)->Apply(fixed_iterations);
// The same with ProducerOptions::exclusive: the claim is a plain store, not a CAS.
void BM_PublishExclusive64(benchmark::State& state) { publish64(state, exclusive_producer()); }
BENCHMARK(BM_PublishExclusive64)->Apply(fixed_iterations);

void BM_ClaimCommit64(benchmark::State& state) {
  ScopedTopic t(false);
  mq::Producer producer(t.topic());
  const auto p = payload();
  AllocationCount allocations(state);
  allocations.start();
  for (auto _ : state) {
    auto claim = producer.claim(p.size());
    if (!claim) {
      state.SkipWithError(std::string(claim.error().message()).c_str());
      break;
    }
    std::memcpy(claim->bytes().data(), p.data(), p.size());
    auto r = std::move(*claim).commit();
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(p.size()));
}
BENCHMARK(BM_ClaimCommit64)->Apply(fixed_iterations);

// One group, one member: publish, poll (already there, so no wait), read the payload, ack.
void publish_poll_ack64(benchmark::State& state, const mq::ProducerOptions& options) {
  ScopedTopic t(true);
  mq::Producer producer(t.topic(), options);
  mq::Consumer consumer(
      t.topic(), {.group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin, .auto_ack = false});
  const auto p = payload();
  AllocationCount allocations(state);
  allocations.start();
  for (auto _ : state) {
    if (auto r = producer.publish(p); !r) {
      state.SkipWithError(std::string(r.error().message()).c_str());
      break;
    }
    auto msg = consumer.poll(std::chrono::nanoseconds(0));
    if (!msg || msg->payload().size() != p.size()) {
      state.SkipWithError(msg ? "wrong payload size" : std::string(msg.error().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(msg->payload()[63]);
    if (auto r = consumer.ack(std::move(*msg)); !r) {
      state.SkipWithError(std::string(r.error().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(p.size()));
}
void BM_PublishPollAck64(benchmark::State& state) { publish_poll_ack64(state, {}); }
BENCHMARK(BM_PublishPollAck64)->Apply(fixed_iterations);
void BM_PublishPollAckExclusive64(benchmark::State& state) { publish_poll_ack64(state, exclusive_producer()); }
BENCHMARK(BM_PublishPollAckExclusive64)->Apply(fixed_iterations);

// The shared paths of the row above, as a baseline for protocols that keep a lone member or an exclusive producer
// off them: two producers and two competing members of one group, taking turns (a record each per iteration).
void BM_PublishPollAckTwoProducersTwoMembers64(benchmark::State& state) {
  ScopedTopic t(true);
  mq::Producer first_producer(t.topic());
  mq::Producer second_producer(t.topic());
  const mq::ConsumerOptions options{
      .group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin, .auto_ack = false};
  mq::Consumer first_member(t.topic(), options);
  mq::Consumer second_member(t.topic(), options);
  const auto p = payload();
  AllocationCount allocations(state, 2);
  allocations.start();
  for (auto _ : state) {
    for (auto [producer, member] : {std::pair{&first_producer, &first_member}, {&second_producer, &second_member}}) {
      if (auto r = producer->publish(p); !r) return state.SkipWithError(std::string(r.error().message()).c_str());
      auto msg = member->poll(std::chrono::nanoseconds(0));
      if (!msg) return state.SkipWithError(std::string(msg.error().message()).c_str());
      benchmark::DoNotOptimize(msg->payload()[63]);
      if (auto r = member->ack(std::move(*msg)); !r)
        return state.SkipWithError(std::string(r.error().message()).c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(p.size()));
}
BENCHMARK(BM_PublishPollAckTwoProducersTwoMembers64)->Apply(fixed_iterations);

// The raw SPSC ring of the floor rows (bench/floors.hpp), one channel of 64 B slots, and its two ends. If it cannot
// be set up the benchmark is skipped saying why, and the ends are null.
struct RawRing {
  explicit RawRing(benchmark::State& state) {
    if (auto prepared = ring.prepare(64, 1); !prepared.ok) {
      state.SkipWithError(prepared.reason.c_str());
      return;
    }
    push = ring.open_sender(0, error);
    pop = ring.open_receiver(0, error);
    if (!push || !pop) state.SkipWithError(error.c_str());
  }
  ~RawRing() { ring.finish(); }
  RawRing(const RawRing&) = delete;
  RawRing& operator=(const RawRing&) = delete;
  explicit operator bool() const { return push && pop; }

  mqbench::SpscRing ring;
  std::unique_ptr<mqbench::Sender> push;
  std::unique_ptr<mqbench::Receiver> pop;
  std::string error;
};


// The consuming side alone: a member polls, reads and acks records a refill (untimed, every kRefill records)
// published before. `members` 1: the group's lone member (plain cursor store); 2: two competing members taking
// turns (the CAS). Its floor: BM_RawRingPop64.
constexpr int kRefill = 4096;  // records of 128 B: half the 1 MiB ring

// When `left` records are left (0), puts kRefill more with the timer stopped. False if `put` failed (it said why).
template <class Put>
bool refill_when_empty(benchmark::State& state, int& left, Put&& put) {
  if (left != 0) return true;
  state.PauseTiming();
  for (; left < kRefill; ++left) {
    if (!put()) break;
  }
  state.ResumeTiming();
  return left == kRefill;
}
void poll_ack64(benchmark::State& state, int members) {
  ScopedTopic t(true);
  mq::Producer producer(t.topic(), exclusive_producer());
  const mq::ConsumerOptions options{
      .group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin, .auto_ack = false};
  std::vector<mq::Consumer> group;
  for (int m = 0; m < members; ++m) group.emplace_back(t.topic(), options);
  const auto p = payload();
  AllocationCount allocations(state);
  allocations.start();
  int left = 0;
  std::size_t turn = 0;
  const auto publish = [&] {
    auto r = producer.publish(p);
    if (!r) state.SkipWithError(std::string(r.error().message()).c_str());
    return r.has_value();
  };
  for (auto _ : state) {
    if (!refill_when_empty(state, left, publish)) return;
    --left;
    mq::Consumer& member = group[turn++ % group.size()];
    auto msg = member.poll(std::chrono::nanoseconds(0));
    if (!msg || msg->payload().size() != p.size())
      return state.SkipWithError(msg ? "wrong payload size" : std::string(msg.error().message()).c_str());
    benchmark::DoNotOptimize(msg->payload()[63]);
    if (auto r = member.ack(std::move(*msg)); !r) return state.SkipWithError(std::string(r.error().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(p.size()));
}
void BM_PollAckLone64(benchmark::State& state) { poll_ack64(state, 1); }
BENCHMARK(BM_PollAckLone64)->Apply(fixed_iterations);
void BM_PollAckCompeting64(benchmark::State& state) { poll_ack64(state, 2); }
BENCHMARK(BM_PollAckCompeting64)->Apply(fixed_iterations);

// The floors of the libmq rows: the raw SPSC ring's push, then pop, of 64 B in one thread (kPopOnly false), or its
// pop alone of records an untimed refill pushed (kPopOnly true: the floor of the two rows above).
template <bool kPopOnly>
void raw_ring64(benchmark::State& state) {
  RawRing r(state);
  if (!r) return;
  const auto p = payload();
  std::array<std::byte, 64> out{};
  AllocationCount allocations(state);
  allocations.start();
  int left = 0;
  const auto push = [&] {
    const bool sent = r.push->send(p, r.error);
    if (!sent) state.SkipWithError(r.error.c_str());
    return sent;
  };
  for (auto _ : state) {
    if constexpr (kPopOnly) {
      if (!refill_when_empty(state, left, push)) return;
      --left;
    } else if (!push()) {
      return;
    }
    if (!r.pop->receive(out, r.error)) return state.SkipWithError(r.error.c_str());
    benchmark::DoNotOptimize(out[63]);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(p.size()));
}
void BM_RawRingPushPop64(benchmark::State& state) { raw_ring64<false>(state); }
BENCHMARK(BM_RawRingPushPop64)->Apply(fixed_iterations);
void BM_RawRingPop64(benchmark::State& state) { raw_ring64<true>(state); }
BENCHMARK(BM_RawRingPop64)->Apply(fixed_iterations);

// A member polling an empty topic without waiting: what a busy-polling consumer pays between records.
void BM_EmptyPoll(benchmark::State& state) {
  ScopedTopic t(true);
  mq::Consumer consumer(t.topic(), {.group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin});
  AllocationCount allocations(state);
  allocations.start();
  for (auto _ : state) {
    auto msg = consumer.poll(std::chrono::nanoseconds(0));
    if (msg || msg.error().code() != mq::Errc::timed_out) {
      state.SkipWithError(msg ? "a record in an empty topic" : std::string(msg.error().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(msg);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EmptyPoll)->Apply(fixed_iterations);

// The batch form: 32 publishes, then 32 polls and one ack of the last (acks are cumulative). Per record.
void BM_Batch32PublishPollAck64(benchmark::State& state) {
  constexpr int kBatch = 32;  // = the most records a member may hold unacked
  ScopedTopic t(true);
  mq::Producer producer(t.topic());
  mq::Consumer consumer(
      t.topic(), {.group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin, .auto_ack = false});
  const auto p = payload();
  AllocationCount allocations(state, kBatch);
  allocations.start();
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      if (auto r = producer.publish(p); !r) return state.SkipWithError(std::string(r.error().message()).c_str());
    }
    std::optional<mq::Message> last;
    for (int i = 0; i < kBatch; ++i) {
      auto msg = consumer.poll(std::chrono::nanoseconds(0));
      if (!msg) return state.SkipWithError(std::string(msg.error().message()).c_str());
      benchmark::DoNotOptimize(msg->payload()[63]);
      last.emplace(std::move(*msg));
    }
    if (auto r = consumer.ack(std::move(*last)); !r)
      return state.SkipWithError(std::string(r.error().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<std::int64_t>(p.size()));
}
BENCHMARK(BM_Batch32PublishPollAck64)->Apply(fixed_iterations);

// Batches through the batch API: one publish_batch of B records (one claim), one poll_batch (one take of the run),
// one ack of the last. Per record; B = 1, 8, 32, 63.
void BM_PublishBatchPollBatchAck64(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  ScopedTopic t(true);
  mq::Producer producer(t.topic());
  mq::Consumer consumer(
      t.topic(), {.group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin, .auto_ack = false});
  const auto p = payload();
  const std::vector<std::span<const std::byte>> spans(batch, std::span<const std::byte>(p));
  std::vector<mq::Message> got;
  got.reserve(batch);
  AllocationCount allocations(state, static_cast<int>(batch));
  allocations.start();
  for (auto _ : state) {
    if (auto r = producer.publish_batch(spans); !r) return state.SkipWithError(std::string(r.error().message()).c_str());
    auto n = consumer.poll_batch(got, batch, std::chrono::nanoseconds(0));
    if (!n || *n != batch) return state.SkipWithError(n ? "a short batch" : std::string(n.error().message()).c_str());
    for (const auto& m : got) benchmark::DoNotOptimize(m.payload()[63]);
    if (auto r = consumer.ack(std::move(got.back())); !r)
      return state.SkipWithError(std::string(r.error().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch * p.size()));
}
BENCHMARK(BM_PublishBatchPollBatchAck64)->Apply(fixed_iterations)->Arg(1)->Arg(8)->Arg(32)->Arg(63);

// The cost of key ordering on one record's way: publish a record with one of 16 keys, poll it, ack it, in a group
// of ordering none (arg 0) and key (arg 1: the take and the ack each under the group's key lock, the key counted in
// and out of its table).
void BM_PublishPollAckKeyed64(benchmark::State& state) {
  const auto ordering = static_cast<mq::Ordering>(state.range(0));
  ScopedTopic t(false);
  mq::Topic topic = t.topic();
  if (auto made = topic.create_group("bench", mq::Start::earliest, {}, ordering); !made)
    return state.SkipWithError(std::string(made.error().message()).c_str());
  mq::Producer producer(topic);
  mq::Consumer consumer(
      topic, {.group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin, .auto_ack = false});
  const auto p = payload();
  std::array<std::string, 16> keys;
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = "user-" + std::to_string(i);
  AllocationCount allocations(state);
  allocations.start();
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& key = keys[i++ % keys.size()];
    const mq::Record record{p, std::as_bytes(std::span<const char>(key.data(), key.size())), {}, std::nullopt};
    if (auto r = producer.publish(record); !r) return state.SkipWithError(std::string(r.error().message()).c_str());
    auto msg = consumer.poll(std::chrono::nanoseconds(0));
    if (!msg) return state.SkipWithError(std::string(msg.error().message()).c_str());
    benchmark::DoNotOptimize(msg->payload()[63]);
    if (auto r = consumer.ack(std::move(*msg)); !r) return state.SkipWithError(std::string(r.error().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(p.size()));
}
BENCHMARK(BM_PublishPollAckKeyed64)->Apply(fixed_iterations)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
