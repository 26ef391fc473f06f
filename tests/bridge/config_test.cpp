// mq-kafka-bridge's command line and config file: --help, --check, and every bad config refused with exit code 2
// and one line naming the field and its section.
#include <gtest/gtest.h>

#include "bridge_util.hpp"
#include "kafka.hpp"
#include "libmq/libmq.hpp"

namespace {

using namespace bridgetest;

constexpr const char* kGood =
    "id = test-bridge\n"
    "kafka.bootstrap.servers = localhost:9092\n"
    "[route.orders]\n"
    "direction = out\n"
    "local-topic = orders\n"
    "kafka-topic = orders-kafka\n"
    "group = bridge\n"
    "kafka.linger.ms = 2\n";

// Runs --check on a config of `text`; expects exit 2 and one line holding every `needles`.
void expect_refused(const std::string& text, const std::vector<std::string>& needles) {
  ScratchDir dir;
  const auto file = dir.write("bridge.conf", text);
  const auto o = run_bridge({"--config", file, "--check"});
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_EQ(line_count(o.output), 1u) << o.output;
  for (const auto& n : needles) EXPECT_TRUE(contains(o.output, n)) << "missing '" << n << "' in: " << o.output;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(BridgeCommandLine, HelpNamesTheOptionsAndTheRouteKeys) {
  const auto o = run_bridge({"--help"});
  EXPECT_EQ(o.exit_code, 0);
  for (const char* needle : {"--config", "--check", "--id", "[route.NAME]", "direction", "local-topic", "kafka-topic",
                             "group", "kafka.bootstrap.servers", "Exit codes"})
    EXPECT_TRUE(contains(o.output, needle)) << needle;
}

TEST(BridgeCommandLine, VersionNamesLibrdkafka) {
  const auto o = run_bridge({"--version"});
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_TRUE(contains(o.output, "librdkafka 2.")) << o.output;
}

TEST(BridgeCommandLine, StrayArgumentIsRefused) {
  const auto o = run_bridge({"orders"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_TRUE(contains(o.output, "unexpected argument 'orders'")) << o.output;
}

TEST(BridgeCommandLine, UnknownOptionIsRefused) {
  const auto o = run_bridge({"--frobnicate"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_TRUE(contains(o.output, "frobnicate")) << o.output;
}

TEST(BridgeCommandLine, MissingConfigFileIsRefused) {
  const auto o = run_bridge({"--config", "/nonexistent/bridge.conf", "--check"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_TRUE(contains(o.output, "option --config: cannot read '/nonexistent/bridge.conf'")) << o.output;
}

TEST(BridgeConfig, GoodConfigPassesCheck) {
  ScratchDir dir;
  const auto o = run_bridge({"--config", dir.write("bridge.conf", kGood), "--check"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, "is good: 1 route, bridge id test-bridge")) << o.output;
}

TEST(BridgeConfig, ShippedExampleConfigPassesCheck) {
  const auto o = run_bridge({"--config", BRIDGE_EXAMPLE_CONF, "--check"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, "is good: 2 routes")) << o.output;
}

TEST(BridgeConfig, IdDefaultsToHostAndConfigName) {
  ScratchDir dir;
  const auto o = run_bridge({"--config", dir.write("west.conf", replace(kGood, "id = test-bridge\n", "")), "--check"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  EXPECT_TRUE(contains(o.output, "bridge id " + std::string(host) + ":west")) << o.output;
}

TEST(BridgeConfig, CommandLineIdWins) {
  ScratchDir dir;
  const auto o = run_bridge({"--config", dir.write("bridge.conf", kGood), "--check", "--id", "other"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, "bridge id other")) << o.output;
}

TEST(BridgeConfig, UnknownGlobalKeyIsNamed) {
  expect_refused(std::string("colour = blue\n") + kGood, {"unknown key 'colour'", "global section"});
}

TEST(BridgeConfig, BadMetricsListenIsNamed) {
  expect_refused(std::string("metrics-listen = localhost:9465\n") + kGood,
                 {"option --metrics-listen", "'localhost:9465'", "numeric IP"});
  expect_refused(std::string("metrics-listen = 127.0.0.1:99999\n") + kGood, {"option --metrics-listen", "bad port"});
  expect_refused(std::string("metrics-listen = 127.0.0.1\n") + kGood, {"option --metrics-listen", "not ADDR:PORT"});
}

TEST(BridgeConfig, MetricsListenIsAGlobalKey) {
  ScratchDir dir;
  const auto o = run_bridge(
      {"--config", dir.write("bridge.conf", std::string("metrics-listen = [::1]:9465\n") + kGood), "--check"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
}

TEST(BridgeStatus, NeedsMetricsListenInTheConfig) {
  ScratchDir dir;
  const auto o = run_bridge({"--config", dir.write("bridge.conf", kGood), "--status"});
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, "set metrics-listen = ADDR:PORT in " + dir.path() + "/bridge.conf")) << o.output;
}

TEST(BridgeStatus, CheckAndStatusTogetherAreRefused) {
  ScratchDir dir;
  const auto o = run_bridge({"--config", dir.write("bridge.conf", kGood), "--check", "--status"});
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, "--check and --status")) << o.output;
}

// A page that is not a bridge's (mqd's, say) is not read as an empty bridge; routes come back with their fields.
TEST(BridgeStatus, ParsesTheMetricsPage) {
  EXPECT_FALSE(bridge::parse_status("# HELP mq_topic_records x\nmq_topic_records{topic=\"a\"} 3\n"));
  const std::string page =
      "mq_bridge_info{id=\"h:b\"} 1\n"
      "mq_bridge_route_info{route=\"r1\",direction=\"in\",local_topic=\"l\",kafka_topic=\"k\",group=\"g\"} 1\n"
      "mq_bridge_route_state{route=\"r1\",direction=\"in\",state=\"running\"} 0\n"
      "mq_bridge_route_state{route=\"r1\",direction=\"in\",state=\"paused\"} 1\n"
      "mq_bridge_records_total{route=\"r1\",direction=\"in\"} 42\n"
      "mq_bridge_lag{route=\"r1\",direction=\"in\"} 7\n"
      "mq_bridge_errors_total{route=\"r1\",direction=\"in\",code=\"full\"} 2\n"
      "mq_bridge_errors_total{route=\"r1\",direction=\"in\",code=\"_TRANSPORT\"} 3\n"
      "mq_bridge_delivery_latency_seconds_sum{route=\"r1\",direction=\"in\"} 0.5\n"
      "mq_bridge_delivery_latency_seconds_count{route=\"r1\",direction=\"in\"} 10\n"
      "mq_bridge_records_total{route=\"r\\\"2\",direction=\"out\"} 1\n";
  const auto routes = bridge::parse_status(page);
  ASSERT_TRUE(routes) << routes.error().message();
  ASSERT_EQ(routes->size(), 2u);
  const auto& r = (*routes)[0];
  EXPECT_EQ(r.name, "r1");
  EXPECT_EQ(r.direction, "in");
  EXPECT_EQ(r.local_topic, "l");
  EXPECT_EQ(r.kafka_topic, "k");
  EXPECT_EQ(r.state, "paused");
  EXPECT_EQ(r.records, 42u);
  EXPECT_EQ(r.lag, std::optional<std::int64_t>(7));
  EXPECT_EQ(r.errors, 5u);
  EXPECT_EQ(r.mean_latency_s, std::optional<double>(0.05));
  EXPECT_EQ((*routes)[1].name, "r\"2");
  EXPECT_FALSE((*routes)[1].lag.has_value());
}

TEST(BridgeConfig, UnknownRouteKeyIsNamedWithItsSection) {
  expect_refused(std::string(kGood) + "colour = blue\n", {"section [route.orders]", "unknown key 'colour'"});
}

TEST(BridgeConfig, UnknownSectionIsNamed) {
  expect_refused(std::string(kGood) + "[topic.x]\n", {"unknown section [topic.x]", "[route.NAME]"});
}

TEST(BridgeConfig, NoRouteIsRefused) {
  expect_refused("kafka.bootstrap.servers = localhost:9092\n", {"no route", "[route.NAME]"});
}

TEST(BridgeConfig, MissingFieldsAreNamed) {
  expect_refused(replace(kGood, "direction = out\n", ""), {"section [route.orders]", "missing direction"});
  expect_refused(replace(kGood, "local-topic = orders\n", ""), {"section [route.orders]", "missing local-topic"});
  expect_refused(replace(kGood, "kafka-topic = orders-kafka\n", ""), {"section [route.orders]", "missing kafka-topic"});
}

TEST(BridgeConfig, BadDirectionIsNamed) {
  expect_refused(replace(kGood, "direction = out", "direction = sideways"),
                 {"section [route.orders]", "direction: 'sideways' is not out"});
}

TEST(BridgeConfig, InboundRoutePassesCheck) {
  ScratchDir dir;
  const auto o = run_bridge(
      {"--config", dir.write("bridge.conf", replace(kGood, "direction = out", "direction = in")), "--check"});
  EXPECT_EQ(o.exit_code, 0) << o.output;
}

TEST(BridgeConfig, TwoInboundRoutesFromOneKafkaTopicIntoOneLocalTopicAreRefused) {
  expect_refused(replace(kGood, "direction = out", "direction = in") +
                     "[route.again]\ndirection = in\nlocal-topic = orders\nkafka-topic = orders-kafka\n"
                     "group = other\n",
                 {"[route.again]", "kafka-topic: 'orders-kafka' already goes into local-topic 'orders'"});
}

TEST(BridgeConfig, BadTopicAndGroupNamesAreNamed) {
  expect_refused(replace(kGood, "local-topic = orders", "local-topic = ../etc"), {"[route.orders]", "local-topic:"});
  expect_refused(replace(kGood, "kafka-topic = orders-kafka", "kafka-topic = a b"), {"[route.orders]", "kafka-topic:"});
  expect_refused(replace(kGood, "group = bridge", "group = \x01"), {"[route.orders]", "group:"});
}

TEST(BridgeConfig, FieldGivenTwiceIsRefused) {
  expect_refused(std::string(kGood) + "local-topic = other\n", {"[route.orders]", "local-topic is given twice"});
}

TEST(BridgeConfig, BadRouteNameIsRefused) {
  expect_refused(replace(kGood, "[route.orders]", "[route.a.b]"), {"[route.a.b]", "route name"});
}

TEST(BridgeConfig, BadBrokerListIsNamed) {
  expect_refused(replace(kGood, "localhost:9092", "localhost:0"),
                 {"global section", "kafka.bootstrap.servers", "port 0 is not 1..65535"});
  expect_refused(replace(kGood, "localhost:9092", "localhost:http"), {"kafka.bootstrap.servers", "not a port number"});
  expect_refused(replace(kGood, "localhost:9092", " , "), {"kafka.bootstrap.servers", "empty"});
}

TEST(BridgeConfig, MissingBootstrapServersIsNamed) {
  expect_refused(replace(kGood, "kafka.bootstrap.servers = localhost:9092\n", ""),
                 {"section [route.orders]", "no kafka.bootstrap.servers"});
}

TEST(BridgeConfig, KafkaPropertyRefusedByLibrdkafkaIsNamedWithItsSection) {
  expect_refused(std::string(kGood) + "kafka.no.such.property = 1\n",
                 {"section [route.orders]", "kafka.no.such.property", "No such configuration property"});
  expect_refused(replace(kGood, "kafka.linger.ms = 2", "kafka.linger.ms = soon"),
                 {"section [route.orders]", "kafka.linger.ms", "Invalid value"});
}

TEST(BridgeConfig, PropertiesThatBreakTheGuaranteesAreRefused) {
  expect_refused(std::string(kGood) + "kafka.enable.idempotence = false\n",
                 {"kafka.enable.idempotence", "idempotent producer"});
  expect_refused(std::string(kGood) + "kafka.group.id = g\n", {"kafka.group.id", "`group`"});
}

TEST(BridgeConfig, TwoRoutesSharingATopicAndGroupAreRefused) {
  expect_refused(std::string(kGood) +
                     "[route.again]\ndirection = out\nlocal-topic = orders\nkafka-topic = b\n"
                     "group = bridge\n",
                 {"[route.again]", "group: 'bridge' already reads local-topic 'orders'"});
}

TEST(BridgeConfig, MissingLocalTopicStopsTheStartWithExitCode2) {
  ScratchDir dir;
  const std::string ns = "bridge-cfg-" + std::to_string(::getpid());
  const auto o = run_bridge({"--config", dir.write("bridge.conf", kGood), "--namespace", ns});
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, "section [route.orders]: local-topic: 'orders'")) << o.output;
}

TEST(BrokerList, AcceptsHostsPortsProtocolsAndIpv6) {
  using bridge::kafka::check_broker_list;
  EXPECT_EQ(check_broker_list("localhost:9092"), "");
  EXPECT_EQ(check_broker_list("a:1,b.example.com:65535, 10.0.0.1:9092"), "");
  EXPECT_EQ(check_broker_list("PLAINTEXT://broker:9092,SSL://[::1]:9093"), "");
  EXPECT_EQ(check_broker_list("broker"), "");  // librdkafka's default port
  EXPECT_NE(check_broker_list("broker:"), "");
  EXPECT_NE(check_broker_list("broker:65536"), "");
  EXPECT_NE(check_broker_list("[::1"), "");
  EXPECT_NE(check_broker_list(":9092"), "");
  EXPECT_NE(check_broker_list("bro ker:9092"), "");
}

}  // namespace
