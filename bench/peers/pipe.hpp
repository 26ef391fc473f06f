// A pipe per one-way channel, carrying fixed-length messages (the case's payload: the reader takes exactly that
// many bytes). A pipe has no timeout option, so both ends are non-blocking and a call that would block waits in
// poll() for at most the peer timeout: one extra system call per wait, the usual way to bound a pipe.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "../harness.hpp"
#include "common.hpp"
#include "fd.hpp"

namespace mqbench::peers {

inline constexpr std::string_view kPipeName = "pipe";

// Waits until `fd` is ready for `events`; false with `error` set after the peer timeout or on a poll error.
inline bool wait_ready(int fd, short events, std::string_view call, const std::string& what, std::string& error) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, kPeerTimeoutMs);
    if (n > 0) return true;  // ready, or hung up / in error: the next read or write says which
    if (n == 0) return error = call_error(kPipeName, call, what, ETIMEDOUT), false;
    if (errno != EINTR) return error = call_error(kPipeName, "poll", what, errno), false;
  }
}

class PipeSender final : public Sender {
 public:
  PipeSender(Fd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  bool send(std::span<const std::byte> message, std::string& error) override {
    std::size_t sent = 0;
    while (sent < message.size()) {
      const ssize_t n = ::write(fd_.get(), message.data() + sent, message.size() - sent);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (errno == EAGAIN && !wait_ready(fd_.get(), POLLOUT, "write (poll for room)", what_, error)) return false;
      } else {
        return error = call_error(kPipeName, "write", what_, n < 0 ? errno : EIO), false;  // EPIPE: the reader died
      }
    }
    return true;
  }

 private:
  Fd fd_;
  std::string what_;
};

class PipeReceiver final : public Receiver {
 public:
  PipeReceiver(Fd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    std::size_t got = 0;
    while (got < buffer.size()) {
      const ssize_t n = ::read(fd_.get(), buffer.data() + got, buffer.size() - got);
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      } else if (n == 0) {
        error = failure(kPipeName, "read", what_,
                        "the writer closed its end after " + std::to_string(got) + " of " +
                            std::to_string(buffer.size()) + " bytes");
        return std::nullopt;
      } else if (errno == EAGAIN) {
        if (!wait_ready(fd_.get(), POLLIN, "read (poll for data)", what_, error)) return std::nullopt;
      } else if (errno != EINTR) {
        return error = call_error(kPipeName, "read", what_, errno), std::nullopt;
      }
    }
    return got;
  }

 private:
  Fd fd_;
  std::string what_;
};

class PipeTransport final : public Transport {
 public:
  std::string name() const override { return std::string(kPipeName); }
  std::string mode() const override { return "blocking"; }

  // A pipe holds 64 KiB by default; for a larger payload it is asked for room for one message with F_SETPIPE_SZ.
  // That can fail above /proc/sys/fs/pipe-max-size without privilege: then the pipe keeps its size (the limit is
  // not changed) and a message crosses it in parts.
  Prepared prepare(std::size_t payload, int channels) override {
    channels_.clear();
    for (int c = 0; c < channels; ++c) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return {.ok = false, .reason = call_error(name(), "pipe2", "", errno)};
      Fd receive_end(fds[0]), send_end(fds[1]);
      const int size = ::fcntl(send_end.get(), F_GETPIPE_SZ);
      if (size >= 0 && static_cast<std::size_t>(size) < payload)
        (void)::fcntl(send_end.get(), F_SETPIPE_SZ, static_cast<int>(payload));
      channels_.add(std::move(send_end), std::move(receive_end));
    }
    return {};
  }

  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    Fd fd = channels_.take_send_end(channel, name(), error);
    if (!fd.valid()) return nullptr;
    return std::make_unique<PipeSender>(std::move(fd), "channel " + std::to_string(channel));
  }

  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    Fd fd = channels_.take_receive_end(channel, name(), error);
    if (!fd.valid()) return nullptr;
    return std::make_unique<PipeReceiver>(std::move(fd), "channel " + std::to_string(channel));
  }

  void finish() override { channels_.clear(); }

 private:
  FdChannels channels_;
};

}  // namespace mqbench::peers
