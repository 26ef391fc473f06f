// The outbound route (libmq -> Kafka), at-least-once: reads the local topic through the bridge's own consumer group
// and produces each record, with its key, headers and timestamp (as CreateTime) and a provenance header, with
// librdkafka's idempotent producer. A local record is acked only once Kafka confirmed it AND every record the route
// received before it (PrefixWindow); anything else stays unacked and comes back through the group when the route
// restarts from its checkpoint (after a failed delivery, a fatal producer error, or a crash of the bridge). A record
// larger than Kafka takes goes to the local dead-letter topic (TOPIC.dlq) once every record before it is in Kafka.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "heartbeat.hpp"
#include "kafka.hpp"
#include "libmq/consumer.hpp"
#include "libmq/topic.hpp"
#include "prefix_window.hpp"
#include "stats.hpp"

namespace bridge {

// The provenance header the bridge adds to every record it carries; its value is the bridge id. A record that
// already carries this bridge's id is not carried (a two-way setup's own echo).
inline constexpr std::string_view kProvenanceHeader = "mq.bridge";

// One route, run by one thread (its own). Not movable: librdkafka's callbacks hold its address.
class OutboundRoute {
 public:
  // `config` and `route` must outlive the route; `topic` is the opened local topic.
  OutboundRoute(const Config& config, const Route& route, mq::Topic topic);
  OutboundRoute(const OutboundRoute&) = delete;
  OutboundRoute& operator=(const OutboundRoute&) = delete;
  ~OutboundRoute();

  // Carries records until `stop` is set, then waits up to the shutdown timeout for Kafka to confirm what is in flight,
  // acks the confirmed prefix and returns 0. Returns 1 (having logged why) when the route cannot go on: the consumer
  // group cannot be joined, the producer cannot be made, or a record Kafka will never take (too large) cannot go to
  // the dead-letter topic (an overwrite topic has none; a full one).
  int run(const std::atomic<bool>& stop);
  // When run() last went round its loop (any thread may ask): the watchdog is fed only while every route beats.
  std::chrono::steady_clock::time_point last_beat() const noexcept { return heartbeat_.last(); }
  // What it is doing and has done (the metrics endpoint reads it from another thread; the supervisor samples it).
  RouteStats& stats() noexcept { return stats_; }

 private:
  struct Entry {
    mq::Message message;
    bool echo = false;  // carries this bridge's id: not produced, done at once
  };

  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text);
  void fail_fatal(rd_kafka_t* rk);  // librdkafka's fatal error: the route restarts with a new producer
  static int on_statistics(rd_kafka_t* rk, char* json, std::size_t json_len, void* opaque);

  bool start_clients();                         // a consumer and a producer; false (logged) when either cannot be made
  void stop_clients();                          // drops the window, destroys the producer, leaves the group
  bool produce_pending();                       // hands received records to librdkafka; false on a record Kafka refuses
  bool take(std::chrono::nanoseconds timeout);  // polls libmq into the window; false on a broken topic
  bool checkpoint();                            // acks the confirmed prefix; true when it moved
  bool dead_letter_too_large();                 // the too-large record, once first in the window; false: cannot
  // Once per turn: state, in-flight, lag, checkpoint age.
  void observe(std::chrono::steady_clock::time_point now, bool moved);
  void restart(const std::atomic<bool>& stop);  // from the checkpoint, after a failure or a fatal error
  void shut_down();
  bool is_echo(const mq::Message& message) const;

  void beat(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) noexcept {
    heartbeat_.beat(now);
  }

  Heartbeat heartbeat_;
  const Config& config_;
  const Route& route_;
  RouteStats stats_{route_};
  mq::Topic topic_;
  bool copy_payloads_ = false;  // overwrite topics: a record's bytes live only until the next poll
  std::optional<mq::Consumer> consumer_;
  kafka::Client producer_;
  PrefixWindow<Entry> window_;
  std::uint64_t next_produce_ = 0;  // sequence number of the next window entry to hand to librdkafka
  std::vector<mq::Message> batch_;
  bool took_ = false;  // the last take() got records: libmq may have more, so do not wait for reports first
  bool queue_full_ = false;                 // librdkafka's queue is full: read nothing more from libmq until it drains
  // The window entry Kafka refused as too large: nothing after it is produced until every record before it is
  // confirmed and acked, then it is dead-lettered (libmq's dead_letter acks, and its ack is cumulative).
  std::optional<std::uint64_t> too_large_;
  std::string failure_;                     // why the route must restart from its checkpoint (empty: all is well)
  bool fatal_ = false;                      // the failure is librdkafka's fatal error (the producer is unusable)
  std::chrono::milliseconds backoff_{100};  // before the next restart; doubled per restart, reset by an ack
  std::optional<mq::Offset> checkpoint_;    // the next offset after the last acked record
  bool kafka_down_ = false;  // librdkafka reported every broker down, and none has come up since
  std::uint64_t retries_before_ = 0, retries_now_ = 0;  // librdkafka's retries: of earlier producers, of this one
  std::chrono::steady_clock::time_point lag_sampled_{};
};

}  // namespace bridge
