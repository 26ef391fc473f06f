// POSIX message queues (mq_open) as a user would pick them instead of libmq: one queue per one-way channel, named
// per case, created in the parent and opened by name in each process; every send and receive is bounded by the peer
// timeout (mq_timedsend / mq_timedreceive). Queues stay within the machine's limits (fs.mqueue.*), never raise them.
#pragma once

#include <fcntl.h>
#include <mqueue.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../harness.hpp"
#include "common.hpp"

namespace mqbench::peers {

inline constexpr std::string_view kPosixMqName = "posix mq";
inline constexpr long kPosixMqMessages = 10;  // per queue: fs.mqueue.msg_max's default, lowered if the machine's is

// An open queue descriptor, closed when dropped.
class MqDescriptor {
 public:
  MqDescriptor() = default;
  explicit MqDescriptor(mqd_t mq) noexcept : mq_(mq) {}
  ~MqDescriptor() {
    if (valid()) ::mq_close(mq_);
  }
  MqDescriptor(MqDescriptor&& other) noexcept : mq_(std::exchange(other.mq_, kNone)) {}
  MqDescriptor& operator=(MqDescriptor&&) = delete;
  MqDescriptor(const MqDescriptor&) = delete;
  MqDescriptor& operator=(const MqDescriptor&) = delete;

  mqd_t get() const noexcept { return mq_; }
  bool valid() const noexcept { return mq_ != kNone; }

 private:
  static constexpr mqd_t kNone = static_cast<mqd_t>(-1);
  mqd_t mq_ = kNone;
};

class PosixMqSender final : public Sender {
 public:
  PosixMqSender(MqDescriptor mq, std::string name) : mq_(std::move(mq)), name_(std::move(name)) {}
  bool send(std::span<const std::byte> message, std::string& error) override {
    const timespec deadline = realtime_deadline();
    while (::mq_timedsend(mq_.get(), reinterpret_cast<const char*>(message.data()), message.size(), 0, &deadline) !=
           0) {
      if (errno != EINTR) return error = call_error(kPosixMqName, "mq_timedsend", name_, errno), false;
    }
    return true;
  }

 private:
  MqDescriptor mq_;
  std::string name_;
};

class PosixMqReceiver final : public Receiver {
 public:
  PosixMqReceiver(MqDescriptor mq, std::string name) : mq_(std::move(mq)), name_(std::move(name)) {}
  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    const timespec deadline = realtime_deadline();
    for (;;) {
      const ssize_t n =
          ::mq_timedreceive(mq_.get(), reinterpret_cast<char*>(buffer.data()), buffer.size(), nullptr, &deadline);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return error = call_error(kPosixMqName, "mq_timedreceive", name_, errno), std::nullopt;
    }
  }

 private:
  MqDescriptor mq_;
  std::string name_;
};

class PosixMqTransport final : public Transport {
 public:
  std::string name() const override { return std::string(kPosixMqName); }
  std::string mode() const override { return "blocking"; }

  // Creates one queue per channel holding up to kPosixMqMessages messages of exactly
  // `payload` bytes; a payload over fs.mqueue.msgsize_max is skipped.
  Prepared prepare(std::size_t payload, int channels) override {
    finish();
    const long size_limit = read_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192);
    const long count_limit = read_sysctl("/proc/sys/fs/mqueue/msg_max", 10);
    if (payload > static_cast<std::size_t>(size_limit)) {
      return {.skipped = true,
              .reason = "POSIX message queues cap a message at " + std::to_string(size_limit) +
                        " bytes (fs.mqueue.msgsize_max); the machine's limits are not changed"};
    }
    const std::string base = "/" + unique_case_name();
    for (int c = 0; c < channels; ++c) {
      const std::string name = base + "-" + std::to_string(c);
      mq_attr attr{};
      attr.mq_maxmsg = std::min(kPosixMqMessages, count_limit);
      attr.mq_msgsize = static_cast<long>(payload);
      const mqd_t mq = ::mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr);
      if (mq == static_cast<mqd_t>(-1))
        return {.ok = false, .reason = call_error(kPosixMqName, "mq_open O_CREAT", name, errno)};
      ::mq_close(mq);
      names_.push_back(name);
    }
    return {};
  }

  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    auto mq = open(channel, O_WRONLY, error);
    if (!mq) return nullptr;
    return std::make_unique<PosixMqSender>(std::move(*mq), names_[static_cast<std::size_t>(channel)]);
  }

  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    auto mq = open(channel, O_RDONLY, error);
    if (!mq) return nullptr;
    return std::make_unique<PosixMqReceiver>(std::move(*mq), names_[static_cast<std::size_t>(channel)]);
  }

  // Unlinks every queue of the case (a queue still open somewhere lives on until closed, nameless).
  void finish() override {
    for (const auto& name : names_) ::mq_unlink(name.c_str());
    names_.clear();
  }

 private:
  std::optional<MqDescriptor> open(int channel, int flags, std::string& error) const {
    if (channel < 0 || static_cast<std::size_t>(channel) >= names_.size()) {
      error = failure(kPosixMqName, "open", "channel " + std::to_string(channel),
                      "no such channel (prepare() made " + std::to_string(names_.size()) + ")");
      return std::nullopt;
    }
    const std::string& name = names_[static_cast<std::size_t>(channel)];
    const mqd_t mq = ::mq_open(name.c_str(), flags | O_CLOEXEC);
    if (mq == static_cast<mqd_t>(-1)) {
      error = call_error(kPosixMqName, "mq_open", name, errno);
      return std::nullopt;
    }
    return std::optional<MqDescriptor>(std::in_place, mq);
  }

  std::vector<std::string> names_;
};

}  // namespace mqbench::peers
