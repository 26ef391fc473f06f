// ipc_libmq: libmq between two processes next to the floors measured in the same run (floors.hpp): round trips per
// wait strategy and payload size, one-way throughput 1P->1C through publish and claim (by a shared producer and by
// an exclusive one, whose claim takes no locked instruction), and the many-process
// patterns (4 producers -> a group of 2, 1 producer -> 3 groups). Every ratio in bench/RESULTS.md divides a row of
// this binary (or of ipc_peers / ipc_iceoryx / the Node bench) by a floor row of this binary's same run.
// Topics live in a private namespace (MQ_NAMESPACE=ipc-PID); their names are removed after each case.
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fanout.hpp"
#include "floors.hpp"
#include "libmq_transport.hpp"
#include "report.hpp"

namespace {

using mqbench::CaseResult;

// What a topic costs: the size of its shared-memory file next to its capacity (the rest is the segment header).
CaseResult topic_footprint(const std::string& ns) {
  constexpr std::size_t kCapacity = std::size_t{1} << 20;
  CaseResult r{.transport = "libmq",
               .mode = "embedded",
               .kind = "memory",
               .pattern = "one topic",
               .api = "segment file",
               .load_before = mqbench::load_average()};
  const std::string name = "footprint";
  if (auto made = mq::Topic::create(name, {.capacity = kCapacity}); !made) {
    r.error = "create topic " + name + ": " + std::string(made.error().message());
    return r;
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size("/dev/shm/mq@" + ns + "@" + name, ec);
  (void)mq::Topic::remove(name);
  if (ec) {
    r.error = "size of /dev/shm/mq@" + ns + "@" + name + ": " + ec.message();
    return r;
  }
  r.note = "a " + std::to_string(kCapacity >> 20) + " MiB topic's file is " + std::to_string(bytes) +
           " bytes: capacity + a " + std::to_string(bytes - kCapacity) + "-byte header";
  r.extra = {{"file_bytes", static_cast<double>(bytes)},
             {"capacity_bytes", static_cast<double>(kCapacity)},
             {"header_bytes", static_cast<double>(bytes - kCapacity)}};
  return r;
}
using mqbench::LibmqTransport;

// What a consumer with the default wait costs while nothing comes: its thread's CPU time over a poll that times
// out after `seconds` (it spins ~20 us, then sleeps on the futex in 100 ms slices).
CaseResult idle_consumer(double seconds) {
  CaseResult r{.transport = "libmq",
               .mode = "default",
               .kind = "idle",
               .pattern = "1 consumer, no producer",
               .api = "poll (timeout)",
               .load_before = mqbench::load_average()};
  const std::string name = "idle";
  auto topic = mq::Topic::create(name, {.groups = {"bench"}});
  if (!topic) {
    r.error = "create topic " + name + ": " + std::string(topic.error().message());
    return r;
  }
  auto consumer = mq::Consumer::make(*topic, {.group = "bench", .wait = mq::Wait::spin_futex});
  if (!consumer) {
    (void)mq::Topic::remove(name);
    r.error = "consumer: " + std::string(consumer.error().message());
    return r;
  }
  const auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  const double cpu0 = cpu();
  const std::uint64_t t0 = mqbench::now_ns();
  auto msg = consumer->poll(std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9)));
  const double wall = static_cast<double>(mqbench::now_ns() - t0) / 1e9;
  const double used = cpu() - cpu0;
  (void)mq::Topic::remove(name);
  if (msg || msg.error().code() != mq::Errc::timed_out) {
    r.error = msg ? "a record arrived on a topic nobody publishes to" : std::string(msg.error().message());
    return r;
  }
  r.seconds = wall;
  r.extra = {{"cpu_seconds", used}, {"core_fraction", used / wall}};
  char note[160];
  std::snprintf(note, sizeof note, "CPU %.3f ms over %.2f s idle (%.3f %% of a core)", used * 1e3, wall,
                100.0 * used / wall);
  r.note = note;
  return r;
}

// Runs one case of `t` unless --only filters it out; `api` labels the row.
template <class Run>
void run_case(mqbench::Transport& t, const mqbench::RunOptions& o, const char* kind, std::size_t payload,
              const std::string& api, std::vector<CaseResult>& results, Run run) {
  const CaseResult probe{.transport = t.name(), .mode = t.mode(), .kind = kind, .api = api, .payload = payload};
  if (!o.wants(mqbench::case_name(probe))) return;
  CaseResult r = run();
  r.api = api;
  results.push_back(std::move(r));
  mqbench::print_row(results.back());
}

void rtt(mqbench::Transport& t, const mqbench::RunOptions& o, std::size_t payload, const std::string& api,
         std::vector<CaseResult>& results) {
  run_case(t, o, "rtt", payload, api, results,
           [&] { return mqbench::round_trip(t, payload, o.iterations_for(payload), o.warmup_for(payload)); });
}

void flow(mqbench::Transport& t, const mqbench::RunOptions& o, std::size_t payload, const std::string& api,
          std::vector<CaseResult>& results) {
  run_case(t, o, "throughput", payload, api, results,
           [&] { return mqbench::throughput(t, payload, o.seconds, o.warmup_seconds); });
}

}  // namespace

int main(int argc, char** argv) {
  mqbench::RunOptions o{.tool = "ipc_libmq"};
  if (const int code = mqbench::parse_run_options(
          argc, argv, o,
          "libmq between two processes (RTT per wait strategy at 64 B, 4 KiB, 1 MiB; throughput 1P->1C, 4P->group\n"
          "  of 2, 1P->3 groups, batches of 1, 8, 32, 256; publish and claim by a shared and by an exclusive\n"
          "  producer) next to the floors of the same run: raw cache-line ping-pong, raw futex ping-pong,\n"
          "  raw SPSC ring.");
      code >= 0)
    return code;
  const std::string ns = "ipc-" + std::to_string(::getpid());
  ::setenv("MQ_NAMESPACE", ns.c_str(), 1);  // the children inherit it
  const mqbench::Machine machine = mqbench::describe_machine();
  mqbench::print_machine_header(machine, o);
  std::vector<CaseResult> results;

  mqbench::PingPong spin(false), futex(true);
  mqbench::SpscRing spsc;
  LibmqTransport busy(mq::Wait::busy_spin, LibmqTransport::Api::copy);
  LibmqTransport busy_claim(mq::Wait::busy_spin, LibmqTransport::Api::claim);
  // The exclusive producer: its claim takes no locked instruction (and the group's lone member's take none either).
  LibmqTransport busy_excl(mq::Wait::busy_spin, LibmqTransport::Api::copy, 0, 1, true);
  LibmqTransport busy_claim_excl(mq::Wait::busy_spin, LibmqTransport::Api::claim, 0, 1, true);
  LibmqTransport spin_futex(mq::Wait::spin_futex, LibmqTransport::Api::copy);
  LibmqTransport blocking(mq::Wait::futex, LibmqTransport::Api::copy);
  // The ring's size is the user's throughput knob: a ring larger than the consumer's caches means the producer's
  // writes find lines no other core holds (measured next to the default 1 MiB).
  LibmqTransport busy_big(mq::Wait::busy_spin, LibmqTransport::Api::copy, std::size_t{16} << 20);
  // Batches: one claim for B records on the producer's side, one take for up to 63 on the consumer's.
  std::vector<std::unique_ptr<LibmqTransport>> batched;
  for (const std::size_t b : {std::size_t{1}, std::size_t{8}, std::size_t{32}, std::size_t{256}})
    batched.push_back(std::make_unique<LibmqTransport>(mq::Wait::busy_spin, LibmqTransport::Api::batch, 0, b));

  if (o.wants("libmq embedded memory one topic")) {
    results.push_back(topic_footprint(ns));
    std::printf("%-58s %s\n", "libmq topic footprint",
                results.back().error.empty() ? results.back().note.c_str() : results.back().error.c_str());
  }

  if (o.wants("libmq default idle")) {
    results.push_back(idle_consumer(std::min(o.seconds, 1.0)));
    std::printf("%-58s %s\n", "libmq default wait, idle consumer",
                results.back().error.empty() ? results.back().note.c_str() : results.back().error.c_str());
  }

  // Round trips. The floors first, so every later row can be read against them.
  rtt(spin, o, 64, "4 B counter", results);
  rtt(futex, o, 64, "4 B counter, a wake-up per message", results);
  rtt(spsc, o, 64, "copy", results);
  for (const std::size_t payload : {std::size_t{64}, std::size_t{4096}, std::size_t{1} << 20}) {
    rtt(busy, o, payload, busy.api(), results);
    rtt(busy_claim, o, payload, busy_claim.api(), results);
  }
  rtt(busy_excl, o, 64, busy_excl.api(), results);
  rtt(busy_claim_excl, o, 64, busy_claim_excl.api(), results);
  // A 24 B record fits one cache line with its 40-byte header, a 64 B one takes two (and any header would): the
  // most a compact header could gain, for payloads it would bring down to one line.
  rtt(busy, o, 24, busy.api(), results);
  rtt(spin_futex, o, 64, spin_futex.api(), results);
  rtt(blocking, o, 64, blocking.api(), results);

  // One-way throughput, 1P->1C, each side on its own core.
  for (const std::size_t payload : {std::size_t{64}, std::size_t{4096}}) {
    flow(spsc, o, payload, "copy", results);
    flow(busy, o, payload, busy.api(), results);
    flow(busy_claim, o, payload, busy_claim.api(), results);
    flow(busy_excl, o, payload, busy_excl.api(), results);
    flow(busy_claim_excl, o, payload, busy_claim_excl.api(), results);
    flow(busy_big, o, payload, busy_big.api(), results);
    flow(spin_futex, o, payload, spin_futex.api(), results);
  }
  flow(busy, o, 24, busy.api(), results);
  for (auto& t : batched) flow(*t, o, 64, t->api(), results);

  // Many processes on two cores: the default wait, throughput only.
  // Then the cost of key ordering: one producer's keyed records (16 keys) to a group of 2, ordering none, then key.
  const mqbench::Fanout patterns[] = {
      {.producers = 4, .groups = 1, .members = 2, .pattern = "4p-group2"},
      {.producers = 1, .groups = 3, .members = 1, .pattern = "1p-3groups"},
      {.producers = 1, .groups = 1, .members = 2, .pattern = "1p-group2-keyed", .keys = 16},
      {.producers = 1, .groups = 1, .members = 2, .pattern = "1p-group2-keyed", .keys = 16,
       .ordering = mq::Ordering::key}};
  int case_number = 0;
  for (const auto& f : patterns) {
    for (const std::size_t payload : {std::size_t{64}, std::size_t{4096}}) {
      if (f.keys > 0 && payload != 64) continue;
      const std::string api = f.keys == 0 ? "publish" : "publish, ordering " + std::string(mq::ordering_name(f.ordering));
      const CaseResult probe{.transport = "libmq",
                             .mode = "default",
                             .kind = "throughput",
                             .pattern = f.pattern,
                             .api = api,
                             .payload = payload};
      if (!o.wants(mqbench::case_name(probe))) continue;
      results.push_back(mqbench::fanout_throughput(f, payload, o.seconds, o.warmup_seconds, ++case_number));
      results.back().api = api;
      mqbench::print_row(results.back());
    }
  }
  return mqbench::finish_run(o, machine, results);
}
