// ipc_iceoryx: iceoryx 2.0 as a peer of libmq, through the same drivers (bench/harness.hpp): RTT at 64 B, 4 KiB and
// 1 MiB and throughput 1P->1C at 64 B and 4 KiB, with the receiver busy-polling take() ("busy") or waiting in a
// WaitSet ("blocking"). The binary starts its own iox-roudi (bench/iceoryx/roudi.toml) and stops it at the end.
//
// Processes: main never registers with RouDi. Each case runs in a fresh case runner forked from main (iceoryx's
// runtime is once per process and must not cross fork); the driver forks its child from the runner before either
// registers. See bench/iceoryx/case_runner.hpp.
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"
#include "iceoryx/case_runner.hpp"
#include "iceoryx/roudi.hpp"
#include "iceoryx/transport.hpp"
#include "machine.hpp"
#include "report.hpp"

namespace {

using mqbench::CaseResult;
using mqbench::iox_bench::IoxTransport;

constexpr const char* kWhat =
    "iceoryx 2.0 (UntypedPublisher loan+publish, UntypedSubscriber take+release, copying), receiver busy-polling\n"
    "  or waiting in a WaitSet; starts its own iox-roudi and stops it at the end (fails if another RouDi runs).\n"
    "  --roudi PATH          iox-roudi to start (else $MQ_BENCH_IOX_ROUDI, else " MQ_BENCH_IOX_ROUDI
    ")\n"
    "  --roudi-config FILE   its mempool config (else $MQ_BENCH_IOX_CONFIG, else\n"
    "                        " MQ_BENCH_IOX_CONFIG ")";

constexpr std::uint64_t kClientsLeaveTimeoutNs = 5'000'000'000;  // RouDi's keep-alive timeout is 1.5 s

struct IoxPaths {
  std::string roudi = MQ_BENCH_IOX_ROUDI;
  std::string config = MQ_BENCH_IOX_CONFIG;
};

// Takes --roudi / --roudi-config out of argv (the rest goes to parse_run_options); the environment is the fallback.
// Returns -1 to go on, or 2 for a missing value.
int take_iox_options(int& argc, char** argv, IoxPaths& paths) {
  if (const char* env = std::getenv("MQ_BENCH_IOX_ROUDI"); env != nullptr && *env != '\0') paths.roudi = env;
  if (const char* env = std::getenv("MQ_BENCH_IOX_CONFIG"); env != nullptr && *env != '\0') paths.config = env;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a != "--roudi" && a != "--roudi-config") {
      argv[kept++] = argv[i];
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "ipc_iceoryx: %s wants a path\n", argv[i]);
      return 2;
    }
    (a == "--roudi" ? paths.roudi : paths.config) = argv[++i];
  }
  argc = kept;
  argv[argc] = nullptr;
  return -1;
}

std::string megabytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// "reserves 143.0 MB of shared memory at start (iceoryx_mgmt 66.1 MB + root 76.9 MB); VmRSS 146.4 MB"
std::string describe_memory(const mqbench::iox_bench::Roudi& roudi) {
  const auto segments = roudi.reserved_segments();
  std::uint64_t total = 0;
  std::string parts;
  for (const auto& s : segments) {
    total += s.bytes;
    parts += (parts.empty() ? "" : " + ") + s.name + " " + megabytes(s.bytes);
  }
  std::string text = segments.empty() ? "reserved shared memory unknown (no \"Reserving\" lines in its log)"
                                      : "reserves " + megabytes(total) + " of shared memory at start (" + parts + ")";
  if (const std::uint64_t rss = roudi.resident_bytes(); rss != 0) text += "; VmRSS " + megabytes(rss);
  return text;
}

// Removes what this run's iceoryx runtimes left in /tmp: a driver child leaves by _exit, so its runtime never
// unregisters (RouDi drops it after its keep-alive times out) nor removes its socket /tmp/<runtime name> and lock
// file /tmp/<runtime name>.lock. Call when no process of the case lives.
void remove_runtime_leftovers(const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename();
    if (name.rfind(prefix, 0) == 0) std::filesystem::remove(entry.path(), ec);
  }
}

// Generous: set-up (RouDi connects ports every 100 ms), plus 2 ms per MiB per round trip, plus the windows.
long case_deadline_ms(const CaseResult& c, const mqbench::RunOptions& o) {
  constexpr long kSetupMs = 60'000;
  if (c.kind == "throughput") return kSetupMs + static_cast<long>((o.seconds + o.warmup_seconds) * 1000);
  const double per_round_trip_ms = 0.02 + 2.0 * static_cast<double>(c.payload) / (1 << 20);
  return kSetupMs + static_cast<long>(static_cast<double>(o.iterations + o.warmup) * per_round_trip_ms);
}

}  // namespace

int main(int argc, char** argv) {
  mqbench::RunOptions o;
  o.tool = "ipc_iceoryx";
  IoxPaths paths;
  if (const int code = take_iox_options(argc, argv, paths); code >= 0) return code;
  if (const int code = mqbench::parse_run_options(argc, argv, o, kWhat); code >= 0) return code;
  if (::access(paths.roudi.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "ipc_iceoryx: cannot run iox-roudi at %s: %s (set --roudi or MQ_BENCH_IOX_ROUDI)\n",
                 paths.roudi.c_str(), std::strerror(errno));
    return 1;
  }
  if (::access(paths.config.c_str(), R_OK) != 0) {
    std::fprintf(stderr,
                 "ipc_iceoryx: cannot read the RouDi config %s: %s (set --roudi-config or "
                 "MQ_BENCH_IOX_CONFIG)\n",
                 paths.config.c_str(), std::strerror(errno));
    return 1;
  }

  cpu_set_t all_cores;  // before print_machine_header pins this process: RouDi runs on any core
  CPU_ZERO(&all_cores);
  ::sched_getaffinity(0, sizeof all_cores, &all_cores);
  mqbench::iox_bench::install_interrupt_handlers();
  mqbench::iox_bench::Roudi roudi;
  if (std::string error; !roudi.start(paths.roudi, paths.config, all_cores, error)) {
    std::fprintf(stderr, "ipc_iceoryx: %s\n", error.c_str());
    return 1;
  }
  const std::string memory = describe_memory(roudi);
  std::printf("roudi:   %s (pid %d, %s) %s\n", paths.roudi.c_str(), static_cast<int>(roudi.pid()), paths.config.c_str(),
              memory.c_str());
  const mqbench::Machine machine = mqbench::describe_machine();
  mqbench::print_machine_header(machine, o);

  const std::string runtime_prefix = "mqbench-iox-" + std::to_string(::getpid()) + "-";
  std::vector<CaseResult> results;
  int case_index = 0;
  for (const auto mode : {IoxTransport::Mode::busy, IoxTransport::Mode::blocking}) {
    std::vector<CaseResult> grid;
    const std::string mode_name = IoxTransport::mode_name(mode);
    for (const std::size_t p : {std::size_t{64}, std::size_t{4096}, std::size_t{1} << 20})
      grid.push_back({.transport = "iceoryx", .mode = mode_name, .kind = "rtt", .payload = p});
    for (const std::size_t p : {std::size_t{64}, std::size_t{4096}})
      grid.push_back({.transport = "iceoryx", .mode = mode_name, .kind = "throughput", .payload = p});
    for (const CaseResult& c : grid) {
      if (!o.wants(mqbench::case_name(c)) || mqbench::iox_bench::g_interrupted.load() != 0) continue;
      if (!roudi.running()) {
        results.push_back(c);
        const std::string log = roudi.log();
        results.back().error = "iox-roudi is no longer running; the end of its log:\n" +
                               log.substr(log.size() > 2000 ? log.size() - 2000 : 0);
      } else {
        const int index = case_index++;
        results.push_back(mqbench::iox_bench::run_in_fresh_process(c, case_deadline_ms(c, o), [&] {
          IoxTransport t(mode, index, runtime_prefix);
          return c.kind == "rtt" ? mqbench::round_trip(t, c.payload, o.iterations, o.warmup)
                                 : mqbench::throughput(t, c.payload, o.seconds, o.warmup_seconds);
        }));
      }
      if (results.size() == 1) results.back().note = "iox-roudi " + memory;
      mqbench::print_row(results.back());
      remove_runtime_leftovers(runtime_prefix);
    }
  }

  // RouDi drops a driver child (which leaves by _exit, unregistered) ~1.5 s after it died; stopping RouDi before
  // that makes it abort without cleaning up (see Roudi::wait_until_clients_left).
  if (std::string error; !roudi.wait_until_clients_left(kClientsLeaveTimeoutNs, error))
    std::fprintf(stderr, "ipc_iceoryx: %s\n", error.c_str());
  roudi.stop();
  remove_runtime_leftovers(runtime_prefix);
  if (const int signo = mqbench::iox_bench::g_interrupted.load(); signo != 0) {
    std::fprintf(stderr, "ipc_iceoryx: interrupted by signal %d; RouDi stopped\n", signo);
    return 128 + signo;
  }
  return mqbench::finish_run(o, machine, results);
}
