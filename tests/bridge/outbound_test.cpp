// The outbound route end to end: a local libmq topic (no mqd: Topic::create in a namespace of the test's own), the
// bridge as a child process, librdkafka's mock cluster in this process, a librdkafka consumer checking what arrived.
// Forbidden outcomes: a record missing in Kafka, a record of one key overtaking an earlier one of that key, a key,
// header or timestamp changed on the way, a record of this bridge's own (its echo) carried back, a local record
// acked that Kafka does not have.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <sstream>

#include "bridge_util.hpp"
#include "kafka_mock.hpp"
#include "libmq/libmq.hpp"

namespace {

using namespace bridgetest;
using namespace std::chrono_literals;

constexpr const char* kId = "test-bridge";
constexpr const char* kGroup = "bridge";
constexpr const char* kKafkaTopic = "orders-kafka";
constexpr int kPartitions = 3;
constexpr int kKeys = 7;
const std::int64_t kBaseMs = 1'700'000'000'000;  // record i's CreateTime: kBaseMs + i

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

class BridgeOutbound : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = "bridge" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    auto topic =
        mq::Topic::create("orders", mq::TopicOptions{.capacity = std::size_t{1} << 20, .groups = {kGroup}, .ns = ns_});
    ASSERT_TRUE(topic) << topic.error().message();
    topic_.emplace(std::move(*topic));
    producer_.emplace(*topic_);
    kafka_.create_topic(kKafkaTopic, kPartitions);
  }
  void TearDown() override {
    producer_.reset();
    topic_.reset();
    (void)mq::Topic::remove("orders", mq::OpenOptions{.ns = ns_});
  }

  std::string config(const std::string& route_extra = "") const {
    return std::string("id = ") + kId + "\nnamespace = " + ns_ + "\nlog-level = debug\n" +
           "kafka.bootstrap.servers = " + kafka_.bootstraps() + "\nkafka.linger.ms = 1\n" +
           "[route.orders]\ndirection = out\nlocal-topic = orders\nkafka-topic = " + kKafkaTopic +
           "\ngroup = " + kGroup + "\n" + route_extra;
  }
  // Starts the bridge and waits until it has said it started (its signal handlers are in place then).
  std::unique_ptr<BridgeProcess> start_bridge(const std::string& route_extra = "",
                                              const std::vector<std::string>& options = {}) {
    const auto file = dir_.write("bridge.conf", config(route_extra));
    std::vector<std::string> args{"--config", file};
    args.insert(args.end(), options.begin(), options.end());
    auto bridge =
        std::make_unique<BridgeProcess>(args, dir_.path() + "/bridge" + std::to_string(starts_++) + ".log");
    EXPECT_TRUE(wait_for_log(*bridge, "starting 1 route", 30s)) << bridge->log();
    return bridge;
  }

  // Record i: key "k<i % kKeys>" (every 50th a null key), payload "record <i>", a header, CreateTime kBaseMs + i.
  void publish(int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string key = "k" + std::to_string(i % kKeys);
      const std::string payload = "record " + std::to_string(i);
      const std::string trace = "t" + std::to_string(i);
      const mq::Header headers[] = {{"trace", bytes(trace)}};
      mq::Record r{
          .payload = bytes(payload), .key = bytes(key), .headers = headers, .timestamp_ns = (kBaseMs + i) * 1'000'000};
      if (i % 50 == 49) r.key.reset();
      ASSERT_TRUE(producer_->publish(r)) << i;
    }
  }

  // What the bridge's local group and the reader stand at, for a failure's message.
  std::string where(const KafkaReader& reader, BridgeProcess& bridge) const {
    std::set<int> seen;
    for (const auto& r : reader.records()) seen.insert(index_of(r));
    std::string text = "kafka has " + std::to_string(seen.size()) + " distinct records of " +
                       std::to_string(reader.records().size()) + "; missing:";
    for (int i = 0, n = seen.empty() ? 0 : *seen.rbegin(); i <= n; ++i)
      if (seen.count(i) == 0) text += " " + std::to_string(i);
    std::map<int, int> per_partition;
    for (const auto& r : reader.records()) ++per_partition[r.partition];
    for (const auto& [p, n] : per_partition)
      text += "; partition " + std::to_string(p) + ": " + std::to_string(n) + " read, high watermark " +
              std::to_string(reader.high_watermark(kKafkaTopic, p));
    text += ";";
    const auto info = topic_->info();
    for (const auto& g : info.groups)
      if (g.name == kGroup)
        text += " group committed " + std::to_string(g.committed) + " next " + std::to_string(g.next) + " latest " +
                std::to_string(info.latest) + " unacked " + std::to_string(g.unacked) + ";";
    return text + "\n" + bridge.log();
  }

  // Waits until the bridge's group has acked everything published (its committed offset is the latest).
  bool all_acked(std::chrono::milliseconds timeout) const {
    return group_reaches_latest(&mq::GroupInfo::committed, timeout);
  }
  // Waits until the bridge has taken every published record from libmq (the group's cursor is at the latest).
  bool all_taken(std::chrono::milliseconds timeout) const { return group_reaches_latest(&mq::GroupInfo::next, timeout); }
  // Waits until the bridge group's `offset` (committed or next) is the topic's latest.
  bool group_reaches_latest(mq::Offset mq::GroupInfo::*offset, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto info = topic_->info();
      for (const auto& g : info.groups)
        if (g.name == kGroup && g.*offset == info.latest) return true;
      std::this_thread::sleep_for(10ms);  // polling the condition; the deadline bounds it
    }
    return false;
  }

  static int index_of(const KafkaRecord& r) {
    return r.value.rfind("record ", 0) == 0 ? std::stoi(r.value.substr(7)) : -1;
  }

  ScratchDir dir_;
  std::string ns_;
  MockCluster kafka_{1};
  std::optional<mq::Topic> topic_;
  std::optional<mq::Producer> producer_;
  int starts_ = 0;
  static inline int counter_ = 0;
};

// The index of a record the bridge carried ("record <i>"), -1 for anything else.
int index_of(const KafkaRecord& r) { return r.value.rfind("record ", 0) == 0 ? std::stoi(r.value.substr(7)) : -1; }

// True once records 0..n-1 have all arrived (at least once).
std::function<bool(const std::vector<KafkaRecord>&)> all_of(int n) {
  return [n](const std::vector<KafkaRecord>& records) {
    std::set<int> seen;
    for (const auto& r : records)
      if (const int i = index_of(r); i >= 0 && i < n) seen.insert(i);
    return static_cast<int>(seen.size()) == n;
  };
}

// Every record 0..n-1 as published, each key in one partition, and (with `in_order`) within a key the first arrival
// of each record in publish order (at-least-once may repeat a record after a restart; it may not reorder first
// arrivals while no delivery fails for good).
void expect_carried_faithfully(const std::vector<KafkaRecord>& records, int n, bool in_order = true) {
  std::map<int, std::vector<int>> by_partition;  // record indices in Kafka offset order per partition
  std::map<std::string, int> partition_of_key;
  std::set<int> seen;
  std::vector<KafkaRecord> sorted = records;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.partition != b.partition ? a.partition < b.partition : a.offset < b.offset;
  });
  for (const auto& r : sorted) {
    const int i = index_of(r);
    ASSERT_GE(i, 0) << "unexpected record '" << r.value << "'";
    ASSERT_LT(i, n);
    if (i % 50 == 49) {
      EXPECT_FALSE(r.key.has_value()) << i;
    } else {
      ASSERT_TRUE(r.key.has_value()) << i;
      EXPECT_EQ(*r.key, "k" + std::to_string(i % kKeys));
      auto [it, fresh] = partition_of_key.emplace(*r.key, r.partition);
      EXPECT_EQ(it->second, r.partition) << "key " << *r.key << " in two partitions";
    }
    ASSERT_EQ(r.headers.size(), 2u) << i;
    EXPECT_EQ(r.headers[0], std::make_pair(std::string("trace"), "t" + std::to_string(i)));
    EXPECT_EQ(r.headers[1], std::make_pair(std::string("mq.bridge"), std::string(kId)));
    EXPECT_EQ(r.timestamp_type, RD_KAFKA_TIMESTAMP_CREATE_TIME) << i;
    EXPECT_EQ(r.timestamp_ms, kBaseMs + i) << i;
    if (seen.insert(i).second) by_partition[r.partition].push_back(i);
  }
  EXPECT_EQ(static_cast<int>(seen.size()), n);
  // Per key order: within a partition, the first arrivals of one key's records grow.
  for (const auto& [partition, indices] : in_order ? by_partition : std::map<int, std::vector<int>>{}) {
    std::map<std::string, int> last;
    for (int i : indices) {
      const std::string key = i % 50 == 49 ? "" : "k" + std::to_string(i % kKeys);
      if (key.empty()) continue;
      if (auto it = last.find(key); it != last.end()) {
        EXPECT_LT(it->second, i) << "key " << key << " reordered";
      }
      last[key] = i;
    }
  }
}

TEST_F(BridgeOutbound, RecordsReachKafkaWithKeyHeadersAndTimestamp) {
  auto bridge = start_bridge();
  constexpr int kRecords = 3000;
  publish(0, kRecords);
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  ASSERT_TRUE(reader.read_until(all_of(kRecords), 60s)) << bridge->log();
  expect_carried_faithfully(reader.records(), kRecords);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

TEST_F(BridgeOutbound, EchoOfThisBridgeIsNotCarriedBack) {
  auto bridge = start_bridge();
  const std::string echo = "echo", after = "after", id = kId, another = "another-bridge";
  const mq::Header mine[] = {{"mq.bridge", bytes(id)}};
  const mq::Header other[] = {{"mq.bridge", bytes(another)}};
  ASSERT_TRUE(
      producer_->publish(mq::Record{.payload = bytes(echo), .key = bytes("e"), .headers = mine, .timestamp_ns = {}}));
  ASSERT_TRUE(producer_->publish(
      mq::Record{.payload = bytes("foreign"), .key = bytes("e"), .headers = other, .timestamp_ns = {}}));
  ASSERT_TRUE(
      producer_->publish(mq::Record{.payload = bytes(after), .key = bytes("e"), .headers = {}, .timestamp_ns = {}}));
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  ASSERT_TRUE(reader.read_until(
      [&](const auto& records) {
        return std::any_of(records.begin(), records.end(), [&](const auto& r) { return r.value == after; });
      },
      60s))
      << bridge->log();
  // One key, one partition, in order: the echo would have arrived before "after".
  std::vector<std::string> values;
  for (const auto& r : reader.records()) values.push_back(r.value);
  EXPECT_EQ(values, (std::vector<std::string>{"foreign", "after"}));
  EXPECT_TRUE(all_acked(30s)) << "the echo must be acked too\n" << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// The broker goes down while records are published and stays down past kafka.message.timeout.ms, so their
// deliveries fail and the route restarts from its checkpoint (again and again) until it is up: nothing is lost.
TEST_F(BridgeOutbound, BrokerDownThenUpLosesNothing) {
  auto bridge = start_bridge("kafka.message.timeout.ms = 2000\n");
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  publish(0, 500);
  ASSERT_TRUE(reader.read_until(all_of(500), 60s)) << bridge->log();
  kafka_.broker_down(1);
  publish(500, 1500);
  ASSERT_TRUE(all_taken(30s)) << bridge->log();
  // Down until a delivery has failed and the route restarted from its checkpoint (its log says so).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!contains(bridge->log(), "restarting from the checkpoint") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(contains(bridge->log(), "restarting from the checkpoint")) << bridge->log();
  {
    // Nothing published while the broker was down may be acked: Kafka cannot have it.
    const auto info = topic_->info();
    for (const auto& g : info.groups)
      if (g.name == kGroup) {
        EXPECT_LE(g.committed, 500u) << "acked while Kafka was down";
      }
  }
  kafka_.broker_up(1);
  ASSERT_TRUE(reader.read_until(all_of(1500), 90s)) << bridge->log();
  expect_carried_faithfully(reader.records(), 1500);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// The metrics page and --status follow the route: what it carried, its rates and latency, and, with Kafka down, its
// state, the records it holds unconfirmed, the lag growing in libmq and the age of its stuck checkpoint.
TEST_F(BridgeOutbound, MetricsAndStatusShowWhatTheRouteCarriesAndWhatWaits) {
  const int port = free_port();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  auto bridge = start_bridge("", {"--metrics-listen", listen});
  const std::string route = "{route=\"orders\",direction=\"out\"}";
  const auto state_is = [&](const std::string& page, const std::string& state) {
    return sample(page, "mq_bridge_route_state{route=\"orders\",direction=\"out\",state=\"" + state + "\"}") == 1.0;
  };
  publish(0, 300);
  ASSERT_TRUE(all_acked(60s)) << bridge->log();
  std::string page = metrics_until(
      port,
      [&](const std::string& p) {
        return sample(p, "mq_bridge_records_total" + route) == 300.0 && sample(p, "mq_bridge_lag" + route) == 0.0;
      },
      30s);
  EXPECT_EQ(sample(page, "mq_bridge_records_total" + route), 300.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_lag" + route), 0.0) << page;
  EXPECT_TRUE(state_is(page, "running")) << page;
  EXPECT_EQ(sample(page, "mq_bridge_in_flight" + route), 0.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_checkpoint_age_seconds" + route), 0.0) << page;
  EXPECT_GT(sample(page, "mq_bridge_bytes_total" + route).value_or(0), 300 * 8.0) << page;  // "record N" each
  EXPECT_EQ(sample(page, "mq_bridge_delivery_latency_seconds_count" + route), 300.0) << page;
  EXPECT_TRUE(contains(page, "mq_bridge_info{id=\"test-bridge\"} 1")) << page;
  EXPECT_TRUE(contains(page, "mq_bridge_route_info{route=\"orders\",direction=\"out\",local_topic=\"orders\","
                             "kafka_topic=\"orders-kafka\",group=\"bridge\"} 1"))
      << page;

  const auto status = run_bridge({"--config", dir_.path() + "/bridge.conf", "--metrics-listen", listen, "--status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(contains(status.output, "ROUTE")) << status.output;
  // The route's line: ROUTE DIR STATE LOCAL-TOPIC KAFKA-TOPIC RECORDS ...
  std::vector<std::string> fields;
  {
    std::istringstream lines(status.output);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("orders ", 0) == 0) {
        std::istringstream words(line);
        for (std::string w; words >> w;) fields.push_back(w);
      }
  }
  ASSERT_GE(fields.size(), 6u) << status.output;
  EXPECT_EQ(std::vector<std::string>(fields.begin(), fields.begin() + 6),
            (std::vector<std::string>{"orders", "out", "running", "orders", "orders-kafka", "300"}))
      << status.output;

  // Kafka away: records wait unconfirmed (in flight) and in libmq (lag), and the checkpoint ages.
  kafka_.broker_down(1);
  publish(300, 500);
  page = metrics_until(
      port,
      [&](const std::string& p) {
        return state_is(p, "kafka-down") && sample(p, "mq_bridge_lag" + route) >= 200.0 &&
               sample(p, "mq_bridge_checkpoint_age_seconds" + route) >= 1.0;
      },
      60s);
  EXPECT_TRUE(state_is(page, "kafka-down")) << page << bridge->log();
  EXPECT_GE(sample(page, "mq_bridge_lag" + route).value_or(0), 200.0) << page;
  EXPECT_GE(sample(page, "mq_bridge_in_flight" + route).value_or(0), 1.0) << page;
  EXPECT_GE(sample(page, "mq_bridge_checkpoint_age_seconds" + route).value_or(0), 1.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_records_total" + route), 300.0) << page;
  EXPECT_TRUE(contains(page, "mq_bridge_errors_total{route=\"orders\",direction=\"out\",code=\"_ALL_BROKERS_DOWN\"}"))
      << page;

  kafka_.broker_up(1);
  ASSERT_TRUE(all_acked(90s)) << bridge->log();
  page = metrics_until(
      port,
      [&](const std::string& p) { return state_is(p, "running") && sample(p, "mq_bridge_lag" + route) == 0.0; },
      30s);
  EXPECT_TRUE(state_is(page, "running")) << page;
  EXPECT_GE(sample(page, "mq_bridge_records_total" + route).value_or(0), 500.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_checkpoint_age_seconds" + route), 0.0) << page;
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();

  // Nobody answers now: --status says so, exit 1.
  const auto gone = run_bridge({"--config", dir_.path() + "/bridge.conf", "--metrics-listen", listen, "--status"});
  EXPECT_EQ(gone.exit_code, 1) << gone.output;
  EXPECT_TRUE(contains(gone.output, "is the bridge running?")) << gone.output;
}

// A shorter outage, within message.timeout.ms: the same producer reconnects by itself and delivers what waited.
TEST_F(BridgeOutbound, BrokerDownBrieflyThenUpLosesNothing) {
  auto bridge = start_bridge();
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  publish(0, 300);
  ASSERT_TRUE(reader.read_until(all_of(300), 60s)) << bridge->log();
  kafka_.broker_down(1);
  publish(300, 900);
  ASSERT_TRUE(all_taken(30s)) << bridge->log();
  ASSERT_TRUE(wait_for_log(*bridge, "route orders: kafka:", 60s)) << bridge->log();  // it noticed
  kafka_.broker_up(1);
  ASSERT_TRUE(reader.read_until(all_of(900), 90s)) << where(reader, *bridge);
  expect_carried_faithfully(reader.records(), 900);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// SIGKILL at random moments of a stream, 50 times, each time a restart: every record reaches Kafka at least once,
// first arrivals in order per key (what the killed bridge held unacked comes back through its group first).
TEST_F(BridgeOutbound, BridgeKilledAtRandomMomentsAndRestartedLosesNothing) {
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  constexpr int kRounds = 50, kPerRound = 60;
  std::mt19937 random(20260601);  // fixed: a failure replays
  for (int round = 0; round < kRounds; ++round) {
    auto bridge = start_bridge();
    publish(round * kPerRound, (round + 1) * kPerRound);
    // Killed once a random part of this round's records is in Kafka, most likely with others in flight.
    const int in_kafka = round * kPerRound + static_cast<int>(random() % kPerRound);
    ASSERT_TRUE(reader.read_until(all_of(in_kafka), 60s)) << bridge->log();
    bridge->signal(SIGKILL);
    ASSERT_EQ(bridge->wait_exit(10s), std::optional<int>(128 + SIGKILL));
  }
  auto bridge = start_bridge();
  ASSERT_TRUE(reader.read_until(all_of(kRounds * kPerRound), 60s)) << bridge->log();
  expect_carried_faithfully(reader.records(), kRounds * kPerRound);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

TEST_F(BridgeOutbound, SigtermWithRecordsInFlightAcksWhatKafkaConfirmedAndExitsZero) {
  auto bridge = start_bridge();
  publish(0, 1000);
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  ASSERT_TRUE(reader.read_until(all_of(10), 60s)) << bridge->log();
  bridge->signal(SIGTERM);
  ASSERT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  // Whatever was acked is in Kafka: read up to the committed offset.
  mq::Offset committed = 0;
  for (const auto& g : topic_->info().groups)
    if (g.name == kGroup) committed = g.committed;
  ASSERT_TRUE(reader.read_until(all_of(static_cast<int>(committed)), 60s));
  // The rest comes with the next start.
  auto again = start_bridge();
  ASSERT_TRUE(reader.read_until(all_of(1000), 60s)) << again->log();
  expect_carried_faithfully(reader.records(), 1000);
  EXPECT_TRUE(all_acked(30s)) << again->log();
  again->signal(SIGTERM);
  EXPECT_EQ(again->wait_exit(30s), std::optional<int>(0)) << again->log();
}

// Kafka's Produce API key (the mock's error injection is per request type).
constexpr std::int16_t kProduceApi = 0;

// librdkafka 2.0.2 raises a fatal error on a sequence desynchronization (fixed only later): the route destroys the
// producer, makes a new one and resumes from its checkpoint; the records it held come back through the group.
TEST_F(BridgeOutbound, FatalProducerErrorRecreatesTheProducerAndLosesNothing) {
  auto bridge = start_bridge();
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  publish(0, 100);
  ASSERT_TRUE(reader.read_until(all_of(100), 60s)) << bridge->log();
  const std::vector<rd_kafka_resp_err_t> errors(3, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  rd_kafka_mock_push_request_errors_array(kafka_.get(), kProduceApi, errors.size(), errors.data());
  publish(100, 1000);
  ASSERT_TRUE(reader.read_until(all_of(1000), 60s)) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "fatal producer error OUT_OF_ORDER_SEQUENCE_NUMBER")) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "(fatal: new producer)")) << bridge->log();
  expect_carried_faithfully(reader.records(), 1000);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// Produce errors librdkafka retries by itself (leader moved or not available, too few replicas, request timed out),
// one at a time: nothing lost, order kept.
// One at a time because of the mock: when a retried batch fails again while the partition's next batch succeeds,
// librdkafka 2.0.2 counts the retried one as delivered ("implicitly acked by subsequent batch success"). A real
// broker refuses the next batch then (a gap in the idempotent producer's sequence: OUT_OF_ORDER_SEQUENCE_NUMBER, the
// fatal error the route recovers from), but the 2.0.2 mock checks sequences for transactional producers only, so
// there a never-stored record is reported delivered (seen about once in 40 runs with four errors in a row). Since the
// route hands librdkafka batches without pausing, several batches of a partition are in flight at once and one
// error was enough (CI under ASan: record 100 acked, never stored): one request in flight per connection here, so
// that no later batch can succeed past a retried one on the mock. Against a real broker the sequence check does it.
TEST_F(BridgeOutbound, RetriedProduceErrorsLoseNothingAndKeepOrder) {
  auto bridge = start_bridge("kafka.max.in.flight.requests.per.connection = 1\n");
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  publish(0, 100);
  ASSERT_TRUE(reader.read_until(all_of(100), 60s)) << bridge->log();
  int published = 100;
  for (const auto error : {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                           RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT}) {
    rd_kafka_mock_push_request_errors(kafka_.get(), kProduceApi, 1, error);
    publish(published, published + 225);
    published += 225;
    ASSERT_TRUE(reader.read_until(all_of(published), 60s))
        << rd_kafka_err2name(error) << ": " << where(reader, *bridge);
  }
  expect_carried_faithfully(reader.records(), published);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// A Produce error librdkafka reports as a failed delivery (an old producer epoch): the route restarts from its
// checkpoint and sends the record again; nothing is lost. Its key's order is not checked: records after it in
// flight may have been delivered before it is sent again (at-least-once; see bridge/README.md "Order").
TEST_F(BridgeOutbound, FailedDeliveryIsSentAgainFromTheCheckpoint) {
  auto bridge = start_bridge();
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  publish(0, 100);
  ASSERT_TRUE(reader.read_until(all_of(100), 60s)) << bridge->log();
  const std::vector<rd_kafka_resp_err_t> errors = {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH};
  rd_kafka_mock_push_request_errors_array(kafka_.get(), kProduceApi, errors.size(), errors.data());
  publish(100, 1000);
  ASSERT_TRUE(reader.read_until(all_of(1000), 60s)) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "INVALID_PRODUCER_EPOCH")) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "restarting from the checkpoint")) << bridge->log();
  expect_carried_faithfully(reader.records(), 1000, /*in_order=*/false);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// A librdkafka queue of 16 records against a window of up to 2016: QUEUE_FULL again and again, reading libmq pauses
// each time, and nothing is lost or reordered.
TEST_F(BridgeOutbound, FullLibrdkafkaQueuePausesReadingWithoutLoss) {
  auto bridge = start_bridge("kafka.queue.buffering.max.messages = 16\n");
  publish(0, 2000);
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  ASSERT_TRUE(reader.read_until(all_of(2000), 60s)) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "librdkafka's queue is full: reading libmq paused")) << bridge->log();
  expect_carried_faithfully(reader.records(), 2000);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
}

// A record larger than Kafka takes is never dropped: the route stops (exit 1) naming it, leaving it unacked.
// A record larger than Kafka takes goes to the local dead-letter topic once every record before it is in Kafka, and
// the route goes on: nothing dropped, nothing wedged.
TEST_F(BridgeOutbound, RecordTooLargeForKafkaGoesToTheDeadLetterTopicAndTheRouteGoesOn) {
  const int port = free_port();
  auto bridge = start_bridge("kafka.message.max.bytes = 1000\n", {"--metrics-listen", "127.0.0.1:" + std::to_string(port)});
  KafkaReader reader(kafka_.bootstraps(), kKafkaTopic, kPartitions);
  publish(0, 10);
  const std::string big(4000, 'x');
  ASSERT_TRUE(producer_->publish(bytes(big)));  // offset 10
  publish(11, 21);
  const auto all_but_the_big_one = [](const std::vector<KafkaRecord>& records) {
    std::set<int> seen;
    for (const auto& r : records) seen.insert(index_of(r));
    return seen.size() == 20 && seen.count(10) == 0 && *seen.begin() == 0 && *seen.rbegin() == 20;
  };
  ASSERT_TRUE(reader.read_until(all_but_the_big_one, 60s)) << where(reader, *bridge);
  EXPECT_TRUE(all_acked(30s)) << bridge->log();
  EXPECT_TRUE(bridge->running()) << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "offset 10 of local topic 'orders' is larger than Kafka takes (4000 bytes"))
      << bridge->log();
  EXPECT_TRUE(contains(bridge->log(), "moved to the dead-letter topic 'orders.dlq'")) << bridge->log();
  for (const auto& r : reader.records()) EXPECT_LT(r.value.size(), 100u) << "the big record reached Kafka";

  // The dead letter: the record as published, and why.
  auto dlq = mq::Topic::open("orders.dlq", mq::OpenOptions{.ns = ns_});
  ASSERT_TRUE(dlq) << dlq.error().message();
  mq::Consumer letters(*dlq, mq::ConsumerOptions{.group = std::string(mq::kDeadLetterGroup), .auto_ack = false});
  auto letter = letters.poll(5s);
  ASSERT_TRUE(letter) << letter.error().message();
  EXPECT_EQ(letter->payload().size(), big.size());
  std::map<std::string, std::string> h;
  for (const auto& x : letter->headers())
    h[std::string(x.name)] = std::string(reinterpret_cast<const char*>(x.value.data()), x.value.size());
  EXPECT_EQ(h[std::string(mq::dlq_header::offset)], "10");
  EXPECT_EQ(h[std::string(mq::dlq_header::group)], kGroup);
  EXPECT_TRUE(contains(h[std::string(mq::dlq_header::error)], "larger than Kafka takes (4000 bytes)"))
      << h[std::string(mq::dlq_header::error)];
  EXPECT_FALSE(letters.poll(std::chrono::nanoseconds(0)));
  const auto page = metrics_until(
      port,
      [](const std::string& p) {
        return sample(p, "mq_bridge_dead_lettered_total{route=\"orders\",direction=\"out\"}") == 1.0;
      },
      10s);
  EXPECT_EQ(sample(page, "mq_bridge_dead_lettered_total{route=\"orders\",direction=\"out\"}"), 1.0) << page;
  EXPECT_EQ(sample(page, "mq_bridge_errors_total{route=\"orders\",direction=\"out\",code=\"MSG_SIZE_TOO_LARGE\"}"),
            1.0)
      << page;
  bridge->signal(SIGTERM);
  EXPECT_EQ(bridge->wait_exit(30s), std::optional<int>(0)) << bridge->log();
  (void)mq::Topic::remove("orders.dlq", mq::OpenOptions{.ns = ns_});
}

}  // namespace
