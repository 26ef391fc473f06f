// mq-kafka-bridge: carries records between libmq topics and a Kafka cluster, one thread per [route.NAME] of its config
// file, until SIGTERM or SIGINT (then outbound routes wait for Kafka to confirm what is in flight and ack it, inbound
// routes commit their Kafka offsets, and the bridge exits 0).
// With metrics-listen, GET /metrics answers every route's state, counters, rates, lag and latency (stats.hpp), and
// `--status` prints them as a table (status.hpp).
// Exit codes: 0 clean stop, a good --check or --status shown, 1 a route failed (or no bridge answered --status),
// 2 a bad option, config or local topic.
#include <utility>  // before Boost.Asio 1.74, whose awaitable.hpp uses std::exchange without it

#include <signal.h>

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config.hpp"
#include "inbound.hpp"
#include "libmq/topic.hpp"
#include "log.hpp"
#include "mqd/metrics.hpp"
#include "mqd/notify.hpp"
#include "outbound.hpp"
#include "stats.hpp"
#include "status.hpp"

using namespace bridge;

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_stop_signal(int) { g_stop.store(true); }

// A route as the supervisor sees it: how to run it, and when it last went round its loop (for the watchdog).
struct Runner {
  std::string name;
  std::function<int(const std::atomic<bool>&)> run;
  std::function<std::chrono::steady_clock::time_point()> last_beat;
  RouteStats* stats;
};

// Runs every route in a thread of its own until all have returned (g_stop, or one failed, which stops the others),
// telling systemd as it goes. Returns the failed route's exit code, 0 when none failed.
int supervise(std::vector<Runner>& routes) {
  std::atomic<int> failed{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::size_t done = 0;
  std::vector<std::thread> threads;
  for (auto& route : routes)
    threads.emplace_back([&] {
      if (const int code = route.run(g_stop); code != 0) {
        failed.store(code);
        g_stop.store(true);  // one failed route stops the bridge: its supervisor restarts it whole
      }
      std::lock_guard lock(mutex);
      ++done;
      finished.notify_all();
    });

  // systemd (Type=notify): ready once the routes run; the watchdog is fed only while every route goes round its
  // loop (a route stuck in a call that never returns stops feeding it, and systemd restarts the bridge).
  mqd::notify_ready(std::to_string(routes.size()) + (routes.size() == 1 ? " route" : " routes") + " running");
  const auto watchdog = mqd::watchdog_interval();
  // The rates of the metrics are sampled here, about once a second.
  const auto period = std::min<std::chrono::steady_clock::duration>(watchdog.value_or(std::chrono::seconds(1)),
                                                                    std::chrono::seconds(1));
  bool stopping = false;
  {
    std::unique_lock lock(mutex);
    while (done < routes.size()) {
      finished.wait_for(lock, period);
      for (auto& route : routes) route.stats->sample_rates(std::chrono::steady_clock::now());
      if (g_stop.load() && !stopping) {
        stopping = true;
        mqd::notify_stopping();
      }
      if (!watchdog || stopping) continue;
      const auto now = std::chrono::steady_clock::now();
      bool all_beat = true;
      for (const auto& route : routes)
        if (now - route.last_beat() > *watchdog) {
          all_beat = false;
          log(LogLevel::warn,
              "route " + route.name + " has not gone round its loop for " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - route.last_beat()).count()) +
                  " s: the watchdog is not fed");
        }
      if (all_beat) mqd::notify_watchdog();
    }
  }
  for (auto& t : threads) t.join();
  return failed.load();
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto config = parse_config(argc, argv, exit_code);
  if (!config) return exit_code;
  if (config->status) return show_status(*config);
  if (config->check) {
    std::cout << "mq-kafka-bridge: config file " << config->config_file << " is good: " << config->routes.size()
              << (config->routes.size() == 1 ? " route" : " routes") << ", bridge id " << config->id << "\n";
    return 0;
  }
  g_log_level = config->log_level;
  ::signal(SIGPIPE, SIG_IGN);

  // Every local topic must exist before any route starts: a missing one is a config error, as a bad field is.
  std::vector<Runner> routes;
  std::vector<std::unique_ptr<OutboundRoute>> outbound;
  std::vector<std::unique_ptr<InboundRoute>> inbound;
  for (const auto& route : config->routes) {
    auto topic = mq::Topic::open(route.local_topic, mq::OpenOptions{.ns = config->ns});
    if (!topic) {
      log(LogLevel::error, "config file " + config->config_file + ": section [route." + route.name +
                               "]: local-topic: '" + route.local_topic + "': " + std::string(topic.error().message()));
      return 2;
    }
    if (route.direction == Direction::out) {
      auto* r = outbound.emplace_back(std::make_unique<OutboundRoute>(*config, route, std::move(*topic))).get();
      routes.push_back({route.name, [r](const std::atomic<bool>& stop) { return r->run(stop); },
                        [r] { return r->last_beat(); }, &r->stats()});
    } else {
      auto* r = inbound.emplace_back(std::make_unique<InboundRoute>(*config, route, std::move(*topic))).get();
      routes.push_back({route.name, [r](const std::atomic<bool>& stop) { return r->run(stop); },
                        [r] { return r->last_beat(); }, &r->stats()});
    }
  }

  // The metrics endpoint, on a thread of its own; a scrape reads the routes' atomics.
  boost::asio::io_context io;
  std::vector<const RouteStats*> stats;
  for (const auto& r : routes) stats.push_back(r.stats);
  mqd::MetricsServer metrics(io, "mq-kafka-bridge", [&] { return render_metrics(config->id, stats); });
  std::thread metrics_thread;
  if (!config->metrics_listen.empty()) {
    if (auto listening = metrics.listen(config->metrics_listen); !listening) {
      log(LogLevel::error, std::string(listening.error().message()));
      return 2;
    }
    metrics_thread = std::thread([&io] { io.run(); });
    log(LogLevel::info, "metrics on http://" + config->metrics_listen + "/metrics");
  }

  struct sigaction stop {};
  stop.sa_handler = &on_stop_signal;
  ::sigemptyset(&stop.sa_mask);
  ::sigaction(SIGTERM, &stop, nullptr);
  ::sigaction(SIGINT, &stop, nullptr);

  log(LogLevel::info, "bridge " + config->id + " starting " + std::to_string(routes.size()) +
                          (routes.size() == 1 ? " route" : " routes"));
  const int code = supervise(routes);
  io.stop();
  if (metrics_thread.joinable()) metrics_thread.join();
  routes.clear();
  outbound.clear();
  inbound.clear();
  log(LogLevel::info, code == 0 ? "stopped" : "stopped after a route failed");
  return code;
}
