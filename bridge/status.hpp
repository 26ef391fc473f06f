// `mq-kafka-bridge --status`: asks the running bridge's metrics endpoint (metrics-listen of its config) for its
// page and prints one line per route: state, records carried, rates, in-flight, lag, checkpoint age, restarts,
// retries, errors and mean delivery latency.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "libmq/error.hpp"

namespace bridge {

struct RouteStatus {
  std::string name, direction, local_topic, kafka_topic, group, state;
  std::uint64_t records = 0, in_flight = 0, restarts = 0, retries = 0, errors = 0;
  double records_per_s = 0, bytes_per_s = 0, checkpoint_age_s = 0;
  std::optional<std::int64_t> lag;
  std::optional<double> mean_latency_s;  // none while nothing was delivered
};

// The routes of a metrics page (render_metrics's), in the order the page lists them. Lines it does not know are
// skipped; Errc::invalid_argument when the page has no mq_bridge_info line (not a bridge's page).
mq::Result<std::vector<RouteStatus>> parse_status(std::string_view page);

// GET /metrics from ADDR:PORT (an unspecified address, 0.0.0.0 or ::, is asked on loopback). Errc::io naming the
// address when nothing answers within `timeout`, or the answer is not 200.
mq::Result<std::string> fetch_metrics(const std::string& listen, std::chrono::milliseconds timeout);

// The table of --status.
void print_status(std::ostream& out, const std::vector<RouteStatus>& routes);

// --status: 0 printed, 1 no bridge answers (the message names the address and the config), 2 metrics-listen is not
// set in the config.
int show_status(const Config& config);

}  // namespace bridge
