// When a route's loop last went round: the route beats on every turn, main's watchdog reads it from another thread
// and feeds systemd only while every route beats.
#pragma once

#include <atomic>
#include <chrono>

namespace bridge {

class Heartbeat {
 public:
  void beat(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) noexcept {
    // Relaxed: a timestamp read for a liveness check, ordering nothing else.
    at_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }
  std::chrono::steady_clock::time_point last() const noexcept {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(at_.load(std::memory_order_relaxed)));
  }

 private:
  std::atomic<std::chrono::steady_clock::rep> at_{std::chrono::steady_clock::now().time_since_epoch().count()};
};

}  // namespace bridge
