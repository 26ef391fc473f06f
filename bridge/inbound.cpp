// The inbound route (see inbound.hpp): scan the local topic's tail, assign every Kafka partition at the offset after
// the last one written, append what comes, pause while the local topic is full.
#include "inbound.hpp"

#include <algorithm>
#include <thread>
#include <vector>

#include "libmq/consumer.hpp"
#include "log.hpp"
#include "outbound.hpp"  // kProvenanceHeader

namespace bridge {

namespace {

std::string_view text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::optional<std::int64_t> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A publish into a full topic waits this long before the route pauses Kafka and looks at its stop flag again.
constexpr std::chrono::milliseconds kFullWait{100};
// How long the tail scan waits at an open claim of a live process before it gives up (the route then fails).
constexpr std::chrono::seconds kScanStallLimit{10};

}  // namespace

mq::Result<std::map<std::int32_t, std::int64_t>> scan_tail(mq::Topic& topic, const std::string& route_name,
                                                           const std::string& kafka_topic) {
  const std::string group = "mq-kafka-bridge.scan." + route_name;
  // A killed bridge's open claim becomes a skip record now (readers stop at an open claim, and the scan must read
  // past it to what later bridges appended), and a killed scan's member leaves its group, which goes next.
  (void)topic.recover_dead();
  (void)topic.delete_group(group);  // busy, and kept, while another bridge scans
  if (auto made = topic.create_group(group, mq::Start::earliest); !made) return made.error();
  std::map<std::int32_t, std::int64_t> next;
  std::optional<mq::Error> failed;
  {
    const mq::Offset end = topic.info().latest;
    const auto cursor = [&] {
      for (const auto& g : topic.info().groups)
        if (g.name == group) return g.next;
      return end;
    };
    const auto deadline = std::chrono::steady_clock::now() + kScanStallLimit;
    auto consumer = mq::Consumer::make(topic, mq::ConsumerOptions{.group = group, .start = mq::Start::earliest});
    if (!consumer) failed = consumer.error();
    std::vector<mq::Message> batch;
    while (consumer && !failed) {
      if (cursor() >= end) break;  // read up to where the topic ended when the scan began (an empty one: at once)
      auto n = consumer->poll_batch(batch, mq::kMaxBatch, std::chrono::milliseconds(20));
      if (!n && n.error().code() == mq::Errc::lost) continue;  // overwrite topics: the oldest went meanwhile
      if (!n && n.error().code() != mq::Errc::timed_out) failed = n.error();
      if (!n || *n == 0) {
        if (failed || cursor() >= end) break;  // read up to where the topic ended when the scan began
        if (std::chrono::steady_clock::now() >= deadline)
          failed = mq::Error(mq::Errc::busy, "topic=" + topic.name() + " offset=" + std::to_string(cursor()) +
                                                 ": a claim there is still open (another process writing?)");
        continue;
      }
      for (const auto& m : batch) {
        std::optional<std::string_view> t;
        std::optional<std::int64_t> p, o;
        for (const auto& h : m.headers()) {
          if (h.name == kafka_header::topic)
            t = text(h.value);
          else if (h.name == kafka_header::partition)
            p = parse_int(text(h.value));
          else if (h.name == kafka_header::offset)
            o = parse_int(text(h.value));
        }
        if (t == kafka_topic && p && o && *p <= INT32_MAX) {
          auto& at = next[static_cast<std::int32_t>(*p)];
          at = std::max(at, *o + 1);
        }
      }
    }
  }  // the consumer leaves the group here, so that it can be deleted
  (void)topic.delete_group(group);
  if (failed) return *failed;
  return next;
}

InboundRoute::InboundRoute(const Config& config, const Route& route, mq::Topic topic)
    : config_(config), route_(route), topic_(std::move(topic)) {}

InboundRoute::~InboundRoute() {
  for (; next_ < fetched_n_; ++next_) rd_kafka_message_destroy(fetched_[next_]);
  if (queue_ != nullptr) rd_kafka_queue_destroy(queue_);
  if (consumer_) (void)rd_kafka_consumer_close(consumer_.get());
}

void InboundRoute::on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<InboundRoute*>(opaque);
  self->stats_.error(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->kafka_down_ = true;
  log(LogLevel::warn, "route " + self->route_.name +
                          ": kafka: " + rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)) + ": " + reason);
}

int InboundRoute::on_statistics(rd_kafka_t*, char* json, std::size_t json_len, void* opaque) {
  auto* self = static_cast<InboundRoute*>(opaque);
  if (const auto s = kafka::parse_statistics(std::string_view(json, json_len))) {
    self->stats_.set_kafka_retries(s->retries);
    if (s->broker_up) self->kafka_down_ = false;
  }
  return 0;  // librdkafka frees the JSON
}

void InboundRoute::on_log(const rd_kafka_t* rk, int, const char* facility, const char* text) {
  log(LogLevel::debug, std::string(rd_kafka_name(rk)) + ": " + facility + ": " + text);
}

bool InboundRoute::start_consumer(const std::atomic<bool>& stop) {
  auto next = scan_tail(topic_, route_.name, route_.kafka_topic);
  if (!next) {
    log(LogLevel::error, "route " + route_.name + ": cannot read local topic '" + route_.local_topic +
                             "' for the last Kafka offsets written: " + std::string(next.error().message()));
    return false;
  }
  auto conf = kafka::route_conf(route_, "config file " + config_.config_file);
  if (!conf) {
    log(LogLevel::error, "route " + route_.name + ": " + std::string(conf.error().message()));
    return false;
  }
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_error_cb(conf->get(), &InboundRoute::on_error);
  rd_kafka_conf_set_log_cb(conf->get(), &InboundRoute::on_log);
  rd_kafka_conf_set_stats_cb(conf->get(), &InboundRoute::on_statistics);
  char err[512] = {};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof err);
  if (rk == nullptr) {
    log(LogLevel::error, "route " + route_.name + ": cannot make the Kafka consumer: " + err);
    return false;
  }
  (void)conf->release();
  consumer_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  queue_ = rd_kafka_queue_get_consumer(rk);

  // The partitions of the Kafka topic: asked until Kafka answers (it may be down at start).
  int partitions = 0;
  std::chrono::milliseconds backoff{100};
  while (!stop.load(std::memory_order_relaxed)) {
    beat();
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, route_.kafka_topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    const auto e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
      partitions = md->topics[0].partition_cnt;
    const std::string why = e != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2name(e)
                            : md->topic_cnt == 1            ? rd_kafka_err2name(md->topics[0].err)
                                                            : "no such topic";
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (partitions > 0) break;
    log(LogLevel::warn, "route " + route_.name + ": Kafka topic '" + route_.kafka_topic + "': " + why +
                            "; asking again in " + std::to_string(backoff.count()) + " ms");
    const auto until = std::chrono::steady_clock::now() + backoff;
    while (!stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
      beat();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // pacing the retries, not a condition
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  if (partitions == 0) return true;  // stopping
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  std::string where;
  for (int p = 0; p < partitions; ++p) {
    const auto found = next->find(p);
    // Not in libmq: the group's committed offset, else auto.offset.reset (the bridge's default: earliest).
    rd_kafka_topic_partition_list_add(list, route_.kafka_topic.c_str(), p)->offset =
        found != next->end() ? found->second : RD_KAFKA_OFFSET_STORED;
    where += (p == 0 ? "" : ", ") + std::to_string(p) + "@" +
             (found != next->end() ? std::to_string(found->second) : std::string("committed"));
  }
  const auto e = rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log(LogLevel::error, "route " + route_.name + ": cannot assign the partitions: " + rd_kafka_err2str(e));
    return false;
  }
  log(LogLevel::info, "route " + route_.name + ": Kafka topic '" + route_.kafka_topic + "' from partition@offset " +
                          where + " -> local topic '" + route_.local_topic + "'");
  return true;
}

bool InboundRoute::is_echo(const rd_kafka_message_t& message) const {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get(headers, i, kProvenanceHeader.data(), &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    if (value != nullptr && std::string_view(static_cast<const char*>(value), size) == config_.id) return true;
  return false;
}

mq::Result<void> InboundRoute::append(const rd_kafka_message_t& message, std::int64_t now_ns) {
  std::vector<mq::Header>& headers = headers_;  // reused: no allocation per record
  headers.clear();
  rd_kafka_headers_t* kafka_headers = nullptr;
  if (rd_kafka_message_headers(&message, &kafka_headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(kafka_headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
      headers.push_back({name, std::as_bytes(std::span(static_cast<const char*>(value), value ? size : 0))});
  }
  const std::string partition = std::to_string(message.partition);
  const std::string offset = std::to_string(message.offset);
  headers.push_back({kafka_header::topic, bytes(route_.kafka_topic)});
  headers.push_back({kafka_header::partition, bytes(partition)});
  headers.push_back({kafka_header::offset, bytes(offset)});
  headers.push_back({kProvenanceHeader, bytes(config_.id)});  // so this bridge's outbound route never echoes it
  mq::Record record{.payload = std::as_bytes(std::span(static_cast<const char*>(message.payload), message.len)),
                    .key = std::nullopt,
                    .headers = headers,
                    .timestamp_ns = std::nullopt};
  if (message.key != nullptr)
    record.key = std::as_bytes(std::span(static_cast<const char*>(message.key), message.key_len));
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  if (const std::int64_t ms = rd_kafka_message_timestamp(&message, &type); type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
    record.timestamp_ns = ms * 1'000'000;
  auto published = producer_->publish(record);
  if (!published) return published.error();
  stats_.carried(message.len);
  if (record.timestamp_ns && now_ns >= *record.timestamp_ns)
    stats_.latency().observe(std::chrono::microseconds((now_ns - *record.timestamp_ns) / 1000));
  // For lag monitoring only: the offset after it, stored by store_offsets() and committed by librdkafka.
  const auto p = static_cast<std::size_t>(message.partition);
  if (p >= to_store_.size()) to_store_.resize(p + 1, -1);
  to_store_[p] = message.offset + 1;
  return {};
}

void InboundRoute::store_offsets() {
  rd_kafka_topic_partition_list_t* list = nullptr;
  for (std::size_t p = 0; p < to_store_.size(); ++p) {
    if (to_store_[p] < 0) continue;
    if (list == nullptr) list = rd_kafka_topic_partition_list_new(static_cast<int>(to_store_.size()));
    rd_kafka_topic_partition_list_add(list, route_.kafka_topic.c_str(), static_cast<std::int32_t>(p))->offset =
        to_store_[p];
    to_store_[p] = -1;
  }
  if (list == nullptr) return;
  (void)rd_kafka_offsets_store(consumer_.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
}

void InboundRoute::housekeeping(std::chrono::steady_clock::time_point now) {
  if (now - stored_at_ >= std::chrono::milliseconds(100)) {
    stored_at_ = now;
    store_offsets();
  }
  if (now - lag_sampled_ < std::chrono::seconds(1)) return;
  lag_sampled_ = now;
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(consumer_.get(), &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  // Both cached by librdkafka (no broker round trip): the high watermark from the last fetch, the position from the
  // last record handed to the route. A partition the route has read nothing of yet is not counted.
  (void)rd_kafka_position(consumer_.get(), assigned);
  std::int64_t lag = -1;
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    std::int64_t low = 0, high = 0;
    if (p.offset < 0) continue;
    const auto known = rd_kafka_get_watermark_offsets(consumer_.get(), p.topic, p.partition, &low, &high);
    if (known != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0) continue;
    lag = std::max<std::int64_t>(lag, 0) + std::max<std::int64_t>(high - p.offset, 0);
  }
  rd_kafka_topic_partition_list_destroy(assigned);
  stats_.set_lag(lag);
}

void InboundRoute::pause(bool paused) {
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(consumer_.get(), &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (paused)
    (void)rd_kafka_pause_partitions(consumer_.get(), assigned);
  else
    (void)rd_kafka_resume_partitions(consumer_.get(), assigned);
  rd_kafka_topic_partition_list_destroy(assigned);
  log(LogLevel::info, "route " + route_.name + ": local topic '" + route_.local_topic + "' " +
                          (paused ? "full: Kafka partitions paused" : "has room again: Kafka partitions resumed"));
}

int InboundRoute::run(const std::atomic<bool>& stop) {
  auto producer = mq::Producer::make(topic_, mq::ProducerOptions{.block_timeout = kFullWait});
  if (!producer) {
    log(LogLevel::error, "route " + route_.name + ": cannot publish to local topic '" + route_.local_topic +
                             "': " + std::string(producer.error().message()));
    return 1;
  }
  producer_.emplace(std::move(*producer));
  if (!start_consumer(stop)) {
    stats_.set_state(RouteState::failed);
    return 1;
  }
  int code = 0;
  bool paused = false;
  std::uint64_t appended_before = stats_.records();
  while (code == 0 && !stop.load(std::memory_order_relaxed)) {
    const auto now = std::chrono::steady_clock::now();
    beat(now);
    stats_.set_state(paused ? RouteState::paused : kafka_down_ ? RouteState::kafka_down : RouteState::running);
    stats_.set_in_flight(fetched_n_ - next_);
    housekeeping(now);
    const std::uint64_t appended_now = stats_.records();
    stats_.checkpoint_turn(now, next_ < fetched_n_ || stats_.lag() > 0, appended_now != appended_before);
    appended_before = appended_now;
    if (next_ == fetched_n_) {
      // Wait for one record, then take what else librdkafka holds already, without waiting (a batch call waits for
      // a full batch until its timeout).
      next_ = fetched_n_ = 0;
      rd_kafka_message_t* first = rd_kafka_consumer_poll(consumer_.get(), 100);
      if (first == nullptr) continue;
      fetched_[0] = first;
      const ssize_t more = rd_kafka_consume_batch_queue(queue_, 0, fetched_.data() + 1, fetched_.size() - 1);
      fetched_n_ = 1 + static_cast<std::size_t>(std::max<ssize_t>(more, 0));
    }
    // One wall-clock reading per turn for the records' delivery latency (a turn appends what is taken, or waits
    // kFullWait at most for room).
    const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    for (; next_ < fetched_n_; ++next_) {
      rd_kafka_message_t* m = fetched_[next_];
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          log(LogLevel::warn, "route " + route_.name + ": kafka: " + rd_kafka_message_errstr(m));
          stats_.error(rd_kafka_err2name(m->err));
        }
        rd_kafka_message_destroy(m);
        continue;
      }
      kafka_down_ = false;  // a record came: a broker is up
      if (is_echo(*m)) {
        stats_.echo_dropped();
        rd_kafka_message_destroy(m);
        continue;
      }
      auto appended = append(*m, now_ns);
      if (!appended && appended.error().code() == mq::Errc::full) {
        // Kafka waits (paused: librdkafka fetches nothing more and resumes after the records taken); this record
        // and those after it are appended first once there is room.
        if (!paused) pause(true);
        paused = true;
        break;
      }
      if (!appended) {
        stats_.error(mq::errc_name(appended.error().code()));
        log(LogLevel::error, "route " + route_.name + ": appending partition " + std::to_string(m->partition) +
                                 " offset " + std::to_string(m->offset) + " to local topic '" + route_.local_topic +
                                 "': " + std::string(appended.error().message()) +
                                 "; the route stops rather than drop it");
        code = 1;  // it and those after it stay unappended (the destructor frees them): the next start reads on
        break;
      }
      rd_kafka_message_destroy(m);
      if (paused) pause(false);
      paused = false;
    }
  }
  if (consumer_) {
    store_offsets();
    (void)rd_kafka_commit(consumer_.get(), nullptr, 0);  // what was appended, for lag monitoring
  }
  stats_.set_state(code == 0 ? RouteState::stopped : RouteState::failed);
  const auto done = stats_.snapshot(std::chrono::steady_clock::now());
  log(LogLevel::info, "route " + route_.name + ": stopped: " + std::to_string(done.records) + " records appended, " +
                          std::to_string(done.echoes) + " echoes dropped");
  return code;
}

}  // namespace bridge
