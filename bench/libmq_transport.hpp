// libmq as a harness transport: one topic per channel (one consumer group, block policy), created in the parent
// before fork, opened by name in each process, its name removed when the case ends.
//   copy     publish() copies the message in; the receiver copies the payload out of the ring (as every peer does);
//   claim    claim() + commit() with only the 8-byte sequence number written, and only it read: the cost of the
//            record path, not of memcpy (zero-copy: flat in the payload size);
//   batch    publish_batch() of B records with one claim (the sender holds B messages back, and flushes at the end
//            marker), poll_batch() of up to min(B, 63) records with one take; each payload copied in and out.
// Any of them with an exclusive producer (ProducerOptions::exclusive: claims without a locked instruction).
#pragma once

#include <bit>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness.hpp"
#include "libmq/libmq.hpp"

namespace mqbench {

inline const char* wait_mode(mq::Wait w) {
  switch (w) {
    case mq::Wait::busy_spin:
      return "busy";
    case mq::Wait::spin_yield:
      return "spin_yield";
    case mq::Wait::spin_futex:
      return "default";
    case mq::Wait::futex:
      return "blocking";
  }
  return "?";
}

inline constexpr std::chrono::nanoseconds kLibmqPollTimeout{kPeerTimeoutNs};

// Ring capacity for a payload: the default 1 MiB (as the raw SPSC ring's slots), and 8 x the record for 1 MiB
// payloads so a few can be in flight.
inline std::size_t ring_for(std::size_t payload) {
  return payload <= 4096 ? std::size_t{1} << 20 : std::size_t{8} * std::bit_ceil(payload + 4096);
}

class LibmqTransport final : public Transport {
 public:
  enum class Api { copy, claim, batch };
  // `capacity` 0: ring_for(payload). `batch`: records per publish_batch (Api::batch). `exclusive`: the sender's
  // producer is the topic's exclusive one.
  LibmqTransport(mq::Wait wait, Api api, std::size_t capacity = 0, std::size_t batch = 1, bool exclusive = false)
      : wait_(wait), api_(api), capacity_(capacity), batch_(batch), exclusive_(exclusive) {}
  std::string name() const override { return "libmq"; }
  std::string mode() const override { return wait_mode(wait_); }
  std::string api() const {
    std::string a = api_ == Api::copy    ? "publish"
                    : api_ == Api::claim ? "claim (8 B touched)"
                                         : "publish_batch " + std::to_string(batch_) + " / poll_batch " +
                                               std::to_string(std::min(batch_, mq::kMaxBatch));
    if (capacity_ != 0) a += ", " + std::to_string(capacity_ >> 20) + " MiB ring";
    if (exclusive_) a += ", exclusive producer";
    return a;
  }

  Prepared prepare(std::size_t payload, int channels) override {
    finish();
    ++case_;
    for (int c = 0; c < channels; ++c) {
      names_.push_back("case" + std::to_string(case_) + "-ch" + std::to_string(c));
      const std::size_t capacity = capacity_ != 0 ? capacity_ : ring_for(payload);
      auto made =
          mq::Topic::create(names_.back(), {.capacity = capacity, .policy = mq::Policy::block, .groups = {"bench"}});
      if (!made) return {false, false, "create topic " + names_.back() + ": " + std::string(made.error().message())};
    }
    return {};
  }
  std::unique_ptr<Sender> open_sender(int channel, std::string& error) override {
    auto topic = mq::Topic::open(names_.at(channel));
    if (!topic) return error = "open " + names_[channel] + ": " + std::string(topic.error().message()), nullptr;
    auto producer = mq::Producer::make(*topic, {.exclusive = exclusive_});
    if (!producer) return error = "producer: " + std::string(producer.error().message()), nullptr;
    if (api_ == Api::batch) return std::make_unique<PublishBatch>(std::move(*producer), batch_);
    return std::make_unique<Publish>(std::move(*producer), api_);
  }
  std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) override {
    auto topic = mq::Topic::open(names_.at(channel));
    if (!topic) return error = "open " + names_[channel] + ": " + std::string(topic.error().message()), nullptr;
    auto consumer =
        mq::Consumer::make(*topic, {.group = "bench", .start = mq::Start::earliest, .wait = wait_, .auto_ack = true});
    if (!consumer) return error = "consumer: " + std::string(consumer.error().message()), nullptr;
    if (api_ == Api::batch) return std::make_unique<PollBatch>(std::move(*consumer), std::min(batch_, mq::kMaxBatch));
    return std::make_unique<Poll>(std::move(*consumer), api_);
  }
  // Removes the names; processes that still have a topic mapped keep it until they unmap.
  void finish() override {
    for (const auto& n : names_) (void)mq::Topic::remove(n);  // not_found (already gone) is fine
    names_.clear();
  }

 private:
  struct Publish final : Sender {
    Publish(mq::Producer p, Api a) : producer(std::move(p)), api(a) {}
    bool send(std::span<const std::byte> message, std::string& error) override {
      if (api == Api::copy) {
        auto r = producer.publish(message);
        if (!r) return error = "publish: " + std::string(r.error().message()), false;
        return true;
      }
      auto claim = producer.claim(message.size());
      if (!claim) return error = "claim: " + std::string(claim.error().message()), false;
      std::memcpy(claim->bytes().data(), message.data(), sizeof(std::uint64_t));  // the sequence number only
      auto r = std::move(*claim).commit();
      if (!r) return error = "commit: " + std::string(r.error().message()), false;
      return true;
    }
    mq::Producer producer;
    Api api;
  };
  struct Poll final : Receiver {
    Poll(mq::Consumer c, Api a) : consumer(std::move(c)), api(a) {}
    std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
      auto msg = consumer.poll(kLibmqPollTimeout);
      if (!msg) return error = "poll: " + std::string(msg.error().message()), std::nullopt;
      const auto payload = msg->payload();
      if (payload.size() > buffer.size() || payload.size() < sizeof(std::uint64_t)) {
        error = "poll: a record of " + std::to_string(payload.size()) + " bytes";
        return std::nullopt;
      }
      std::memcpy(buffer.data(), payload.data(), api == Api::copy ? payload.size() : sizeof(std::uint64_t));
      return payload.size();  // acked at the next poll (auto_ack)
    }
    mq::Consumer consumer;
    Api api;
  };

  // Holds `batch` messages back (copied into one buffer), then publishes them with one publish_batch.
  struct PublishBatch final : Sender {
    PublishBatch(mq::Producer p, std::size_t b) : producer(std::move(p)), batch(b) { spans.reserve(b); }
    bool send(std::span<const std::byte> message, std::string& error) override {
      if (buffer.size() < batch * message.size()) buffer.resize(batch * message.size());
      std::memcpy(buffer.data() + spans.size() * message.size(), message.data(), message.size());
      spans.emplace_back(buffer.data() + spans.size() * message.size(), message.size());
      if (spans.size() < batch && get_seq(message) != ~std::uint64_t{0}) return true;  // the end marker flushes
      auto r = producer.publish_batch(spans);
      spans.clear();
      if (!r) return error = "publish_batch: " + std::string(r.error().message()), false;
      return true;
    }
    mq::Producer producer;
    std::size_t batch;
    std::vector<std::byte> buffer;
    std::vector<std::span<const std::byte>> spans;
  };
  // Takes up to `batch` records with one poll_batch (auto_ack acks the previous batch at the next one).
  struct PollBatch final : Receiver {
    PollBatch(mq::Consumer c, std::size_t b) : consumer(std::move(c)), batch(b) { messages.reserve(b); }
    std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
      while (next == messages.size()) {
        auto n = consumer.poll_batch(messages, batch, kLibmqPollTimeout);
        next = 0;
        if (!n) return error = "poll_batch: " + std::string(n.error().message()), std::nullopt;
        if (*n == 0) return error = "poll_batch: nothing within the timeout", std::nullopt;
      }
      const auto payload = messages[next++].payload();
      if (payload.size() > buffer.size()) return error = "a record of " + std::to_string(payload.size()) + " bytes", std::nullopt;
      std::memcpy(buffer.data(), payload.data(), payload.size());
      return payload.size();
    }
    mq::Consumer consumer;
    std::size_t batch;
    std::vector<mq::Message> messages;
    std::size_t next = 0;
  };

  mq::Wait wait_;
  Api api_;
  std::size_t capacity_;
  std::size_t batch_;
  bool exclusive_;
  int case_ = 0;
  std::vector<std::string> names_;
};

}  // namespace mqbench
