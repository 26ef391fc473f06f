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

mq::Result<tcp::endpoint> parse_listen_address(const std::string& address) {
  const auto bad = [&](const std::string& why) {
    return mq::Error(mq::Errc::invalid_argument, "'" + address + "' " + why + " (example: 127.0.0.1:9464)");
  };
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return bad("is not ADDR:PORT");
  const std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535)
    return bad("has a bad port (1..65535)");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec) return bad("has a bad address (a numeric IP is needed)");
  return tcp::endpoint(ip, static_cast<unsigned short>(std::stoul(port)));
}

mq::Result<void> MetricsServer::listen(const std::string& address) {
  auto parsed = parse_listen_address(address);
  if (!parsed)
    return mq::Error(mq::Errc::invalid_argument, "option --metrics-listen: " + std::string(parsed.error().message()));
  const tcp::endpoint endpoint = *parsed;
  boost::system::error_code ec;
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
