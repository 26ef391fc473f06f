// --status (see status.hpp): one GET of the metrics page, parsed back into routes.
#include "status.hpp"

#include <utility>  // before Boost.Asio 1.74, whose awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "log.hpp"
#include "mqd/metrics.hpp"

namespace bridge {

namespace {

struct Sample {
  std::string_view name;
  std::map<std::string, std::string, std::less<>> labels;
  double value = 0;
};

// One line of the text format: NAME{KEY="VALUE",...} VALUE. nullopt for comments and lines it cannot read.
std::optional<Sample> parse_line(std::string_view line) {
  if (line.empty() || line.front() == '#') return std::nullopt;
  Sample s;
  std::size_t i = line.find_first_of("{ ");
  if (i == std::string_view::npos) return std::nullopt;
  s.name = line.substr(0, i);
  if (line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const auto eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return std::nullopt;
      std::string key(line.substr(i, eq - i)), value;
      std::size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return std::nullopt;
      s.labels.emplace(std::move(key), std::move(value));
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;
  }
  const std::string value(line.substr(i));
  char* end = nullptr;
  s.value = std::strtod(value.c_str(), &end);
  if (end == value.c_str()) return std::nullopt;
  return s;
}

std::string per_second(double v) {
  char text[32];
  if (v >= 1e6)
    std::snprintf(text, sizeof text, "%.1fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(text, sizeof text, "%.1fk", v / 1e3);
  else
    std::snprintf(text, sizeof text, "%.0f", v);
  return text;
}

}  // namespace

mq::Result<std::vector<RouteStatus>> parse_status(std::string_view page) {
  std::vector<RouteStatus> routes;
  std::map<std::string, double, std::less<>> latency_sum, latency_count;
  bool bridge_page = false;
  const auto route = [&](const Sample& s) -> RouteStatus* {
    const auto name = s.labels.find("route");
    if (name == s.labels.end()) return nullptr;
    for (auto& r : routes)
      if (r.name == name->second) return &r;
    auto& added = routes.emplace_back();
    added.name = name->second;
    return &added;
  };
  const auto label = [](const Sample& s, const char* key) {
    const auto it = s.labels.find(key);
    return it == s.labels.end() ? std::string() : it->second;
  };
  std::size_t at = 0;
  while (at < page.size()) {
    auto end = page.find('\n', at);
    if (end == std::string_view::npos) end = page.size();
    const auto s = parse_line(page.substr(at, end - at));
    at = end + 1;
    if (!s) continue;
    if (s->name == "mq_bridge_info") bridge_page = true;
    RouteStatus* r = route(*s);
    if (r == nullptr) continue;
    const auto count = static_cast<std::uint64_t>(s->value);
    if (s->name == "mq_bridge_route_info") {
      r->direction = label(*s, "direction");
      r->local_topic = label(*s, "local_topic");
      r->kafka_topic = label(*s, "kafka_topic");
      r->group = label(*s, "group");
    } else if (s->name == "mq_bridge_route_state") {
      if (s->value == 1) r->state = label(*s, "state");
    } else if (s->name == "mq_bridge_records_total") {
      r->records = count;
    } else if (s->name == "mq_bridge_records_per_second") {
      r->records_per_s = s->value;
    } else if (s->name == "mq_bridge_bytes_per_second") {
      r->bytes_per_s = s->value;
    } else if (s->name == "mq_bridge_in_flight") {
      r->in_flight = count;
    } else if (s->name == "mq_bridge_lag") {
      r->lag = static_cast<std::int64_t>(s->value);
    } else if (s->name == "mq_bridge_checkpoint_age_seconds") {
      r->checkpoint_age_s = s->value;
    } else if (s->name == "mq_bridge_restarts_total") {
      r->restarts = count;
    } else if (s->name == "mq_bridge_kafka_retries_total") {
      r->retries = count;
    } else if (s->name == "mq_bridge_errors_total") {
      r->errors += count;
    } else if (s->name == "mq_bridge_delivery_latency_seconds_sum") {
      latency_sum[r->name] = s->value;
    } else if (s->name == "mq_bridge_delivery_latency_seconds_count") {
      latency_count[r->name] = s->value;
    }
  }
  if (!bridge_page)
    return mq::Error(mq::Errc::invalid_argument, "the page is not mq-kafka-bridge's (no mq_bridge_info)");
  for (auto& r : routes)
    if (const auto n = latency_count.find(r.name); n != latency_count.end() && n->second > 0)
      r.mean_latency_s = latency_sum[r.name] / n->second;
  return routes;
}

mq::Result<std::string> fetch_metrics(const std::string& listen, std::chrono::milliseconds timeout) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto parsed = mqd::parse_listen_address(listen);
  if (!parsed) return mq::Error(mq::Errc::invalid_argument, "metrics-listen " + std::string(parsed.error().message()));
  asio::ip::tcp::endpoint endpoint = *parsed;
  if (endpoint.address().is_unspecified())  // the bridge listens everywhere: ask it on loopback
    endpoint.address(endpoint.address().is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                                : asio::ip::address(asio::ip::address_v6::loopback()));
  const std::string host = endpoint.address().to_string();

  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
  request.set(http::field::host, host);
  http::response<http::string_body> response;
  beast::error_code failed;
  stream.expires_after(timeout);  // connect, write and read together
  stream.async_connect(endpoint, [&](beast::error_code e) {
    if (e) {
      failed = e;
      return;
    }
    http::async_write(stream, request, [&](beast::error_code e, std::size_t) {
      if (e) {
        failed = e;
        return;
      }
      http::async_read(stream, buffer, response, [&](beast::error_code e, std::size_t) { failed = e; });
    });
  });
  io.run();
  if (failed) return mq::Error(mq::Errc::io, "no answer from http://" + listen + "/metrics: " + failed.message());
  if (response.result() != http::status::ok)
    return mq::Error(mq::Errc::io, "http://" + listen + "/metrics answered " +
                                       std::to_string(response.result_int()) + " " + std::string(response.reason()));
  return std::move(response.body());
}

void print_status(std::ostream& out, const std::vector<RouteStatus>& routes) {
  std::ostringstream table;
  table << std::left << std::setw(16) << "ROUTE" << std::setw(4) << "DIR" << std::setw(11) << "STATE"
        << std::setw(20) << "LOCAL-TOPIC" << std::setw(20) << "KAFKA-TOPIC" << std::right << std::setw(10)
        << "RECORDS" << std::setw(8) << "REC/S" << std::setw(9) << "BYTES/S" << std::setw(10) << "IN-FLIGHT"
        << std::setw(9) << "LAG" << std::setw(10) << "CKPT-AGE" << std::setw(9) << "RESTARTS" << std::setw(8)
        << "RETRIES" << std::setw(7) << "ERRORS" << std::setw(10) << "LATENCY" << "\n";
  for (const auto& r : routes) {
    char age[32], latency[32];
    std::snprintf(age, sizeof age, "%.1fs", r.checkpoint_age_s);
    if (r.mean_latency_s)
      std::snprintf(latency, sizeof latency, "%.1fms", *r.mean_latency_s * 1e3);
    else
      std::snprintf(latency, sizeof latency, "-");
    table << std::left << std::setw(16) << r.name << std::setw(4) << r.direction << std::setw(11) << r.state
          << std::setw(20) << r.local_topic << std::setw(20) << r.kafka_topic << std::right << std::setw(10)
          << r.records << std::setw(8) << per_second(r.records_per_s) << std::setw(9) << per_second(r.bytes_per_s)
          << std::setw(10) << r.in_flight << std::setw(9) << (r.lag ? std::to_string(*r.lag) : std::string("-"))
          << std::setw(10) << age << std::setw(9) << r.restarts << std::setw(8) << r.retries << std::setw(7)
          << r.errors << std::setw(10) << latency << "\n";
  }
  out << table.str();
}

int show_status(const Config& config) {
  if (config.metrics_listen.empty()) {
    std::cerr << "mq-kafka-bridge: --status reads the bridge's metrics endpoint: set metrics-listen = ADDR:PORT in "
              << config.config_file << " (and restart the bridge)\n";
    return 2;
  }
  auto page = fetch_metrics(config.metrics_listen, std::chrono::seconds(5));
  if (!page) {
    std::cerr << "mq-kafka-bridge: " << page.error().message() << " (metrics-listen of " << config.config_file
              << "): is the bridge running?\n";
    return 1;
  }
  auto routes = parse_status(*page);
  if (!routes) {
    std::cerr << "mq-kafka-bridge: http://" << config.metrics_listen << "/metrics: " << routes.error().message()
              << "\n";
    return 1;
  }
  std::cout << "mq-kafka-bridge at http://" << config.metrics_listen << "/metrics (config " << config.config_file
            << ")\n";
  print_status(std::cout, *routes);
  return 0;
}

}  // namespace bridge
