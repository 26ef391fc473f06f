// Option and config-file parsing for mq-kafka-bridge (see config.hpp). Shaped as mqd's (daemon/mqd/config.cpp):
// the command line first, then the file; a value given on the command line wins.
#include "config.hpp"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "kafka.hpp"
#include "libmq/topic.hpp"
#include "mqd/metrics.hpp"
#include "mqd/option_error.hpp"

namespace po = boost::program_options;

namespace bridge {

namespace {

constexpr const char* kVersion = "mq-kafka-bridge (libmq) 0.1.0";
constexpr const char* kDefaultConfig = "/etc/mq/bridge.conf";
constexpr const char* kRouteKeys = "direction, local-topic, kafka-topic, group, kafka.*";

// The settings: options of the command line and keys of the config file's global section.
po::options_description describe_settings() {
  po::options_description o;
  o.add_options()
    ("id", po::value<std::string>(), "bridge id, written in the mq.bridge header of every record carried; records "
                                     "already carrying it are not carried back (default HOSTNAME:CONFIG-NAME)")
    ("namespace", po::value<std::string>(), "libmq namespace of the local topics (default $MQ_NAMESPACE, or none)")
    ("log-level", po::value<std::string>(), "error | warn | info | debug (default info)")
    ("shutdown-timeout", po::value<std::string>(), "ms a SIGTERM waits for Kafka to confirm what is in flight "
                                                   "(default 10000)")
    ("metrics-listen", po::value<std::string>(), "ADDR:PORT for Prometheus metrics over HTTP (GET /metrics), which "
                                                 "--status reads (default off)");
  return o;
}

po::options_description describe_options() {
  po::options_description o("Options (the last five are also keys of the config file's global section)");
  o.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", po::value<std::string>(), "config file (default /etc/mq/bridge.conf)")
    ("check", "check the config (syntax, fields, Kafka properties through librdkafka) and exit: 0 good, 2 bad")
    ("status", "print the state, rates and lag of the running bridge's routes (from its metrics-listen "
               "endpoint) and exit: 0 shown, 1 no bridge answers");
  o.add(describe_settings());
  return o;
}

struct Failure {
  std::string message;
};

std::uint64_t need_number(const std::string& what, const std::string& text) {
  std::uint64_t v = 0;
  std::size_t used = 0;
  try {
    if (!text.empty() && text[0] != '-') v = std::stoull(text, &used, 10);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw Failure{what + ": '" + text + "' is not a whole number"};
  return v;
}

bool valid_route_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// The [route.NAME] section headers of the file, in order; a section of any other name is an error naming it.
std::vector<std::string> route_sections(const std::string& file, const std::string& text) {
  std::vector<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    const auto last = line.find_last_not_of(" \t\r");
    if (first == std::string::npos || line[first] != '[' || line[last] != ']') continue;
    const std::string section = line.substr(first + 1, last - first - 1);
    if (section.rfind("route.", 0) != 0)
      throw Failure{"config file " + file + ": unknown section [" + section + "] (known: [route.NAME])"};
    const std::string name = section.substr(6);
    if (!valid_route_name(name))
      throw Failure{"config file " + file + ": section [" + section +
                    "]: a route name is 1..64 of [A-Za-z0-9_-] (no dots)"};
    for (const auto& seen : names)
      if (seen == name) throw Failure{"config file " + file + ": section [" + section + "] appears twice"};
    names.push_back(name);
  }
  return names;
}

struct RouteDraft {
  Route route;
  std::set<std::string> given;
};

void apply_route_key(RouteDraft& d, const std::string& key, const std::string& value, const std::string& file) {
  const std::string where = "config file " + file + ": section [route." + d.route.name + "]: ";
  Route& r = d.route;
  if (key.rfind("kafka.", 0) == 0 && key.size() > 6) {
    r.kafka.push_back({key.substr(6), value, "config file " + file + ": section [route." + r.name + "]"});
    return;
  }
  if (!d.given.insert(key).second && (key == "direction" || key == "local-topic" || key == "kafka-topic" ||
                                      key == "group"))
    throw Failure{where + key + " is given twice"};
  if (key == "direction") {
    if (value == "out") r.direction = Direction::out;
    else if (value == "in") r.direction = Direction::in;
    else throw Failure{where + "direction: '" + value + "' is not out (libmq -> Kafka) or in (Kafka -> libmq)"};
  } else if (key == "local-topic") {
    if (auto valid = mq::validate_topic_name(value); !valid)
      throw Failure{where + "local-topic: " + std::string(valid.error().message())};
    r.local_topic = value;
  } else if (key == "kafka-topic") {
    // Kafka's rule is libmq's: 1..249 of [A-Za-z0-9._-], not "." or "..".
    if (auto valid = mq::validate_topic_name(value); !valid)
      throw Failure{where + "kafka-topic: " + std::string(valid.error().message())};
    r.kafka_topic = value;
  } else if (key == "group") {
    if (auto valid = mq::validate_group_name(value); !valid)
      throw Failure{where + "group: " + std::string(valid.error().message())};
    r.group = value;
  } else {
    throw Failure{where + "unknown key '" + key + "' (known: " + kRouteKeys + ")"};
  }
}

std::string default_id(const std::string& file) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + ":" + std::filesystem::path(file).stem().string();
}

Config build(const po::variables_map& vm, const std::vector<po::option>& file_extra,
             const std::vector<std::string>& sections, const std::string& file) {
  Config c;
  c.config_file = file;
  c.check = vm.count("check") != 0;
  c.status = vm.count("status") != 0;
  if (c.check && c.status) throw Failure{"options --check and --status: give one of them"};
  auto str = [&](const char* k) -> std::optional<std::string> {
    if (vm.count(k) == 0) return std::nullopt;
    return vm[k].as<std::string>();
  };
  c.id = str("id").value_or(default_id(file));
  if (c.id.empty() || c.id.size() > 255)
    throw Failure{"option --id: '" + c.id + "' must be 1..255 characters"};
  for (char ch : c.id)
    if (ch < 0x21 || ch > 0x7e) throw Failure{"option --id: '" + c.id + "' must be printable ASCII without spaces"};
  if (auto v = str("namespace")) {
    if (!v->empty() && (!mq::validate_topic_name(*v) || v->size() > 64))
      throw Failure{"option --namespace: '" + *v + "' must be [A-Za-z0-9._-]{1,64}"};
    c.ns = *v;
  }
  if (auto v = str("log-level")) {
    if (*v == "error") c.log_level = LogLevel::error;
    else if (*v == "warn") c.log_level = LogLevel::warn;
    else if (*v == "info") c.log_level = LogLevel::info;
    else if (*v == "debug") c.log_level = LogLevel::debug;
    else throw Failure{"option --log-level: '" + *v + "' is not error, warn, info or debug"};
  }
  if (auto v = str("shutdown-timeout"))
    c.shutdown_timeout = std::chrono::milliseconds(need_number("option --shutdown-timeout", *v));
  if (auto v = str("metrics-listen")) {
    if (auto parsed = mqd::parse_listen_address(*v); !parsed)
      throw Failure{"option --metrics-listen: " + std::string(parsed.error().message())};
    c.metrics_listen = *v;
  }

  std::map<std::string, RouteDraft> routes;
  for (const auto& name : sections) routes[name].route.name = name;
  std::vector<KafkaProperty> global_kafka;
  for (const auto& opt : file_extra) {
    const std::string& key = opt.string_key;
    if (key.rfind("kafka.", 0) == 0 && key.size() > 6) {
      for (const auto& value : opt.value)
        global_kafka.push_back({key.substr(6), value, "config file " + file + ": global section"});
      continue;
    }
    const auto dot = key.find('.', 6);
    if (key.rfind("route.", 0) != 0 || dot == std::string::npos)
      throw Failure{"config file " + file + ": unknown key '" + key +
                    "' in the global section (known: id, namespace, log-level, shutdown-timeout, metrics-listen, "
                    "kafka.*)"};
    RouteDraft& draft = routes.at(key.substr(6, dot - 6));  // the section scan saw every route's header
    for (const auto& value : opt.value) apply_route_key(draft, key.substr(dot + 1), value, file);
  }
  if (sections.empty())
    throw Failure{"config file " + file + ": no route (add a [route.NAME] section with direction, local-topic and "
                  "kafka-topic)"};
  for (const auto& name : sections) {
    RouteDraft& d = routes.at(name);
    const std::string where = "config file " + file + ": section [route." + name + "]: ";
    for (const char* required : {"direction", "local-topic", "kafka-topic"})
      if (d.given.count(required) == 0) throw Failure{where + "missing " + required};
    std::vector<KafkaProperty> merged = global_kafka;
    merged.insert(merged.end(), d.route.kafka.begin(), d.route.kafka.end());
    d.route.kafka = std::move(merged);
    if (auto conf = kafka::route_conf(d.route, "config file " + file); !conf) throw Failure{std::string(conf.error().message())};
    c.routes.push_back(std::move(d.route));
  }
  // Two outbound routes reading one local topic through one group would share its records between them; two
  // inbound routes writing one local topic from one Kafka topic would each skip what the other wrote.
  for (std::size_t i = 0; i < c.routes.size(); ++i)
    for (std::size_t j = 0; j < i; ++j) {
      const Route& a = c.routes[i];
      const Route& b = c.routes[j];
      if (a.direction != b.direction || a.local_topic != b.local_topic) continue;
      if (a.direction == Direction::out && a.group == b.group)
        throw Failure{"config file " + file + ": section [route." + a.name + "]: group: '" + a.group +
                      "' already reads local-topic '" + a.local_topic + "' for [route." + b.name +
                      "]; give one of them another group"};
      if (a.direction == Direction::in && a.kafka_topic == b.kafka_topic)
        throw Failure{"config file " + file + ": section [route." + a.name + "]: kafka-topic: '" + a.kafka_topic +
                      "' already goes into local-topic '" + a.local_topic + "' by [route." + b.name + "]"};
    }
  return c;
}

Config parse_all(int argc, const char* const* argv, const po::options_description& desc, bool& help, bool& version) {
  po::variables_map vm;
  try {
    mqd::store_command_line(argc, argv, desc, "mq-kafka-bridge", vm);
  } catch (po::error& e) {
    throw Failure{mqd::option_error_message(e)};
  }
  help = vm.count("help") != 0;
  version = vm.count("version") != 0;
  if (help || version) return {};
  const std::string file = vm.count("config") != 0 ? vm["config"].as<std::string>() : kDefaultConfig;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw Failure{"option --config: '" + file + "' is a folder, not a file"};
  std::ifstream in(file);
  if (!in) throw Failure{"option --config: cannot read '" + file + "'"};
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto sections = route_sections(file, text);
  std::vector<po::option> extra;
  try {
    // Only the five settings are keys of the file: --config, --check, --status, --help and --version are not.
    extra = mqd::store_config_text(text, describe_settings(), vm);
  } catch (po::error& e) {
    throw Failure{"config file " + file + ": " + mqd::option_error_message(e)};
  }
  po::notify(vm);
  return build(vm, extra, sections, file);
}

}  // namespace

std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code) {
  const auto desc = describe_options();
  bool help = false, version = false;
  try {
    Config c = parse_all(argc, argv, desc, help, version);
    if (help) {
      std::cout << "usage: mq-kafka-bridge [--config FILE] [--check | --status] [OPTIONS]\n"
                   "Carries records between libmq topics and a Kafka cluster, one [route.NAME] of the config\n"
                   "file per direction and topic. Outbound routes read a local topic through the bridge's own\n"
                   "consumer group and produce its records, with key, headers and timestamp, to a Kafka topic\n"
                   "(idempotent producer, at-least-once: a local record is acked only once Kafka has it and\n"
                   "every record before it). Inbound routes append a Kafka topic's records to a local topic.\n\n"
                << desc
                << "\nConfig file: the global keys above, kafka.PROPERTY = VALUE for every route (librdkafka's\n"
                   "properties, e.g. kafka.bootstrap.servers = broker1:9092,broker2:9092), and per route:\n"
                   "  [route.NAME]            NAME: 1..64 of [A-Za-z0-9_-]\n"
                   "  direction = out | in    out: libmq -> Kafka (at-least-once); in: Kafka -> libmq (exactly-once\n"
                   "                          with one bridge writing the local topic; every record gets the\n"
                   "                          headers kafka.topic, kafka.partition, kafka.offset)\n"
                   "  local-topic = TOPIC     the libmq topic (it must exist)\n"
                   "  kafka-topic = TOPIC     the Kafka topic\n"
                   "  group = GROUP           out: the bridge's libmq consumer group; in: its Kafka consumer group,\n"
                   "                          committed for lag monitoring only (default mq-kafka-bridge)\n"
                   "  kafka.PROPERTY = VALUE  librdkafka properties of this route only\n"
                   "Exit codes: 0 stopped cleanly (SIGTERM/SIGINT), --check passed or --status shown, 1 a route\n"
                   "failed (or no bridge answered --status), 2 a bad option, config or local topic.\n"
                   "See mq-kafka-bridge(8).\n";
      exit_code = 0;
      return std::nullopt;
    }
    if (version) {
      std::cout << kVersion << " (librdkafka " << rd_kafka_version_str() << ")\n";
      exit_code = 0;
      return std::nullopt;
    }
    return c;
  } catch (const Failure& f) {
    std::cerr << (stderr_is_journal() ? "<3>" : "") << "mq-kafka-bridge: " << f.message << "\n";
    exit_code = 2;
    return std::nullopt;
  }
}

}  // namespace bridge
