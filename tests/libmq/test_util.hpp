// Shared helpers for libmq tests: a private namespace per test, byte conversions, bounded child processes and
// pipes for exact-moment handshakes. Every wait here has a deadline that fails the test instead of hanging CI.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "libmq/libmq.hpp"

namespace mqtest {

// Puts the test's topics in a namespace of their own (MQ_NAMESPACE) and removes them afterwards.
class TopicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Appends, not operator+ chains: g++ 12 warns a false -Wrestrict on those (GCC PR 105329).
    ns_ = "t";
    ns_ += std::to_string(::getpid());
    ns_ += '-';
    ns_ += std::to_string(counter_++);
    (void)info;
    ::setenv("MQ_NAMESPACE", ns_.c_str(), 1);
  }
  void TearDown() override {
    auto names = mq::Topic::list();
    if (names)
      for (const auto& n : *names) (void)mq::Topic::remove(n);
    ::unsetenv("MQ_NAMESPACE");
  }
  const std::string& ns() const { return ns_; }

 private:
  std::string ns_;
  static inline int counter_ = 0;
};

inline std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
inline std::string text(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }
inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}
// A poll timeout of zero: take what is there, do not wait.
inline constexpr std::chrono::nanoseconds kNow{0};
// How far a record's own timestamp may stray from CLOCK_REALTIME read around its publish: it is extrapolated through
// the TSC from a reading of the clock less than ~1 ms old (libmq/src/clock.cpp; design.md "Timestamps" has the
// measured error, microseconds at most). Kafka's CreateTime is in milliseconds.
inline constexpr std::int64_t kClockSlackNs = 1'000'000;

// A pipe for a child to tell the parent "I am at the exact moment" (a line of text).
class Pipe {
 public:
  Pipe() { EXPECT_EQ(::pipe(fds_), 0); }
  ~Pipe() { close_read(); close_write(); }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_read() { if (fds_[0] >= 0) ::close(fds_[0]); fds_[0] = -1; }
  void close_write() { if (fds_[1] >= 0) ::close(fds_[1]); fds_[1] = -1; }
  void send(std::string_view line) {
    std::string l(line);
    l += '\n';
    const ssize_t n = ::write(fds_[1], l.data(), l.size());
    (void)n;
  }
  // Reads one line, waiting at most `timeout`. Empty string on timeout or EOF.
  std::string receive(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd p{fds_[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char c;
      if (::read(fds_[0], &c, 1) != 1) return {};
      if (c == '\n') return line;
      line += c;
    }
  }

 private:
  int fds_[2] = {-1, -1};
};

// A forked child running `body`; its return value is the exit code. The parent reaps it with a deadline.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int code = 99;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: exception: %s\n", ::getpid(), e.what());
      }
      std::fflush(stdout);
      ::_exit(code);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void kill9() { ::kill(pid_, SIGKILL); }
  // Waits for the child to exit (SIGKILLs it after `timeout`). Returns the exit code, or 128+signal.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "child " << pid_ << " did not finish within " << timeout.count() << " ms; killed";
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      // Polling waitpid: a child exit has no fd to wait on without extra machinery; 1 ms granularity is enough.
      ::usleep(1000);
    }
    reaped_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

}  // namespace mqtest
