// Prometheus metrics over HTTP/1.1 (Boost.Beast): GET /metrics on --metrics-listen ADDR:PORT answers the
// registry's topics, groups, lag, rates and the client count in the text exposition format. Off by default.
#pragma once

#include <utility>  // before Boost.Asio 1.74, whose awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <functional>
#include <string>

#include "libmq/error.hpp"

namespace mqd {

class MetricsServer {
 public:
  // `render` produces the exposition text at each scrape.
  MetricsServer(boost::asio::io_context& io, std::function<std::string()> render);
  // ADDR:PORT, e.g. 127.0.0.1:9464. Errc::invalid_argument naming the value when it does not parse.
  mq::Result<void> listen(const std::string& address);

 private:
  void accept();
  std::function<std::string()> render_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace mqd
