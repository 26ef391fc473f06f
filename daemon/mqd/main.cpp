// mqd: the libmq daemon. Holds the instance lock for its socket, adopts the topics it finds, creates configured
// ones, serves the control socket, and keeps house (recovery of dead peers, group expiry, msync of file topics,
// the systemd watchdog) until SIGTERM. It is never on the data path: clients keep working while it restarts.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>  // before Boost.Asio 1.74, whose awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <cstring>
#include <filesystem>
#include <functional>

#include "config.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "notify.hpp"
#include "registry.hpp"
#include "server.hpp"

namespace asio = boost::asio;
using namespace mqd;

namespace {

// --max-clients connections, the topics' segments and their files each take a descriptor: raise the soft limit to
// the hard one (systemd's default soft limit is 1024), and say so when even that is short.
void raise_descriptor_limit(std::size_t max_clients) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
    (void)::getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < max_clients + 64)
    log(LogLevel::warn, "only " + std::to_string(lim.rlim_cur) + " file descriptors for --max-clients " +
                            std::to_string(max_clients) + ": connections may wait for one (raise LimitNOFILE=)");
}

// One instance per socket: an flock on SOCKET.lock, held for the daemon's life (the kernel drops it if we die).
int take_instance_lock(const std::string& socket) {
  const std::string path = socket + ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    log(LogLevel::error, "cannot open lock file " + path + ": " + std::strerror(errno));
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    (void)!::pread(fd, pid, sizeof pid - 1, 0);
    std::string holder(pid);
    holder.erase(holder.find_last_not_of(" \n") + 1);  // the file holds "PID\n"
    log(LogLevel::error, "another mqd is already serving " + socket + " (pid " + holder + ")");
    ::close(fd);
    return -1;
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  (void)!::ftruncate(fd, 0);
  (void)!::pwrite(fd, me.data(), me.size(), 0);
  return fd;
}

std::string status_line(const Registry& registry, const Server& server) {
  return std::to_string(registry.size()) + " topics, " + std::to_string(server.clients()) + " clients";
}

// Runs `fn` every `period` on the io_context until it stops.
void every(asio::steady_timer& timer, std::chrono::microseconds period, std::function<void()> fn) {
  timer.expires_after(period);
  timer.async_wait([&timer, period, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec) return;
    fn();
    every(timer, period, fn);
  });
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto config = parse_config(argc, argv, exit_code);
  if (!config) return exit_code;
  g_log_level = config->log_level;
  ::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit(config->max_clients);

  const auto socket_dir = std::filesystem::path(config->socket).parent_path();
  if (!socket_dir.empty() && !std::filesystem::is_directory(socket_dir)) {
    log(LogLevel::error, "the socket's folder " + socket_dir.string() + " does not exist (systemd creates /run/mq " +
                             "through RuntimeDirectory=; otherwise pass --socket)");
    return 1;
  }
  std::error_code fs_error;
  std::filesystem::create_directories(config->data_dir, fs_error);
  if (fs_error) log(LogLevel::warn, "data dir " + config->data_dir + ": " + fs_error.message() + " (file topics will fail)");
  const int lock_fd = take_instance_lock(config->socket);
  if (lock_fd < 0) return 1;

  Registry registry(*config);
  const std::size_t adopted = registry.adopt();
  registry.create_configured();

  asio::io_context io;
  Server server(io, registry);
  if (auto r = server.listen(config->socket); !r) {
    log(LogLevel::error, std::string(r.error().message()));
    return 1;
  }
  log(LogLevel::info, "listening on " + config->socket + (config->ns.empty() ? "" : " namespace " + config->ns) +
                          "; adopted " + std::to_string(adopted) + " topics");

  MetricsServer metrics(io, "mqd", [&] { return registry.prometheus(server.clients()); });
  if (!config->metrics_listen.empty()) {
    if (auto r = metrics.listen(config->metrics_listen); !r) {
      log(LogLevel::error, std::string(r.error().message()));
      return 1;
    }
    log(LogLevel::info, "metrics on http://" + config->metrics_listen + "/metrics");
  }

  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log(LogLevel::info, std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    notify_stopping();
    io.stop();
  });
  asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      if (auto fresh = reload_config(registry.config(), argc, argv)) {
        g_log_level = fresh->log_level;
        registry.reconfigure(std::move(*fresh));
        log(LogLevel::info, "configuration re-read");
      } else {
        log(LogLevel::error, "keeping the old configuration: " + std::string(fresh.error().message()));
      }
      wait_hup();
    });
  };
  wait_hup();

  asio::steady_timer housekeeping(io), flusher(io), watchdog(io);
  every(housekeeping, std::chrono::seconds(1), [&] {
    registry.tick();
    notify_status(status_line(registry, server));
  });
  every(flusher, config->flush_interval, [&] { registry.flush(); });
  if (auto period = watchdog_interval()) every(watchdog, *period, [] { notify_watchdog(); });

  notify_ready(status_line(registry, server));
  io.run();

  registry.flush();
  server.stop();
  ::close(lock_fd);
  log(LogLevel::info, "stopped");
  return 0;
}
