// bridge_throughput's measurements (see bridge_measure.hpp): each timed from the client's or the route's start to its
// last record, against the mock cluster of the run; every wait has a deadline, and a measurement that misses it
// returns why. The mock keeps ~5 MiB per partition: bridge_throughput.cpp checks the volumes against that.
#include "bridge_measure.hpp"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <thread>

#include "inbound.hpp"
#include "outbound.hpp"

namespace bridgebench {

namespace {

constexpr const char* kOutGroup = "bench-out";

Run failed(std::string why) { return Run{0, 0, std::move(why)}; }

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Polls `done_so_far` until it reaches `n` (true), or `deadline` passes or `gave_up` holds (false). Sets `first` to
// the seconds from `t0` until it was first above 0 (to the polling interval, 1 ms).
bool wait_for(std::uint64_t n, const std::function<std::uint64_t()>& done_so_far, const std::function<bool()>& gave_up,
              Clock::time_point t0, Clock::time_point deadline, double& first) {
  for (;;) {
    const std::uint64_t k = done_so_far();
    if (k > 0 && first == 0) first = since(t0);
    if (k >= n) return true;
    if (gave_up() || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling the condition; the deadline bounds it
  }
}

// Asks the cluster for `topic`'s metadata (up to 5 s), as the inbound route does before it assigns. A baseline client
// does it first: librdkafka 2.0.2 otherwise may learn a topic it produces to right after rd_kafka_new only at its
// 1 s topic scan, and a partition assigned before its leader is known waits 500 ms for its offset-query timer.
std::string learn_topic(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  const auto e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : "metadata of " + topic + ": " + rd_kafka_err2str(e);
}

// Delivery reports of the baseline producer.
struct Delivered {
  std::size_t ok = 0, failed = 0;
  Clock::time_point first{};  // when the first success was reported
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
};
void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* d = static_cast<Delivered*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (d->ok++ == 0) d->first = Clock::now();
    return;
  }
  if (d->failed++ == 0) d->first_error = m->err;
}

// librdkafka's own producer loop (as rdkafka_performance -P): produce as fast as it takes them, poll on QUEUE_FULL,
// then flush; timed from rd_kafka_new (and learn_topic) to the last delivery report. The producer gets the outbound
// route's configuration (bridge::kafka::route_conf) and each record what the route gives it: key, value, CreateTime and
// the provenance header (`provenance` false: no header, for the inbound source, which the route would drop as echoes).
Run produce(Bench& b, const std::string& topic, bool provenance) {
  const bridge::Route route = b.route(Direction::out, "baseline", "none", topic, "none");
  auto conf = bridge::kafka::route_conf(route, kOrigin);
  if (!conf) return failed(std::string(conf.error().message()));
  Delivered delivered;
  rd_kafka_conf_set_opaque(conf->get(), &delivered);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &on_delivery);
  const auto deadline = b.deadline();
  const auto t0 = Clock::now();
  char text[512] = {};
  bridge::kafka::Client rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), text, sizeof text));
  if (!rk) return failed(std::string("cannot make the producer: ") + text);
  (void)conf->release();
  if (auto e = learn_topic(rk.get(), topic); !e.empty()) return failed(e);
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string& id = b.config.id;
  for (std::size_t i = 0; i < b.records.count; ++i) {
    bridge::kafka::Headers headers(rd_kafka_headers_new(1));
    if (provenance)
      rd_kafka_header_add(headers.get(), bridge::kProvenanceHeader.data(),
                          static_cast<ssize_t>(bridge::kProvenanceHeader.size()), id.data(),
                          static_cast<ssize_t>(id.size()));
    // Computed apart: the RD_KAFKA_V_* macros cast their arguments without parentheses.
    void* const value = const_cast<char*>(b.records.payload(i));
    const void* const key = b.records.key(i);
    for (;;) {
      const auto err = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(0),
                                         RD_KAFKA_V_VALUE(value, b.records.size), RD_KAFKA_V_KEY(key, kKeySize),
                                         RD_KAFKA_V_TIMESTAMP(now_ms), RD_KAFKA_V_HEADERS(headers.get()),
                                         RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        (void)headers.release();  // the message owns them now
        break;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return failed("producing record " + std::to_string(i) + ": " + rd_kafka_err2str(err));
      if (Clock::now() >= deadline)
        return failed("librdkafka's queue still full at the deadline (" + std::to_string(b.o.timeout.count()) +
                      " s), " + std::to_string(i) + " records in");
      rd_kafka_poll(rk.get(), 10);  // serves delivery reports: returns as soon as one came
    }
    rd_kafka_poll(rk.get(), 0);
  }
  while (rd_kafka_outq_len(rk.get()) > 0 && Clock::now() < deadline) (void)rd_kafka_flush(rk.get(), 100);
  const double seconds = since(t0);
  if (delivered.ok != b.records.count)
    return failed(std::to_string(delivered.ok) + " of " + std::to_string(b.records.count) + " confirmed, " +
                  std::to_string(delivered.failed) + " failed" +
                  (delivered.failed ? std::string(" (first: ") + rd_kafka_err2str(delivered.first_error) + ")" : ""));
  return Run{seconds, std::chrono::duration<double>(delivered.first - t0).count(), {}};
}

// A route's run() on a thread of its own from construction on; stop() sets its flag and joins (run() then returns
// within the route's own bounds: the shutdown timeout outbound, one 100 ms poll inbound).
template <class AnyRoute>
class RouteThread {
 public:
  explicit RouteThread(AnyRoute& route)
      : thread_([this, &route] {
          code_ = route.run(stop_);
          ended_.store(true, std::memory_order_relaxed);  // relaxed: a hint to the waiting loop; join() orders code_
        }) {}
  ~RouteThread() { (void)stop(); }
  RouteThread(const RouteThread&) = delete;
  RouteThread& operator=(const RouteThread&) = delete;

  int stop() {
    stop_.store(true, std::memory_order_relaxed);  // relaxed: run() polls it relaxed; join() orders the rest
    if (thread_.joinable()) thread_.join();
    return code_;
  }
  bool ended() const { return ended_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> stop_{false}, ended_{false};
  int code_ = -1;
  std::thread thread_;  // last: it starts once the flags exist
};

// A libmq topic of the bench's namespace, removed when it goes.
struct LocalTopic {
  std::string name;
  std::optional<std::string> ns;
  std::optional<mq::Topic> topic;
  std::string error;
  LocalTopic(const Bench& b, std::string n, std::vector<std::string> groups) : name(std::move(n)), ns(b.config.ns) {
    auto made =
        mq::Topic::create(name, mq::TopicOptions{.capacity = b.capacity(), .groups = std::move(groups), .ns = ns});
    if (made)
      topic.emplace(std::move(*made));
    else
      error = "creating libmq topic " + name + ": " + std::string(made.error().message());
  }
  ~LocalTopic() {
    topic.reset();
    (void)mq::Topic::remove(name, mq::OpenOptions{.ns = ns});
  }
};

// Publishes the N records into `topic` (key and payload, no headers), in batches.
std::string prefill(mq::Topic& topic, const Records& records) {
  auto producer = mq::Producer::make(topic, {});
  if (!producer) return "producer: " + std::string(producer.error().message());
  std::vector<mq::Record> batch;
  for (std::size_t i = 0; i < records.count; i += batch.size()) {
    batch.clear();
    for (std::size_t j = i; j < records.count && batch.size() < mq::kMaxPublishBatch; ++j)
      batch.push_back({.payload = std::as_bytes(std::span(records.payload(j), records.size)),
                       .key = std::as_bytes(std::span(records.key(j), kKeySize)),
                       .headers = {},
                       .timestamp_ns = std::nullopt});
    if (auto put = producer->publish_batch(batch); !put)
      return "publishing record " + std::to_string(i) + ": " + std::string(put.error().message());
  }
  return {};
}

mq::Offset group_committed(const mq::Topic& topic, const std::string& group) {
  for (const auto& g : topic.info().groups)
    if (g.name == group) return g.committed;
  return 0;
}

// Why a route's measurement ended early: its run() returned by itself, or the deadline passed.
std::string gave_up(bool ended, int code, const Bench& b) {
  return ended ? ": run() returned " + std::to_string(code) + " by itself"
               : " at the deadline (" + std::to_string(b.o.timeout.count()) + " s)";
}

// Writes every page of a fresh topic's ring once (filler records, deleted at once), so that the route writes where a
// long-running one does: into pages mapped in already, not each page's first write (a fault; see the machine's
// "memory" line). Returns the offset the route's first record gets.
mq::Result<mq::Offset> pretouch(mq::Topic& topic) {
  auto producer = mq::Producer::make(topic, {});
  if (!producer) return producer.error();
  const std::vector<std::byte> filler(std::min(std::size_t{16} << 10, topic.info().capacity / 8));
  while (topic.info().bytes_written < topic.info().capacity)
    for (int i = 0; i < 64; ++i)
      if (auto put = producer->publish(filler); !put) return put.error();
  const mq::Offset latest = topic.info().latest;
  if (auto deleted = topic.delete_records(latest); !deleted) return deleted.error();
  return latest;
}

}  // namespace

// The producer loop into a fresh Kafka topic, each record with the provenance header as the route sends it.
Run outbound_baseline(Bench& b, int round) {
  const std::string topic = "base-out-" + std::to_string(round);
  if (auto e = b.kafka.create_topic(topic, b.o.partitions); !e.empty()) return failed(e);
  Run r = produce(b, topic, true);
  if (const auto held = b.kafka.held(topic, b.o.partitions);
      r.error.empty() && held != static_cast<std::int64_t>(b.records.count))
    r = failed("Kafka holds " + std::to_string(held) + " records, expected " + std::to_string(b.records.count));
  return r;
}

// The outbound route carrying N records pre-filled in a libmq topic: timed from the start of run() until its
// group has acked them all (the route acks a record once Kafka confirmed it and every earlier one).
Run outbound_bridge(Bench& b, int round) {
  const std::string kafka_topic = "bridge-out-" + std::to_string(round);
  if (auto e = b.kafka.create_topic(kafka_topic, b.o.partitions); !e.empty()) return failed(e);
  LocalTopic local(b, "out-" + std::to_string(round), {kOutGroup});
  if (!local.topic) return failed(local.error);
  if (auto e = prefill(*local.topic, b.records); !e.empty()) return failed(e);
  const bridge::Route route =
      b.route(Direction::out, "out" + std::to_string(round), local.name, kafka_topic, kOutGroup);
  bridge::OutboundRoute out(b.config, route, *local.topic);
  const auto n = static_cast<mq::Offset>(b.records.count);
  const auto deadline = b.deadline();
  const auto t0 = Clock::now();
  RouteThread thread(out);
  double first = 0;
  const bool done = wait_for(
      n, [&] { return group_committed(*local.topic, kOutGroup); }, [&] { return thread.ended(); }, t0, deadline, first);
  const double seconds = since(t0);
  const bool ended = thread.ended();
  const int code = thread.stop();
  if (!done)
    return failed("the route's group acked " + std::to_string(group_committed(*local.topic, kOutGroup)) + " of " +
                  std::to_string(n) + gave_up(ended, code, b));
  if (code != 0) return failed("run() returned " + std::to_string(code));
  if (const auto held = b.kafka.held(kafka_topic, b.o.partitions); held != static_cast<std::int64_t>(n))
    return failed("Kafka holds " + std::to_string(held) + " records, expected " + std::to_string(n));
  return Run{seconds, first, {}};
}

// A plain consumer with the inbound route's configuration, every partition assigned from the beginning: timed from
// rd_kafka_new to the N-th record (learn_topic first, as the route does). The beginning is offset 0 (the source is
// fresh): RD_KAFKA_OFFSET_BEGINNING would add a ListOffsets whose timer delays the start by 2..545 ms at random.
Run inbound_baseline(Bench& b, int round) {
  const std::string group = "bench-in-base-" + std::to_string(round);
  auto conf = bridge::kafka::route_conf(b.route(Direction::in, "baseline", "none", b.source, group), kOrigin);
  if (!conf) return failed(std::string(conf.error().message()));
  const auto deadline = b.deadline();
  const auto t0 = Clock::now();
  char text[512] = {};
  bridge::kafka::Client rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), text, sizeof text));
  if (!rk) return failed(std::string("cannot make the consumer: ") + text);
  (void)conf->release();
  rd_kafka_poll_set_consumer(rk.get());
  if (auto e = learn_topic(rk.get(), b.source); !e.empty()) return failed(e);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(b.o.partitions);
  for (int p = 0; p < b.o.partitions; ++p)
    rd_kafka_topic_partition_list_add(list, b.source.c_str(), p)->offset = 0;
  const auto assigned = rd_kafka_assign(rk.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) return failed(std::string("assign: ") + rd_kafka_err2str(assigned));
  std::size_t got = 0, bytes = 0;
  double first = 0;
  while (got < b.records.count && Clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (got++ == 0) first = since(t0);
      bytes += m->len;
    }
    rd_kafka_message_destroy(m);
  }
  const double seconds = since(t0);
  (void)rd_kafka_consumer_close(rk.get());
  if (got != b.records.count || bytes != got * b.records.size)
    return failed("read " + std::to_string(got) + " of " + std::to_string(b.records.count) + " records");
  return Run{seconds, first, {}};
}

std::string fill_source(Bench& b) {
  if (auto e = b.kafka.create_topic(b.source, b.o.partitions); !e.empty()) return e;
  if (const Run r = produce(b, b.source, false); !r.error.empty()) return r.error;
  if (const auto held = b.kafka.held(b.source, b.o.partitions); held != static_cast<std::int64_t>(b.records.count))
    return "it holds " + std::to_string(held) + " records, expected " + std::to_string(b.records.count);
  return {};
}

// The inbound route appending the source topic to an empty libmq topic: timed from the start of run() until the
// topic holds N records (its group is fresh, so it starts at the earliest Kafka offset).
Run inbound_bridge(Bench& b, int round) {
  LocalTopic local(b, "in-" + std::to_string(round), {});
  if (!local.topic) return failed(local.error);
  const auto base = pretouch(*local.topic);
  if (!base) return failed("touching the ring: " + std::string(base.error().message()));
  const bridge::Route route = b.route(Direction::in, "in" + std::to_string(round), local.name, b.source,
                                      "bench-in-bridge-" + std::to_string(round));
  bridge::InboundRoute in(b.config, route, *local.topic);
  const auto n = static_cast<mq::Offset>(b.records.count);
  const auto deadline = b.deadline();
  const auto t0 = Clock::now();
  RouteThread thread(in);
  double first = 0;
  const bool done = wait_for(
      n, [&] { return local.topic->info().latest - *base; }, [&] { return thread.ended(); }, t0, deadline, first);
  const double seconds = since(t0);
  const bool ended = thread.ended();
  const int code = thread.stop();
  const mq::Offset latest = local.topic->info().latest - *base;
  if (!done)
    return failed("the local topic holds " + std::to_string(latest) + " of " + std::to_string(n) +
                  gave_up(ended, code, b));
  if (code != 0) return failed("run() returned " + std::to_string(code));
  if (latest != n)
    return failed("the local topic holds " + std::to_string(latest) + " records, expected " + std::to_string(n));
  return Run{seconds, first, {}};
}

}  // namespace bridgebench
