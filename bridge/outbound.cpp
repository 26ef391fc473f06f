// The outbound route (see outbound.hpp). One loop: hand received records to librdkafka, serve its delivery reports,
// ack the confirmed prefix, read more from libmq while librdkafka has room.
#include "outbound.hpp"

#include <algorithm>
#include <thread>

#include "log.hpp"

namespace bridge {

namespace {

// A non-null pointer for empty values: librdkafka reads a null pointer as a null value (a tombstone), an empty one
// as empty. libmq payloads and header values are never null.
const std::byte kEmpty[1] = {};

const void* bytes_or_empty(std::span<const std::byte> bytes) {
  return bytes.empty() ? static_cast<const void*>(kEmpty) : static_cast<const void*>(bytes.data());
}

std::string err_text(rd_kafka_resp_err_t err) {
  return std::string(rd_kafka_err2name(err)) + " (" + rd_kafka_err2str(err) + ")";
}

}  // namespace

OutboundRoute::OutboundRoute(const Config& config, const Route& route, mq::Topic topic)
    : config_(config), route_(route), topic_(std::move(topic)) {
  copy_payloads_ = topic_.info().policy == mq::Policy::overwrite;
}

OutboundRoute::~OutboundRoute() { stop_clients(); }

void OutboundRoute::on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque) {
  auto* self = static_cast<OutboundRoute*>(opaque);
  const auto seq = reinterpret_cast<std::uintptr_t>(message->_private);
  Entry* entry = self->window_.find(seq);
  if (entry == nullptr) return;  // a report from before a restart: that record comes back through the group
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->window_.mark_done(seq);
    self->kafka_down_ = false;
    self->stats_.carried(message->len);
    if (const std::int64_t us = rd_kafka_message_latency(message); us >= 0)
      self->stats_.latency().observe(std::chrono::microseconds(us));
    return;
  }
  self->stats_.error(rd_kafka_err2name(message->err));
  if (message->err == RD_KAFKA_RESP_ERR__FATAL)
    self->fail_fatal(rk);
  else if (self->failure_.empty())
    self->failure_ =
        "delivery of offset " + std::to_string(entry->message.offset()) + " failed: " + err_text(message->err);
}

void OutboundRoute::fail_fatal(rd_kafka_t* rk) {
  char text[512] = {};
  const auto cause = rd_kafka_fatal_error(rk, text, sizeof text);
  fatal_ = true;
  failure_ = "fatal producer error " + err_text(cause) + ": " + text;  // the cause, whoever saw it first
}

void OutboundRoute::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<OutboundRoute*>(opaque);
  self->stats_.error(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->kafka_down_ = true;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    self->fail_fatal(rk);
    return;
  }
  // Brokers down, connections refused: librdkafka retries by itself and the records wait (in it, or in libmq).
  log(LogLevel::warn,
      "route " + self->route_.name + ": kafka: " + err_text(static_cast<rd_kafka_resp_err_t>(err)) + ": " + reason);
}

int OutboundRoute::on_statistics(rd_kafka_t*, char* json, std::size_t json_len, void* opaque) {
  auto* self = static_cast<OutboundRoute*>(opaque);
  if (const auto s = kafka::parse_statistics(std::string_view(json, json_len))) {
    self->retries_now_ = s->retries;
    self->stats_.set_kafka_retries(self->retries_before_ + self->retries_now_);
    if (s->broker_up) self->kafka_down_ = false;
  }
  return 0;  // librdkafka frees the JSON
}

void OutboundRoute::on_log(const rd_kafka_t* rk, int, const char* facility, const char* text) {
  // librdkafka's own lines repeat what on_error says at warn, with more detail: kept for --log-level debug.
  log(LogLevel::debug, std::string(rd_kafka_name(rk)) + ": " + facility + ": " + text);
}

bool OutboundRoute::start_clients() {
  // What a killed bridge held unacked goes back to the group now, so this member takes it before newer records:
  // otherwise it would come later, by the recovery of a poll's slow path, after newer records of the same keys.
  if (const auto recovered = topic_.recover_dead(); recovered != 0)
    log(LogLevel::info, "route " + route_.name + ": recovered " + std::to_string(recovered) +
                            " claims and members of dead processes on local topic '" + route_.local_topic + "'");
  auto consumer = mq::Consumer::make(
      topic_, mq::ConsumerOptions{.group = route_.group, .start = mq::Start::earliest, .auto_ack = false});
  if (!consumer) {
    log(LogLevel::error, "route " + route_.name + ": cannot join group '" + route_.group + "' of local topic '" +
                             route_.local_topic + "': " + std::string(consumer.error().message()));
    return false;
  }
  consumer_.emplace(std::move(*consumer));
  auto conf = kafka::route_conf(route_, "config file " + config_.config_file);
  if (!conf) {  // checked at start already; only a changed librdkafka could refuse it now
    log(LogLevel::error, "route " + route_.name + ": " + std::string(conf.error().message()));
    return false;
  }
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &OutboundRoute::on_delivery);
  rd_kafka_conf_set_error_cb(conf->get(), &OutboundRoute::on_error);
  rd_kafka_conf_set_log_cb(conf->get(), &OutboundRoute::on_log);  // from librdkafka's threads: log() is one write
  rd_kafka_conf_set_stats_cb(conf->get(), &OutboundRoute::on_statistics);
  char text[512] = {};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), text, sizeof text);
  if (rk == nullptr) {
    log(LogLevel::error, "route " + route_.name + ": cannot make the Kafka producer: " + text);
    return false;
  }
  (void)conf->release();  // rd_kafka_new took it
  producer_.reset(rk);
  // The topic's partitions asked for now (up to a second while Kafka is away): a producer that meets its topic only
  // at the first record holds everything until librdkafka's next metadata refresh, a second later.
  beat();
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, route_.kafka_topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(rk, 0, topic, &metadata, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
    rd_kafka_metadata_destroy(metadata);
  rd_kafka_topic_destroy(topic);
  next_produce_ = window_.end_seq();
  return true;
}

void OutboundRoute::stop_clients() {
  window_.clear();  // Messages before their Consumer; late reports find nothing now
  next_produce_ = window_.end_seq();
  if (producer_) {
    (void)rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    producer_.reset();
    retries_before_ += retries_now_;  // the next producer's statistics count from 0
    retries_now_ = 0;
  }
  consumer_.reset();  // leaves the group: what it held unacked goes back to the group
  queue_full_ = false;
  too_large_.reset();
}

bool OutboundRoute::is_echo(const mq::Message& message) const {
  for (const auto& h : message.headers())
    if (h.name == kProvenanceHeader &&
        std::string_view(reinterpret_cast<const char*>(h.value.data()), h.value.size()) == config_.id)
      return true;
  return false;
}

bool OutboundRoute::produce_pending() {
  if (too_large_) return true;  // nothing after it until it is dead-lettered (order per key)
  next_produce_ = std::max(next_produce_, window_.first_seq());
  for (; next_produce_ < window_.end_seq(); ++next_produce_) {
    Entry* entry = window_.find(next_produce_);
    if (entry->echo) continue;
    const mq::Message& m = entry->message;
    kafka::Headers headers(rd_kafka_headers_new(8));
    for (const auto& h : m.headers())
      rd_kafka_header_add(headers.get(), h.name.data(), static_cast<ssize_t>(h.name.size()), bytes_or_empty(h.value),
                          static_cast<ssize_t>(h.value.size()));
    rd_kafka_header_add(headers.get(), kProvenanceHeader.data(), static_cast<ssize_t>(kProvenanceHeader.size()),
                        config_.id.data(), static_cast<ssize_t>(config_.id.size()));
    const auto key = m.key();
    // Computed apart: the RD_KAFKA_V_* macros cast their arguments without parentheses.
    const void* const key_bytes = key ? bytes_or_empty(*key) : nullptr;  // null: a null key
    const std::size_t key_size = key ? key->size() : 0;
    void* const payload_bytes = const_cast<void*>(bytes_or_empty(m.payload()));
    const std::size_t payload_size = m.payload().size();
    const std::int64_t timestamp_ms = m.timestamp_ns() / 1'000'000;
    void* const opaque = reinterpret_cast<void*>(static_cast<std::uintptr_t>(next_produce_));
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_TOPIC(route_.kafka_topic.c_str()),
        RD_KAFKA_V_MSGFLAGS(copy_payloads_ ? RD_KAFKA_MSG_F_COPY : 0),
        // Zero-copy in block topics: the bytes stay valid until the record is acked, which waits for its report.
        RD_KAFKA_V_VALUE(payload_bytes, payload_size), RD_KAFKA_V_KEY(key_bytes, key_size),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_HEADERS(headers.get()), RD_KAFKA_V_OPAQUE(opaque),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      (void)headers.release();  // the message owns them now
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      if (!queue_full_)
        log(LogLevel::debug, "route " + route_.name + ": librdkafka's queue is full: reading libmq paused at offset " +
                                 std::to_string(m.offset()));
      queue_full_ = true;
      return true;
    }
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      stats_.error(rd_kafka_err2name(err));
      const std::string what = "route " + route_.name + ": offset " + std::to_string(m.offset()) + " of local topic '" +
                               route_.local_topic + "' is larger than Kafka takes (" + std::to_string(payload_size) +
                               " bytes, see kafka.message.max.bytes)";
      if (copy_payloads_) {  // an overwrite topic: no dead-letter topic (libmq's dead letters need a block topic)
        log(LogLevel::error, what + ": the route stops rather than drop it");
        return false;
      }
      log(LogLevel::warn, what + ": it goes to the dead-letter topic '" + route_.local_topic +
                              ".dlq' once every record before it is in Kafka");
      too_large_ = next_produce_;
      return true;
    }
    stats_.error(rd_kafka_err2name(err));
    if (err == RD_KAFKA_RESP_ERR__FATAL)
      fail_fatal(producer_.get());  // before on_error says so: the same cause in the log
    else if (failure_.empty())
      failure_ = "producing offset " + std::to_string(m.offset()) + " failed: " + err_text(err);
    return true;
  }
  queue_full_ = false;
  return true;
}

bool OutboundRoute::take(std::chrono::nanoseconds timeout) {
  took_ = false;
  if (consumer_->unacked() >= mq::kMaxUnacked) return true;  // the window is as long as libmq lets one member hold
  auto n = consumer_->poll_batch(batch_, mq::kMaxBatch, timeout);
  if (!n) {
    const auto& e = n.error();
    if (e.code() == mq::Errc::timed_out || e.code() == mq::Errc::limit) return true;
    stats_.error(mq::errc_name(e.code()));
    if (e.code() == mq::Errc::lost) {
      log(LogLevel::warn, "route " + route_.name + ": local topic '" + route_.local_topic +
                              "' (policy overwrite) overwrote " + std::to_string(e.lost()) +
                              " records before the bridge read them: they are not in Kafka");
      return true;
    }
    log(LogLevel::error,
        "route " + route_.name + ": reading local topic '" + route_.local_topic + "': " + std::string(e.message()));
    return false;
  }
  took_ = !batch_.empty();
  for (auto& m : batch_) {
    const bool echo = is_echo(m);
    if (echo) stats_.echo_dropped();
    window_.push(Entry{std::move(m), echo}, echo);
  }
  return true;
}

bool OutboundRoute::checkpoint() {
  auto last = window_.pop_done_prefix();
  if (!last) return false;
  const mq::Offset offset = last->message.offset();
  if (auto acked = consumer_->ack(std::move(last->message)); !acked) {
    // Not ours any more (cannot happen while this member lives): it comes back through the group.
    log(LogLevel::warn, "route " + route_.name + ": ack of offset " + std::to_string(offset) +
                            " failed: " + std::string(acked.error().message()));
    stats_.error(mq::errc_name(acked.error().code()));
    return false;
  }
  checkpoint_ = offset + 1;
  backoff_ = std::chrono::milliseconds(100);
  return true;
}

bool OutboundRoute::dead_letter_too_large() {
  Entry* entry = window_.find(*too_large_);
  const mq::Offset offset = entry->message.offset();
  const std::size_t size = entry->message.payload().size();
  const std::string why = "larger than Kafka takes (" + std::to_string(size) + " bytes) for Kafka topic '" +
                          route_.kafka_topic + "' (route " + route_.name + " of mq-kafka-bridge " + config_.id + ")";
  if (auto sent = consumer_->dead_letter(std::move(entry->message), why); !sent) {
    log(LogLevel::error, "route " + route_.name + ": offset " + std::to_string(offset) + " of local topic '" +
                             route_.local_topic + "' is larger than Kafka takes and cannot go to its dead-letter " +
                             "topic: " + std::string(sent.error().message()) + "; the route stops rather than drop it");
    stats_.error(mq::errc_name(sent.error().code()));
    return false;
  }
  window_.pop_front();
  too_large_.reset();
  checkpoint_ = offset + 1;
  stats_.dead_lettered();
  log(LogLevel::warn, "route " + route_.name + ": offset " + std::to_string(offset) + " of local topic '" +
                          route_.local_topic + "' moved to the dead-letter topic '" + route_.local_topic +
                          ".dlq' (mqctl dlq " + route_.local_topic +
                          " shows it; replay it once Kafka takes it); the route goes on");
  return true;
}

void OutboundRoute::observe(std::chrono::steady_clock::time_point now, bool moved) {
  stats_.set_state(kafka_down_ ? RouteState::kafka_down : queue_full_ ? RouteState::waiting : RouteState::running);
  stats_.set_in_flight(window_.size());
  if (now - lag_sampled_ >= std::chrono::seconds(1)) {  // the group's lag: once a second (info() allocates)
    lag_sampled_ = now;
    for (const auto& g : topic_.info().groups)
      if (g.name == route_.group) stats_.set_lag(static_cast<std::int64_t>(g.lag));
  }
  stats_.checkpoint_turn(now, !window_.empty() || stats_.lag() > 0, moved);
}

void OutboundRoute::restart(const std::atomic<bool>& stop) {
  stats_.restarted();
  stats_.set_state(RouteState::restarting);
  log(LogLevel::warn, "route " + route_.name + ": " + failure_ + (fatal_ ? " (fatal: new producer)" : "") +
                          "; restarting from the checkpoint" +
                          (checkpoint_ ? " (offset " + std::to_string(*checkpoint_) + ")" : std::string()) + " in " +
                          std::to_string(backoff_.count()) + " ms");
  stop_clients();
  failure_.clear();
  fatal_ = false;
  const auto until = std::chrono::steady_clock::now() + backoff_;
  while (!stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
    beat();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // pacing, not a condition: a restart loop's brake
  }
  backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
}

void OutboundRoute::shut_down() {
  const auto in_flight = window_.size();
  if (in_flight != 0)
    log(LogLevel::info, "route " + route_.name + ": stopping: waiting up to " +
                            std::to_string(config_.shutdown_timeout.count()) + " ms for Kafka to confirm " +
                            std::to_string(in_flight) + " records");
  const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
  // Only what librdkafka holds is waited for; records not handed to it yet stay unacked for the next start.
  while (rd_kafka_outq_len(producer_.get()) > 0 && failure_.empty() && std::chrono::steady_clock::now() < deadline) {
    beat();
    rd_kafka_poll(producer_.get(), 50);
  }
  checkpoint();
  if (!window_.empty())
    log(LogLevel::warn, "route " + route_.name + ": " + std::to_string(window_.size()) +
                            " records not confirmed by Kafka stay unacked in libmq; the next start carries them");
  stop_clients();
}

int OutboundRoute::run(const std::atomic<bool>& stop) {
  log(LogLevel::info, "route " + route_.name + ": local topic '" + route_.local_topic + "' (group '" + route_.group +
                          "') -> Kafka topic '" + route_.kafka_topic + "'");
  while (!stop.load(std::memory_order_relaxed)) {
    const auto now = std::chrono::steady_clock::now();
    beat(now);
    if (!producer_ && !start_clients()) {
      stats_.set_state(RouteState::failed);
      return 1;
    }
    if (!failure_.empty()) {
      restart(stop);
      continue;
    }
    if (!produce_pending()) {
      shut_down();  // what went before the refused record is still confirmed and acked
      stats_.set_state(RouteState::failed);
      return 1;
    }
    // Delivery reports and errors are served here, in this thread. While libmq has records and librdkafka room, take
    // them without waiting for reports (a wait per batch would cap the route at a batch per wait); when neither
    // has, wait briefly for reports; with nothing in flight, wait in libmq for the next record.
    const bool busy = !window_.empty();
    rd_kafka_poll(producer_.get(), queue_full_ ? 10 : busy && !took_ ? 1 : 0);
    observe(now, checkpoint());
    if (too_large_ && window_.first_seq() == *too_large_ && !dead_letter_too_large()) {
      shut_down();
      stats_.set_state(RouteState::failed);
      return 1;
    }
    if (!failure_.empty() || queue_full_) continue;
    if (!take(busy ? std::chrono::nanoseconds(0) : std::chrono::nanoseconds(std::chrono::milliseconds(100)))) {
      stop_clients();
      stats_.set_state(RouteState::failed);
      return 1;
    }
  }
  if (producer_) shut_down();
  stats_.set_state(RouteState::stopped);
  const auto done = stats_.snapshot(std::chrono::steady_clock::now());
  log(LogLevel::info, "route " + route_.name + ": stopped: " + std::to_string(done.records) + " records carried, " +
                          std::to_string(done.echoes) + " echoes dropped, " + std::to_string(done.restarts) +
                          " restarts");
  return 0;
}

}  // namespace bridge
