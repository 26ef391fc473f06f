// bridge_throughput: mq-kafka-bridge's routes next to librdkafka alone, in ONE run against ONE mock cluster made in
// this process (librdkafka's rd_kafka_mock, so no Kafka is needed): the outbound route (libmq -> Kafka) beside a
// plain producer loop with the route's own librdkafka configuration, the inbound route (Kafka -> libmq) beside a
// plain consumer. Every ratio divides by the baseline of the same run; every wait has a deadline (a measurement that
// misses it fails, and the run exits 1). The mock keeps ~5 MiB per partition: volumes are checked against that.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config.hpp"
#include "inbound.hpp"
#include "kafka.hpp"
#include "libmq/libmq.hpp"
#include "log.hpp"
#include "outbound.hpp"
#include "report.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using bridge::Direction;

constexpr std::size_t kKeySize = 12;        // "k" and 11 digits: record i's key is its index
constexpr std::size_t kWireOverhead = 80;   // a record's bytes in a Kafka batch beyond key and value (varints, header)
constexpr std::size_t kMockPartitionBytes = std::size_t{4} << 20;  // what we let a partition hold (mock: ~5 MiB)
constexpr const char* kOrigin = "bridge_throughput";
constexpr const char* kOutGroup = "bench-out";

struct Options {
  std::size_t records = 50'000;
  std::size_t size = 100;  // payload bytes of each record
  int partitions = 4;
  int repeats = 3;
  std::chrono::seconds timeout{60};  // per measurement
  bool smoke = false;
  bool verbose = false;  // the routes log at debug (their librdkafka lines with --kafka debug=...)
  std::string json;
  std::string only;  // --only outbound | inbound: one direction
  std::vector<std::pair<std::string, std::string>> kafka;  // --kafka NAME=VALUE, applied after the bridge's defaults
};

// The records every measurement carries: record i has the key "k<i in 11 digits>" and a payload of `size` bytes
// ("record <i> " padded with '.'). Built once; the baseline producer points into it (zero-copy, as the route does).
struct Records {
  std::size_t count = 0, size = 0;
  std::string keys, payloads;

  Records(std::size_t n, std::size_t bytes) : count(n), size(bytes), keys(n * kKeySize, '0'), payloads(n * bytes, '.') {
    for (std::size_t i = 0; i < n; ++i) {
      char text[32];
      std::snprintf(text, sizeof text, "k%011zu", i);
      std::memcpy(&keys[i * kKeySize], text, kKeySize);
      const int len = std::snprintf(text, sizeof text, "record %zu ", i);
      std::memcpy(&payloads[i * bytes], text, std::min<std::size_t>(static_cast<std::size_t>(len), bytes));
    }
  }
  const char* key(std::size_t i) const { return &keys[i * kKeySize]; }
  const char* payload(std::size_t i) const { return &payloads[i * size]; }
};

// One measurement: how long it took, or why it failed.
struct Run {
  double seconds = 0;  // from the start to the last record
  double first = 0;    // from the start to the first record: the clients' start-up (connections, producer id, ...)
  std::string error;
};
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

// The mock cluster (one broker, its own thread in this process) and a client that asks it for watermarks.
class MockKafka {
 public:
  MockKafka() {
    char text[512] = {};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", text, sizeof text);
    owner_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, text, sizeof text));  // the cluster lives in a handle
    if (owner_) cluster_ = rd_kafka_mock_cluster_new(owner_.get(), 1);
    if (cluster_ == nullptr) return;
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps().c_str(), text, sizeof text);
    rd_kafka_conf_set(conf, "log_level", "3", text, sizeof text);
    checker_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, text, sizeof text));
  }
  ~MockKafka() {
    checker_.reset();
    if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  }
  MockKafka(const MockKafka&) = delete;
  MockKafka& operator=(const MockKafka&) = delete;

  bool ok() const { return cluster_ != nullptr && checker_ != nullptr; }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  // The mock has no CreateTopics handler: topics are made here.
  std::string create_topic(const std::string& name, int partitions) {
    const auto e = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR ? "" : "creating Kafka topic " + name + ": " + rd_kafka_err2str(e);
  }
  // Records the topic's partitions hold (high - low watermarks), -1 when the cluster does not say within 5 s.
  std::int64_t held(const std::string& topic, int partitions) {
    std::int64_t total = 0;
    for (int p = 0; p < partitions; ++p) {
      std::int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(checker_.get(), topic.c_str(), p, &low, &high, 5000) !=
          RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
      total += high - low;
    }
    return total;
  }

 private:
  bridge::kafka::Client owner_, checker_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

// What every measurement shares: the options, the records, the cluster, the bridge's Config.
struct Bench {
  Options o;
  Records records;
  MockKafka kafka;
  bridge::Config config;
  std::string source;  // the Kafka topic the inbound measurements read, filled once

  Clock::time_point deadline() const { return Clock::now() + o.timeout; }
  // Ring bytes for the N records with the inbound route's four headers, with room to spare.
  std::size_t capacity() const {
    const std::size_t want = o.records * (o.size + kKeySize + 256) * 5 / 4;
    std::size_t c = mq::kMinCapacity;
    while (c < want) c *= 2;
    return c;
  }
  bridge::Route route(Direction d, const std::string& name, const std::string& local, const std::string& kafka_topic,
                      const std::string& group) const {
    bridge::Route r{
        .name = name, .direction = d, .local_topic = local, .kafka_topic = kafka_topic, .group = group, .kafka = {}};
    r.kafka.push_back({"bootstrap.servers", kafka.bootstraps(), kOrigin});
    // An empty Fetch from the mock waits the whole fetch.wait.max.ms (default 500).
    if (d == Direction::in) r.kafka.push_back({"fetch.wait.max.ms", "10", kOrigin});
    for (const auto& [n, v] : o.kafka) r.kafka.push_back({n, v, "--kafka"});
    return r;
  }
};

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

// The inbound measurements' source: the N records without the provenance header (the route would drop its own as
// echoes). Returns what went wrong, empty when Kafka holds them all.
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

// One row of the table: a measurement repeated, the baseline its ratios divide by (null for a baseline).
struct Series {
  std::string direction{};  // outbound | inbound
  std::string name{};
  std::function<Run(Bench&, int)> measure{};
  const Series* baseline = nullptr;
  std::vector<Run> runs{};  // the reported repeats
  std::string error{};      // the first failure
  std::string load_before{};

  // Records/s over the whole measurement, and after the first record (start-up left out), per repeat.
  std::vector<double> rates(std::size_t n) const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(static_cast<double>(n) / r.seconds);
    return v;
  }
  std::vector<double> steady_rates(std::size_t n) const {
    std::vector<double> v;
    for (const auto& r : runs)
      v.push_back(r.seconds > r.first ? static_cast<double>(n - 1) / (r.seconds - r.first) : 0);
    return v;
  }
  std::vector<double> firsts() const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.first);
    return v;
  }
};

// `round` 0 is the warm-up (measured, not reported); 1..repeats are reported.
void measure(Bench& b, Series& s, int round) {
  if (round == 1) s.load_before = mqbench::load_average();
  const Run r = s.measure(b, round);
  if (!r.error.empty()) {
    if (s.error.empty()) s.error = (round == 0 ? "warm-up: " : "repeat " + std::to_string(round) + ": ") + r.error;
    std::fprintf(stderr, "bridge_throughput: %s %s, round %d: FAILED: %s\n", s.direction.c_str(), s.name.c_str(),
                 round, r.error.c_str());
    return;
  }
  if (round > 0) s.runs.push_back(r);
}

std::string thousands(double v) {
  std::string digits = std::to_string(static_cast<long long>(v + 0.5));
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(static_cast<std::size_t>(at), ",");
  return digits;
}

// "0.448 x 106,032": the ratio of the medians, with the baseline's median beside it.
std::string ratio(double mine, const Series* baseline, const std::vector<double>& base_values) {
  if (baseline == nullptr) return "baseline";
  if (!baseline->error.empty()) return "(baseline failed)";
  const double base = mqbench::median(base_values);
  if (!(base > 0 && mine > 0)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.3f x %s", mine / base, thousands(base).c_str());
  return text;
}

void print_table(const Bench& b, const std::vector<Series>& all) {
  const std::size_t n = b.records.count;
  std::printf("\n%-9s %-36s %10s %7s %18s %8s %10s %18s\n", "direction", "case", "records/s", "MB/s",
              "ratio x baseline", "1st ms", "after 1st", "ratio x baseline");
  for (const auto& s : all) {
    if (!b.o.only.empty() && s.direction != b.o.only) continue;
    std::printf("%-9s %-36s ", s.direction.c_str(), s.name.c_str());
    if (!s.error.empty()) {
      std::printf("FAILED: %s\n", s.error.c_str());
      continue;
    }
    const double rate = mqbench::median(s.rates(n)), steady = mqbench::median(s.steady_rates(n));
    const std::vector<double> none;
    std::printf(
        "%10s %7.2f %18s %8.1f %10s %18s\n", thousands(rate).c_str(), rate * static_cast<double>(b.o.size) / 1e6,
        ratio(rate, s.baseline, s.baseline ? s.baseline->rates(n) : none).c_str(), mqbench::median(s.firsts()) * 1e3,
        thousands(steady).c_str(), ratio(steady, s.baseline, s.baseline ? s.baseline->steady_rates(n) : none).c_str());
  }
  std::printf("\nevery repeat: records/s over seconds (1st record after ms)\n");
  for (const auto& s : all) {
    if (!s.error.empty() || s.runs.empty()) continue;
    std::printf("  %-9s %-36s", s.direction.c_str(), s.name.c_str());
    for (const auto& r : s.runs)
      std::printf("  %s/s %.3f s (%.0f ms)", thousands(static_cast<double>(n) / r.seconds).c_str(), r.seconds,
                  r.first * 1e3);
    std::printf("\n");
  }
  std::printf("(medians of the repeats; MB/s counts payload bytes, 1 MB = 10^6 B; ratio = median / the baseline's "
              "median, printed beside it;\n \"after 1st\": the records after the first over the time after it, "
              "start-up left out)\n");
}

mqbench::CaseResult to_case(const Bench& b, const Series& s) {
  const std::size_t n = b.records.count;
  mqbench::CaseResult c{.transport = s.baseline ? "mq-kafka-bridge" : "librdkafka",
                        .mode = "mock cluster",
                        .kind = "bridge",
                        .pattern = s.direction,
                        .api = s.name,
                        .payload = b.o.size,
                        .load_before = s.load_before,
                        .error = s.error};
  if (!s.error.empty()) return c;
  const std::vector<double> rates = s.rates(n), steady = s.steady_rates(n);
  double sum = 0, seconds = 0;
  for (double r : rates) sum += r;
  for (const auto& r : s.runs) seconds += r.seconds;
  c.msgs_per_s = mqbench::median(rates);
  c.mean_msgs_per_s = sum / static_cast<double>(rates.size());
  c.bytes_per_s = c.msgs_per_s * static_cast<double>(b.o.size);
  c.seconds = seconds;
  c.extra = {{"records", static_cast<double>(n)},
             {"partitions", static_cast<double>(b.o.partitions)},
             {"first_record_s", mqbench::median(s.firsts())},
             {"after_first_msgs_per_s", mqbench::median(steady)}};
  for (std::size_t i = 0; i < rates.size(); ++i)
    c.extra.emplace_back("repeat_" + std::to_string(i + 1) + "_msgs_per_s", rates[i]);
  if (s.baseline != nullptr && s.baseline->error.empty()) {
    const double base = mqbench::median(s.baseline->rates(n)),
                 base_steady = mqbench::median(s.baseline->steady_rates(n));
    c.extra.emplace_back("baseline_msgs_per_s", base);
    c.extra.emplace_back("ratio_to_baseline", c.msgs_per_s / base);
    c.extra.emplace_back("after_first_ratio_to_baseline", mqbench::median(steady) / base_steady);
  }
  return c;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: bridge_throughput [--records N] [--size BYTES] [--partitions P] [--repeats R] [--timeout S]\n"
               "                         [--kafka NAME=VALUE]... [--only outbound|inbound] [--smoke] [--verbose]\n"
               "                         [--json FILE]\n"
               "  mq-kafka-bridge's outbound and inbound routes next to librdkafka alone (an idempotent producer\n"
               "  loop; a consumer reading every partition from the beginning), against librdkafka's mock cluster\n"
               "  made in this process; every measurement repeated, the median reported.\n"
               "  --records N     records per measurement (default 50000)\n"
               "  --size BYTES    payload bytes per record, beside a 12-byte key (default 100)\n"
               "  --partitions P  partitions of each Kafka topic (default 4)\n"
               "  --repeats R     repeats of each measurement after one warm-up round (default 3)\n"
               "  --timeout S     deadline of each measurement in seconds (default 60)\n"
               "  --kafka N=V     a librdkafka property for the routes and the baselines alike, after the bridge's\n"
               "                  defaults (e.g. linger.ms=1, queue.buffering.max.messages=100000)\n"
               "  --only D        one direction: outbound or inbound\n"
               "  --smoke         2000 records, 2 partitions, 1 repeat, 20 s deadlines unless given: checks it\n"
               "                  works, measures nothing (CI)\n"
               "  --verbose       the routes log at debug on stderr (with --kafka debug=..., librdkafka's lines)\n"
               "  --json FILE     also write the rows as JSON (bench/report.hpp's format, kind \"bridge\")\n");
}

// Reads a whole number in [lo, hi]; false (having said why) otherwise.
bool parse_count(const char* flag, const char* text, std::size_t lo, std::size_t hi, std::size_t& out) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < lo || v > hi) {
    std::fprintf(stderr, "bridge_throughput: %s wants a whole number from %zu to %zu, got '%s'\n", flag, lo, hi, text);
    return false;
  }
  out = v;
  return true;
}

// Returns -1 to go on, or the exit code (0 for --help, 2 for a bad option).
int parse_options(int argc, char** argv, Options& o) {
  bool sized = false, timed = false, parted = false, repeated = false;  // given: --smoke keeps them
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    std::size_t v = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--smoke") {
      o.smoke = true;
      continue;
    } else if (a == "--verbose") {
      o.verbose = true;
      continue;
    } else if (value == nullptr) {
      std::fprintf(stderr, "bridge_throughput: unknown option or missing value: '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (a == "--records") {
      if (!parse_count("--records", value, 1, 10'000'000, o.records)) return 2;
      sized = true;
    } else if (a == "--size") {
      if (!parse_count("--size", value, 1, 100'000, o.size)) return 2;
    } else if (a == "--partitions") {
      if (!parse_count("--partitions", value, 1, 64, v)) return 2;
      o.partitions = static_cast<int>(v);
      parted = true;
    } else if (a == "--repeats") {
      if (!parse_count("--repeats", value, 1, 100, v)) return 2;
      o.repeats = static_cast<int>(v);
      repeated = true;
    } else if (a == "--timeout") {
      if (!parse_count("--timeout", value, 1, 3600, v)) return 2;
      o.timeout = std::chrono::seconds(v);
      timed = true;
    } else if (a == "--kafka") {
      const std::string_view kv = value;
      const auto eq = kv.find('=');
      if (eq == 0 || eq == std::string_view::npos) {
        std::fprintf(stderr, "bridge_throughput: --kafka wants NAME=VALUE, got '%s'\n", value);
        return 2;
      }
      o.kafka.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    } else if (a == "--json") {
      o.json = value;
    } else if (a == "--only") {
      if (std::string_view(value) != "outbound" && std::string_view(value) != "inbound") {
        std::fprintf(stderr, "bridge_throughput: --only wants outbound or inbound, got '%s'\n", value);
        return 2;
      }
      o.only = value;
    } else {
      std::fprintf(stderr, "bridge_throughput: unknown option: '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
    ++i;
  }
  if (o.smoke) {
    if (!sized) o.records = 2'000;
    if (!timed) o.timeout = std::chrono::seconds(20);  // 8 measurements stay inside ctest's 300 s
    if (!parted) o.partitions = 2;
    if (!repeated) o.repeats = 1;
  }
  // The mock drops a partition's oldest records past ~5 MiB: a measurement would then wait for records gone.
  const std::size_t per_partition =
      o.records * (o.size + kKeySize + kWireOverhead) / static_cast<std::size_t>(o.partitions);
  if (per_partition > kMockPartitionBytes) {
    std::fprintf(stderr,
                 "bridge_throughput: --records %zu x --size %zu over --partitions %d is ~%zu KiB per partition; the "
                 "mock cluster keeps ~5 MiB per partition (this bench allows %zu KiB): raise --partitions or lower "
                 "--records or --size\n",
                 o.records, o.size, o.partitions, per_partition >> 10, kMockPartitionBytes >> 10);
    return 2;
  }
  return -1;
}

// The properties of `direction`'s librdkafka configuration (route_conf, as the routes and the baselines get it) that
// differ from librdkafka's defaults (global, then topic properties), but for the brokers, client.id and group.id.
std::string conf_differences(const Bench& b, Direction direction) {
  auto conf = bridge::kafka::route_conf(b.route(direction, "x", "x", "x", "x"), kOrigin);
  if (!conf) return "(" + std::string(conf.error().message()) + ")";
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  const auto pairs = [](auto dump, auto* c) {  // dump: rd_kafka_conf_dump or rd_kafka_topic_conf_dump
    std::size_t count = 0;
    const char** kv = dump(c, &count);
    Pairs out;
    for (std::size_t i = 0; i + 1 < count; i += 2) out.emplace_back(kv[i], kv[i + 1] ? kv[i + 1] : "");
    rd_kafka_conf_dump_free(kv, count);
    return out;
  };
  const auto differences = [](const Pairs& mine, const Pairs& defaults, std::string& text) {
    for (const auto& [name, value] : mine) {
      if (name == "bootstrap.servers" || name == "metadata.broker.list" || name == "client.id" || name == "group.id" ||
          name == "default_topic_conf")
        continue;
      const auto d = std::find_if(defaults.begin(), defaults.end(), [&](const auto& p) { return p.first == name; });
      if (d == defaults.end() || d->second != value) text += (text.empty() ? "" : ", ") + name + "=" + value;
    }
  };
  std::string text;
  const bridge::kafka::Conf plain(rd_kafka_conf_new());
  differences(pairs(&rd_kafka_conf_dump, conf->get()), pairs(&rd_kafka_conf_dump, plain.get()), text);
  if (rd_kafka_topic_conf_t* topic = rd_kafka_conf_get_default_topic_conf(conf->get()); topic != nullptr) {
    rd_kafka_topic_conf_t* plain_topic = rd_kafka_topic_conf_new();
    differences(pairs(&rd_kafka_topic_conf_dump, topic), pairs(&rd_kafka_topic_conf_dump, plain_topic), text);
    rd_kafka_topic_conf_destroy(plain_topic);
  }
  return text;
}

void print_header(const Bench& b, const mqbench::Machine& m, int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  std::printf("command: %s\n", command.c_str());
  std::printf("machine: %s; %ld cores online, %d usable (not pinned: librdkafka runs threads of its own)\n",
              m.cpu.c_str(), m.online_cores, m.usable_cores);
  std::printf("kernel:  %s; clock %s; %s\n", m.kernel.c_str(), m.clocksource.c_str(), m.compiler.c_str());
#ifndef NDEBUG
  std::printf("build:   no NDEBUG: not a Release build, numbers not representative\n");
#endif
  std::printf("memory:  a 4 KiB page of shared memory read through a fresh mapping: first read %.0f ns, then %.0f ns\n",
              m.page_first_read_ns, m.page_read_ns);
  std::printf("kafka:   librdkafka %s mock cluster, 1 broker, in this process (its threads share the cores)\n",
              rd_kafka_version_str());
  std::printf("conf:    route_conf, for the routes and the baselines alike; beyond librdkafka's defaults:\n");
  std::printf("         out: %s\n", conf_differences(b, Direction::out).c_str());
  std::printf("         in:  %s\n", conf_differences(b, Direction::in).c_str());
  std::printf("run:     %s: %zu records x %zu B payload + %zu B key, %d partitions, %d repeat%s after 1 warm-up\n"
              "         round, %lld s deadline each; load %s\n",
              b.o.smoke ? "smoke" : "full", b.o.records, b.o.size, kKeySize, b.o.partitions, b.o.repeats,
              b.o.repeats == 1 ? "" : "s", static_cast<long long>(b.o.timeout.count()),
              mqbench::load_average().c_str());
  std::printf(
      "timed:   outbound baseline rd_kafka_new .. last delivery report; outbound route run() start .. its\n"
      "         group acked all; inbound baseline rd_kafka_new .. N-th record; inbound route run() start .. the\n"
      "         local topic holds N (its ring written once before, as a running bridge's is). Both sides of a\n"
      "         ratio carry the same records: key, value, CreateTime (outbound: and the mq.bridge header).\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int code = parse_options(argc, argv, o); code >= 0) return code;
  ::signal(SIGPIPE, SIG_IGN);
  // The routes' start and stop lines would fill the table.
  bridge::g_log_level = o.verbose ? bridge::LogLevel::debug : bridge::LogLevel::warn;

  Bench b{.o = o, .records = Records(o.records, o.size), .kafka = {}, .config = {}, .source = "inbound-source"};
  if (!b.kafka.ok()) {
    std::fprintf(stderr, "bridge_throughput: cannot make librdkafka's mock cluster\n");
    return 1;
  }
  b.config.config_file = kOrigin;
  b.config.id = "bench-bridge";
  b.config.ns = "bridge-bench-" + std::to_string(::getpid());
  b.config.shutdown_timeout = std::chrono::milliseconds(5'000);
  const mqbench::Machine machine = mqbench::describe_machine();
  print_header(b, machine, argc, argv);

  if (o.only != "outbound")
    if (const std::string e = fill_source(b); !e.empty()) {
      std::fprintf(stderr, "bridge_throughput: filling Kafka topic %s: %s\n", b.source.c_str(), e.c_str());
      return 1;
    }

  std::vector<Series> all(4);
  all[0] = {"outbound", "librdkafka producer loop (baseline)", &outbound_baseline};
  all[1] = {"outbound", "OutboundRoute libmq -> Kafka", &outbound_bridge, &all[0]};
  all[2] = {"inbound", "librdkafka consumer (baseline)", &inbound_baseline};
  all[3] = {"inbound", "InboundRoute Kafka -> libmq", &inbound_bridge, &all[2]};
  // Rounds interleave the cases, so a slow spell of the machine falls on baseline and route alike.
  for (int round = 0; round <= o.repeats; ++round) {
    for (auto& s : all)
      if (o.only.empty() || s.direction == o.only) measure(b, s, round);
  }
  print_table(b, all);

  bool failed_any = false;
  std::vector<mqbench::CaseResult> rows;
  for (const auto& s : all) {
    if (!o.only.empty() && s.direction != o.only) continue;
    failed_any |= !s.error.empty();
    rows.push_back(to_case(b, s));
  }
  std::printf("load:    %s after the run\n", mqbench::load_average().c_str());
  if (!o.json.empty()) {
    const mqbench::RunOptions ro{.tool = "bridge_throughput", .json = o.json, .profile = o.smoke ? "smoke" : "full"};
    if (!mqbench::write_results(o.json, ro, machine, rows)) {
      std::fprintf(stderr, "bridge_throughput: cannot write %s: %s\n", o.json.c_str(), std::strerror(errno));
      return 1;
    }
  }
  return failed_any ? 1 : 0;
}
