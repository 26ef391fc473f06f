// iceoryx 2.0 as an mqbench::Transport: one service per channel per case, an UntypedPublisher that loans, copies
// the harness message in and publishes, and an UntypedSubscriber that takes, copies out and releases, either
// busy-polling take() ("busy") or sleeping in a WaitSet on the subscriber's HAS_DATA state ("blocking").
// Back-pressure, not loss: the subscriber queue blocks the producer and the publisher waits for a slow subscriber.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "../harness.hpp"

// iceoryx's headers come in through its imported CMake targets, as system headers: their own warnings stay quiet.
#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"

namespace mqbench::iox_bench {

inline constexpr std::uint64_t kQueueCapacity = 256;  // iceoryx 2.0's maximum (MAX_SUBSCRIBER_QUEUE_CAPACITY)

// Each process's iceoryx runtime, registered with RouDi on first use as "<prefix><pid>". Call only in a process
// that has not registered before and will not fork afterwards (the case runner and its driver child).
inline void ensure_runtime(const std::string& prefix) {
  static bool registered = false;
  if (registered) return;
  const std::string name = prefix + std::to_string(::getpid());
  // The library logs at verbose by default (every segment mapped, every port): warnings and errors only.
  iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kWarn,
                                                           iox::log::LogLevelOutput::kHideLogLevel);
  iox::runtime::PoshRuntime::initRuntime(iox::RuntimeName_t(iox::cxx::TruncateToCapacity, name.c_str()));
  registered = true;
}

inline iox::capro::IdString_t id_string(const std::string& s) {
  return iox::capro::IdString_t(iox::cxx::TruncateToCapacity, s.c_str());
}

inline const char* allocation_error_name(iox::popo::AllocationError e) {
  switch (e) {
    case iox::popo::AllocationError::NO_MEMPOOLS_AVAILABLE:
      return "NO_MEMPOOLS_AVAILABLE";
    case iox::popo::AllocationError::RUNNING_OUT_OF_CHUNKS:
      return "RUNNING_OUT_OF_CHUNKS";
    case iox::popo::AllocationError::TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL:
      return "TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL";
    case iox::popo::AllocationError::INVALID_PARAMETER_FOR_USER_PAYLOAD_OR_USER_HEADER:
      return "INVALID_PARAMETER_FOR_USER_PAYLOAD_OR_USER_HEADER";
    default:
      return "UNDEFINED_ERROR";
  }
}

// Polls `ready` every 100 us until it holds; false after kPeerTimeoutNs. For the connection set-up only, which
// RouDi's discovery loop does every 100 ms.
template <class Ready>
bool wait_for(Ready ready) {
  const std::uint64_t deadline = now_ns() + kPeerTimeoutNs;
  while (!ready()) {
    if (now_ns() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

class IoxSender final : public Sender {
 public:
  IoxSender(const iox::capro::ServiceDescription& service, const std::string& label)
      : label_(label), publisher_(service, options()) {}

  // Waits (bounded) until the peer's subscriber is connected: a sample published before that is not delivered.
  bool connect(std::string& error) {
    if (wait_for([&] { return publisher_.hasSubscribers(); })) return true;
    error = "no subscriber connected to " + label_ + " within 10 s";
    return false;
  }

  // Loans a chunk (retrying while the mempool is exhausted, bounded by kPeerTimeoutNs), copies, publishes.
  // publish() itself waits while the subscriber's queue is full (WAIT_FOR_CONSUMER); iceoryx bounds that wait only
  // by the subscriber going away, and the driver SIGKILLs a child whose case already failed.
  bool send(std::span<const std::byte> message, std::string& error) override {
    std::uint64_t deadline = 0;
    for (;;) {
      auto loaned = publisher_.loan(static_cast<std::uint32_t>(message.size()));
      if (!loaned.has_error()) {
        void* chunk = loaned.value();
        std::memcpy(chunk, message.data(), message.size());
        publisher_.publish(chunk);
        return true;
      }
      const auto why = loaned.get_error();
      const bool exhausted = why == iox::popo::AllocationError::RUNNING_OUT_OF_CHUNKS ||
                             why == iox::popo::AllocationError::TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL;
      const std::uint64_t now = now_ns();
      if (deadline == 0) deadline = now + kPeerTimeoutNs;
      if (!exhausted || now > deadline) {
        error = std::string("loan of ") + std::to_string(message.size()) + " B on " + label_ +
                " failed: " + allocation_error_name(why) + (exhausted ? " for 10 s" : "") +
                (why == iox::popo::AllocationError::NO_MEMPOOLS_AVAILABLE
                     ? " (no mempool in the RouDi config holds a chunk this big)"
                     : "");
        return false;
      }
      std::this_thread::yield();
    }
  }

 private:
  static iox::popo::PublisherOptions options() {
    iox::popo::PublisherOptions o;
    o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    return o;
  }

  std::string label_;
  iox::popo::UntypedPublisher publisher_;
};

class IoxReceiver final : public Receiver {
 public:
  IoxReceiver(const iox::capro::ServiceDescription& service, const std::string& label, bool blocking)
      : label_(label), subscriber_(service, options()) {
    if (blocking) waitset_.emplace();
  }

  // Attaches the WaitSet (blocking mode) and waits (bounded) until the subscription is connected to a publisher.
  bool connect(std::string& error) {
    if (waitset_ && waitset_->attachState(subscriber_, iox::popo::SubscriberState::HAS_DATA).has_error()) {
      error = "cannot attach the subscriber of " + label_ + " to a WaitSet";
      return false;
    }
    if (wait_for([&] { return subscriber_.getSubscriptionState() == iox::SubscribeState::SUBSCRIBED; })) return true;
    error = "the subscriber of " + label_ + " was not connected to a publisher within 10 s";
    return false;
  }

  std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
    std::uint64_t deadline = 0;
    for (std::uint32_t round = 1;; ++round) {
      auto taken = subscriber_.take();
      if (!taken.has_error()) {
        const void* chunk = taken.value();
        const std::size_t size = iox::mepoo::ChunkHeader::fromUserPayload(chunk)->userPayloadSize();
        const bool fits = size <= buffer.size();
        if (fits) std::memcpy(buffer.data(), chunk, size);
        subscriber_.release(chunk);
        if (fits) return size;
        error = "a " + std::to_string(size) + " B sample on " + label_ + " does not fit the " +
                std::to_string(buffer.size()) + " B buffer";
        return std::nullopt;
      }
      if (taken.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) {
        error = "take on " + label_ + " failed: too many chunks held";
        return std::nullopt;
      }
      // Busy mode reads the clock every 4096 empty polls; blocking mode before every wait.
      if (!waitset_ && round % 4096 != 0) continue;
      const std::uint64_t now = now_ns();
      if (deadline == 0) deadline = now + kPeerTimeoutNs;
      if (now > deadline) {
        error = "no sample on " + label_ + " for 10 s";
        return std::nullopt;
      }
      if (waitset_) waitset_->timedWait(iox::units::Duration::fromNanoseconds(deadline - now));
    }
  }

 private:
  static iox::popo::SubscriberOptions options() {
    iox::popo::SubscriberOptions o;
    o.queueCapacity = kQueueCapacity;
    o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    return o;
  }

  std::string label_;
  iox::popo::UntypedSubscriber subscriber_;
  std::optional<iox::popo::WaitSet<>> waitset_;  // declared last: destroyed (detached) before the subscriber
};

// One case's transport. Construct and use it in a case runner: prepare() only records names; each process opens
// its ends after the driver's fork, registering its own runtime then.
class IoxTransport final : public Transport {
 public:
  enum class Mode { busy, blocking };
  // `case_index` makes this case's services unique in the run; `runtime_prefix` names the runtimes.
  IoxTransport(Mode mode, int case_index, std::string runtime_prefix)
      : mode_(mode), case_index_(case_index), runtime_prefix_(std::move(runtime_prefix)) {}

  static const char* mode_name(Mode m) { return m == Mode::busy ? "busy" : "blocking"; }
  std::string name() const override { return "iceoryx"; }
  std::string mode() const override { return mode_name(mode_); }

  Prepared prepare(std::size_t payload, int) override {
    if (payload > UINT32_MAX) return {.ok = true, .skipped = true, .reason = "iceoryx loans at most 4 GiB"};
    return {};
  }

  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    ensure_runtime(runtime_prefix_);
    auto sender = std::make_unique<IoxSender>(service(channel), label(channel));
    if (!sender->connect(error)) return nullptr;
    return sender;
  }

  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    ensure_runtime(runtime_prefix_);
    auto receiver = std::make_unique<IoxReceiver>(service(channel), label(channel), mode_ == Mode::blocking);
    if (!receiver->connect(error)) return nullptr;
    return receiver;
  }

 private:
  iox::capro::ServiceDescription service(int channel) const {
    return {"mqbench", id_string("case" + std::to_string(case_index_)), id_string("ch" + std::to_string(channel))};
  }
  std::string label(int channel) const {
    return "service mqbench/case" + std::to_string(case_index_) + "/ch" + std::to_string(channel);
  }

  Mode mode_;
  int case_index_;
  std::string runtime_prefix_;
};

}  // namespace mqbench::iox_bench
