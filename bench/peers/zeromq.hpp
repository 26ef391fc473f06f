// ZeroMQ (libzmq, C API) PUSH/PULL over ipc:// as a user would pick it instead of libmq: one endpoint per one-way
// channel (ipc:///tmp/mqbench-<pid>-<n>-<channel>); the receiver binds, the sender connects (connect before bind is
// fine: a PUSH socket queues until the connection is made). Sends and receives are bounded by the peer timeout.
// Contexts do not survive fork: each process makes its own on its first open_*, shared by that process's ends and
// ended with the last of them, so the parent holds none when it forks the next case's child.
#pragma once

#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../harness.hpp"
#include "common.hpp"

namespace mqbench::peers {

inline constexpr std::string_view kZmqName = "zeromq ipc";
// High-water marks: up to 1000 messages queued per side (libzmq's default), fewer for large payloads (64 MiB).
inline constexpr int kZmqMaxHwm = 1000;
inline constexpr std::size_t kZmqHwmBytes = std::size_t{64} << 20;
inline constexpr int kZmqReconnectMs = 10;       // a connect() that came before the bind retries this soon
inline constexpr int kZmqSenderLingerMs = 1000;  // see open_sender()

inline std::string zmq_error(std::string_view call, std::string_view endpoint, int err) {
  if (err == EAGAIN) return call_error(kZmqName, call, endpoint, err);  // a send or receive timeout ran out
  return failure(kZmqName, call, endpoint, zmq_strerror(err));
}

// One process's context; zmq_ctx_term waits for its sockets' linger.
class ZmqContext {
 public:
  explicit ZmqContext(void* context) noexcept : context_(context) {}
  ~ZmqContext() {
    while (::zmq_ctx_term(context_) != 0 && errno == EINTR) {
    }
  }
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;
  void* get() const noexcept { return context_; }

 private:
  void* context_;
};

// A socket and the context it lives in (kept alive by it, ended after it).
class ZmqSocket {
 public:
  ZmqSocket(std::shared_ptr<ZmqContext> context, void* socket) noexcept
      : context_(std::move(context)), socket_(socket) {}
  ~ZmqSocket() { ::zmq_close(socket_); }
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;
  void* get() const noexcept { return socket_; }

 private:
  std::shared_ptr<ZmqContext> context_;
  void* socket_;
};

class ZmqSender final : public Sender {
 public:
  ZmqSender(std::unique_ptr<ZmqSocket> socket, std::string endpoint)
      : socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  bool send(std::span<const std::byte> message, std::string& error) override {
    while (::zmq_send(socket_->get(), message.data(), message.size(), 0) < 0) {
      if (errno != EINTR) return error = zmq_error("zmq_send", endpoint_, errno), false;
    }
    return true;
  }

 private:
  std::unique_ptr<ZmqSocket> socket_;
  std::string endpoint_;
};

class ZmqReceiver final : public Receiver {
 public:
  ZmqReceiver(std::unique_ptr<ZmqSocket> socket, std::string endpoint)
      : socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    for (;;) {
      const int n = ::zmq_recv(socket_->get(), buffer.data(), buffer.size(), 0);
      if (n >= 0 && static_cast<std::size_t>(n) <= buffer.size()) return static_cast<std::size_t>(n);
      if (n >= 0) {
        error = failure(kZmqName, "zmq_recv", endpoint_,
                        "a " + std::to_string(n) + "-byte message does not fit the " + std::to_string(buffer.size()) +
                            "-byte buffer");
        return std::nullopt;
      }
      if (errno != EINTR) return error = zmq_error("zmq_recv", endpoint_, errno), std::nullopt;
    }
  }

 private:
  std::unique_ptr<ZmqSocket> socket_;
  std::string endpoint_;
};

class ZmqTransport final : public Transport {
 public:
  std::string name() const override { return std::string(kZmqName); }
  std::string mode() const override { return "blocking"; }

  // Only names the endpoints: sockets and contexts are made after fork.
  Prepared prepare(std::size_t payload, int channels) override {
    finish();
    hwm_ = static_cast<int>(std::clamp<std::size_t>(kZmqHwmBytes / payload, 1, kZmqMaxHwm));
    const std::string base = "/tmp/" + unique_case_name();
    for (int c = 0; c < channels; ++c) paths_.push_back(base + "-" + std::to_string(c));
    return {};
  }

  // PUSH, connected. Its linger is not 0: the sender closes right after its last message (the child's final echo,
  // the throughput end marker), and linger 0 could drop it before it is written out. A second flushes that to a live
  // peer many times over, and keeps short the wait of a case whose peer died with messages still queued.
  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    auto socket = open_socket(channel, ZMQ_PUSH, error);
    if (!socket) return nullptr;
    const std::string endpoint = "ipc://" + paths_[static_cast<std::size_t>(channel)];
    if (!set(*socket, ZMQ_SNDHWM, "ZMQ_SNDHWM", hwm_, endpoint, error) ||
        !set(*socket, ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO", kPeerTimeoutMs, endpoint, error) ||
        !set(*socket, ZMQ_LINGER, "ZMQ_LINGER", kZmqSenderLingerMs, endpoint, error) ||
        !set(*socket, ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL", kZmqReconnectMs, endpoint, error))
      return nullptr;
    if (::zmq_connect(socket->get(), endpoint.c_str()) != 0) {
      error = zmq_error("zmq_connect", endpoint, errno);
      return nullptr;
    }
    return std::make_unique<ZmqSender>(std::move(socket), endpoint);
  }

  // PULL, bound (the ipc file is made here, removed by libzmq on close and by finish() otherwise).
  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    auto socket = open_socket(channel, ZMQ_PULL, error);
    if (!socket) return nullptr;
    const std::string endpoint = "ipc://" + paths_[static_cast<std::size_t>(channel)];
    if (!set(*socket, ZMQ_RCVHWM, "ZMQ_RCVHWM", hwm_, endpoint, error) ||
        !set(*socket, ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO", kPeerTimeoutMs, endpoint, error) ||
        !set(*socket, ZMQ_LINGER, "ZMQ_LINGER", 0, endpoint, error))
      return nullptr;
    if (::zmq_bind(socket->get(), endpoint.c_str()) != 0) {
      error = zmq_error("zmq_bind", endpoint, errno);
      return nullptr;
    }
    return std::make_unique<ZmqReceiver>(std::move(socket), endpoint);
  }

  // Removes the ipc files a killed process left behind.
  void finish() override {
    for (const auto& path : paths_) ::unlink(path.c_str());
    paths_.clear();
  }

 private:
  // This process's context: made on first use, reused while one of its ends is open. One recorded by another
  // process (inherited through fork) is neither used nor ended here.
  std::shared_ptr<ZmqContext> context(std::string& error) {
    if (context_pid_ == ::getpid()) {
      if (auto existing = context_.lock()) return existing;
    }
    void* raw = ::zmq_ctx_new();
    if (raw == nullptr) {
      error = zmq_error("zmq_ctx_new", "", errno);
      return nullptr;
    }
    auto made = std::make_shared<ZmqContext>(raw);
    context_ = made;
    context_pid_ = ::getpid();
    return made;
  }

  std::unique_ptr<ZmqSocket> open_socket(int channel, int type, std::string& error) {
    if (channel < 0 || static_cast<std::size_t>(channel) >= paths_.size()) {
      error = failure(kZmqName, "open", "channel " + std::to_string(channel),
                      "no such channel (prepare() made " + std::to_string(paths_.size()) + ")");
      return nullptr;
    }
    auto ctx = context(error);
    if (!ctx) return nullptr;
    void* socket = ::zmq_socket(ctx->get(), type);
    if (socket == nullptr) {
      error = zmq_error("zmq_socket", "", errno);
      return nullptr;
    }
    return std::make_unique<ZmqSocket>(std::move(ctx), socket);
  }

  static bool set(ZmqSocket& socket, int option, const char* option_name, int value, const std::string& endpoint,
                  std::string& error) {
    if (::zmq_setsockopt(socket.get(), option, &value, sizeof value) == 0) return true;
    error = zmq_error(std::string("zmq_setsockopt ") + option_name, endpoint, errno);
    return false;
  }

  int hwm_ = kZmqMaxHwm;
  std::vector<std::string> paths_;
  std::weak_ptr<ZmqContext> context_;
  pid_t context_pid_ = -1;
};

}  // namespace mqbench::peers
