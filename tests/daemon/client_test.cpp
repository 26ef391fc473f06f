// mq::Client when the connection breaks, mqd does not answer or answers garbage: which requests it sends again, and
// which connections it keeps, against a stand-in for mqd that answers hellos and does to other requests what the
// test says (answer, hang up, answer late, answer with a bad length prefix).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
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

// What the stand-in does with a request other than hello: answer at once, hang up without answering, answer after
// kLate (a daemon slower than the client's timeout), or send a length prefix past every limit followed by more
// garbage, and keep the connection open (a client that kept it would read that garbage as its next reply).
enum class Act { answer, hang_up, answer_late, bad_prefix };
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
  // Waits until `n` requests of that type have come (counted as they arrive, before their reply). False after
  // `timeout`.
  bool wait_for(const std::string& type, int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return counted_.wait_for(lock, timeout, [&] { return counts_[type] >= n; });
  }
  int connections() const { return connections_; }
  // Hangs up the current connection while it is idle, as a restarting mqd would (within 20 ms).
  void hang_up_idle() { hang_up_idle_ = true; }
  // Waits until the current connection has been idle (no request, no reply under way) for a 20 ms poll of the
  // stand-in's, from now on. False after `timeout`.
  bool wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const int seen = idle_;
    return counted_.wait_for(lock, timeout, [&] { return idle_ > seen; });
  }

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
      if (::poll(&p, 1, 20) <= 0) {
        if (hang_up_idle_.exchange(false)) return;
        {
          std::lock_guard lock(mu_);
          ++idle_;
        }
        counted_.notify_all();
        continue;
      }
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
      counted_.notify_all();
      Frame reply = frame->type == "hello" ? mq::control::reply_frame(mq::control::Welcome{.ns = "fake"})
                                           : mq::control::ok_reply();
      if (frame->type != "hello") {
        const Act act = act_(frame->type, nth);
        if (act == Act::hang_up) return;
        if (act == Act::answer_late) std::this_thread::sleep_for(kLate);
        if (act == Act::bad_prefix) {
          const std::string garbage(12, '\xff');  // 0xffffffff as the prefix, then two more such words
          if (::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(garbage.size())) return;
          continue;
        }
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
  std::atomic<bool> hang_up_idle_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::condition_variable counted_;
  std::map<std::string, int> counts_;
  int idle_ = 0;  // polls that timed out on a connection with nothing under way
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

TEST(Client, TheMonitorLeavesAloneTheNewConnectionARequestMadeAfterABreak) {
  // A request's hang-up wakes the client's monitor thread too, but by the time it looks, the request has already
  // dialed again, and the new connection usually has the old one's descriptor number. It must not be taken for the
  // dead one and torn down: mqd would see this client go away (and recover its processes' claims) for nothing.
  // Each round first has the monitor reconnect an idle connection the stand-in hung up (no request is under way:
  // only the monitor can), and lets the new connection go idle, so that the monitor is watching it when the
  // describe's connection breaks.
  constexpr int kRounds = 5;
  FakeDaemon fake([](const std::string&, int nth) { return nth % 2 == 1 ? Act::hang_up : Act::answer; }, described);
  {
    auto client = mq::Client::connect({.socket = fake.socket(), .timeout = 5s});
    ASSERT_TRUE(client) << client.error().message();
    for (int round = 0; round < kRounds; ++round) {
      fake.hang_up_idle();
      ASSERT_TRUE(fake.wait_for("hello", 2 + 2 * round, 10s)) << round;
      ASSERT_TRUE(fake.wait_idle(10s)) << round;
      auto report = client->describe("orders");  // hung up on, then sent again on a new connection
      ASSERT_TRUE(report) << round << ": " << report.error().message();
    }
  }  // the client's destructor joins the monitor: whatever it was going to do is done
  EXPECT_EQ(fake.connections(), 1 + 2 * kRounds);
  EXPECT_EQ(fake.count("hello"), 1 + 2 * kRounds);
  EXPECT_EQ(fake.count("describe"), 2 * kRounds);
}

TEST(Client, AReplyWithABadLengthPrefixDropsTheConnectionAndTheNextRequestGetsAFreshOne) {
  FakeDaemon fake([](const std::string&, int nth) { return nth == 1 ? Act::bad_prefix : Act::answer; }, described);
  auto client = mq::Client::connect({.socket = fake.socket(), .timeout = 5s});
  ASSERT_TRUE(client) << client.error().message();
  auto garbled = client->describe("orders");
  ASSERT_FALSE(garbled);
  const std::string message(garbled.error().message());
  EXPECT_NE(message.find("sent a reply that is not a control frame (bad control frame: length 4294967295 outside"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("its connection was dropped: the describe request may or may not have been carried out"),
            std::string::npos)
      << message;
  EXPECT_EQ(fake.count("describe"), 1);  // not sent again: mqd may have carried it out
  // The garbage after the prefix is still on the old connection; the next request must not read it as its reply.
  auto report = client->describe("orders");
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->name, "orders");
  EXPECT_EQ(fake.connections(), 2);
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
