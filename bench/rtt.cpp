// rtt: cross-process round-trip latency of libmq next to its floors, measured in the same run: a raw cache-line
// ping-pong between the same two processes, and the same with a futex sleep and wake on every message. The parent
// is pinned to core 0, a forked child to core 1; the parent sends, the child echoes, and the parent records every
// round trip (CLOCK_MONOTONIC, ns) after a warm-up.
//
//   rtt [--iterations N] [--warmup N] [--quick] [--json FILE]
//
// libmq cases: 64 B with Wait::busy_spin, spin_futex (the default) and futex (sleeps at once), copying: the parent
// publish()es a 64 B buffer, the child publish()es what it polled, the parent compares all 64 bytes, so the payload
// crosses the cores both ways. Then 64 B, 4 KiB and 1 MiB busy-poll through claim() with only the first 8 bytes
// written and read: the cost of the record path, not of memcpy.
// Topics live in a private namespace (MQ_NAMESPACE=rtt-PID); their names are removed as soon as both processes
// have them mapped. The child dies with the parent.
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "libmq/libmq.hpp"
#include "machine.hpp"
#include "percentiles.hpp"
#include "process.hpp"

namespace {

using namespace std::chrono_literals;
using mqbench::now_ns;

constexpr int kParentCore = 0;
constexpr int kChildCore = 1;
constexpr auto kPollTimeout = 10s;     // a peer silent this long has failed
constexpr auto kReapTimeout = 30s;     // the child exits right after its last echo
constexpr std::uint64_t kRawTimeoutNs = 10'000'000'000;  // raw cases: a peer silent this long has failed
constexpr std::string_view kGroup = "rtt";

struct Options {
  std::size_t iterations = 200'000;
  std::size_t warmup = 0;  // 0: iterations / 10, at least 1000
  std::string json;
};

enum class Kind { raw_spin, raw_futex, copy, claim };

struct Case {
  std::string name;
  Kind kind;
  std::size_t payload;
  mq::Wait wait = mq::Wait::busy_spin;
  std::size_t capacity = std::size_t{1} << 20;
};

struct Outcome {
  const Case* spec;
  std::optional<mqbench::Summary> summary;  // empty: the case failed
  std::string error;
  std::size_t warmup = 0;
};

const char* wait_name(mq::Wait w) {
  switch (w) {
    case mq::Wait::busy_spin: return "busy_spin";
    case mq::Wait::spin_yield: return "spin_yield";
    case mq::Wait::spin_futex: return "spin_futex";
    case mq::Wait::futex: return "futex";
  }
  return "?";
}

// ---- the floors: raw ping-pong, spinning or sleeping on a futex -----------------------------------------------

// One counter per direction, each on its own 64-byte line, 128 bytes apart (the adjacent-line prefetcher pairs lines).
// 32-bit, so the futex floor can sleep on the same words.
struct alignas(128) Line {
  std::atomic<std::uint32_t> value{0};
};
struct PingPong {
  Line ping;  // written by the parent only
  Line pong;  // written by the child only
};
static_assert(sizeof(PingPong) == 256 && std::atomic<std::uint32_t>::is_always_lock_free);

// Cross-process futex (no FUTEX_PRIVATE_FLAG: the words live in a MAP_SHARED mapping).
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen) {
  timespec slice{0, 100'000'000};  // wake up to re-check the deadline every 100 ms
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, &slice, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Waits for `theirs` to reach i, spinning or sleeping on its futex. False after kRawTimeoutNs without it.
bool wait_for(std::atomic<std::uint32_t>& theirs, std::uint32_t i, bool sleeping) {
  // acquire/release: the counter is the message; nothing else is published with it.
  if (!sleeping) return mqbench::spin_until([&] { return theirs.load(std::memory_order_acquire) == i; }, kRawTimeoutNs);
  std::uint64_t deadline = 0;
  for (unsigned sleeps = 0;; ++sleeps) {
    const std::uint32_t seen = theirs.load(std::memory_order_acquire);
    if (seen == i) return true;
    if (sleeps == 1) deadline = now_ns() + kRawTimeoutNs;  // the clock only once a first sleep did not bring it
    else if (sleeps > 1 && now_ns() > deadline) return false;
    futex_wait(theirs, seen);
  }
}

// Sets `mine` to i and, when `sleeping`, wakes the peer that may sleep on it.
void post(std::atomic<std::uint32_t>& mine, std::uint32_t i, bool sleeping) {
  mine.store(i, std::memory_order_release);
  if (sleeping) futex_wake(mine);  // always: the floor of "a wake-up on every message"
}

std::optional<std::vector<std::uint64_t>> run_raw(bool sleeping, std::size_t iterations, std::size_t warmup,
                                                  std::string& error) {
  const std::size_t total = warmup + iterations;
  void* mem = ::mmap(nullptr, sizeof(PingPong), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    error = std::string("mmap: ") + std::strerror(errno);
    return std::nullopt;
  }
  auto* pp = new (mem) PingPong{};
  mqbench::Child child([&] {
    mqbench::pin_to_core(kChildCore);
    for (std::uint32_t i = 1; i <= total; ++i) {
      if (!wait_for(pp->ping.value, i, sleeping)) return 1;
      post(pp->pong.value, i, sleeping);
    }
    return 0;
  });
  std::vector<std::uint64_t> samples;
  samples.reserve(iterations);
  for (std::uint32_t i = 1; i <= total && child.started(); ++i) {
    const std::uint64_t t0 = now_ns();
    post(pp->ping.value, i, sleeping);
    if (!wait_for(pp->pong.value, i, sleeping)) {
      error = "no pong for ping " + std::to_string(i);
      break;
    }
    const std::uint64_t t1 = now_ns();
    if (i > warmup) samples.push_back(t1 - t0);
  }
  if (!child.started()) error = "fork failed";
  const int code = error.empty() ? child.wait(kReapTimeout) : 0;  // on error the destructor kills the child
  if (error.empty() && code != 0) error = "child exited with " + std::to_string(code);
  ::munmap(mem, sizeof(PingPong));
  if (!error.empty()) return std::nullopt;
  return samples;
}

// ---- libmq ---------------------------------------------------------------------------------------------------

std::uint64_t read_seq(std::span<const std::byte> payload) {
  std::uint64_t v = 0;
  std::memcpy(&v, payload.data(), sizeof v);
  return v;
}

// The child: polls the ping topic and echoes every record on the pong topic with its own handles.
int echo(const Case& c, const std::string& ping, const std::string& pong, std::size_t total) {
  mqbench::pin_to_core(kChildCore);
  auto in_topic = mq::Topic::open(ping);
  auto out_topic = mq::Topic::open(pong);
  if (!in_topic || !out_topic) {
    const auto& e = !in_topic ? in_topic.error() : out_topic.error();
    std::fprintf(stderr, "child: open: %s\n", std::string(e.message()).c_str());
    return 1;
  }
  mq::Consumer consumer(*in_topic, {.group = std::string(kGroup), .start = mq::Start::earliest, .wait = c.wait,
                                    .auto_ack = true});
  mq::Producer producer(*out_topic);
  for (std::size_t i = 0; i < total; ++i) {
    auto msg = consumer.poll(kPollTimeout);
    if (!msg) {
      std::fprintf(stderr, "child: poll %zu: %s\n", i, std::string(msg.error().message()).c_str());
      return 1;
    }
    if (c.kind == Kind::claim) {
      auto claim = producer.claim(msg->payload().size());
      if (!claim) {
        std::fprintf(stderr, "child: claim: %s\n", std::string(claim.error().message()).c_str());
        return 1;
      }
      std::memcpy(claim->bytes().data(), msg->payload().data(), sizeof(std::uint64_t));  // header-only touch
      if (auto r = std::move(*claim).commit(); !r) return 1;
    } else if (auto r = producer.publish(msg->payload()); !r) {
      std::fprintf(stderr, "child: publish: %s\n", std::string(r.error().message()).c_str());
      return 1;
    }
  }
  return 0;
}

// Removes the case's topic names once both processes have them mapped, or when the case ends, however it ends.
struct TopicNames {
  std::string ping, pong;
  bool removed = false;
  void remove() {
    if (removed) return;
    removed = true;
    (void)mq::Topic::remove(ping);  // not_found (already gone) is fine
    (void)mq::Topic::remove(pong);
  }
  ~TopicNames() { remove(); }
};

// Round trips that fill both rings once, so every ring page is mapped in both processes before recording: the
// first touch of a shared page costs a page fault in each process (steady state is what is measured here).
std::size_t one_lap(const Case& c) {
  const std::size_t record = 40 + ((c.payload + 7) & ~std::size_t{7});  // header + payload, as layout.hpp
  return c.capacity / record + 1;
}

std::optional<std::vector<std::uint64_t>> run_libmq(const Case& c, std::size_t index, std::size_t iterations,
                                                    std::size_t warmup, std::string& error) {
  const std::size_t total = warmup + iterations;
  TopicNames names{"ping-" + std::to_string(index), "pong-" + std::to_string(index)};
  const mq::TopicOptions topic_options{.capacity = c.capacity, .policy = mq::Policy::block,
                                       .groups = {std::string(kGroup)}};
  auto ping = mq::Topic::create(names.ping, topic_options);
  auto pong = mq::Topic::create(names.pong, topic_options);
  if (!ping || !pong) {
    error = std::string((!ping ? ping.error() : pong.error()).message());
    return std::nullopt;
  }
  mqbench::Child child([&] { return echo(c, names.ping, names.pong, total); });
  if (!child.started()) {
    error = "fork failed";
    return std::nullopt;
  }
  auto made_producer = mq::Producer::make(*ping);
  auto made_consumer = mq::Consumer::make(*pong, {.group = std::string(kGroup), .start = mq::Start::earliest,
                                                  .wait = c.wait, .auto_ack = true});
  if (!made_producer || !made_consumer) {
    error = std::string((!made_producer ? made_producer.error() : made_consumer.error()).message());
    return std::nullopt;  // the child is killed by its destructor
  }
  mq::Producer& producer = *made_producer;
  mq::Consumer& consumer = *made_consumer;
  std::vector<std::byte> sent(c.payload);
  for (std::size_t j = 0; j < sent.size(); ++j) sent[j] = static_cast<std::byte>(j * 7 + 1);
  std::vector<std::uint64_t> samples;
  samples.reserve(iterations);
  for (std::uint64_t i = 0; i < total; ++i) {
    const std::uint64_t t0 = now_ns();
    if (c.kind == Kind::claim) {
      auto claim = producer.claim(c.payload);
      if (!claim) {
        error = "claim: " + std::string(claim.error().message());
        break;
      }
      std::memcpy(claim->bytes().data(), &i, sizeof i);
      if (auto r = std::move(*claim).commit(); !r) {
        error = "commit: " + std::string(r.error().message());
        break;
      }
    } else {
      std::memcpy(sent.data(), &i, sizeof i);
      if (auto r = producer.publish(sent); !r) {
        error = "publish: " + std::string(r.error().message());
        break;
      }
    }
    auto msg = consumer.poll(kPollTimeout);
    if (!msg) {
      error = "poll: " + std::string(msg.error().message());
      break;
    }
    const auto got = msg->payload();
    const bool intact = got.size() == c.payload && read_seq(got) == i &&
                        (c.kind == Kind::claim || std::memcmp(got.data(), sent.data(), got.size()) == 0);
    const std::uint64_t t1 = now_ns();
    if (!intact) {
      error = "echo " + std::to_string(i) + " came back wrong (size " + std::to_string(got.size()) + ", seq " +
              std::to_string(read_seq(got)) + ")";
      break;
    }
    if (i >= warmup) samples.push_back(t1 - t0);
    // The first echo proves the child has both topics mapped: drop their names now (like an unlinked temp
    // file), so a run killed from here on leaves nothing in /dev/shm.
    if (i == 0) names.remove();
  }
  if (!error.empty()) return std::nullopt;  // the child is killed by its destructor, not awaited
  if (const int code = child.wait(kReapTimeout); code != 0) {
    error = "child exited with " + std::to_string(code);
    return std::nullopt;
  }
  return samples;
}

// ---- output ---------------------------------------------------------------------------------------------------

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out;
}

bool write_json(const std::string& path, const mqbench::Machine& m, const Options& o, std::size_t warmup,
                bool pinned, std::uint64_t timer_ns, const std::vector<Outcome>& outcomes, double raw_p50,
                const std::string& load_before, const std::string& load_after) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fprintf(f, "{\n  \"tool\": \"rtt\",\n  \"machine\": {\"cpu\": \"%s\", \"online_cores\": %ld, "
                  "\"usable_cores\": %d, \"kernel\": \"%s\", \"clocksource\": \"%s\", \"compiler\": \"%s\"},\n",
               json_escape(m.cpu).c_str(), m.online_cores, m.usable_cores, json_escape(m.kernel).c_str(),
               json_escape(m.clocksource).c_str(), json_escape(m.compiler).c_str());
  std::fprintf(f, "  \"iterations\": %zu, \"warmup\": %zu, \"pinned\": %s, \"timer_overhead_ns\": %llu,\n",
               o.iterations, warmup, pinned ? "true" : "false", static_cast<unsigned long long>(timer_ns));
  std::fprintf(f, "  \"loadavg_before\": \"%s\", \"loadavg_after\": \"%s\",\n", json_escape(load_before).c_str(),
               json_escape(load_after).c_str());
  std::fprintf(f, "  \"unit\": \"ns\",\n  \"cases\": [\n");
  for (std::size_t k = 0; k < outcomes.size(); ++k) {
    const auto& oc = outcomes[k];
    std::fprintf(f, "    {\"name\": \"%s\", \"payload_bytes\": %zu, \"wait\": \"%s\", \"warmup\": %zu, ",
                 json_escape(oc.spec->name).c_str(), oc.spec->payload,
                 oc.spec->kind == Kind::raw_spin    ? "spin"
                 : oc.spec->kind == Kind::raw_futex ? "futex"
                                                    : wait_name(oc.spec->wait), oc.warmup);
    if (oc.summary) {
      const auto& s = *oc.summary;
      std::fprintf(f, "\"samples\": %zu, \"min\": %llu, \"mean\": %.1f, \"p50\": %llu, \"p90\": %llu, \"p99\": %llu, "
                      "\"p99_9\": %llu, \"p99_99\": %llu, \"max\": %llu, \"p50_vs_raw\": %.2f}",
                   s.samples, static_cast<unsigned long long>(s.min), s.mean, static_cast<unsigned long long>(s.p50),
                   static_cast<unsigned long long>(s.p90), static_cast<unsigned long long>(s.p99),
                   static_cast<unsigned long long>(s.p999), static_cast<unsigned long long>(s.p9999),
                   static_cast<unsigned long long>(s.max), raw_p50 > 0 ? static_cast<double>(s.p50) / raw_p50 : 0.0);
    } else {
      std::fprintf(f, "\"error\": \"%s\"}", json_escape(oc.error).c_str());
    }
    std::fprintf(f, "%s\n", k + 1 < outcomes.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  return std::fclose(f) == 0;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: rtt [--iterations N] [--warmup N] [--quick] [--json FILE]\n"
               "  Cross-process round-trip latency of libmq (64 B busy_spin, spin_futex, futex; 64 B, 4 KiB and 1 MiB\n"
               "  claim with an 8-byte touch) next to raw spinning and futex ping-pongs measured in the same run.\n"
               "  Parent on core 0, forked child on core 1.\n"
               "  --iterations N  recorded round trips per case (default 200000)\n"
               "  --warmup N      unrecorded round trips first (default iterations/10, at least 1000; libmq cases\n"
               "                  at least one lap of their rings)\n"
               "  --quick         smoke run: 3000 iterations, 500 warm-up\n"
               "  --json FILE     also write the results as JSON\n");
}

bool parse_count(const char* text, std::size_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > 100'000'000) return false;
  out = static_cast<std::size_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--quick") {
      quick = true;
    } else if (a == "--iterations" && has_value) {
      if (!parse_count(argv[++i], o.iterations)) return usage(stderr), 2;
    } else if (a == "--warmup" && has_value) {
      if (!parse_count(argv[++i], o.warmup)) return usage(stderr), 2;
    } else if (a == "--json" && has_value) {
      o.json = argv[++i];
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (quick) {
    o.iterations = 3000;
    if (o.warmup == 0) o.warmup = 500;
  }
  const std::size_t warmup = o.warmup != 0 ? o.warmup : std::max<std::size_t>(1000, o.iterations / 10);

  const mqbench::Machine machine = mqbench::describe_machine();
  const bool pinned = machine.usable_cores >= 2 && mqbench::pin_to_core(kParentCore);
  const std::uint64_t timer = mqbench::timer_overhead_ns();
  std::printf("machine: %s\n", machine.cpu.c_str());
  std::printf("cores:   %ld online, %d usable; %s\n", machine.online_cores, machine.usable_cores,
              pinned ? "parent pinned to core 0, child to core 1" : "NOT pinned (cores 0 and 1 not both usable)");
  std::printf("kernel:  %s\n", machine.kernel.c_str());
  std::printf("clock:   CLOCK_MONOTONIC via %s, %llu ns per read (inside every sample)\n", machine.clocksource.c_str(),
              static_cast<unsigned long long>(timer));
  const std::string load_before = mqbench::load_average();
  std::printf("load:    %s (1, 5, 15 min) before the run\n", load_before.c_str());
  std::printf("build:   %s, %s\n", machine.compiler.c_str(),
#ifdef NDEBUG
              "NDEBUG (optimised build)"
#else
              "no NDEBUG: not a Release build, numbers not representative"
#endif
  );
  std::printf("run:     %zu recorded round trips per case after %zu warm-up (libmq: at least one lap of its rings);\n"
              "         every sample kept; nearest-rank percentiles; ns\n\n",
              o.iterations, warmup);
  std::fflush(stdout);

  const std::string ns = "rtt-" + std::to_string(::getpid());
  ::setenv("MQ_NAMESPACE", ns.c_str(), 1);  // the child inherits it

  const std::vector<Case> cases = {
      {"raw ping-pong (4 B counter per line)", Kind::raw_spin, 4},
      {"raw futex ping-pong (wake every time)", Kind::raw_futex, 4},
      {"libmq 64 B busy_spin", Kind::copy, 64, mq::Wait::busy_spin},
      {"libmq 64 B claim, 8 B touched, busy", Kind::claim, 64, mq::Wait::busy_spin},
      {"libmq 64 B spin_futex (default)", Kind::copy, 64, mq::Wait::spin_futex},
      {"libmq 64 B futex (sleeps at once)", Kind::copy, 64, mq::Wait::futex},
      {"libmq 4 KiB claim, 8 B touched, busy", Kind::claim, 4096, mq::Wait::busy_spin},
      {"libmq 1 MiB claim, 8 B touched, busy", Kind::claim, std::size_t{1} << 20, mq::Wait::busy_spin,
       std::size_t{8} << 20},
  };

  std::printf("%-40s %9s %9s %9s %9s %9s %9s  %s\n", "case", "p50", "p90", "p99", "p99.9", "p99.99", "max", "p50/raw");
  std::vector<Outcome> outcomes;
  double raw_p50 = 0;
  bool failed = false;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    std::string error;
    const bool raw = c.kind == Kind::raw_spin || c.kind == Kind::raw_futex;
    const std::size_t case_warmup = raw ? warmup : std::max(warmup, one_lap(c));
    auto samples = raw ? run_raw(c.kind == Kind::raw_futex, o.iterations, case_warmup, error)
                       : run_libmq(c, k, o.iterations, case_warmup, error);
    Outcome oc{&c, std::nullopt, error, case_warmup};
    if (samples) {
      oc.summary = mqbench::summarize(*samples);
      const auto& s = *oc.summary;
      if (c.kind == Kind::raw_spin) raw_p50 = static_cast<double>(s.p50);
      std::printf("%-40s %9llu %9llu %9llu %9llu %9llu %9llu  x%.2f\n", c.name.c_str(),
                  static_cast<unsigned long long>(s.p50), static_cast<unsigned long long>(s.p90),
                  static_cast<unsigned long long>(s.p99), static_cast<unsigned long long>(s.p999),
                  static_cast<unsigned long long>(s.p9999), static_cast<unsigned long long>(s.max),
                  raw_p50 > 0 ? static_cast<double>(s.p50) / raw_p50 : 0.0);
    } else {
      failed = true;
      std::printf("%-40s FAILED: %s\n", c.name.c_str(), error.c_str());
    }
    std::fflush(stdout);
    outcomes.push_back(std::move(oc));
  }
  const std::string load_after = mqbench::load_average();
  std::printf("\nload:    %s (1, 5, 15 min) after the run; the raw p50 is the floor every ratio divides by\n",
              load_after.c_str());
  if (!o.json.empty() &&
      !write_json(o.json, machine, o, warmup, pinned, timer, outcomes, raw_p50, load_before, load_after)) {
    std::fprintf(stderr, "cannot write %s: %s\n", o.json.c_str(), std::strerror(errno));
    return 1;
  }
  return failed ? 1 : 0;
}
