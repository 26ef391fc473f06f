// The floors every ratio divides by, as harness transports over a MAP_SHARED anonymous mapping made before fork:
//   raw ping-pong   one 4-byte counter per direction on its own cache line, spun on: the fastest a line can cross
//                   the cores and back (it carries a counter, not a payload);
//   raw futex       the same counter, slept on with FUTEX_WAIT and woken with FUTEX_WAKE on every message: the floor
//                   for a sleeping consumer;
//   raw SPSC ring   fixed-size slots in the style of rigtorp's SPSCQueue (each side's index on its own line, the other
//                   side's index cached): the throughput ceiling for a copying queue.
// No libmq code here: these are what the hardware and the kernel give.
#pragma once

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "harness.hpp"

namespace mqbench {

// ---- raw ping-pong, spinning or sleeping ---------------------------------------------------------------------

// One counter per channel, 128 bytes apart (the adjacent-line prefetcher pairs 64-byte lines).
struct alignas(128) CounterLine {
  std::atomic<std::uint32_t> value{0};
};
static_assert(sizeof(CounterLine) == 128 && std::atomic<std::uint32_t>::is_always_lock_free);

// Cross-process futex (no FUTEX_PRIVATE_FLAG: the word is in a MAP_SHARED mapping). The raw syscall, as libmq's own.
inline void counter_futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen) {
  timespec slice{0, 100'000'000};  // wake every 100 ms to re-check the deadline
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, &slice, nullptr, 0);
}
inline void counter_futex_wake(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// The n-th message on a channel is the counter reaching n; the receiver knows n (messages are strictly in turn in a
// round trip), so it hands the harness sequence number n - 1 without a payload crossing.
class PingPong final : public Transport {
 public:
  explicit PingPong(bool sleeping) : sleeping_(sleeping) {}
  std::string name() const override { return sleeping_ ? "raw futex ping-pong" : "raw ping-pong"; }
  std::string mode() const override { return sleeping_ ? "blocking" : "busy"; }

  Prepared prepare(std::size_t payload, int channels) override {
    payload_ = payload;
    pages_ = SharedPages(sizeof(CounterLine) * static_cast<std::size_t>(channels));
    if (pages_.get() == nullptr) return {false, false, std::string("mmap: ") + std::strerror(errno)};
    for (int c = 0; c < channels; ++c) new (line(c)) CounterLine{};
    return {};
  }
  std::unique_ptr<Sender> open_sender(int channel, std::string&) override {
    return std::make_unique<Post>(line(channel)->value, sleeping_);
  }
  std::unique_ptr<Receiver> open_receiver(int channel, std::string&) override {
    return std::make_unique<Await>(line(channel)->value, sleeping_, payload_);
  }
  void finish() override { pages_.reset(); }

 private:
  CounterLine* line(int channel) const { return reinterpret_cast<CounterLine*>(pages_.get()) + channel; }
  struct Post final : Sender {
    Post(std::atomic<std::uint32_t>& w, bool s) : word(w), sleeping(s) {}
    bool send(std::span<const std::byte>, std::string&) override {
      word.store(++count, std::memory_order_release);  // release: the counter is the message
      if (sleeping) counter_futex_wake(word);          // every time: the floor of "a wake-up per message"
      return true;
    }
    std::atomic<std::uint32_t>& word;
    bool sleeping;
    std::uint32_t count = 0;
  };
  struct Await final : Receiver {
    Await(std::atomic<std::uint32_t>& w, bool s, std::size_t p) : word(w), sleeping(s), payload(p) {}
    std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
      const std::uint32_t want = ++count;
      if (!sleeping) {
        if (!spin_until([&] { return word.load(std::memory_order_acquire) == want; }, kPeerTimeoutNs)) {
          error = "raw ping-pong: no message " + std::to_string(want) + " within the timeout";
          return std::nullopt;
        }
      } else {
        std::uint64_t deadline = 0;
        for (unsigned sleeps = 0;; ++sleeps) {
          const std::uint32_t seen = word.load(std::memory_order_acquire);
          if (seen == want) break;
          if (sleeps == 1)
            deadline = now_ns() + kPeerTimeoutNs;  // the clock only once a first sleep was not enough
          else if (sleeps > 1 && now_ns() > deadline) {
            error = "raw futex ping-pong: no message " + std::to_string(want) + " within the timeout";
            return std::nullopt;
          }
          counter_futex_wait(word, seen);
        }
      }
      put_seq(buffer, want - 1);
      return payload;
    }
    std::atomic<std::uint32_t>& word;
    bool sleeping;
    std::size_t payload;
    std::uint32_t count = 0;
  };

  bool sleeping_;
  std::size_t payload_ = 0;
  SharedPages pages_;
};

// ---- raw SPSC ring ---------------------------------------------------------------------------------------------

// One producer, one consumer, fixed-size slots. Each index on its own 128-byte line; each side keeps a private copy
// of the other's index and reloads it only when the ring looks full (producer) or empty (consumer).
struct alignas(128) SpscIndex {
  std::atomic<std::uint64_t> value{0};
};
struct SpscHeader {
  SpscIndex write;  // written by the producer only
  SpscIndex read;   // written by the consumer only
};
static_assert(sizeof(SpscHeader) == 256 && std::atomic<std::uint64_t>::is_always_lock_free);

class SpscRing final : public Transport {
 public:
  std::string name() const override { return "raw SPSC ring"; }
  std::string mode() const override { return "busy"; }

  Prepared prepare(std::size_t payload, int channels) override {
    payload_ = payload;
    slot_ = (payload + 63) & ~std::size_t{63};
    // About 1 MiB of slots, at least 8: the same order as the libmq rings it is compared with.
    slots_ = std::max<std::size_t>(8, std::bit_floor((std::size_t{1} << 20) / slot_));
    channel_bytes_ = sizeof(SpscHeader) + slots_ * slot_;
    pages_ = SharedPages(channel_bytes_ * static_cast<std::size_t>(channels));
    if (pages_.get() == nullptr) return {false, false, std::string("mmap: ") + std::strerror(errno)};
    for (int c = 0; c < channels; ++c) new (header(c)) SpscHeader{};
    return {};
  }
  std::unique_ptr<Sender> open_sender(int channel, std::string&) override {
    return std::make_unique<Push>(*header(channel), slots(channel), slot_, slots_);
  }
  std::unique_ptr<Receiver> open_receiver(int channel, std::string&) override {
    return std::make_unique<Pop>(*header(channel), slots(channel), slot_, slots_, payload_);
  }
  void finish() override { pages_.reset(); }

 private:
  SpscHeader* header(int c) const { return reinterpret_cast<SpscHeader*>(pages_.get() + channel_bytes_ * c); }
  std::byte* slots(int c) const { return pages_.get() + channel_bytes_ * c + sizeof(SpscHeader); }

  struct Push final : Sender {
    Push(SpscHeader& h, std::byte* s, std::size_t slot, std::size_t n) : head(h), ring(s), slot(slot), slots(n) {}
    bool send(std::span<const std::byte> message, std::string& error) override {
      if (write - read_cache == slots) {
        // acquire: the consumer's copy-out of the slot happens-before we overwrite it.
        read_cache = head.read.value.load(std::memory_order_acquire);
        if (write - read_cache == slots &&
            !spin_until([&] { return write - (read_cache = head.read.value.load(std::memory_order_acquire)) < slots; },
                        kPeerTimeoutNs)) {
          error = "raw SPSC ring: full for longer than the timeout";
          return false;
        }
      }
      std::memcpy(ring + (write & (slots - 1)) * slot, message.data(), message.size());
      head.write.value.store(++write, std::memory_order_release);  // release: publishes the slot's bytes
      return true;
    }
    SpscHeader& head;
    std::byte* ring;
    std::size_t slot, slots;
    std::uint64_t write = 0, read_cache = 0;
  };
  struct Pop final : Receiver {
    Pop(SpscHeader& h, std::byte* s, std::size_t slot, std::size_t n, std::size_t p)
        : head(h), ring(s), slot(slot), slots(n), payload(p) {}
    std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) override {
      if (read == write_cache) {
        // acquire: pairs with the producer's release of the write index.
        if (!spin_until([&] { return (write_cache = head.write.value.load(std::memory_order_acquire)) != read; },
                        kPeerTimeoutNs)) {
          error = "raw SPSC ring: empty for longer than the timeout";
          return std::nullopt;
        }
      }
      std::memcpy(buffer.data(), ring + (read & (slots - 1)) * slot, payload);
      head.read.value.store(++read, std::memory_order_release);  // release: our copy-out is done with the slot
      return payload;
    }
    SpscHeader& head;
    std::byte* ring;
    std::size_t slot, slots, payload;
    std::uint64_t read = 0, write_cache = 0;
  };

  std::size_t payload_ = 0, slot_ = 64, slots_ = 0, channel_bytes_ = 0;
  SharedPages pages_;
};

}  // namespace mqbench
