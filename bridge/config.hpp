// mq-kafka-bridge's configuration: command line and config file (Boost.Program_options, as mqd), with one
// [route.NAME] section per route and Kafka client properties passed through as `kafka.*` keys (in the global
// section for every route, in a route's section for that route). Bad options are reported in one line naming the
// field and its section; the caller exits with code 2.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "log.hpp"

namespace bridge {

enum class Direction {
  out,  // libmq -> Kafka
  in,   // Kafka -> libmq
};

// One `kafka.NAME = VALUE` line, kept with where it was given, so librdkafka's refusal of it can name the place.
struct KafkaProperty {
  std::string name;  // without the "kafka." prefix: "bootstrap.servers"
  std::string value;
  std::string where;  // "config file F: global section" or "config file F: section [route.NAME]"
};

struct Route {
  std::string name;  // [route.NAME]: [A-Za-z0-9_-]{1,64}
  Direction direction = Direction::out;
  std::string local_topic;  // the libmq topic. REQUIRES: the libmq topic-name rule
  std::string kafka_topic;  // the Kafka topic. REQUIRES: Kafka's topic-name rule (the same one)
  // out: the bridge's libmq consumer group on local_topic; in: its Kafka consumer group (lag monitoring only).
  // Default: "mq-kafka-bridge".
  std::string group = "mq-kafka-bridge";
  // The global kafka.* properties, then this route's (a later one wins in librdkafka, so the route's do).
  std::vector<KafkaProperty> kafka;
};

struct Config {
  std::string config_file = "/etc/mq/bridge.conf";
  bool check = false;   // --check: validate and exit
  bool status = false;  // --status: print the running bridge's routes (from its metrics endpoint) and exit
  // Written in the provenance header (mq.bridge) of every record the bridge carries; a record that already carries
  // it is not carried back (two-way setups drop their own echoes). Default: HOSTNAME:CONFIG-STEM ("web1:bridge").
  std::string id;
  // libmq namespace of the local topics. Default: $MQ_NAMESPACE, or none.
  std::optional<std::string> ns;
  LogLevel log_level = LogLevel::info;
  // How long a SIGTERM waits for librdkafka's delivery reports of what is in flight before giving up (what is not
  // reported then stays unacked in libmq and is carried again at the next start).
  std::chrono::milliseconds shutdown_timeout{10'000};
  // ADDR:PORT of the Prometheus endpoint (GET /metrics), which --status reads too. Empty: off (the default).
  std::string metrics_listen;
  std::vector<Route> routes;
};

// Parses argv and the config file. On --help/--version prints and sets exit_code 0; on a bad option or config prints
// one line naming the field and section and sets exit_code 2. Returns nullopt in both cases.
std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code);

}  // namespace bridge
