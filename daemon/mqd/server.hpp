// The control socket: accepts clients on a Unix stream socket (Boost.Asio), reads length-prefixed frames, checks
// each request and answers it. A bad frame gets an error reply and closes that connection only; so does a frame
// that stalls half-way (--frame-timeout) and a connection over --max-clients. Out of descriptors, accepting pauses
// 100 ms at a time instead of spinning. A connection is
// its client's liveness: when it closes, the registry recovers what that client's dead processes left.
// Not thread-safe: it and its sessions run on the one thread that runs the io_context (main.cpp). Each request is
// handled to the end inside one handler, so requests of different clients never interleave in the registry.
#pragma once

#include <utility>  // before Boost.Asio 1.74, whose awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <memory>
#include <set>
#include <string>

#include "registry.hpp"

namespace mqd {

class Session;

class Server {
 public:
  Server(boost::asio::io_context& io, Registry& registry);
  ~Server();
  // Binds and listens. The socket file gets the access group's rights (0660) when that group exists.
  mq::Result<void> listen(const std::string& path);
  void stop();
  std::size_t clients() const { return sessions_.size(); }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  friend class Session;
  void accept();
  void refuse(boost::asio::local::stream_protocol::socket socket, std::size_t limit);
  void closed(const std::shared_ptr<Session>& session);

  Registry& registry_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // accepting again after running out of descriptors
  std::size_t refused_ = 0;
  std::chrono::steady_clock::time_point last_refusal_log_{};
  std::set<std::shared_ptr<Session>> sessions_;
  std::string path_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace mqd
