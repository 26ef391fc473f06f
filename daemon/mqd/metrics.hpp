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
