// The inbound route (Kafka -> libmq), exactly-once into libmq while one bridge writes the local topic: every record
// appended carries kafka.topic, kafka.partition and kafka.offset headers, and at start the route reads the records
// the local topic holds for the last Kafka offset written per partition and starts each partition right after it
// (libmq is the source of truth; the Kafka consumer group gets commits for lag monitoring only). A full local topic
// (policy block) pauses the Kafka partitions until it drains: nothing is dropped.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "heartbeat.hpp"
#include "kafka.hpp"
#include "libmq/producer.hpp"
#include "libmq/topic.hpp"
#include "stats.hpp"

namespace bridge {

// The headers of every record the inbound route appends (values in decimal text but for the topic).
namespace kafka_header {
inline constexpr std::string_view topic = "kafka.topic";
inline constexpr std::string_view partition = "kafka.partition";
inline constexpr std::string_view offset = "kafka.offset";
}  // namespace kafka_header

// The next Kafka offset to read per partition of `kafka_topic`, from the kafka.* headers of the records `topic`
// holds (a partition with no record there is absent). Reads them through a consumer group of its own
// ("mq-kafka-bridge.scan.ROUTE"), made at the earliest record and deleted afterwards. Time grows with the records
// held (at most the topic's capacity). Dead processes' open claims are recovered first (a killed bridge leaves
// one); an open claim of a live process that stays open is Errc::busy. Errors: the group cannot be made or read.
mq::Result<std::map<std::int32_t, std::int64_t>> scan_tail(mq::Topic& topic, const std::string& route_name,
                                                           const std::string& kafka_topic);

// One route, run by one thread (its own).
class InboundRoute {
 public:
  // `config` and `route` must outlive the route; `topic` is the opened local topic.
  InboundRoute(const Config& config, const Route& route, mq::Topic topic);
  InboundRoute(const InboundRoute&) = delete;
  InboundRoute& operator=(const InboundRoute&) = delete;
  ~InboundRoute();

  // Appends Kafka's records until `stop` is set, then commits the group's offsets and returns 0. Returns 1 (having
  // logged why) when the route cannot go on: the tail cannot be read, the consumer cannot be made, or a record is
  // larger than the local topic takes.
  int run(const std::atomic<bool>& stop);
  // When run() last went round its loop (any thread may ask): the watchdog is fed only while every route beats.
  std::chrono::steady_clock::time_point last_beat() const noexcept { return heartbeat_.last(); }
  // What it is doing and has done (the metrics endpoint reads it from another thread; the supervisor samples it).
  RouteStats& stats() noexcept { return stats_; }

 private:
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text);
  static int on_statistics(rd_kafka_t* rk, char* json, std::size_t json_len, void* opaque);

  bool start_consumer(const std::atomic<bool>& stop);  // scan, make, assign; false (logged) on a hard failure
  // Appends one Kafka record (`now_ns`: the wall clock for its delivery latency). Errc::full when the topic had no
  // room within the producer's short block timeout.
  mq::Result<void> append(const rd_kafka_message_t& message, std::int64_t now_ns);
  void pause(bool paused);
  // Every turn: the appended offsets stored (every 100 ms), Kafka's lag from librdkafka's cached watermarks and
  // positions (every second).
  void housekeeping(std::chrono::steady_clock::time_point now);
  void store_offsets();  // the offsets after the records appended, per partition, for the group's commits
  bool is_echo(const rd_kafka_message_t& message) const;

  void beat(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) noexcept {
    heartbeat_.beat(now);
  }

  Heartbeat heartbeat_;
  const Config& config_;
  const Route& route_;
  RouteStats stats_{route_};
  mq::Topic topic_;
  std::optional<mq::Producer> producer_;
  kafka::Client consumer_;
  // Records taken from librdkafka and not appended yet, in order: [next_, fetched_n_). The one at next_ is the one a
  // full topic refused, if any: appended before any other.
  std::array<rd_kafka_message_t*, 256> fetched_{};
  std::size_t fetched_n_ = 0, next_ = 0;
  rd_kafka_queue_t* queue_ = nullptr;  // the consumer's queue, for taking what it holds in one call
  bool kafka_down_ = false;  // librdkafka reported every broker down, and none has come up since
  std::chrono::steady_clock::time_point lag_sampled_{}, stored_at_{};
  std::vector<mq::Header> headers_;      // append's, reused
  std::vector<std::int64_t> to_store_;  // per partition: the offset to store next, -1 none
};

}  // namespace bridge
