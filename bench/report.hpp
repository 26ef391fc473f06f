// What every cross-process bench binary shares around the drivers: its command line (--quick, --smoke, --json,
// --only), the machine header on stdout, one printed row per case, and the JSON file the report script merges
// (bench/report.py writes bench/results/latest.json, the RESULTS.md table and the plots from these files).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "machine.hpp"

namespace mqbench {

struct RunOptions {
  std::string tool{};                // the binary's name, for its JSON
  std::size_t iterations = 200'000;  // recorded round trips per RTT case
  std::size_t warmup = 20'000;
  double seconds = 2.0;  // throughput window per case
  double warmup_seconds = 0.5;
  std::string json{};  // --json FILE
  std::string only{};  // --only TEXT: cases whose name contains TEXT
  std::string profile = "full";

  // A 1 MiB round trip costs copies of 1 MiB in most transports: a tenth of the round trips (at least 100) keeps
  // the full run in minutes.
  std::size_t iterations_for(std::size_t payload) const {
    return payload >= (std::size_t{1} << 20) ? std::max<std::size_t>(100, iterations / 10) : iterations;
  }
  std::size_t warmup_for(std::size_t payload) const {
    return payload >= (std::size_t{1} << 20) ? std::max<std::size_t>(10, warmup / 10) : warmup;
  }

  bool wants(std::string_view case_name) const {
    return only.empty() || case_name.find(only) != std::string_view::npos;
  }
};

inline void print_run_usage(FILE* out, const char* tool, const char* what) {
  std::fprintf(out,
               "usage: %s [--quick | --smoke] [--iterations N] [--seconds S] [--only TEXT] [--json FILE]\n"
               "  %s\n"
               "  Parent pinned to core 0, forked child to core 1; every round trip recorded; throughput counted\n"
               "  over a window with every sequence number checked.\n"
               "  (default)       full run: 200000 round trips per RTT case (20000 warm-up), 2 s throughput windows\n"
               "  --quick         20000 round trips (2000 warm-up), 0.5 s windows: the whole suite in under 3 min\n"
               "  --smoke         a few hundred of each: checks the binary works, measures nothing (CI)\n"
               "  --iterations N  recorded round trips per RTT case (warm-up is a tenth)\n"
               "  --seconds S     throughput window per case\n"
               "  --only TEXT     only the cases whose name contains TEXT\n"
               "  --json FILE     also write the results as JSON (merged by bench/report.py)\n",
               tool, what);
}

// Parses the shared options; returns -1 to go on, or the exit code (0 for --help, 2 for a bad option).
inline int parse_run_options(int argc, char** argv, RunOptions& o, const char* what) {
  const char* tool = o.tool.c_str();
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    char* end = nullptr;
    if (a == "--quick") {
      o.profile = "quick";
      o.iterations = 20'000;
      o.warmup = 2'000;
      o.seconds = 0.5;
      o.warmup_seconds = 0.1;
    } else if (a == "--smoke") {
      o.profile = "smoke";
      o.iterations = 300;
      o.warmup = 30;
      o.seconds = 0.02;
      o.warmup_seconds = 0.005;
    } else if (a == "--iterations" && has_value) {
      errno = 0;
      const unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (errno != 0 || *end != '\0' || v == 0 || v > 100'000'000) {
        std::fprintf(stderr, "%s: --iterations wants a count from 1 to 100000000, got '%s'\n", tool, argv[i]);
        return 2;
      }
      o.iterations = v;
      o.warmup = v / 10;
    } else if (a == "--seconds" && has_value) {
      errno = 0;
      const double v = std::strtod(argv[++i], &end);
      if (errno != 0 || *end != '\0' || !(v > 0 && v <= 600)) {
        std::fprintf(stderr, "%s: --seconds wants a number of seconds in (0, 600], got '%s'\n", tool, argv[i]);
        return 2;
      }
      o.seconds = v;
    } else if (a == "--only" && has_value) {
      o.only = argv[++i];
    } else if (a == "--json" && has_value) {
      o.json = argv[++i];
    } else if (a == "--help" || a == "-h") {
      print_run_usage(stdout, tool, what);
      return 0;
    } else {
      std::fprintf(stderr, "%s: unknown option or missing value: '%s'\n", tool, argv[i]);
      print_run_usage(stderr, tool, what);
      return 2;
    }
  }
  return -1;
}

inline std::string case_name(const CaseResult& r) {
  std::string name =
      r.transport + " " + r.mode + " " + r.kind + " " + r.pattern + " " + std::to_string(r.payload) + "B";
  if (!r.api.empty()) name += " " + r.api;
  return name;
}

// The machine, once, at the top of a binary's output. Pins the caller (the parent) to core 0.
inline void print_machine_header(const Machine& m, const RunOptions& o) {
  const bool pinned = m.usable_cores >= 2 && pin_to_core(kParentCore);
  std::printf("machine: %s; %ld cores online, %d usable; %s\n", m.cpu.c_str(), m.online_cores, m.usable_cores,
              pinned ? "parent on core 0, child on core 1" : "NOT pinned (cores 0 and 1 not both usable)");
  std::printf("kernel:  %s; clock %s; %s\n", m.kernel.c_str(), m.clocksource.c_str(), m.compiler.c_str());
  std::printf("memory:  a 4 KiB page of shared memory read through a fresh mapping: first read %.0f ns, then %.0f ns\n",
              m.page_first_read_ns, m.page_read_ns);
#ifndef NDEBUG
  std::printf("build:   no NDEBUG: not a Release build, numbers not representative\n");
#endif
  std::printf("run:     %s: %zu round trips (%zu warm-up) per RTT case, %.2f s throughput windows; load %s\n\n",
              o.profile.c_str(), o.iterations, o.warmup, o.seconds, load_average().c_str());
  std::printf("%-58s %9s %9s %9s %9s %9s %10s\n", "case", "p50 ns", "p90", "p99", "p99.9", "max", "msgs/s");
  std::fflush(stdout);
}

inline void print_row(const CaseResult& r) {
  const std::string name = case_name(r);
  if (r.skipped) {
    std::printf("%-58s skipped: %s\n", name.c_str(), r.error.c_str());
  } else if (!r.error.empty()) {
    std::printf("%-58s FAILED: %s\n", name.c_str(), r.error.c_str());
  } else if (r.latency) {
    const auto& s = *r.latency;
    std::printf("%-58s %9llu %9llu %9llu %9llu %9llu\n", name.c_str(), static_cast<unsigned long long>(s.p50),
                static_cast<unsigned long long>(s.p90), static_cast<unsigned long long>(s.p99),
                static_cast<unsigned long long>(s.p999), static_cast<unsigned long long>(s.max));
  } else {
    std::printf("%-58s %9s %9s %9s %9s %9s %10.0f\n", name.c_str(), "", "", "", "", "", r.msgs_per_s);
  }
  std::fflush(stdout);
}

// Writes {"tool", "profile", "machine", "cases": [...]}; false (errno set) when the file cannot be written.
inline bool write_results(const std::string& path, const RunOptions& o, const Machine& m,
                          const std::vector<CaseResult>& results) {
  using Json = nlohmann::ordered_json;
  Json cases = Json::array();
  for (const auto& r : results) {
    Json c = {{"transport", r.transport}, {"mode", r.mode},       {"kind", r.kind},
              {"pattern", r.pattern},     {"api", r.api},         {"payload_bytes", r.payload},
              {"load_before", r.load_before}};
    if (r.skipped) {
      c["skipped"] = r.error;
    } else if (!r.error.empty()) {
      c["error"] = r.error;
    } else if (r.latency) {
      const auto& s = *r.latency;
      c["samples"] = s.samples;
      c["ns"] = {{"min", s.min}, {"mean", s.mean}, {"p50", s.p50},       {"p90", s.p90},
                 {"p99", s.p99}, {"p99.9", s.p999}, {"p99.99", s.p9999}, {"max", s.max}};
    } else {
      c["seconds"] = r.seconds;
      c["msgs_per_s"] = r.msgs_per_s;
      c["mean_msgs_per_s"] = r.mean_msgs_per_s;
      c["bytes_per_s"] = r.bytes_per_s;
    }
    for (const auto& [key, value] : r.extra) c[key] = value;
    if (!r.note.empty()) c["note"] = r.note;
    cases.push_back(std::move(c));
  }
  const Json out = {{"tool", o.tool},
                    {"profile", o.profile},
                    {"machine",
                     {{"cpu", m.cpu},
                      {"online_cores", m.online_cores},
                      {"usable_cores", m.usable_cores},
                      {"kernel", m.kernel},
                      {"clocksource", m.clocksource},
                      {"compiler", m.compiler},
                      {"page_first_read_ns", m.page_first_read_ns},
                      {"page_read_ns", m.page_read_ns}}},
                    {"cases", std::move(cases)}};
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const std::string text = out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && written;
}

// Runs the standard grid for one transport: RTT at each of `rtt_payloads`, throughput at each of `tp_payloads`
// (1P->1C), each only when --only lets it; prints and collects the rows.
inline void run_grid(Transport& t, const RunOptions& o, const std::vector<std::size_t>& rtt_payloads,
                     const std::vector<std::size_t>& tp_payloads, std::vector<CaseResult>& results) {
  for (const std::size_t p : rtt_payloads) {
    CaseResult probe{.transport = t.name(), .mode = t.mode(), .kind = "rtt", .payload = p};
    if (!o.wants(case_name(probe))) continue;
    results.push_back(round_trip(t, p, o.iterations_for(p), o.warmup_for(p)));
    print_row(results.back());
  }
  for (const std::size_t p : tp_payloads) {
    CaseResult probe{.transport = t.name(), .mode = t.mode(), .kind = "throughput", .payload = p};
    if (!o.wants(case_name(probe))) continue;
    results.push_back(throughput(t, p, o.seconds, o.warmup_seconds));
    print_row(results.back());
  }
}

// Writes --json if asked; the exit code: 1 when a case failed (skips are not failures) or the file could not be
// written, else 0.
inline int finish_run(const RunOptions& o, const Machine& m, const std::vector<CaseResult>& results) {
  bool failed = false;
  for (const auto& r : results) failed |= !r.skipped && !r.error.empty();
  std::printf("\nload:    %s after the run\n", load_average().c_str());
  if (!o.json.empty() && !write_results(o.json, o, m, results)) {
    std::fprintf(stderr, "%s: cannot write %s: %s\n", o.tool.c_str(), o.json.c_str(), std::strerror(errno));
    return 1;
  }
  return failed ? 1 : 0;
}

}  // namespace mqbench
