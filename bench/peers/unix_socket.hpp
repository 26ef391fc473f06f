// Unix domain sockets as a user would pick them instead of libmq: a socketpair per one-way channel, blocking calls
// bounded by SO_SNDTIMEO / SO_RCVTIMEO. "unix stream" carries fixed-length messages (the case's payload: the reader
// takes exactly that many bytes); "unix seqpacket" carries one message per send and recv.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../harness.hpp"
#include "common.hpp"
#include "fd.hpp"

namespace mqbench::peers {

// Loops over partial sends (a stream may take part of a message; a seqpacket send is all or nothing).
class SocketSender final : public Sender {
 public:
  SocketSender(Fd fd, std::string transport, std::string what)
      : fd_(std::move(fd)), transport_(std::move(transport)), what_(std::move(what)) {}
  bool send(std::span<const std::byte> message, std::string& error) override {
    std::size_t sent = 0;
    while (sent < message.size()) {
      // MSG_NOSIGNAL: a receiver that died is an EPIPE error here, not a SIGPIPE.
      const ssize_t n = ::send(fd_.get(), message.data() + sent, message.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return error = call_error(transport_, "send", what_, errno), false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

 private:
  Fd fd_;
  std::string transport_, what_;
};

// Reads exactly buffer.size() bytes: the stream's messages are all of the case's payload length.
class StreamReceiver final : public Receiver {
 public:
  StreamReceiver(Fd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    std::size_t got = 0;
    while (got < buffer.size()) {
      const ssize_t n = ::recv(fd_.get(), buffer.data() + got, buffer.size() - got, MSG_WAITALL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return error = call_error("unix stream", "recv", what_, errno), std::nullopt;
      if (n == 0) {
        error = failure("unix stream", "recv", what_,
                        "the sender closed its end after " + std::to_string(got) + " of " +
                            std::to_string(buffer.size()) + " bytes");
        return std::nullopt;
      }
      got += static_cast<std::size_t>(n);
    }
    return got;
  }

 private:
  Fd fd_;
  std::string what_;
};

// One message per recv; MSG_TRUNC makes a message longer than the buffer report its real length (an error here).
class SeqpacketReceiver final : public Receiver {
 public:
  SeqpacketReceiver(Fd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    ssize_t n = -1;
    do n = ::recv(fd_.get(), buffer.data(), buffer.size(), MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return error = call_error("unix seqpacket", "recv", what_, errno), std::nullopt;
    if (n == 0) return error = failure("unix seqpacket", "recv", what_, "the sender closed its end"), std::nullopt;
    if (static_cast<std::size_t>(n) > buffer.size()) {
      error = failure("unix seqpacket", "recv", what_,
                      "a " + std::to_string(n) + "-byte message does not fit the " + std::to_string(buffer.size()) +
                          "-byte buffer");
      return std::nullopt;
    }
    return static_cast<std::size_t>(n);
  }

 private:
  Fd fd_;
  std::string what_;
};

class UnixSocketTransport final : public Transport {
 public:
  enum class Kind { stream, seqpacket };
  explicit UnixSocketTransport(Kind kind) : kind_(kind) {}

  std::string name() const override { return kind_ == Kind::stream ? "unix stream" : "unix seqpacket"; }
  std::string mode() const override { return "blocking"; }

  Prepared prepare(std::size_t payload, int channels) override {
    channels_.clear();
    for (int c = 0; c < channels; ++c) {
      int fds[2];
      const int type = (kind_ == Kind::stream ? SOCK_STREAM : SOCK_SEQPACKET) | SOCK_CLOEXEC;
      if (::socketpair(AF_UNIX, type, 0, fds) != 0)
        return {.ok = false, .reason = call_error(name(), "socketpair", "", errno)};
      Fd send_end(fds[0]), receive_end(fds[1]);
      if (auto problem = configure(send_end.get(), receive_end.get(), payload)) return *problem;
      channels_.add(std::move(send_end), std::move(receive_end));
    }
    if (kind_ == Kind::seqpacket && channels > 0) return probe_one_message(payload);
    return {};
  }

  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    Fd fd = channels_.take_send_end(channel, name(), error);
    if (!fd.valid()) return nullptr;
    return std::make_unique<SocketSender>(std::move(fd), name(), "channel " + std::to_string(channel));
  }

  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    Fd fd = channels_.take_receive_end(channel, name(), error);
    if (!fd.valid()) return nullptr;
    const std::string what = "channel " + std::to_string(channel);
    if (kind_ == Kind::stream) return std::make_unique<StreamReceiver>(std::move(fd), what);
    return std::make_unique<SeqpacketReceiver>(std::move(fd), what);
  }

  void finish() override { channels_.clear(); }

 private:
  // Bounds every wait by the peer timeout, and gives the send end room for at least one message (Linux grants
  // twice the asked SO_SNDBUF, capped by net.core.wmem_max; the limit itself is not changed). A unix socket queues
  // what it holds against the sender's buffer, so SO_RCVBUF is left alone. Both kinds get the same buffer, so
  // their rows compare like for like.
  std::optional<Prepared> configure(int send_fd, int receive_fd, std::size_t payload) const {
    const timeval timeout = peer_timeout_timeval();
    if (::setsockopt(send_fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) != 0)
      return Prepared{.ok = false, .reason = call_error(name(), "setsockopt SO_SNDTIMEO", "", errno)};
    if (::setsockopt(receive_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0)
      return Prepared{.ok = false, .reason = call_error(name(), "setsockopt SO_RCVTIMEO", "", errno)};
    if (send_buffer(send_fd) < 2 * payload) {
      const int asked = static_cast<int>(payload);
      if (::setsockopt(send_fd, SOL_SOCKET, SO_SNDBUF, &asked, sizeof asked) != 0)
        return Prepared{.ok = false, .reason = call_error(name(), "setsockopt SO_SNDBUF", "", errno)};
    }
    return std::nullopt;
  }

  static std::size_t send_buffer(int fd) {
    int value = 0;
    socklen_t length = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, &length) != 0) return 0;
    return static_cast<std::size_t>(value);
  }

  // A seqpacket message must fit the send buffer whole. Sends one payload-sized message over channel 0 and reads it
  // back: EMSGSIZE means this machine's net.core.wmem_max is too small for the payload, a skip, not a failure.
  Prepared probe_one_message(std::size_t payload) const {
    std::vector<std::byte> message(payload);
    const ssize_t sent = ::send(channels_.send_fd(0), message.data(), payload, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && errno == EMSGSIZE) {
      return {.skipped = true,
              .reason = "a " + std::to_string(payload) +
                        "-byte seqpacket message does not fit the socket send buffer (" +
                        std::to_string(send_buffer(channels_.send_fd(0))) + " bytes granted, net.core.wmem_max = " +
                        std::to_string(read_sysctl("/proc/sys/net/core/wmem_max", -1)) +
                        "); the machine's limits are not changed"};
    }
    if (sent < 0) return {.ok = false, .reason = call_error(name(), "send (probe)", "channel 0", errno)};
    const ssize_t got = ::recv(channels_.receive_fd(0), message.data(), payload, MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0) return {.ok = false, .reason = call_error(name(), "recv (probe)", "channel 0", errno)};
    if (static_cast<std::size_t>(got) != payload || static_cast<std::size_t>(sent) != payload)
      return {.ok = false,
              .reason = failure(name(), "probe", "channel 0",
                                "sent " + std::to_string(sent) + " bytes, received " + std::to_string(got))};
    return {};
  }

  Kind kind_;
  FdChannels channels_;
};

}  // namespace mqbench::peers
