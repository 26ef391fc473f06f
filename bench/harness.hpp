// The cross-process harness every transport runs through: a Transport gives each process its end of a one-way
// channel after fork, and two drivers time it the same way for all of them, so a row of one transport can be read
// next to a row of another.
//   round_trip   parent (core 0) sends on channel 0, the child (core 1) echoes on channel 1; every round trip kept.
//   throughput   the child (core 1) sends on channel 0 as fast as the channel takes it; the parent (core 0) counts
//                what arrives over a fixed window, checking every sequence number (a lost record fails the case);
//                the rate is the median of the window's 5 slices (the whole window's mean is kept too).
// Every message carries a 64-bit sequence number in its first 8 bytes. Every wait is bounded: a silent peer fails
// the case, it never hangs the suite.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "machine.hpp"
#include "percentiles.hpp"
#include "process.hpp"

namespace mqbench {

inline constexpr int kParentCore = 0;
inline constexpr int kChildCore = 1;
inline constexpr std::uint64_t kPeerTimeoutNs = 10'000'000'000;  // a peer silent this long has failed
inline constexpr std::chrono::milliseconds kReapTimeout{30'000};
inline constexpr std::size_t kSlices = 5;  // a throughput window's slices (the median slice is reported)

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// The sending end of one channel, used by exactly one process (the one that opened it).
class Sender {
 public:
  virtual ~Sender() = default;
  // Sends one message; waits while the channel is full (bounded: false after kPeerTimeoutNs). False on error, with
  // the reason in `error`.
  virtual bool send(std::span<const std::byte> message, std::string& error) = 0;
};

// The receiving end of one channel, used by exactly one process.
class Receiver {
 public:
  virtual ~Receiver() = default;
  // Receives one message into `buffer` (sized for the largest message) and returns its length; nullopt with the
  // reason in `error` on failure or after kPeerTimeoutNs without a message.
  virtual std::optional<std::size_t> receive(std::span<std::byte> buffer, std::string& error) = 0;
};

// One transport under test, in one mode. The driver calls, in this order:
//   prepare(payload)   in the parent, before fork: create what both processes need (names, sockets, queues);
//   open_*(channel)    in each process after fork, for its own ends (the child and the parent open in parallel);
//   finish()           in the parent after the case, however it ended: remove names, stop helpers.
// A transport that cannot carry `payload` says so in prepare() (the case is then reported as skipped with that
// reason, not failed).
class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;  // e.g. "unix stream", "boost message_queue"
  virtual std::string mode() const = 0;  // "busy", "default" (spin then sleep) or "blocking"
  struct Prepared {
    bool ok = true;
    bool skipped = false;  // cannot carry this payload (a documented limit): not a failure
    std::string reason;
  };
  virtual Prepared prepare(std::size_t payload, int channels) = 0;
  virtual std::unique_ptr<Sender> open_sender(int channel, std::string& error) = 0;
  virtual std::unique_ptr<Receiver> open_receiver(int channel, std::string& error) = 0;
  virtual void finish() {}
};

// One row of the results, as every bench binary writes it to JSON (write_results in report.hpp).
struct CaseResult {
  std::string transport{};       // "libmq", "raw ping-pong", "unix stream", ...
  std::string mode{};            // busy | default | blocking
  std::string kind{};            // rtt | throughput
  std::string pattern = "1p1c";  // 1p1c | 4p-group2 | 1p-3groups
  std::string api{};             // optional detail: "publish", "claim (8 B touched)", "kafkajs send", ...
  std::size_t payload = 0;
  std::string load_before{};         // /proc/loadavg before the case
  std::optional<Summary> latency{};  // rtt: ns per round trip
  double msgs_per_s = 0;             // throughput: the median of the window's slices
  double mean_msgs_per_s = 0;        // throughput over the whole window
  double bytes_per_s = 0;
  double seconds = 0;  // how long the measured part ran
  bool skipped = false;
  std::string error{};  // failed (or the skip reason)
  std::string note{};
  std::vector<std::pair<std::string, double>> extra{};  // other figures of a case, written as JSON fields
};

// ---- the drivers ------------------------------------------------------------------------------------------------

// Handshake words in a MAP_SHARED anonymous page, shared by the parent and the forked child.
struct Control {
  alignas(64) std::atomic<std::uint32_t> child_ready{0};
  alignas(64) std::atomic<std::uint32_t> parent_ready{0};
  alignas(64) std::atomic<std::uint32_t> stop{0};
  alignas(64) std::atomic<std::uint32_t> failed{0};
};

// The control page of one case, mapped before fork.
class SharedControl {
 public:
  SharedControl() : pages_(sizeof(Control)) {
    if (pages_.get() != nullptr) control_ = new (pages_.get()) Control{};
  }
  Control* get() const { return control_; }

 private:
  SharedPages pages_;
  Control* control_ = nullptr;
};

inline void put_seq(std::span<std::byte> message, std::uint64_t seq) { std::memcpy(message.data(), &seq, sizeof seq); }
inline std::uint64_t get_seq(std::span<const std::byte> message) {
  std::uint64_t seq = 0;
  std::memcpy(&seq, message.data(), sizeof seq);
  return seq;
}

// Both sides announce their ends are open, then wait for the other (bounded). A side that failed to open sets
// `failed` so the other stops waiting at once.
inline bool meet(std::atomic<std::uint32_t>& mine, std::atomic<std::uint32_t>& theirs, Control& c) {
  mine.store(1, std::memory_order_release);  // release: our opened ends happen-before the peer's first use
  return spin_until([&] { return theirs.load(std::memory_order_acquire) == 1 || c.failed.load() != 0; },
                    kPeerTimeoutNs) &&
         c.failed.load() == 0;
}

// After a case: the child's exit awaited (it exits after its last message), or killed at once when the case already
// failed, so finish() never removes what a live child still uses.
inline void end_child(Child& child, std::string& error) {
  if (!error.empty()) return child.kill();
  if (const int code = child.wait(kReapTimeout); code != 0) error = "child exited with " + std::to_string(code);
}

inline void print_child_error(const char* what, const std::string& error) {
  std::fprintf(stderr, "child: %s: %s\n", what, error.c_str());
}

// Prepares `t` for a case with `channels` channels and maps the control page. False (with `r` saying why: skipped
// or failed, and the transport finished) when the case cannot run.
inline bool set_up(Transport& t, std::size_t payload, int channels, SharedControl& shared, CaseResult& r) {
  const auto prepared = t.prepare(payload, channels);
  if (!prepared.ok || prepared.skipped) {
    r.skipped = prepared.skipped;
    r.error = prepared.reason;
  } else if (shared.get() == nullptr) {
    r.error = "mmap of the control page failed";
  } else {
    return true;
  }
  t.finish();
  return false;
}

// Round trips of `payload`-byte messages: `warmup` unrecorded, then `iterations` recorded. The payload is filled
// with a pattern; the parent checks the sequence number and length of every echo.
inline CaseResult round_trip(Transport& t, std::size_t payload, std::size_t iterations, std::size_t warmup) {
  CaseResult r{
      .transport = t.name(), .mode = t.mode(), .kind = "rtt", .payload = payload, .load_before = load_average()};
  if (payload < sizeof(std::uint64_t)) payload = sizeof(std::uint64_t);
  SharedControl shared;
  if (!set_up(t, payload, 2, shared, r)) return r;
  Control& c = *shared.get();
  const std::size_t total = warmup + iterations;
  Child child([&] {
    pin_to_core(kChildCore);
    std::string error;
    auto in = t.open_receiver(0, error);
    auto out = in ? t.open_sender(1, error) : nullptr;
    if (!in || !out) {
      c.failed.store(1);
      print_child_error("open", error);
      return 1;
    }
    if (!meet(c.child_ready, c.parent_ready, c)) return 1;
    std::vector<std::byte> buffer(payload);
    for (std::size_t i = 0; i < total; ++i) {
      const auto got = in->receive(buffer, error);
      if (!got) return print_child_error("receive", error), 1;
      if (!out->send(std::span(buffer).first(*got), error)) return print_child_error("send", error), 1;
    }
    return 0;
  });
  if (!child.started()) {
    r.error = "fork failed";
    t.finish();
    return r;
  }
  std::string error;
  auto out = t.open_sender(0, error);
  auto in = out ? t.open_receiver(1, error) : nullptr;
  if (!out || !in)
    c.failed.store(1);
  else if (!meet(c.parent_ready, c.child_ready, c))
    error = "the child did not open its ends (see its message)";
  std::vector<std::byte> message(payload), echo(payload);
  for (std::size_t j = 0; j < payload; ++j) message[j] = static_cast<std::byte>(j * 7 + 1);
  std::vector<std::uint64_t> samples;
  samples.reserve(iterations);
  for (std::uint64_t i = 0; error.empty() && i < total; ++i) {
    put_seq(message, i);
    const std::uint64_t t0 = now_ns();
    if (!out->send(message, error)) break;
    const auto got = in->receive(echo, error);
    const std::uint64_t t1 = now_ns();
    if (!got) break;
    if (*got != payload || get_seq(echo) != i) {
      error = "echo " + std::to_string(i) + " came back wrong (length " + std::to_string(*got) + ", seq " +
              std::to_string(get_seq(echo)) + ")";
      break;
    }
    if (i >= warmup) samples.push_back(t1 - t0);
  }
  out.reset();
  in.reset();
  end_child(child, error);
  t.finish();
  if (error.empty()) r.latency = summarize(samples);
  r.error = error;
  return r;
}

// One-way throughput: the child sends `payload`-byte messages with consecutive sequence numbers until told to
// stop, then one end marker (~0); the parent receives for `seconds` after `warmup_seconds`, then keeps draining to
// the marker so the sender never blocks on a full channel. Every sequence number is checked.
inline CaseResult throughput(Transport& t, std::size_t payload, double seconds, double warmup_seconds) {
  CaseResult r{
      .transport = t.name(), .mode = t.mode(), .kind = "throughput", .payload = payload, .load_before = load_average()};
  if (payload < sizeof(std::uint64_t)) payload = sizeof(std::uint64_t);
  SharedControl shared;
  if (!set_up(t, payload, 1, shared, r)) return r;
  Control& c = *shared.get();
  constexpr std::uint64_t kEnd = ~std::uint64_t{0};
  Child child([&] {
    pin_to_core(kChildCore);
    std::string error;
    auto out = t.open_sender(0, error);
    if (!out) {
      c.failed.store(1);
      print_child_error("open", error);
      return 1;
    }
    if (!meet(c.child_ready, c.parent_ready, c)) return 1;
    std::vector<std::byte> message(payload);
    for (std::size_t j = 0; j < payload; ++j) message[j] = static_cast<std::byte>(j * 7 + 1);
    std::uint64_t seq = 0;
    // relaxed: the flag only ends the loop; nothing is published with it.
    while (c.stop.load(std::memory_order_relaxed) == 0) {
      put_seq(message, seq++);
      if (!out->send(message, error)) return print_child_error("send", error), 1;
    }
    put_seq(message, kEnd);
    if (!out->send(message, error)) return print_child_error("send end", error), 1;
    return 0;
  });
  if (!child.started()) {
    r.error = "fork failed";
    t.finish();
    return r;
  }
  std::string error;
  auto in = t.open_receiver(0, error);
  if (!in)
    c.failed.store(1);
  else if (!meet(c.parent_ready, c.child_ready, c))
    error = "the child did not open its end (see its message)";
  std::vector<std::byte> buffer(payload);
  // The window is cut into kSlices slices; the rate reported is the median slice's, so a moment when another job
  // took a core moves it less than it moves the mean (both are reported).
  std::vector<double> slice_rates;
  std::uint64_t expected = 0, slice_start = 0, slice_count = 0, start = 0, start_count = 0, stop_at = 0;
  const auto warmup_ns = static_cast<std::uint64_t>(warmup_seconds * 1e9);
  const auto slice_ns = static_cast<std::uint64_t>(seconds * 1e9 / kSlices);
  std::uint64_t first = now_ns(), end = 0;
  while (error.empty()) {
    const auto got = in->receive(buffer, error);
    if (!got) break;
    const std::uint64_t seq = get_seq(buffer);
    if (seq == kEnd) break;
    if (*got != payload || seq != expected) {
      error = "message " + std::to_string(expected) + " arrived as seq " + std::to_string(seq) + ", length " +
              std::to_string(*got);
      break;
    }
    ++expected;
    if (stop_at != 0) continue;           // draining after the window
    if ((expected & 255) != 0) continue;  // the clock every 256 messages
    const std::uint64_t now = now_ns();
    if (start == 0) {
      if (now - first < warmup_ns) continue;
      start = slice_start = now;
      start_count = slice_count = expected;
    } else if (now - slice_start >= slice_ns) {
      slice_rates.push_back(static_cast<double>(expected - slice_count) * 1e9 / static_cast<double>(now - slice_start));
      slice_start = now;
      slice_count = expected;
      if (slice_rates.size() == kSlices) {
        end = now;
        stop_at = expected;
        c.stop.store(1, std::memory_order_relaxed);
      }
    }
  }
  in.reset();
  end_child(child, error);
  t.finish();
  if (error.empty() && end == 0) error = "the sender ended before the window closed";
  if (error.empty()) {
    r.seconds = static_cast<double>(end - start) / 1e9;
    r.mean_msgs_per_s = static_cast<double>(stop_at - start_count) / r.seconds;
    r.msgs_per_s = median(slice_rates);
    r.bytes_per_s = r.msgs_per_s * static_cast<double>(payload);
  }
  r.error = error;
  return r;
}

}  // namespace mqbench
