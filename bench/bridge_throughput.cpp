// bridge_throughput: mq-kafka-bridge's routes next to librdkafka alone, in ONE run against ONE mock cluster made in
// this process (librdkafka's rd_kafka_mock, so no Kafka is needed): the outbound route (libmq -> Kafka) beside a
// plain producer loop with the route's own librdkafka configuration, the inbound route (Kafka -> libmq) beside a
// plain consumer. Every ratio divides by the baseline of the same run; every wait has a deadline (a measurement that
// misses it fails, and the run exits 1). The mock keeps ~5 MiB per partition: volumes are checked against that.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge_measure.hpp"
#include "log.hpp"
#include "report.hpp"

namespace {

using namespace bridgebench;

// One row of the table: a measurement repeated, the baseline its ratios divide by (null for a baseline).
struct Series {
  std::string direction{};  // outbound | inbound
  std::string name{};
  std::function<Run(Bench&, int)> measure{};
  const Series* baseline = nullptr;
  std::vector<Run> runs{};  // the reported repeats
  std::string error{};      // the first failure
  std::string load_before{};

  // Records/s over the whole measurement, and after the first record (start-up left out), per repeat.
  std::vector<double> rates(std::size_t n) const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(static_cast<double>(n) / r.seconds);
    return v;
  }
  std::vector<double> steady_rates(std::size_t n) const {
    std::vector<double> v;
    for (const auto& r : runs)
      v.push_back(r.seconds > r.first ? static_cast<double>(n - 1) / (r.seconds - r.first) : 0);
    return v;
  }
  std::vector<double> firsts() const {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.first);
    return v;
  }
};

// `round` 0 is the warm-up (measured, not reported); 1..repeats are reported.
void measure(Bench& b, Series& s, int round) {
  if (round == 1) s.load_before = mqbench::load_average();
  const Run r = s.measure(b, round);
  if (!r.error.empty()) {
    if (s.error.empty()) s.error = (round == 0 ? "warm-up: " : "repeat " + std::to_string(round) + ": ") + r.error;
    std::fprintf(stderr, "bridge_throughput: %s %s, round %d: FAILED: %s\n", s.direction.c_str(), s.name.c_str(),
                 round, r.error.c_str());
    return;
  }
  if (round > 0) s.runs.push_back(r);
}

std::string thousands(double v) {
  std::string digits = std::to_string(static_cast<long long>(v + 0.5));
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(static_cast<std::size_t>(at), ",");
  return digits;
}

// "0.448 x 106,032": the ratio of the medians, with the baseline's median beside it.
std::string ratio(double mine, const Series* baseline, const std::vector<double>& base_values) {
  if (baseline == nullptr) return "baseline";
  if (!baseline->error.empty()) return "(baseline failed)";
  const double base = mqbench::median(base_values);
  if (!(base > 0 && mine > 0)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.3f x %s", mine / base, thousands(base).c_str());
  return text;
}

void print_table(const Bench& b, const std::vector<Series>& all) {
  const std::size_t n = b.records.count;
  std::printf("\n%-9s %-36s %10s %7s %18s %8s %10s %18s\n", "direction", "case", "records/s", "MB/s",
              "ratio x baseline", "1st ms", "after 1st", "ratio x baseline");
  for (const auto& s : all) {
    if (!b.o.only.empty() && s.direction != b.o.only) continue;
    std::printf("%-9s %-36s ", s.direction.c_str(), s.name.c_str());
    if (!s.error.empty()) {
      std::printf("FAILED: %s\n", s.error.c_str());
      continue;
    }
    const double rate = mqbench::median(s.rates(n)), steady = mqbench::median(s.steady_rates(n));
    const std::vector<double> none;
    std::printf(
        "%10s %7.2f %18s %8.1f %10s %18s\n", thousands(rate).c_str(), rate * static_cast<double>(b.o.size) / 1e6,
        ratio(rate, s.baseline, s.baseline ? s.baseline->rates(n) : none).c_str(), mqbench::median(s.firsts()) * 1e3,
        thousands(steady).c_str(), ratio(steady, s.baseline, s.baseline ? s.baseline->steady_rates(n) : none).c_str());
  }
  std::printf("\nevery repeat: records/s over seconds (1st record after ms)\n");
  for (const auto& s : all) {
    if (!s.error.empty() || s.runs.empty()) continue;
    std::printf("  %-9s %-36s", s.direction.c_str(), s.name.c_str());
    for (const auto& r : s.runs)
      std::printf("  %s/s %.3f s (%.0f ms)", thousands(static_cast<double>(n) / r.seconds).c_str(), r.seconds,
                  r.first * 1e3);
    std::printf("\n");
  }
  std::printf("(medians of the repeats; MB/s counts payload bytes, 1 MB = 10^6 B; ratio = median / the baseline's "
              "median, printed beside it;\n \"after 1st\": the records after the first over the time after it, "
              "start-up left out)\n");
}

mqbench::CaseResult to_case(const Bench& b, const Series& s) {
  const std::size_t n = b.records.count;
  mqbench::CaseResult c{.transport = s.baseline ? "mq-kafka-bridge" : "librdkafka",
                        .mode = "mock cluster",
                        .kind = "bridge",
                        .pattern = s.direction,
                        .api = s.name,
                        .payload = b.o.size,
                        .load_before = s.load_before,
                        .error = s.error};
  if (!s.error.empty()) return c;
  const std::vector<double> rates = s.rates(n), steady = s.steady_rates(n);
  double sum = 0, seconds = 0;
  for (double r : rates) sum += r;
  for (const auto& r : s.runs) seconds += r.seconds;
  c.msgs_per_s = mqbench::median(rates);
  c.mean_msgs_per_s = sum / static_cast<double>(rates.size());
  c.bytes_per_s = c.msgs_per_s * static_cast<double>(b.o.size);
  c.seconds = seconds;
  c.extra = {{"records", static_cast<double>(n)},
             {"partitions", static_cast<double>(b.o.partitions)},
             {"first_record_s", mqbench::median(s.firsts())},
             {"after_first_msgs_per_s", mqbench::median(steady)}};
  for (std::size_t i = 0; i < rates.size(); ++i)
    c.extra.emplace_back("repeat_" + std::to_string(i + 1) + "_msgs_per_s", rates[i]);
  if (s.baseline != nullptr && s.baseline->error.empty()) {
    const double base = mqbench::median(s.baseline->rates(n)),
                 base_steady = mqbench::median(s.baseline->steady_rates(n));
    c.extra.emplace_back("baseline_msgs_per_s", base);
    c.extra.emplace_back("ratio_to_baseline", c.msgs_per_s / base);
    c.extra.emplace_back("after_first_ratio_to_baseline", mqbench::median(steady) / base_steady);
  }
  return c;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: bridge_throughput [--records N] [--size BYTES] [--partitions P] [--repeats R] [--timeout S]\n"
               "                         [--kafka NAME=VALUE]... [--only outbound|inbound] [--smoke] [--verbose]\n"
               "                         [--json FILE]\n"
               "  mq-kafka-bridge's outbound and inbound routes next to librdkafka alone (an idempotent producer\n"
               "  loop; a consumer reading every partition from the beginning), against librdkafka's mock cluster\n"
               "  made in this process; every measurement repeated, the median reported.\n"
               "  --records N     records per measurement (default 50000)\n"
               "  --size BYTES    payload bytes per record, beside a 12-byte key (default 100)\n"
               "  --partitions P  partitions of each Kafka topic (default 4)\n"
               "  --repeats R     repeats of each measurement after one warm-up round (default 3)\n"
               "  --timeout S     deadline of each measurement in seconds (default 60)\n"
               "  --kafka N=V     a librdkafka property for the routes and the baselines alike, after the bridge's\n"
               "                  defaults (e.g. linger.ms=1, queue.buffering.max.messages=100000)\n"
               "  --only D        one direction: outbound or inbound\n"
               "  --smoke         2000 records, 2 partitions, 1 repeat, 20 s deadlines unless given: checks it\n"
               "                  works, measures nothing (CI)\n"
               "  --verbose       the routes log at debug on stderr (with --kafka debug=..., librdkafka's lines)\n"
               "  --json FILE     also write the rows as JSON (bench/report.hpp's format, kind \"bridge\")\n");
}

// Reads a whole number in [lo, hi]; false (having said why) otherwise.
bool parse_count(const char* flag, const char* text, std::size_t lo, std::size_t hi, std::size_t& out) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < lo || v > hi) {
    std::fprintf(stderr, "bridge_throughput: %s wants a whole number from %zu to %zu, got '%s'\n", flag, lo, hi, text);
    return false;
  }
  out = v;
  return true;
}

// Returns -1 to go on, or the exit code (0 for --help, 2 for a bad option).
int parse_options(int argc, char** argv, Options& o) {
  bool sized = false, timed = false, parted = false, repeated = false;  // given: --smoke keeps them
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    std::size_t v = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--smoke") {
      o.smoke = true;
      continue;
    } else if (a == "--verbose") {
      o.verbose = true;
      continue;
    } else if (value == nullptr) {
      std::fprintf(stderr, "bridge_throughput: unknown option or missing value: '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (a == "--records") {
      if (!parse_count("--records", value, 1, 10'000'000, o.records)) return 2;
      sized = true;
    } else if (a == "--size") {
      if (!parse_count("--size", value, 1, 100'000, o.size)) return 2;
    } else if (a == "--partitions") {
      if (!parse_count("--partitions", value, 1, 64, v)) return 2;
      o.partitions = static_cast<int>(v);
      parted = true;
    } else if (a == "--repeats") {
      if (!parse_count("--repeats", value, 1, 100, v)) return 2;
      o.repeats = static_cast<int>(v);
      repeated = true;
    } else if (a == "--timeout") {
      if (!parse_count("--timeout", value, 1, 3600, v)) return 2;
      o.timeout = std::chrono::seconds(v);
      timed = true;
    } else if (a == "--kafka") {
      const std::string_view kv = value;
      const auto eq = kv.find('=');
      if (eq == 0 || eq == std::string_view::npos) {
        std::fprintf(stderr, "bridge_throughput: --kafka wants NAME=VALUE, got '%s'\n", value);
        return 2;
      }
      o.kafka.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    } else if (a == "--json") {
      o.json = value;
    } else if (a == "--only") {
      if (std::string_view(value) != "outbound" && std::string_view(value) != "inbound") {
        std::fprintf(stderr, "bridge_throughput: --only wants outbound or inbound, got '%s'\n", value);
        return 2;
      }
      o.only = value;
    } else {
      std::fprintf(stderr, "bridge_throughput: unknown option: '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
    ++i;
  }
  if (o.smoke) {
    if (!sized) o.records = 2'000;
    if (!timed) o.timeout = std::chrono::seconds(20);  // 8 measurements stay inside ctest's 300 s
    if (!parted) o.partitions = 2;
    if (!repeated) o.repeats = 1;
  }
  // The mock drops a partition's oldest records past ~5 MiB: a measurement would then wait for records gone.
  const std::size_t per_partition =
      o.records * (o.size + kKeySize + kWireOverhead) / static_cast<std::size_t>(o.partitions);
  if (per_partition > kMockPartitionBytes) {
    std::fprintf(stderr,
                 "bridge_throughput: --records %zu x --size %zu over --partitions %d is ~%zu KiB per partition; the "
                 "mock cluster keeps ~5 MiB per partition (this bench allows %zu KiB): raise --partitions or lower "
                 "--records or --size\n",
                 o.records, o.size, o.partitions, per_partition >> 10, kMockPartitionBytes >> 10);
    return 2;
  }
  return -1;
}

// The properties of `direction`'s librdkafka configuration (route_conf, as the routes and the baselines get it) that
// differ from librdkafka's defaults (global, then topic properties), but for the brokers, client.id and group.id.
std::string conf_differences(const Bench& b, Direction direction) {
  auto conf = bridge::kafka::route_conf(b.route(direction, "x", "x", "x", "x"), kOrigin);
  if (!conf) return "(" + std::string(conf.error().message()) + ")";
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  const auto pairs = [](auto dump, auto* c) {  // dump: rd_kafka_conf_dump or rd_kafka_topic_conf_dump
    std::size_t count = 0;
    const char** kv = dump(c, &count);
    Pairs out;
    for (std::size_t i = 0; i + 1 < count; i += 2) out.emplace_back(kv[i], kv[i + 1] ? kv[i + 1] : "");
    rd_kafka_conf_dump_free(kv, count);
    return out;
  };
  const auto differences = [](const Pairs& mine, const Pairs& defaults, std::string& text) {
    for (const auto& [name, value] : mine) {
      if (name == "bootstrap.servers" || name == "metadata.broker.list" || name == "client.id" || name == "group.id" ||
          name == "default_topic_conf")
        continue;
      const auto d = std::find_if(defaults.begin(), defaults.end(), [&](const auto& p) { return p.first == name; });
      if (d == defaults.end() || d->second != value) text += (text.empty() ? "" : ", ") + name + "=" + value;
    }
  };
  std::string text;
  const bridge::kafka::Conf plain(rd_kafka_conf_new());
  differences(pairs(&rd_kafka_conf_dump, conf->get()), pairs(&rd_kafka_conf_dump, plain.get()), text);
  if (rd_kafka_topic_conf_t* topic = rd_kafka_conf_get_default_topic_conf(conf->get()); topic != nullptr) {
    rd_kafka_topic_conf_t* plain_topic = rd_kafka_topic_conf_new();
    differences(pairs(&rd_kafka_topic_conf_dump, topic), pairs(&rd_kafka_topic_conf_dump, plain_topic), text);
    rd_kafka_topic_conf_destroy(plain_topic);
  }
  return text;
}

void print_header(const Bench& b, const mqbench::Machine& m, int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  std::printf("command: %s\n", command.c_str());
  std::printf("machine: %s; %ld cores online, %d usable (not pinned: librdkafka runs threads of its own)\n",
              m.cpu.c_str(), m.online_cores, m.usable_cores);
  std::printf("kernel:  %s; clock %s; %s\n", m.kernel.c_str(), m.clocksource.c_str(), m.compiler.c_str());
#ifndef NDEBUG
  std::printf("build:   no NDEBUG: not a Release build, numbers not representative\n");
#endif
  std::printf("memory:  a 4 KiB page of shared memory read through a fresh mapping: first read %.0f ns, then %.0f ns\n",
              m.page_first_read_ns, m.page_read_ns);
  std::printf("kafka:   librdkafka %s mock cluster, 1 broker, in this process (its threads share the cores)\n",
              rd_kafka_version_str());
  std::printf("conf:    route_conf, for the routes and the baselines alike; beyond librdkafka's defaults:\n");
  std::printf("         out: %s\n", conf_differences(b, Direction::out).c_str());
  std::printf("         in:  %s\n", conf_differences(b, Direction::in).c_str());
  std::printf("run:     %s: %zu records x %zu B payload + %zu B key, %d partitions, %d repeat%s after 1 warm-up\n"
              "         round, %lld s deadline each; load %s\n",
              b.o.smoke ? "smoke" : "full", b.o.records, b.o.size, kKeySize, b.o.partitions, b.o.repeats,
              b.o.repeats == 1 ? "" : "s", static_cast<long long>(b.o.timeout.count()),
              mqbench::load_average().c_str());
  std::printf(
      "timed:   outbound baseline rd_kafka_new .. last delivery report; outbound route run() start .. its\n"
      "         group acked all; inbound baseline rd_kafka_new .. N-th record; inbound route run() start .. the\n"
      "         local topic holds N (its ring written once before, as a running bridge's is). Both sides of a\n"
      "         ratio carry the same records: key, value, CreateTime (outbound: and the mq.bridge header).\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int code = parse_options(argc, argv, o); code >= 0) return code;
  ::signal(SIGPIPE, SIG_IGN);
  // The routes' start and stop lines would fill the table.
  bridge::g_log_level = o.verbose ? bridge::LogLevel::debug : bridge::LogLevel::warn;

  Bench b{.o = o, .records = Records(o.records, o.size), .kafka = {}, .config = {}, .source = "inbound-source"};
  if (!b.kafka.ok()) {
    std::fprintf(stderr, "bridge_throughput: cannot make librdkafka's mock cluster\n");
    return 1;
  }
  b.config.config_file = kOrigin;
  b.config.id = "bench-bridge";
  b.config.ns = "bridge-bench-" + std::to_string(::getpid());
  b.config.shutdown_timeout = std::chrono::milliseconds(5'000);
  const mqbench::Machine machine = mqbench::describe_machine();
  print_header(b, machine, argc, argv);

  if (o.only != "outbound")
    if (const std::string e = fill_source(b); !e.empty()) {
      std::fprintf(stderr, "bridge_throughput: filling Kafka topic %s: %s\n", b.source.c_str(), e.c_str());
      return 1;
    }

  std::vector<Series> all(4);
  all[0] = {"outbound", "librdkafka producer loop (baseline)", &outbound_baseline};
  all[1] = {"outbound", "OutboundRoute libmq -> Kafka", &outbound_bridge, &all[0]};
  all[2] = {"inbound", "librdkafka consumer (baseline)", &inbound_baseline};
  all[3] = {"inbound", "InboundRoute Kafka -> libmq", &inbound_bridge, &all[2]};
  // Rounds interleave the cases, so a slow spell of the machine falls on baseline and route alike.
  for (int round = 0; round <= o.repeats; ++round) {
    for (auto& s : all)
      if (o.only.empty() || s.direction == o.only) measure(b, s, round);
  }
  print_table(b, all);

  bool failed_any = false;
  std::vector<mqbench::CaseResult> rows;
  for (const auto& s : all) {
    if (!o.only.empty() && s.direction != o.only) continue;
    failed_any |= !s.error.empty();
    rows.push_back(to_case(b, s));
  }
  std::printf("load:    %s after the run\n", mqbench::load_average().c_str());
  if (!o.json.empty()) {
    const mqbench::RunOptions ro{.tool = "bridge_throughput", .json = o.json, .profile = o.smoke ? "smoke" : "full"};
    if (!mqbench::write_results(o.json, ro, machine, rows)) {
      std::fprintf(stderr, "bridge_throughput: cannot write %s: %s\n", o.json.c_str(), std::strerror(errno));
      return 1;
    }
  }
  return failed_any ? 1 : 0;
}
