// An owned file descriptor (closed when dropped) and the one-way fd channels the socket and pipe transports build:
// both ends made in the parent before fork, each process then keeping only the end it opens, so a peer that dies is
// seen at once (end of file, EPIPE) instead of after the peer timeout.
#pragma once

#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common.hpp"

namespace mqbench::peers {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// The channels of one case. add() in the parent (prepare); take_*() once per channel and side in each process after
// fork; clear() in the parent (finish) closes whatever is left.
class FdChannels {
 public:
  void add(Fd send_end, Fd receive_end) { channels_.push_back({std::move(send_end), std::move(receive_end)}); }
  void clear() { channels_.clear(); }
  std::size_t size() const { return channels_.size(); }
  int send_fd(std::size_t channel) const { return channels_[channel].send_end.get(); }
  int receive_fd(std::size_t channel) const { return channels_[channel].receive_end.get(); }

  // This process's send end of `channel`, its copy of the receive end closed; an invalid Fd with `error` set when
  // the channel does not exist or its send end was already taken here.
  Fd take_send_end(int channel, std::string_view transport, std::string& error) {
    return take(channel, &Ends::send_end, &Ends::receive_end, "send", transport, error);
  }
  Fd take_receive_end(int channel, std::string_view transport, std::string& error) {
    return take(channel, &Ends::receive_end, &Ends::send_end, "receive", transport, error);
  }

 private:
  struct Ends {
    Fd send_end;
    Fd receive_end;
  };

  Fd take(int channel, Fd Ends::*wanted, Fd Ends::*other, std::string_view side, std::string_view transport,
          std::string& error) {
    const std::string what = "channel " + std::to_string(channel);
    if (channel < 0 || static_cast<std::size_t>(channel) >= channels_.size()) {
      error =
          failure(transport, "open", what, "no such channel (prepare() made " + std::to_string(channels_.size()) + ")");
      return Fd{};
    }
    Ends& ends = channels_[static_cast<std::size_t>(channel)];
    if (!(ends.*wanted).valid()) {
      error = failure(transport, "open", what, std::string(side) + " end already taken in this process");
      return Fd{};
    }
    (ends.*other).reset();
    return std::move(ends.*wanted);
  }

  std::vector<Ends> channels_;
};

}  // namespace mqbench::peers
