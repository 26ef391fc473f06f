// bridge_throughput's measurements (bridge_measure.cpp): the mock cluster made in this process, the records every
// measurement carries, and the four timed runs: librdkafka's producer loop and the outbound route, a plain consumer
// and the inbound route. bridge_throughput.cpp repeats them, prints the table and writes the JSON.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "kafka.hpp"
#include "libmq/libmq.hpp"

namespace bridgebench {

using Clock = std::chrono::steady_clock;
using bridge::Direction;

constexpr std::size_t kKeySize = 12;        // "k" and 11 digits: record i's key is its index
constexpr std::size_t kWireOverhead = 80;   // a record's bytes in a Kafka batch beyond key and value (varints, header)
constexpr std::size_t kMockPartitionBytes = std::size_t{4} << 20;  // what we let a partition hold (mock: ~5 MiB)
constexpr const char* kOrigin = "bridge_throughput";

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

// Each returns one measurement of round `round` (0: the warm-up); each makes fresh topics of its own.
Run outbound_baseline(Bench& b, int round);
Run outbound_bridge(Bench& b, int round);
Run inbound_baseline(Bench& b, int round);
Run inbound_bridge(Bench& b, int round);
// The inbound measurements' source (b.source): the N records without the provenance header (the route would drop its
// own as echoes). Returns what went wrong, empty when Kafka holds them all.
std::string fill_source(Bench& b);

}  // namespace bridgebench
