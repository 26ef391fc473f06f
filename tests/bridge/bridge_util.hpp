// Helpers for the bridge's tests: a scratch folder, config files, and the mq-kafka-bridge binary run as a child
// process with its output captured. Every wait has a deadline that fails the test instead of hanging CI.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net_util.hpp"
#include "status.hpp"

namespace bridgetest {

// A folder of its own per test (configs, the bridge's logs), removed afterwards unless MQ_BRIDGE_TEST_KEEP is set.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mq-bridge-test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
    EXPECT_FALSE(path_.empty());
  }
  ~ScratchDir() {
    if (std::getenv("MQ_BRIDGE_TEST_KEEP") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  // Writes `text` to NAME in the folder; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct Outcome {
  int exit_code = -1;  // -1: killed by the deadline (the test has failed then)
  std::string output;  // stdout and stderr together: the tests look for lines, not for which stream
};

// A running bridge: its stderr goes to a file in `dir` (read it with log()).
class BridgeProcess {
 public:
  BridgeProcess(const std::vector<std::string>& args, const std::string& log_file) : log_file_(log_file) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDERR_FILENO);
      ::dup2(fd, STDOUT_FILENO);
      std::vector<char*> argv;
      std::string path = BRIDGE_PATH;
      argv.push_back(path.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(path.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~BridgeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)wait_exit(std::chrono::seconds(10));
    }
  }
  BridgeProcess(const BridgeProcess&) = delete;
  BridgeProcess& operator=(const BridgeProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // The exit code, or nullopt if it did not exit within `timeout` (killed by a signal: 128 + signal).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling waitpid; the deadline bounds it
    }
    return std::nullopt;
  }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  std::string log() const {
    std::ifstream in(log_file_);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  pid_t pid_ = -1;
  std::string log_file_;
};

// Runs the bridge to completion (bounded by `timeout`), capturing what it prints.
inline Outcome run_bridge(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  ScratchDir dir;
  Outcome o;
  {
    BridgeProcess p(args, dir.path() + "/out");
    auto code = p.wait_exit(timeout);
    o.exit_code = code ? *code : -1;
    o.output = p.log();
  }
  return o;
}

// Waits until the bridge's output holds `text` (true), or `timeout` passes or it exits (false).
inline bool wait_for_log(BridgeProcess& bridge, const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!contains(bridge.log(), text)) {
    if (std::chrono::steady_clock::now() >= deadline || !bridge.running()) return contains(bridge.log(), text);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling the condition; the deadline bounds it
  }
  return true;
}

using nettest::free_port;

// The value of the sample SERIES ("name{labels}", exactly as the page writes it) on a metrics page; nullopt when the
// page has no such line.
inline std::optional<double> sample(const std::string& page, const std::string& series) {
  const std::string start = series + " ";
  for (std::size_t at = 0; at < page.size();) {
    auto end = page.find('\n', at);
    if (end == std::string::npos) end = page.size();
    if (page.compare(at, start.size(), start) == 0) return std::stod(page.substr(at + start.size(), end - at));
    at = end + 1;
  }
  return std::nullopt;
}

// Scrapes the bridge's metrics on 127.0.0.1:PORT until `ready(page)` holds (returns the page) or `timeout` passes
// (returns the last page, or the fetch error's text).
inline std::string metrics_until(int port, const std::function<bool(const std::string&)>& ready,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    auto page = bridge::fetch_metrics("127.0.0.1:" + std::to_string(port), std::chrono::seconds(2));
    last = page ? *page : "fetch failed: " + std::string(page.error().message());
    if ((page && ready(*page)) || std::chrono::steady_clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the condition; the deadline bounds it
  }
}

// Lines in `text`.
inline std::size_t line_count(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n' ? 1 : 0;
  return n;
}

}  // namespace bridgetest
