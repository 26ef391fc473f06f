// What each route is doing and has done, for the bridge's metrics endpoint (Prometheus text on GET /metrics) and
// `mq-kafka-bridge --status`, which reads that endpoint. A route's thread (and librdkafka's callbacks, which run in
// it) writes its RouteStats; the endpoint's thread and the supervisor read them: every field is an atomic but the
// error counts, which are rare and take a mutex.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace bridge {

enum class RouteState : int {
  starting,    // joining the group, scanning the local topic's tail, asking Kafka for the topic
  running,     // carrying records (or waiting for some)
  waiting,     // out: librdkafka's queue is full (Kafka slow or away): reading the local topic is paused
  paused,      // in: the local topic is full: the Kafka partitions are paused until it drains
  kafka_down,  // librdkafka reports every broker down: records wait (in libmq, or in librdkafka's queue)
  restarting,  // out: after a failed delivery or a fatal producer error, back to the checkpoint after a pause
  stopped,     // stopped cleanly
  failed,      // stopped by an error it cannot go past (logged)
};
inline constexpr std::array kRouteStates = {RouteState::starting,   RouteState::running, RouteState::waiting,
                                            RouteState::paused,     RouteState::kafka_down,
                                            RouteState::restarting, RouteState::stopped, RouteState::failed};
std::string_view state_name(RouteState state) noexcept;  // "running", "kafka-down", ...

// Delivery latency in Prometheus histogram buckets (seconds).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,   5,     10};
  struct Snapshot {
    std::array<std::uint64_t, kBounds.size() + 1> cumulative{};  // per bound, then +Inf (= count)
    double sum_seconds = 0;
  };
  void observe(std::chrono::microseconds latency) noexcept;
  Snapshot snapshot() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};  // not cumulative; the last is +Inf
  std::atomic<std::uint64_t> sum_us_{0};
};

class RouteStats {
 public:
  explicit RouteStats(const Route& route) : route_(route) {}
  RouteStats(const RouteStats&) = delete;
  RouteStats& operator=(const RouteStats&) = delete;

  // ---- the route's thread -----------------------------------------------------------------------------------------
  // Relaxed stores and loads throughout: counters and gauges read for reporting, ordering nothing else.
  void carried(std::size_t payload_bytes) noexcept {
    records_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(payload_bytes, std::memory_order_relaxed);
  }
  void echo_dropped() noexcept { echoes_.fetch_add(1, std::memory_order_relaxed); }
  void restarted() noexcept { restarts_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t records() const noexcept { return records_.load(std::memory_order_relaxed); }
  void dead_lettered() noexcept { dead_letters_.fetch_add(1, std::memory_order_relaxed); }
  void error(std::string_view code);  // counted by code: a librdkafka error name, or a libmq Errc name
  void set_state(RouteState state) noexcept { state_.store(static_cast<int>(state), std::memory_order_relaxed); }
  RouteState state() const noexcept { return static_cast<RouteState>(state_.load(std::memory_order_relaxed)); }
  void set_in_flight(std::uint64_t records) noexcept { in_flight_.store(records, std::memory_order_relaxed); }
  // out: records of the local topic its group has not acked; in: Kafka's consumer lag summed over the partitions.
  // -1: not known (yet).
  void set_lag(std::int64_t records) noexcept { lag_.store(records, std::memory_order_relaxed); }
  std::int64_t lag() const noexcept { return lag_.load(std::memory_order_relaxed); }
  void set_kafka_retries(std::uint64_t requests) noexcept { retries_.store(requests, std::memory_order_relaxed); }
  LatencyHistogram& latency() noexcept { return latency_; }
  // Once per loop turn: whether the route has records to carry (held unconfirmed, or lag), and whether its checkpoint
  // moved. The checkpoint's age counts from the later of its last move and the moment work appeared; 0 while idle.
  void checkpoint_turn(std::chrono::steady_clock::time_point now, bool has_work, bool moved) noexcept;

  // ---- the supervisor, once a second ------------------------------------------------------------------------------
  void sample_rates(std::chrono::steady_clock::time_point now) noexcept;

  // ---- any thread -------------------------------------------------------------------------------------------------
  const Route& route() const noexcept { return route_; }
  struct Snapshot {
    RouteState state = RouteState::starting;
    std::uint64_t records = 0, bytes = 0, echoes = 0, restarts = 0, kafka_retries = 0, in_flight = 0,
                  dead_letters = 0;
    std::int64_t lag = -1;
    double records_per_s = 0, bytes_per_s = 0, checkpoint_age_s = 0;
    LatencyHistogram::Snapshot latency;
    std::map<std::string, std::uint64_t, std::less<>> errors;
  };
  Snapshot snapshot(std::chrono::steady_clock::time_point now) const;

 private:
  const Route& route_;
  std::atomic<int> state_{static_cast<int>(RouteState::starting)};
  std::atomic<std::uint64_t> records_{0}, bytes_{0}, echoes_{0}, restarts_{0}, retries_{0}, in_flight_{0},
      dead_letters_{0};
  std::atomic<std::int64_t> lag_{-1};
  std::atomic<std::chrono::steady_clock::rep> work_since_{0};  // 0: no work waiting
  std::atomic<double> records_per_s_{0}, bytes_per_s_{0};
  LatencyHistogram latency_;
  mutable std::mutex errors_mutex_;
  std::map<std::string, std::uint64_t, std::less<>> errors_;
  // The supervisor's last sample (only it touches these).
  std::chrono::steady_clock::time_point sampled_at_{};
  std::uint64_t sampled_records_ = 0, sampled_bytes_ = 0;
};

// Every route's metrics as the text a Prometheus scrape gets, with the bridge's id as an info series.
std::string render_metrics(const std::string& bridge_id, const std::vector<const RouteStats*>& routes);

}  // namespace bridge
