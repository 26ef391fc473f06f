// The metrics endpoint (see metrics.hpp): one short-lived Beast session per connection.
#include "metrics.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>

namespace mqd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, const std::string& server, const std::function<std::string()>& render)
      : stream_(std::move(socket)), server_(server), render_(render) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));  // a stuck scraper does not keep a socket forever
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->respond();
    });
  }

 private:
  void respond() {
    response_.version(request_.version());
    response_.keep_alive(false);
    response_.set(http::field::server, server_);
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      response_.result(http::status::method_not_allowed);
      response_.body() = "only GET /metrics\n";
    } else if (request_.target() != "/metrics") {
      response_.result(http::status::not_found);
      response_.body() = "see /metrics\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response_.body() = render_();
    }
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, std::size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  const std::string& server_;
  const std::function<std::string()>& render_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, std::string server, std::function<std::string()> render)
    : server_(std::move(server)), render_(std::move(render)), acceptor_(io) {}

mq::Result<void> MetricsServer::listen(const std::string& address) {
  const auto colon = address.rfind(':');
  auto bad = [&](const std::string& why) {
    return mq::Error(mq::Errc::invalid_argument, "option --metrics-listen: '" + address + "' " + why);
  };
  if (colon == std::string::npos) return bad("is not ADDR:PORT");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1 || port > 65535) return bad("has a bad port");
  } catch (...) {
    return bad("has a bad port");
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec) return bad("has a bad address (a numeric IP is needed)");
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return mq::Error(mq::Errc::io, "cannot listen for metrics on " + address + ": " + ec.message());
  accept();
  return {};
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<HttpSession>(std::move(socket), server_, render_)->start();
    accept();
  });
}

}  // namespace mqd
