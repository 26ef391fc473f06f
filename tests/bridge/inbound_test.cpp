// The inbound route end to end: records written to librdkafka's mock cluster (in this process) are appended by the
// bridge (a child process) to a local libmq topic, read back here through a consumer group of the test's own.
// Forbidden outcomes: a Kafka record missing in libmq, or there twice (exactly-once with one bridge writing, however
// often the bridge is killed), records of one partition out of order, a key, header or timestamp changed, a record
// of this bridge's own (its echo) appended.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "bridge_util.hpp"
#include "kafka_mock.hpp"
#include "libmq/libmq.hpp"

namespace {

using namespace bridgetest;
using namespace std::chrono_literals;

constexpr const char* kId = "test-bridge";
constexpr const char* kKafkaTopic = "events";
constexpr const char* kCheckGroup = "check";
constexpr int kPartitions = 3;
const std::int64_t kBaseMs = 1'700'000'000'000;  // event i's CreateTime: kBaseMs + i

std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// One appended record as the test reads it back.
struct Appended {
  mq::Offset offset = 0;
  std::string payload;
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::int64_t timestamp_ns = 0;
  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return v;
    return {};
  }
};

class BridgeInbound : public ::testing::Test {
 protected:
  void create_local_topic(std::size_t capacity) {
    ns_ = "bridgein" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    auto topic = mq::Topic::create("inbox", mq::TopicOptions{.capacity = capacity, .groups = {kCheckGroup}, .ns = ns_});
    ASSERT_TRUE(topic) << topic.error().message();
    topic_.emplace(std::move(*topic));
    checker_.emplace(*topic_, mq::ConsumerOptions{.group = kCheckGroup, .start = mq::Start::earliest});
  }
  void SetUp() override {
    kafka_.create_topic(kKafkaTopic, kPartitions);
    create_local_topic(std::size_t{1} << 20);
  }
  void TearDown() override {
    checker_.reset();
    topic_.reset();
    (void)mq::Topic::remove("inbox", mq::OpenOptions{.ns = ns_});
  }

  std::unique_ptr<BridgeProcess> start_bridge(const std::vector<std::string>& options = {}) {
    const auto file = dir_.write(
        "bridge.conf", std::string("id = ") + kId + "\nnamespace = " + ns_ + "\nlog-level = debug\n" +
                           "kafka.bootstrap.servers = " + kafka_.bootstraps() + "\nkafka.fetch.wait.max.ms = 10\n" +
                           "[route.events]\ndirection = in\nlocal-topic = inbox\nkafka-topic = " + kKafkaTopic +
                           "\ngroup = bridge-in\n");
    std::vector<std::string> args{"--config", file};
    args.insert(args.end(), options.begin(), options.end());
    auto bridge =
        std::make_unique<BridgeProcess>(args, dir_.path() + "/bridge" + std::to_string(starts_++) + ".log");
    EXPECT_TRUE(wait_for_log(*bridge, "starting 1 route", 30s)) << bridge->log();
    return bridge;
  }

  // Event i: partition i % kPartitions, key "k<i>", payload "event <i>" (padded to `size`), a header, CreateTime
  // kBaseMs + i.
  void write(KafkaWriter& w, int from, int to, std::size_t size = 0) {
    for (int i = from; i < to; ++i) {
      std::string payload = "event " + std::to_string(i);
      if (payload.size() < size) payload.resize(size, '.');
      w.write(kKafkaTopic, i % kPartitions, "k" + std::to_string(i), payload, {{"trace", "t" + std::to_string(i)}},
              kBaseMs + i);
    }
    w.flush();
  }

  // Reads appended records until `n` have come (true) or `timeout` passes (false).
  bool read_until(std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (read_.size() < n) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      auto m = checker_->poll(50ms);
      if (!m) continue;
      Appended a;
      a.offset = m->offset();
      a.payload = text(m->payload());
      if (auto k = m->key()) a.key = text(*k);
      for (const auto& h : m->headers()) a.headers.emplace_back(std::string(h.name), text(h.value));
      a.timestamp_ns = m->timestamp_ns();
      read_.push_back(std::move(a));
    }
    return true;
  }
  // After the bridge stopped: nothing more than what was read.
  void expect_nothing_more() {
    auto m = checker_->poll(200ms);
    EXPECT_FALSE(m) << "one more record: " << text(m->payload());
  }

  ScratchDir dir_;
  std::string ns_;
  MockCluster kafka_{1};
  std::optional<mq::Topic> topic_;
  std::optional<mq::Consumer> checker_;
  std::vector<Appended> read_;
  int starts_ = 0;
  static inline int counter_ = 0;
};

int index_of(const Appended& a) { return std::stoi(a.payload.substr(6)); }

// Events 0..n-1, each once, as written, with their Kafka coordinates, in order per partition.
void expect_appended_exactly_once(const std::vector<Appended>& read, int n) {
  std::set<int> seen;
  std::map<std::string, std::int64_t> last_offset;  // per partition
  for (const auto& a : read) {
    ASSERT_EQ(a.payload.rfind("event ", 0), 0u) << a.payload;
    const int i = index_of(a);
    EXPECT_TRUE(seen.insert(i).second) << "event " << i << " appended twice";
    EXPECT_EQ(a.key, "k" + std::to_string(i));
    ASSERT_EQ(a.headers.size(), 5u) << i;
    EXPECT_EQ(a.headers[0], std::make_pair(std::string("trace"), "t" + std::to_string(i)));
    EXPECT_EQ(a.headers[1], std::make_pair(std::string("kafka.topic"), std::string(kKafkaTopic)));
    EXPECT_EQ(a.headers[2], std::make_pair(std::string("kafka.partition"), std::to_string(i % kPartitions)));
    EXPECT_EQ(a.headers[3], std::make_pair(std::string("kafka.offset"), std::to_string(i / kPartitions)));
    EXPECT_EQ(a.headers[4], std::make_pair(std::string("mq.bridge"), std::string(kId)));
    EXPECT_EQ(a.timestamp_ns, (kBaseMs + i) * 1'000'000) << i;
    const auto partition = a.header("kafka.partition");
    const std::int64_t offset = std::stoll(a.header("kafka.offset"));
    if (auto it = last_offset.find(partition); it != last_offset.end()) {
      EXPECT_LT(it->second, offset) << "partition " << partition << " out of order";
    }
    last_offset[partition] = offset;
  }
  EXPECT_EQ(static_cast<int>(seen.size()), n);
  EXPECT_EQ(static_cast<int>(read.size()), n);
}

TEST_F(BridgeInbound, RecordsReachLibmqWithKafkaHeadersKeyAndTimestamp) {
  KafkaWriter writer(kafka_.bootstraps());
  write(writer, 0, 300);
  auto bridge = start_bridge();
  ASSERT_TRUE(read_until(300, 60s)) << bridge->log();
  write(writer, 300, 600);  // while it runs
  ASSERT_TRUE(read_until(600, 60s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  expect_nothing_more();
  expect_appended_exactly_once(read_, 600);
}

TEST_F(BridgeInbound, EchoOfThisBridgeIsNotAppended) {
  KafkaWriter writer(kafka_.bootstraps());
  writer.write(kKafkaTopic, 0, "e", "echo", {{"mq.bridge", kId}}, kBaseMs);
  writer.write(kKafkaTopic, 0, "e", "foreign", {{"mq.bridge", "another-bridge"}}, kBaseMs);
  writer.write(kKafkaTopic, 0, "e", "after", {}, kBaseMs);
  writer.flush();
  auto bridge = start_bridge();
  ASSERT_TRUE(read_until(2, 60s)) << bridge->log();
  EXPECT_EQ(read_[0].payload, "foreign");
  EXPECT_EQ(read_[1].payload, "after");
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  expect_nothing_more();
}

// SIGKILL at random moments, 50 times, each time a restart that scans the local topic for where it stopped: every
// Kafka record is in libmq exactly once, whatever the group's committed offsets say.
TEST_F(BridgeInbound, BridgeKilledAtRandomMomentsAndRestartedAppendsEachRecordOnce) {
  KafkaWriter writer(kafka_.bootstraps());
  constexpr int kRounds = 50, kPerRound = 40;
  std::mt19937 random(20260602);  // fixed: a failure replays
  for (int round = 0; round < kRounds; ++round) {
    write(writer, round * kPerRound, (round + 1) * kPerRound);
    auto bridge = start_bridge();
    const int target = round * kPerRound + static_cast<int>(random() % kPerRound);
    // Killed once the local topic holds `target` records (skip records of killed claims count too: >=).
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (topic_->info().latest < static_cast<mq::Offset>(target) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);  // polling the condition; the deadline bounds it
    ASSERT_GE(topic_->info().latest, static_cast<mq::Offset>(target)) << bridge->log();
    bridge->signal(SIGKILL);
    ASSERT_EQ(bridge->wait_exit(10s), std::optional<int>(128 + SIGKILL));
  }
  auto bridge = start_bridge();
  ASSERT_TRUE(read_until(kRounds * kPerRound, 60s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  expect_nothing_more();
  expect_appended_exactly_once(read_, kRounds * kPerRound);
}

// A 64 KiB local topic whose one group reads nothing yet takes ~250 records of 200 bytes: the route pauses its Kafka
// partitions (and says so, in its log and its metrics) until the group reads, then resumes. Nothing dropped, nothing
// twice.
TEST_F(BridgeInbound, FullLocalTopicPausesKafkaUntilItDrains) {
  TearDown();
  create_local_topic(mq::kMinCapacity);
  KafkaWriter writer(kafka_.bootstraps());
  write(writer, 0, 1500, 200);
  const int port = free_port();
  auto bridge = start_bridge({"--metrics-listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(wait_for_log(*bridge, "Kafka partitions paused", 60s)) << bridge->log();
  const std::string route = "{route=\"events\",direction=\"in\"}";
  const std::string paused = "mq_bridge_route_state{route=\"events\",direction=\"in\",state=\"paused\"}";
  // Paused: records taken from Kafka wait for room, Kafka holds the rest (its lag), the checkpoint ages.
  std::string page = metrics_until(
      port,
      [&](const std::string& p) {
        return sample(p, paused) == 1.0 && sample(p, "mq_bridge_lag" + route) > 0.0 &&
               sample(p, "mq_bridge_checkpoint_age_seconds" + route) >= 1.0;
      },
      30s);
  EXPECT_EQ(sample(page, paused), 1.0) << page;
  EXPECT_GE(sample(page, "mq_bridge_in_flight" + route).value_or(0), 1.0) << page;
  EXPECT_GT(sample(page, "mq_bridge_lag" + route).value_or(0), 0.0) << page;
  EXPECT_GE(sample(page, "mq_bridge_checkpoint_age_seconds" + route).value_or(0), 1.0) << page;
  const double appended = sample(page, "mq_bridge_records_total" + route).value_or(-1);
  EXPECT_GT(appended, 0.0) << page;
  EXPECT_LT(appended, 1500.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_errors_total{route=\"events\",direction=\"in\",code=\"full\"}"), std::nullopt)
      << "a full topic is back-pressure, not an error: " << page;
  ASSERT_TRUE(read_until(1500, 60s)) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "Kafka partitions resumed")) << bridge->log();
  page = metrics_until(
      port,
      [&](const std::string& p) {
        return sample(p, "mq_bridge_records_total" + route) == 1500.0 && sample(p, "mq_bridge_lag" + route) == 0.0;
      },
      30s);
  EXPECT_EQ(sample(page, "mq_bridge_records_total" + route), 1500.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_lag" + route), 0.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_route_state{route=\"events\",direction=\"in\",state=\"running\"}"), 1.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_delivery_latency_seconds_count" + route), 1500.0) << page;
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  expect_nothing_more();
  for (auto& a : read_) a.payload.erase(a.payload.find_last_not_of('.') + 1);
  expect_appended_exactly_once(read_, 1500);
}

// Kafka goes down under a running inbound route and comes back; its offset commits (for lag monitoring only) fail:
// the route reconnects by itself, and every record is appended once.
TEST_F(BridgeInbound, KafkaDownAndFailedCommitsLoseNothingAndRepeatNothing) {
  constexpr std::int16_t kOffsetCommitApi = 8;
  KafkaWriter writer(kafka_.bootstraps());
  write(writer, 0, 300);
  auto bridge = start_bridge();
  ASSERT_TRUE(read_until(300, 60s)) << bridge->log();
  kafka_.broker_down(1);
  ASSERT_TRUE(wait_for_log(*bridge, "route events: kafka:", 60s)) << bridge->log();  // it noticed
  const std::vector<rd_kafka_resp_err_t> errors(5, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_push_request_errors_array(kafka_.get(), kOffsetCommitApi, errors.size(), errors.data());
  kafka_.broker_up(1);
  KafkaWriter again(kafka_.bootstraps());  // a fresh writer: the test's own reconnection is not under test
  write(again, 300, 600);
  ASSERT_TRUE(read_until(600, 60s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  expect_nothing_more();
  expect_appended_exactly_once(read_, 600);
}

}  // namespace
