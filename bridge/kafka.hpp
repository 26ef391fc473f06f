// librdkafka handles as RAII owners, and the one place that turns a route's kafka.* properties into a librdkafka
// configuration: the bridge's defaults for the route's direction, then the user's properties, each checked by
// librdkafka itself (rd_kafka_conf_set), so --check and a running route refuse exactly the same things.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"
#include "libmq/error.hpp"

namespace bridge::kafka {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
};
struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* headers) const noexcept { rd_kafka_headers_destroy(headers); }
};
using Client = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using Conf = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using Headers = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

// The librdkafka configuration of `route` (`origin`, "config file F", starts its error lines): the bridge's defaults
// (out: enable.idempotence=true, partitioner=murmur2_random, a bounded queue.buffering.max.messages, client.id from the
// bridge id; in: group.id from the route's group), then route.kafka in order. Errc::invalid_argument with one line
// naming the property and its section when librdkafka refuses one, when bootstrap.servers is missing or not a HOST:PORT
// list, or when a property would break the route's guarantee (enable.idempotence=false on an out route, group.id: use
// `group`).
mq::Result<Conf> route_conf(const Route& route, const std::string& origin);

// Checks a bootstrap.servers value: a comma-separated list of [PROTOCOL://]HOST[:PORT], PORT 1..65535. Returns
// the problem ("'x:0': port 0 is not 1..65535"), empty when the list is good.
std::string check_broker_list(const std::string& list);

// What a route's metrics take from librdkafka's statistics (the JSON of statistics.interval.ms, STATISTICS.md).
struct Statistics {
  std::uint64_t retries = 0;       // requests retried, over the brokers (txretries)
  bool broker_up = false;          // a broker of the cluster is connected (state UP)
};
// nullopt when `json` is not a JSON object; a field librdkafka did not report keeps its default.
std::optional<Statistics> parse_statistics(std::string_view json);

}  // namespace bridge::kafka
