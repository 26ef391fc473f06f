// micro: single-process Google Benchmark micro-benchmarks of libmq's hot paths, one thread, no peer:
// publish 64 B (copy), claim + fill + commit 64 B (zero-copy), and a publish + poll + ack round trip.
// Cross-process latency lives in rtt.cpp; these show the per-call cost with hot caches.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>

#include "libmq/libmq.hpp"

namespace {

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

// No group: the ring keeps the newest records and the producer never waits.
void BM_Publish64(benchmark::State& state) {
  ScopedTopic t(false);
  mq::Producer producer(t.topic());
  const auto p = payload();
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
BENCHMARK(BM_Publish64);

void BM_ClaimCommit64(benchmark::State& state) {
  ScopedTopic t(false);
  mq::Producer producer(t.topic());
  const auto p = payload();
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
BENCHMARK(BM_ClaimCommit64);

// One group, one member: publish, poll (already there, so no wait), read the payload, ack.
void BM_PublishPollAck64(benchmark::State& state) {
  ScopedTopic t(true);
  mq::Producer producer(t.topic());
  mq::Consumer consumer(t.topic(), {.group = "bench", .start = mq::Start::earliest, .wait = mq::Wait::busy_spin,
                                    .auto_ack = false});
  const auto p = payload();
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
BENCHMARK(BM_PublishPollAck64);

}  // namespace

BENCHMARK_MAIN();
