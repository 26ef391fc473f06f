// Signal flag for mqctl's loops (see stop.hpp).
#include "stop.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <thread>

namespace mqctl {

namespace {

// Written from a signal handler: a lock-free atomic is async-signal-safe, where a mutex or plain bool is not.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int /*signal*/) { g_stop.store(true, std::memory_order_relaxed); }

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// Relaxed: the flag carries no data; the loop only needs to see it eventually.
bool stop_requested() noexcept { return g_stop.load(std::memory_order_relaxed); }

void sleep_unless_stopped(std::chrono::milliseconds duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop_requested()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(50)));
  }
}

}  // namespace mqctl
