// A route's librdkafka configuration (see kafka.hpp).
#include "kafka.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

namespace bridge::kafka {

namespace {

mq::Error invalid(std::string message) { return mq::Error(mq::Errc::invalid_argument, message); }

// Sets one property; librdkafka's own error text when it refuses it.
bool set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, std::string& error) {
  char text[512] = {};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), text, sizeof text) == RD_KAFKA_CONF_OK) return true;
  error = text;
  return false;
}

bool is_false(const std::string& v) { return v == "false" || v == "0" || v == "off" || v == "no"; }

}  // namespace

std::string check_broker_list(const std::string& list) {
  if (list.find_first_not_of(" ,") == std::string::npos) return "the list is empty (expected HOST:PORT,...)";
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    start = end + 1;
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) continue;
    std::string rest = item;
    if (auto at = rest.find("://"); at != std::string::npos) rest = rest.substr(at + 3);
    std::string host = rest, port;
    if (!rest.empty() && rest[0] == '[') {  // [IPv6]:PORT
      const auto close = rest.find(']');
      if (close == std::string::npos) return "'" + item + "': no ']' after the IPv6 address";
      host = rest.substr(1, close - 1);
      if (close + 1 < rest.size()) {
        if (rest[close + 1] != ':') return "'" + item + "': expected ':PORT' after the IPv6 address";
        port = rest.substr(close + 2);
      }
    } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (port.empty()) return "'" + item + "': nothing after ':' (expected a port)";
    }
    if (host.empty()) return "'" + item + "': no host";
    for (char c : host)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' && c != ':')
        return "'" + item + "': '" + host + "' is not a host name or address";
    if (!port.empty()) {
      if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        return "'" + item + "': '" + port + "' is not a port number";
      const unsigned long p = std::stoul(port);
      if (p == 0 || p > 65535) return "'" + item + "': port " + port + " is not 1..65535";
    }
  }
  return {};
}

mq::Result<Conf> route_conf(const Route& route, const std::string& origin) {
  Conf conf(rd_kafka_conf_new());
  std::string error;
  const std::string section = origin + ": section [route." + route.name + "]";
  const auto defaults_fail = [&](const std::string& name) {
    return invalid("internal: librdkafka refused the bridge's default " + name + ": " + error);
  };
  if (!set(conf.get(), "client.id", "mq-kafka-bridge." + route.name, error)) return defaults_fail("client.id");
  // The route's retries for its metrics come from librdkafka's statistics.
  if (!set(conf.get(), "statistics.interval.ms", "1000", error)) return defaults_fail("statistics.interval.ms");
  if (route.direction == Direction::out) {
    if (!set(conf.get(), "enable.idempotence", "true", error)) return defaults_fail("enable.idempotence");
    if (!set(conf.get(), "partitioner", "murmur2_random", error)) return defaults_fail("partitioner");
    // At most this many records wait in librdkafka; past it QUEUE_FULL stops the route reading libmq.
    if (!set(conf.get(), "queue.buffering.max.messages", "1000", error))
      return defaults_fail("queue.buffering.max.messages");
  } else {
    if (!set(conf.get(), "group.id", route.group, error)) return defaults_fail("group.id");
    // Offsets are stored once a record is appended (and committed for lag monitoring only); a partition libmq
    // has no record of starts at the group's committed offset, else at the earliest.
    if (!set(conf.get(), "enable.auto.offset.store", "false", error)) return defaults_fail("enable.auto.offset.store");
    if (!set(conf.get(), "auto.offset.reset", "earliest", error)) return defaults_fail("auto.offset.reset");
  }
  bool brokers = false;
  for (const auto& p : route.kafka) {
    const std::string field = p.where + ": kafka." + p.name;
    if (p.name == "group.id")
      return invalid(field + ": the bridge sets group.id from the route's `group` key; set that instead");
    if (p.name == "enable.idempotence" && route.direction == Direction::out && is_false(p.value))
      return invalid(field + ": route [route." + route.name +
                     "] is outbound, which needs the idempotent producer (enable.idempotence=true)");
    if (p.name == "bootstrap.servers" || p.name == "metadata.broker.list") {
      if (auto problem = check_broker_list(p.value); !problem.empty()) return invalid(field + ": " + problem);
      brokers = true;
    }
    if (!set(conf.get(), p.name, p.value, error)) return invalid(field + ": " + error);
  }
  if (!brokers)
    return invalid(section + ": no kafka.bootstrap.servers (give it in the global section or in the route's)");
  return conf;
}

std::optional<Statistics> parse_statistics(std::string_view json) {
  const auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  Statistics s;
  if (const auto brokers = doc.find("brokers"); brokers != doc.end() && brokers->is_object())
    for (const auto& broker : *brokers) {
      if (const auto retries = broker.find("txretries"); retries != broker.end() && retries->is_number_unsigned())
        s.retries += retries->get<std::uint64_t>();
      // Only the cluster's brokers (nodeid >= 0), not the bootstrap entries or the internal ones.
      const auto node = broker.find("nodeid");
      const auto state = broker.find("state");
      if (node != broker.end() && node->is_number_integer() && node->get<std::int64_t>() >= 0 &&
          state != broker.end() && state->is_string() && state->get<std::string>() == "UP")
        s.broker_up = true;
    }
  return s;
}

}  // namespace bridge::kafka
