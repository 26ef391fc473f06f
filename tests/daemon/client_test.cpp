// mq::Client when the connection breaks or mqd does not answer: which requests it sends again, against a stand-in
// for mqd that answers hellos and does to other requests what the test says (answer, hang up, stay silent).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "libmq/client.hpp"
#include "libmq/control.hpp"

namespace {

using namespace std::chrono_literals;
using mq::control::Frame;

// What the stand-in does with a request other than hello: answer at once, hang up without answering, or answer
// after kLate (a daemon slower than the client's timeout).
enum class Act { answer, hang_up, answer_late };
constexpr auto kLate = 1300ms;

class FakeDaemon {
 public:
  // `act(type, nth)`: what to do with the nth (from 1) request of that type; `answer` replies with `reply(type)`.
  FakeDaemon(std::function<Act(const std::string&, int)> act, std::function<Frame(const std::string&)> reply)
      : act_(std::move(act)), reply_(std::move(reply)) {
    char tmpl[] = "/tmp/mq-fake-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/mqd.sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    server_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    stop_ = true;
    server_.join();
    ::close(listener_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& socket() const { return path_; }
  int count(const std::string& type) {
    std::lock_guard lock(mu_);
    return counts_[type];
  }
  int connections() const { return connections_; }

 private:
  // One connection at a time (a client holds one), each until it closes, or the stand-in hangs up or stops.
  void serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      converse(fd);
      ::close(fd);
    }
  }
  void converse(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      std::byte prefix[4];
      if (::recv(fd, prefix, 4, MSG_WAITALL) != 4) return;
      auto len = mq::control::body_length(std::span<const std::byte, 4>(prefix));
      if (!len) return;
      std::vector<std::byte> body(*len);
      if (::recv(fd, body.data(), body.size(), MSG_WAITALL) != static_cast<ssize_t>(body.size())) return;
      auto frame = mq::control::decode(body);
      if (!frame) return;
      int nth;
      {
        std::lock_guard lock(mu_);
        nth = ++counts_[frame->type];
      }
      Frame reply = frame->type == "hello" ? mq::control::reply_frame(mq::control::Welcome{.ns = "fake"})
                                           : mq::control::ok_reply();
      if (frame->type != "hello") {
        const Act act = act_(frame->type, nth);
        if (act == Act::hang_up) return;
        if (act == Act::answer_late) std::this_thread::sleep_for(kLate);
        reply = reply_(frame->type);
      }
      auto bytes = mq::control::encode(reply, mq::control::kReplyLimits);
      if (!bytes || ::send(fd, bytes->data(), bytes->size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes->size()))
        return;
    }
  }

  std::function<Act(const std::string&, int)> act_;
  std::function<Frame(const std::string&)> reply_;
  std::string dir_, path_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::map<std::string, int> counts_;
  std::thread server_;
};

// A describe reply for describe, an open's reply for the rest.
Frame described(const std::string& type) {
  if (type == "describe") return mq::control::reply_frame(mq::TopicReport{.name = "orders"});
  return mq::control::reply_frame(mq::control::Opened{});
}

TEST(Client, AnIdempotentRequestWhoseConnectionBrokeIsSentOnceMoreOnANewOne) {
  FakeDaemon fake([](const std::string&, int nth) { return nth == 1 ? Act::hang_up : Act::answer; }, described);
  auto client = mq::Client::connect({.socket = fake.socket(), .timeout = 5s});
  ASSERT_TRUE(client) << client.error().message();
  auto report = client->describe("orders");
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->name, "orders");
  EXPECT_EQ(fake.count("describe"), 2);
  EXPECT_GE(fake.connections(), 2);
}

TEST(Client, ARequestThatMayHaveBeenCarriedOutIsNotSentAgainAndTheErrorSaysSo) {
  FakeDaemon fake([](const std::string&, int) { return Act::hang_up; }, described);
  auto client = mq::Client::connect({.socket = fake.socket(), .timeout = 5s});
  ASSERT_TRUE(client) << client.error().message();
  auto deleted = client->delete_records("orders", 10);
  ASSERT_FALSE(deleted);
  EXPECT_EQ(deleted.error().code(), mq::Errc::no_daemon);
  EXPECT_NE(deleted.error().message().find("the delete-records request may or may not have been carried out"),
            std::string::npos)
      << deleted.error().message();
  auto created = client->create_group("orders", "billing");
  ASSERT_FALSE(created);
  EXPECT_EQ(fake.count("delete-records"), 1);
  EXPECT_EQ(fake.count("create-group"), 1);
}

TEST(Client, ARequestThatTimedOutIsNotSentAgainAndItsLateReplyIsNotTakenForTheNext) {
  // The create is answered after the client's timeout; the describe sent next must get its own reply, not that one.
  FakeDaemon fake([](const std::string& type, int) { return type == "create" ? Act::answer_late : Act::answer; },
                  described);
  auto client = mq::Client::connect({.socket = fake.socket(), .timeout = 1s});
  ASSERT_TRUE(client) << client.error().message();
  const auto started = std::chrono::steady_clock::now();
  auto created = client->create("orders", {});
  ASSERT_FALSE(created);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(created.error().code(), mq::Errc::no_daemon);
  EXPECT_NE(created.error().message().find("no reply within the timeout"), std::string::npos)
      << created.error().message();
  EXPECT_EQ(fake.count("create"), 1);
  auto report = client->describe("orders");
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->name, "orders");
  EXPECT_EQ(fake.count("create"), 1);
}

TEST(Client, AResentRequestThatTimesOutDropsItsConnectionToo) {
  // The first list's connection breaks after sending; the list sent again is answered after the timeout. The
  // describe after it must not read that late reply as its own.
  FakeDaemon fake(
      [](const std::string& type, int nth) {
        if (type != "list") return Act::answer;
        return nth == 1 ? Act::hang_up : Act::answer_late;
      },
      described);
  auto client = mq::Client::connect({.socket = fake.socket(), .timeout = 1s});
  ASSERT_TRUE(client) << client.error().message();
  auto names = client->list();
  ASSERT_FALSE(names);
  EXPECT_NE(names.error().message().find("no reply within the timeout"), std::string::npos)
      << names.error().message();
  EXPECT_EQ(fake.count("list"), 2);
  auto report = client->describe("orders");
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->name, "orders");
}

}  // namespace
