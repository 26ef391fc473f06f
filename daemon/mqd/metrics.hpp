// Prometheus metrics over HTTP/1.1 (Boost.Beast): GET /metrics on --metrics-listen ADDR:PORT answers what `render`
// produces, in the text exposition format: mqd's topics, groups, lag, rates and client count; mq-kafka-bridge's
// routes. Off by default in both.
#pragma once

#include <utility>  // before Boost.Asio 1.74, whose awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <functional>
#include <string>

#include "libmq/error.hpp"

namespace mqd {

// ADDR:PORT as an endpoint: a numeric IP (IPv6 in brackets: [::1]:9464) and a port 1..65535. Errc::invalid_argument
// saying what is wrong with it ("'x' has a bad port (1..65535) (example: ...)"); the caller names the option.
mq::Result<boost::asio::ip::tcp::endpoint> parse_listen_address(const std::string& address);

class MetricsServer {
 public:
  // `render` produces the exposition text at each scrape; `server` names the program in the Server header.
  MetricsServer(boost::asio::io_context& io, std::string server, std::function<std::string()> render);
  // ADDR:PORT, e.g. 127.0.0.1:9464. Errc::invalid_argument naming the value when it does not parse.
  mq::Result<void> listen(const std::string& address);

 private:
  void accept();
  std::string server_;
  std::function<std::string()> render_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace mqd
