// The test side of Kafka: librdkafka's mock cluster, made in the test process (so its data outlives a killed
// bridge), and a plain librdkafka consumer that reads a topic's partitions from the beginning to check what the
// bridge produced. Mock quirks (librdkafka 2.0.2): no CreateTopics handler (topics are made here), ~5 MiB kept per
// partition (keep volumes small), an empty Fetch waits the whole fetch.wait.max.ms (set low here).
#pragma once

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bridgetest {

class MockCluster {
 public:
  explicit MockCluster(int brokers = 1) {
    // The cluster needs a handle to live in; a producer that never produces.
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char text[512] = {};
    rd_kafka_conf_set(conf, "log_level", "2", text, sizeof text);  // quiet: brokers go down on purpose
    handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, text, sizeof text);
    EXPECT_NE(handle_, nullptr) << text;
    cluster_ = rd_kafka_mock_cluster_new(handle_, brokers);
    EXPECT_NE(cluster_, nullptr);
  }
  ~MockCluster() {
    if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
    if (handle_ != nullptr) rd_kafka_destroy(handle_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  void create_topic(const std::string& name, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  void broker_down(int id) { ASSERT_EQ(rd_kafka_mock_broker_set_down(cluster_, id), RD_KAFKA_RESP_ERR_NO_ERROR); }
  void broker_up(int id) { ASSERT_EQ(rd_kafka_mock_broker_set_up(cluster_, id), RD_KAFKA_RESP_ERR_NO_ERROR); }
  rd_kafka_mock_cluster_t* get() const { return cluster_; }

 private:
  rd_kafka_t* handle_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

// One record as a Kafka consumer sees it.
struct KafkaRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;  // nullopt: a null key
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::int64_t timestamp_ms = 0;
  rd_kafka_timestamp_type_t timestamp_type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;

  std::optional<std::string> header(const std::string& name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return v;
    return std::nullopt;
  }
};

// Reads every partition of a topic from its beginning (assigned: its group.id, required by assign, never joins).
class KafkaReader {
 public:
  KafkaReader(const std::string& bootstraps, const std::string& topic, int partitions) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char text[512] = {};
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", bootstraps},
                                                                               {"group.id", "test-reader"},
                                                                               {"fetch.wait.max.ms", "10"},
                                                                               {"enable.auto.commit", "false"},
                                                                               {"enable.partition.eof", "false"},
                                                                               {"log_level", "2"}})  // quiet, as above
      EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), text, sizeof text), RD_KAFKA_CONF_OK) << text;
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, text, sizeof text);
    EXPECT_NE(rk_, nullptr) << text;
    rd_kafka_poll_set_consumer(rk_);
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p)
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    EXPECT_EQ(rd_kafka_assign(rk_, list), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(list);
  }
  ~KafkaReader() {
    if (rk_ != nullptr) {
      rd_kafka_consumer_close(rk_);
      rd_kafka_destroy(rk_);
    }
  }
  KafkaReader(const KafkaReader&) = delete;
  KafkaReader& operator=(const KafkaReader&) = delete;

  // Reads into records() until `done(records())` holds (true) or `timeout` passes (false).
  bool read_until(const std::function<bool(const std::vector<KafkaRecord>&)>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(records_)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) records_.push_back(convert(m));
      rd_kafka_message_destroy(m);
    }
    return true;
  }
  const std::vector<KafkaRecord>& records() const { return records_; }
  // The partition's high watermark (the offset its next record gets), -1 when Kafka does not say within 5 s.
  std::int64_t high_watermark(const std::string& topic, std::int32_t partition) const {
    std::int64_t low = -1, high = -1;
    if (rd_kafka_query_watermark_offsets(rk_, topic.c_str(), partition, &low, &high, 5000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
      return -1;
    return high;
  }

 private:
  static KafkaRecord convert(const rd_kafka_message_t* m) {
    KafkaRecord r;
    r.partition = m->partition;
    r.offset = m->offset;
    if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
    if (m->payload != nullptr) r.value = std::string(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      std::size_t size = 0;
      for (std::size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i)
        r.headers.emplace_back(name, value != nullptr ? std::string(static_cast<const char*>(value), size) : "");
    }
    r.timestamp_ms = rd_kafka_message_timestamp(m, &r.timestamp_type);
    return r;
  }
  rd_kafka_t* rk_ = nullptr;
  std::vector<KafkaRecord> records_;
};

// Writes records to Kafka as a plain librdkafka producer would (the inbound route's source).
class KafkaWriter {
 public:
  explicit KafkaWriter(const std::string& bootstraps) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char text[512] = {};
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"bootstrap.servers", bootstraps}, {"linger.ms", "1"}, {"log_level", "2"}})
      EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), text, sizeof text), RD_KAFKA_CONF_OK) << text;
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, text, sizeof text);
    EXPECT_NE(rk_, nullptr) << text;
  }
  ~KafkaWriter() {
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }
  KafkaWriter(const KafkaWriter&) = delete;
  KafkaWriter& operator=(const KafkaWriter&) = delete;

  // Queues one record for `partition` (headers: name/value pairs, in order).
  void write(const std::string& topic, std::int32_t partition, const std::string& key, const std::string& value,
             const std::vector<std::pair<std::string, std::string>>& headers, std::int64_t timestamp_ms) {
    rd_kafka_headers_t* h = rd_kafka_headers_new(headers.size() + 1);
    for (const auto& [n, v] : headers) rd_kafka_header_add(h, n.data(), n.size(), v.data(), v.size());
    void* const value_bytes = const_cast<char*>(value.data());
    const void* const key_bytes = key.data();
    const auto err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(value_bytes, value.size()), RD_KAFKA_V_KEY(key_bytes, key.size()), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(h);
    EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  }
  // Waits until Kafka has every record written so far.
  void flush(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    EXPECT_EQ(rd_kafka_flush(rk_, static_cast<int>(timeout.count())), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

}  // namespace bridgetest
