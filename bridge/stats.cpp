// Route statistics and their Prometheus text (see stats.hpp).
#include "stats.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>

namespace bridge {

std::string_view state_name(RouteState state) noexcept {
  switch (state) {
    case RouteState::starting: return "starting";
    case RouteState::running: return "running";
    case RouteState::waiting: return "waiting";
    case RouteState::paused: return "paused";
    case RouteState::kafka_down: return "kafka-down";
    case RouteState::restarting: return "restarting";
    case RouteState::stopped: return "stopped";
    case RouteState::failed: return "failed";
  }
  return "unknown";
}

void LatencyHistogram::observe(std::chrono::microseconds latency) noexcept {
  const double seconds = static_cast<double>(latency.count()) / 1e6;
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(latency.count(), 0)),
                    std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const noexcept {
  Snapshot s;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum_seconds = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

void RouteStats::error(std::string_view code) {
  std::lock_guard lock(errors_mutex_);
  auto it = errors_.find(code);
  if (it == errors_.end()) it = errors_.emplace(std::string(code), 0).first;
  ++it->second;
}

void RouteStats::checkpoint_turn(std::chrono::steady_clock::time_point now, bool has_work, bool moved) noexcept {
  if (!has_work)
    work_since_.store(0, std::memory_order_relaxed);
  else if (moved || work_since_.load(std::memory_order_relaxed) == 0)
    work_since_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
}

void RouteStats::sample_rates(std::chrono::steady_clock::time_point now) noexcept {
  const std::uint64_t records = records_.load(std::memory_order_relaxed);
  const std::uint64_t bytes = bytes_.load(std::memory_order_relaxed);
  if (sampled_at_ != std::chrono::steady_clock::time_point{}) {
    const double seconds = std::chrono::duration<double>(now - sampled_at_).count();
    if (seconds <= 0) return;
    records_per_s_.store(static_cast<double>(records - sampled_records_) / seconds, std::memory_order_relaxed);
    bytes_per_s_.store(static_cast<double>(bytes - sampled_bytes_) / seconds, std::memory_order_relaxed);
  }
  sampled_at_ = now;
  sampled_records_ = records;
  sampled_bytes_ = bytes;
}

RouteStats::Snapshot RouteStats::snapshot(std::chrono::steady_clock::time_point now) const {
  Snapshot s;
  s.state = state();
  s.records = records_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.echoes = echoes_.load(std::memory_order_relaxed);
  s.restarts = restarts_.load(std::memory_order_relaxed);
  s.dead_letters = dead_letters_.load(std::memory_order_relaxed);
  s.kafka_retries = retries_.load(std::memory_order_relaxed);
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  s.lag = lag_.load(std::memory_order_relaxed);
  s.records_per_s = records_per_s_.load(std::memory_order_relaxed);
  s.bytes_per_s = bytes_per_s_.load(std::memory_order_relaxed);
  if (const auto since = work_since_.load(std::memory_order_relaxed); since != 0)
    s.checkpoint_age_s =
        std::max(0.0, std::chrono::duration<double>(now - std::chrono::steady_clock::time_point(
                                                              std::chrono::steady_clock::duration(since)))
                          .count());
  s.latency = latency_.snapshot();
  std::lock_guard lock(errors_mutex_);
  s.errors = errors_;
  return s;
}

namespace {

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

struct Series {
  const RouteStats* route;
  RouteStats::Snapshot at;
  std::string labels;  // route="...",direction="..."
};

}  // namespace

std::string render_metrics(const std::string& bridge_id, const std::vector<const RouteStats*>& routes) {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Series> series;
  for (const RouteStats* r : routes)
    series.push_back({r, r->snapshot(now),
                      "route=\"" + label(r->route().name) + "\",direction=\"" +
                          (r->route().direction == Direction::out ? "out" : "in") + "\""});
  std::string out;
  const auto head = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  const auto each = [&](const char* name, const char* type, const char* help,
                        const std::function<std::string(const Series&)>& value) {
    head(name, type, help);
    for (const auto& s : series)
      if (auto v = value(s); !v.empty()) out += std::string(name) + "{" + s.labels + "} " + v + "\n";
  };

  head("mq_bridge_info", "gauge", "The bridge (label id: the id written in the mq.bridge header).");
  out += "mq_bridge_info{id=\"" + label(bridge_id) + "\"} 1\n";
  head("mq_bridge_route_info", "gauge", "A route of the config: its topics and group.");
  for (const auto& s : series) {
    const Route& r = s.route->route();
    out += "mq_bridge_route_info{" + s.labels + ",local_topic=\"" + label(r.local_topic) + "\",kafka_topic=\"" +
           label(r.kafka_topic) + "\",group=\"" + label(r.group) + "\"} 1\n";
  }
  head("mq_bridge_route_state", "gauge", "1 for the state the route is in, 0 for the others.");
  for (const auto& s : series)
    for (const RouteState state : kRouteStates)
      out += "mq_bridge_route_state{" + s.labels + ",state=\"" + std::string(state_name(state)) + "\"} " +
             (s.at.state == state ? "1" : "0") + "\n";
  each("mq_bridge_records_total", "counter",
       "Records carried: out, confirmed by Kafka; in, appended to the local topic.",
       [](const Series& s) { return std::to_string(s.at.records); });
  each("mq_bridge_bytes_total", "counter", "Payload bytes of the records carried.",
       [](const Series& s) { return std::to_string(s.at.bytes); });
  each("mq_bridge_records_per_second", "gauge", "Records carried per second over the last second.",
       [](const Series& s) { return number(s.at.records_per_s); });
  each("mq_bridge_bytes_per_second", "gauge", "Payload bytes carried per second over the last second.",
       [](const Series& s) { return number(s.at.bytes_per_s); });
  each("mq_bridge_in_flight", "gauge",
       "out: records read from the local topic and not yet confirmed by Kafka; in: records taken from Kafka and "
       "not yet appended (waiting for room while the local topic is full).",
       [](const Series& s) { return std::to_string(s.at.in_flight); });
  each("mq_bridge_lag", "gauge",
       "out: records of the local topic the bridge's group has not acked; in: Kafka's consumer lag, summed over "
       "the partitions (absent while not known).",
       [](const Series& s) { return s.at.lag < 0 ? std::string() : std::to_string(s.at.lag); });
  each("mq_bridge_checkpoint_age_seconds", "gauge",
       "Seconds since the checkpoint (out: the acked prefix; in: the last append) moved while the route had "
       "records to carry; 0 while it has none.",
       [](const Series& s) { return number(s.at.checkpoint_age_s); });
  each("mq_bridge_restarts_total", "counter",
       "out: restarts from the checkpoint after a failed delivery or a fatal producer error.",
       [](const Series& s) { return std::to_string(s.at.restarts); });
  each("mq_bridge_kafka_retries_total", "counter", "Requests librdkafka retried (its statistics' txretries).",
       [](const Series& s) { return std::to_string(s.at.kafka_retries); });
  each("mq_bridge_dead_lettered_total", "counter",
       "out: records larger than Kafka takes, moved to the local dead-letter topic (TOPIC.dlq).",
       [](const Series& s) { return std::to_string(s.at.dead_letters); });
  each("mq_bridge_echoes_dropped_total", "counter", "Records not carried because they carry this bridge's id.",
       [](const Series& s) { return std::to_string(s.at.echoes); });
  head("mq_bridge_errors_total", "counter",
       "Errors by code: librdkafka's error names (delivery reports, produce calls, client errors) and libmq's.");
  for (const auto& s : series)
    for (const auto& [code, count] : s.at.errors)
      out += "mq_bridge_errors_total{" + s.labels + ",code=\"" + label(code) + "\"} " + std::to_string(count) + "\n";
  head("mq_bridge_delivery_latency_seconds", "histogram",
       "out: from handing a record to librdkafka to Kafka's confirmation; in: from the record's Kafka timestamp "
       "to its append to the local topic.");
  for (const auto& s : series) {
    const auto& h = s.at.latency;
    for (std::size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i)
      out += "mq_bridge_delivery_latency_seconds_bucket{" + s.labels + ",le=\"" +
             number(LatencyHistogram::kBounds[i]) + "\"} " + std::to_string(h.cumulative[i]) + "\n";
    out += "mq_bridge_delivery_latency_seconds_bucket{" + s.labels + ",le=\"+Inf\"} " +
           std::to_string(h.cumulative.back()) + "\n";
    out += "mq_bridge_delivery_latency_seconds_sum{" + s.labels + "} " + number(h.sum_seconds) + "\n";
    out += "mq_bridge_delivery_latency_seconds_count{" + s.labels + "} " + std::to_string(h.cumulative.back()) +
           "\n";
  }
  return out;
}

}  // namespace bridge
