// Boost.Interprocess message_queue as a user would pick it instead of libmq: one queue per one-way channel in a
// shared-memory segment named per case (/dev/shm/mqbench-<pid>-<n>-<channel>), created in the parent, opened by
// name (open_only) in each process after fork; every send and receive is bounded by the peer timeout.
#pragma once

#include <algorithm>
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../harness.hpp"
#include "common.hpp"

namespace mqbench::peers {

inline constexpr std::string_view kBoostQueueName = "boost message_queue";
// Each queue holds up to 64 messages, fewer for large payloads so one queue stays within 8 MiB (8 of 1 MiB).
inline constexpr std::size_t kBoostQueueMessages = 64;
inline constexpr std::size_t kBoostQueueBytes = std::size_t{8} << 20;

namespace bip = boost::interprocess;

inline boost::posix_time::ptime boost_deadline() {
  return boost::posix_time::microsec_clock::universal_time() +
         boost::posix_time::microseconds(static_cast<std::int64_t>(kPeerTimeoutNs / 1000));
}

inline std::string boost_error(std::string_view call, const std::string& name, const bip::interprocess_exception& e) {
  return failure(kBoostQueueName, call, name, e.what());
}

class BoostQueueSender final : public Sender {
 public:
  explicit BoostQueueSender(const std::string& name) : queue_(bip::open_only, name.c_str()), name_(name) {}
  bool send(std::span<const std::byte> message, std::string& error) override {
    try {
      if (queue_.timed_send(message.data(), message.size(), 0, boost_deadline())) return true;
      error = call_error(kBoostQueueName, "timed_send", name_, ETIMEDOUT);
    } catch (const bip::interprocess_exception& e) {
      error = boost_error("timed_send", name_, e);
    }
    return false;
  }

 private:
  bip::message_queue queue_;
  std::string name_;
};

class BoostQueueReceiver final : public Receiver {
 public:
  explicit BoostQueueReceiver(const std::string& name) : queue_(bip::open_only, name.c_str()), name_(name) {}
  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    try {
      bip::message_queue::size_type size = 0;
      unsigned int priority = 0;
      if (queue_.timed_receive(buffer.data(), buffer.size(), size, priority, boost_deadline())) return size;
      error = call_error(kBoostQueueName, "timed_receive", name_, ETIMEDOUT);
    } catch (const bip::interprocess_exception& e) {
      error = boost_error("timed_receive", name_, e);
    }
    return std::nullopt;
  }

 private:
  bip::message_queue queue_;
  std::string name_;
};

class BoostQueueTransport final : public Transport {
 public:
  std::string name() const override { return std::string(kBoostQueueName); }
  std::string mode() const override { return "blocking"; }

  Prepared prepare(std::size_t payload, int channels) override {
    finish();
    const std::size_t messages = std::clamp<std::size_t>(kBoostQueueBytes / payload, 1, kBoostQueueMessages);
    const std::string base = unique_case_name();
    for (int c = 0; c < channels; ++c) {
      const std::string name = base + "-" + std::to_string(c);
      try {
        bip::message_queue created(bip::create_only, name.c_str(), messages, payload);
      } catch (const bip::interprocess_exception& e) {
        return {.ok = false, .reason = boost_error("create_only", name, e)};
      }
      names_.push_back(name);
    }
    return {};
  }

  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    return open<BoostQueueSender>(channel, error);
  }
  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    return open<BoostQueueReceiver>(channel, error);
  }

  // Removes every queue's name (a segment still mapped somewhere lives on until unmapped).
  void finish() override {
    for (const auto& name : names_) bip::message_queue::remove(name.c_str());
    names_.clear();
  }

 private:
  template <class End>
  std::unique_ptr<End> open(int channel, std::string& error) const {
    if (channel < 0 || static_cast<std::size_t>(channel) >= names_.size()) {
      error = failure(kBoostQueueName, "open", "channel " + std::to_string(channel),
                      "no such channel (prepare() made " + std::to_string(names_.size()) + ")");
      return nullptr;
    }
    const std::string& name = names_[static_cast<std::size_t>(channel)];
    try {
      return std::make_unique<End>(name);
    } catch (const bip::interprocess_exception& e) {
      error = boost_error("open_only", name, e);
      return nullptr;
    }
  }

  std::vector<std::string> names_;
};

}  // namespace mqbench::peers
