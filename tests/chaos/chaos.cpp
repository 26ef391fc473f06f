// The chaos campaign: producers, consumer-group members and a private mqd under load, while a driver kills them at
// random moments (SIGKILL), at named points of the data path (libmq's test points), stops members for longer than
// any recovery timer (SIGSTOP/SIGCONT: they must not be robbed), and restarts mqd; then it checks that nothing a
// producer saw published was lost, no payload was corrupted, duplicates came only from members that died, every
// skipped offset belongs to a producer that died, and nothing wedged. `tests/chaos/run --help` for the options.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>

#include "libmq/libmq.hpp"
#include "option_error.hpp"
#include "test_point.hpp"

namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using mq::detail::TestPoint;

std::uint64_t max_offsets = 0;  // the ledger's size (from --rounds); producers stop before it
constexpr std::size_t kMaxProducers = 8;
constexpr std::size_t kMaxGroups = 4;
constexpr std::size_t kMaxInstances = 1 << 16;  // member processes over a whole run

struct Options {
  unsigned rounds = 200;
  std::uint64_t seed = 1;
  unsigned producers = 2;
  unsigned groups = 2;
  unsigned members = 2;
  std::size_t capacity = std::size_t{4} << 20;
  std::string mqd;
  std::chrono::seconds time_limit{600};
  std::chrono::milliseconds stop_for{1500};
  bool verbose = false;
};

// ---------------------------------------------------------------------------------------------------------------
// The ledger: shared memory all roles write (mapped before fork). Producers record the offsets they saw published;
// members record what they processed, before acking it, and who processed it first.
struct GroupLedger {
  std::atomic<std::uint8_t>* processed;
  std::atomic<std::uint32_t>* first;   // member instance that processed it first (+1; 0 = none)
  std::atomic<std::uint32_t>* second;  // ... second
};

struct Ledger {
  std::atomic<std::uint32_t> stop_producers;
  std::atomic<std::uint32_t> stop_members;
  std::atomic<std::uint64_t> next_seq[kMaxProducers];
  std::atomic<std::uint64_t> published;
  std::atomic<std::uint64_t> bad_payloads;
  std::atomic<std::uint64_t> failures;
  char first_failure[512];
  std::atomic<std::uint32_t> failure_lock;
  std::atomic<std::uint8_t> killed[kMaxInstances];  // member instances that died (killed, or at a test point)
  std::atomic<std::uint8_t>* recorded;              // per offset: a producer saw it published
  GroupLedger group[kMaxGroups];
};

Ledger* ledger = nullptr;

// Maps the ledger, its per-offset arrays behind it in the same shared mapping (pages are touched only when used).
bool map_ledger(std::uint64_t offsets) {
  max_offsets = offsets;
  const std::size_t per_group = offsets * (1 + 4 + 4);
  const std::size_t bytes = sizeof(Ledger) + offsets + kMaxGroups * per_group + 64;
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) return false;
  ledger = static_cast<Ledger*>(map);
  auto* at = static_cast<std::byte*>(map) + sizeof(Ledger);
  ledger->recorded = reinterpret_cast<std::atomic<std::uint8_t>*>(at);
  at += offsets;
  for (auto& g : ledger->group) {
    g.first = reinterpret_cast<std::atomic<std::uint32_t>*>(at);
    g.second = reinterpret_cast<std::atomic<std::uint32_t>*>(at + offsets * 4);
    g.processed = reinterpret_cast<std::atomic<std::uint8_t>*>(at + offsets * 8);
    at += per_group;
  }
  return true;
}

void fail(const std::string& what) {
  ledger->failures.fetch_add(1);
  if (ledger->failure_lock.exchange(1) == 0) std::snprintf(ledger->first_failure, sizeof ledger->first_failure, "%s", what.c_str());
  std::fprintf(stderr, "chaos: pid %d: %s\n", ::getpid(), what.c_str());
}

// ---------------------------------------------------------------------------------------------------------------
// Payload: {producer, seq, length, checksum} + filler derived from them; any torn or foreign byte shows.
struct Head {
  std::uint32_t producer;
  std::uint32_t length;
  std::uint64_t seq;
  std::uint64_t checksum;
};

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

std::uint64_t checksum(const Head& h, std::span<const std::byte> filler) {
  std::uint64_t sum = mix(h.producer * 0x9e3779b97f4a7c15ULL ^ h.seq ^ (std::uint64_t{h.length} << 40));
  std::size_t i = 0;
  for (; i + 8 <= filler.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, filler.data() + i, 8);
    sum = (sum ^ w) * 0x100000001b3ULL;
  }
  for (; i < filler.size(); ++i) sum = (sum ^ static_cast<std::uint64_t>(filler[i])) * 0x100000001b3ULL;
  return sum;
}

void encode(std::span<std::byte> out, std::uint32_t producer, std::uint64_t seq) {
  Head h{producer, static_cast<std::uint32_t>(out.size()), seq, 0};
  auto filler = out.subspan(sizeof(Head));
  std::uint64_t x = mix(seq * 31 + producer);
  for (std::size_t i = 0; i < filler.size(); i += 8) {
    x = mix(x + i);
    std::memcpy(filler.data() + i, &x, std::min<std::size_t>(8, filler.size() - i));
  }
  h.checksum = checksum(h, filler);
  std::memcpy(out.data(), &h, sizeof h);
}

std::optional<Head> decode(std::span<const std::byte> in) {
  if (in.size() < sizeof(Head)) return std::nullopt;
  Head h;
  std::memcpy(&h, in.data(), sizeof h);
  if (h.length != in.size() || checksum(h, in.subspan(sizeof(Head))) != h.checksum) return std::nullopt;
  return h;
}

// ---------------------------------------------------------------------------------------------------------------
// Roles (forked children of the driver).

// The topic through mqd, waiting for mqd while it restarts. The Client stays connected for the life of the process
// (`client` is process-wide): its connection is the process's liveness, by which mqd recovers it when it dies.
std::optional<mq::Client> client;

std::optional<mq::Topic> open_topic(const std::string& socket, const std::string& name) {
  const auto deadline = Clock::now() + 30s;  // mqd may be restarting
  for (;;) {
    auto connected = mq::Client::connect({.socket = socket});
    if (connected) {
      client = std::move(*connected);
      auto topic = client->open(name);
      if (topic) return std::move(*topic);
      if (topic.error().code() != mq::Errc::no_daemon && topic.error().code() != mq::Errc::io) {
        fail("open: " + std::string(topic.error().what()));
        return std::nullopt;
      }
    }
    if (Clock::now() > deadline) {
      fail("mqd not reachable for 30 s");
      return std::nullopt;
    }
    std::this_thread::sleep_for(20ms);  // mqd is restarting: try again
  }
}

int producer_role(const std::string& socket, const std::string& name, unsigned id, std::uint64_t seed) {
  auto topic = open_topic(socket, name);
  if (!topic) return 1;
  auto producer = mq::Producer::make(*topic, mq::ProducerOptions{200ms});
  if (!producer) {
    fail("producer: " + std::string(producer.error().what()));
    return 1;
  }
  const std::size_t max = topic->info().max_message;
  std::mt19937_64 rng(seed);
  std::vector<std::byte> buffer(max);
  while (ledger->stop_producers.load() == 0) {
    const std::uint64_t seq = ledger->next_seq[id].fetch_add(1);
    // Log-uniform lengths from 16 B to max-message: many small records, some that fill a quarter of the ring.
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    const auto size = std::max<std::size_t>(sizeof(Head), static_cast<std::size_t>(16 * std::pow(max / 16.0, u)));
    std::optional<mq::Offset> offset;
    for (;;) {
      if (ledger->stop_producers.load() != 0) return 0;
      if (rng() % 3 == 0) {
        auto claim = producer->claim(size);
        if (!claim) {
          if (claim.error().code() == mq::Errc::full) continue;
          fail("claim: " + std::string(claim.error().what()));
          return 1;
        }
        encode(claim->bytes(), id, seq);
        auto c = std::move(*claim).commit();
        if (!c) {
          fail("commit: " + std::string(c.error().what()));
          return 1;
        }
        offset = *c;
      } else {
        encode(std::span(buffer.data(), size), id, seq);
        auto r = producer->publish(std::span<const std::byte>(buffer.data(), size));
        if (!r) {
          if (r.error().code() == mq::Errc::full) continue;
          fail("publish: " + std::string(r.error().what()));
          return 1;
        }
        offset = *r;
      }
      break;
    }
    if (*offset >= max_offsets - 1024) ledger->stop_producers.store(1);  // the ledger is full: enough
    if (*offset < max_offsets) ledger->recorded[*offset].store(1);
    ledger->published.fetch_add(1);
  }
  return 0;
}

int member_role(const std::string& socket, const std::string& name, unsigned group, std::uint32_t instance,
                std::uint64_t seed) {
  auto topic = open_topic(socket, name);
  if (!topic) return 1;
  mq::ConsumerOptions options;
  options.group = "g" + std::to_string(group);
  options.start = mq::Start::earliest;
  options.auto_ack = false;
  auto consumer = mq::Consumer::make(*topic, options);
  if (!consumer) {
    fail("member: " + std::string(consumer.error().what()));
    return 1;
  }
  std::mt19937_64 rng(seed);
  GroupLedger& g = ledger->group[group];
  while (ledger->stop_members.load() == 0) {
    // Take 1..4 records, process each (the ledger first: "processed" is what a crash must not lose), then ack the
    // batch with one cumulative ack: a member stopped or killed here holds up to 4.
    std::vector<mq::Message> batch;
    const unsigned want = 1 + static_cast<unsigned>(rng() % 4);
    for (unsigned i = 0; i < want; ++i) {
      auto m = consumer->poll(i == 0 ? std::chrono::nanoseconds(50ms) : std::chrono::nanoseconds(0));
      if (!m) {
        if (m.error().code() != mq::Errc::timed_out) {
          fail("poll: " + std::string(m.error().what()));
          return 1;
        }
        break;
      }
      batch.push_back(std::move(*m));
    }
    for (const auto& m : batch) {
      if (!decode(m.payload())) {
        ledger->bad_payloads.fetch_add(1);
        fail("bad payload at offset " + std::to_string(m.offset()) + " (" + std::to_string(m.payload().size()) + " bytes)");
      }
      const mq::Offset o = m.offset();
      if (o >= max_offsets) continue;
      // Who processed it is recorded before the count, so a member killed between the two is still named as the
      // first (or second) processor of a record that is then redelivered.
      std::uint32_t none = 0;
      if (!g.first[o].compare_exchange_strong(none, instance + 1)) {
        none = 0;
        g.second[o].compare_exchange_strong(none, instance + 1);
      }
      g.processed[o].fetch_add(1);
    }
    if (!batch.empty())
      if (auto a = consumer->ack(std::move(batch.back())); !a) {
        fail("ack: " + std::string(a.error().what()));
        return 1;
      }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The driver.

struct Proc {
  enum class Kind { producer, member } kind;
  unsigned index = 0;  // producer id, or group
  pid_t pid = -1;
  std::uint32_t instance = 0;  // members: instance number in the ledger
  bool stopped = false;
};

class Driver {
 public:
  explicit Driver(Options o) : o_(std::move(o)), rng_(o_.seed) {}
  int run();

 private:
  pid_t spawn_mqd(const char* kill_point = nullptr);
  void restart_mqd_if_dead();
  bool wait_mqd();
  void spawn(Proc& p, std::optional<TestPoint> point = std::nullopt, std::uint64_t nth = 0);
  void reap();
  void kill(Proc& p, const char* why);
  bool timed_out() const { return Clock::now() - start_ > o_.time_limit; }
  int verify(const mq::Topic& topic);
  std::string describe();

  Options o_;
  std::mt19937_64 rng_;
  Clock::time_point start_ = Clock::now();
  std::string dir_, socket_, ns_, name_ = "chaos";
  pid_t mqd_ = -1;
  std::vector<Proc> procs_;
  std::uint32_t next_instance_ = 0;
  std::map<std::string, unsigned> events_;
  unsigned producer_deaths_ = 0;
};

pid_t Driver::spawn_mqd(const char* kill_point) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    // An mqd built with test points (mqd_test_points) dies at that point of its own recovery of a dead client.
    if (kill_point != nullptr) ::setenv("MQ_TEST_KILL", kill_point, 1);
    const std::string log = dir_ + "/mqd.log";
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::dup2(fd, 1);
    }
    ::execl(o_.mqd.c_str(), o_.mqd.c_str(), "--socket", socket_.c_str(), "--namespace", ns_.c_str(), "--data-dir",
            (dir_ + "/data").c_str(), "--config", (dir_ + "/mqd.conf").c_str(), "--orphan-grace", "2", nullptr);
    ::_exit(127);
  }
  return pid;
}

// mqd died by itself (at an armed kill point): start it again, as systemd would.
void Driver::restart_mqd_if_dead() {
  int st = 0;
  if (::waitpid(mqd_, &st, WNOHANG) != mqd_) return;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ++events_["mqd died at a kill point in its recovery"];
  else fail("mqd ended with status " + std::to_string(st));
  mqd_ = spawn_mqd();
  if (!wait_mqd()) fail("mqd did not come back after dying at a kill point");
}

bool Driver::wait_mqd() {
  const auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    if (auto c = mq::Client::connect({.socket = socket_})) return true;
    std::this_thread::sleep_for(10ms);  // mqd's socket appears once it is ready
  }
  return false;
}

void Driver::spawn(Proc& p, std::optional<TestPoint> point, std::uint64_t nth) {
  if (p.kind == Proc::Kind::member) p.instance = next_instance_++ % kMaxInstances;
  const std::uint64_t seed = rng_();
  p.stopped = false;
  p.pid = ::fork();
  if (p.pid == 0) {
    if (point) mq::detail::arm_test_point(*point, nth);
    const int rc = p.kind == Proc::Kind::producer ? producer_role(socket_, name_, p.index, seed)
                                                  : member_role(socket_, name_, p.index, p.instance, seed);
    ::_exit(rc);
  }
}

void Driver::kill(Proc& p, const char* why) {
  if (p.stopped) ::kill(p.pid, SIGCONT);
  ::kill(p.pid, SIGKILL);
  int st = 0;
  ::waitpid(p.pid, &st, 0);
  if (p.kind == Proc::Kind::member) ledger->killed[p.instance].store(1);
  else ++producer_deaths_;
  ++events_[std::string(p.kind == Proc::Kind::producer ? "producer " : "member ") + why];
}

// Children that ended on their own: a test point killed them (restart), or a role failed (already in the ledger).
void Driver::reap() {
  for (auto& p : procs_) {
    int st = 0;
    if (p.pid <= 0 || ::waitpid(p.pid, &st, WNOHANG) != p.pid) continue;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
      if (p.kind == Proc::Kind::member) ledger->killed[p.instance].store(1);
      else ++producer_deaths_;
      ++events_[std::string(p.kind == Proc::Kind::producer ? "producer" : "member") + " died at a test point"];
    } else if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      fail("a " + std::string(p.kind == Proc::Kind::producer ? "producer" : "member") + " ended with status " +
           std::to_string(st));
    }
    p.pid = -1;
    if (ledger->stop_producers.load() == 0 || p.kind == Proc::Kind::member) spawn(p);
  }
}

std::string Driver::describe() {
  auto c = mq::Client::connect({.socket = socket_});
  if (!c) return "(mqd unreachable)";
  auto r = c->request("describe", {{"topic", name_}});
  if (!r) return r.error().what();
  std::string out;
  for (const auto& [k, v] : *r) out += k + "=" + v + " ";
  return out;
}

int Driver::run() {
  char tmpl[] = "/tmp/mq-chaos-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  socket_ = dir_ + "/mqd.sock";
  ns_ = "chaos" + std::to_string(::getpid());
  std::FILE* conf = std::fopen((dir_ + "/mqd.conf").c_str(), "w");
  if (conf != nullptr) std::fclose(conf);
  mqd_ = spawn_mqd();
  if (!wait_mqd()) {
    std::fprintf(stderr, "chaos: mqd did not start (log: %s/mqd.log)\n", dir_.c_str());
    return 1;
  }
  {
    auto client = mq::Client::connect({.socket = socket_});
    mq::CreateOptions create;
    create.capacity = o_.capacity;
    create.policy = mq::Policy::block;
    create.block_timeout = 200ms;
    for (unsigned g = 0; g < o_.groups; ++g) create.groups.push_back("g" + std::to_string(g));
    auto made = client ? client->create(name_, create) : mq::Result<mq::Topic>(client.error());
    if (!made) {
      std::fprintf(stderr, "chaos: create: %s\n", made.error().what());
      return 1;
    }
  }
  for (unsigned p = 0; p < o_.producers; ++p) procs_.push_back({Proc::Kind::producer, p});
  for (unsigned g = 0; g < o_.groups; ++g)
    for (unsigned m = 0; m < o_.members; ++m) procs_.push_back({Proc::Kind::member, g});
  for (auto& p : procs_) spawn(p);

  constexpr std::array kProducerPoints = {TestPoint::claim_announced, TestPoint::claim_made, TestPoint::pad_written,
                                          TestPoint::payload_written, TestPoint::header_written, TestPoint::committed};
  constexpr std::array kMemberPoints = {TestPoint::take_won, TestPoint::ack_started, TestPoint::redelivery_moving};
  unsigned round = 0;
  for (; round < o_.rounds && !timed_out() && ledger->failures.load() == 0; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng_() % 40));  // a random moment of the load
    reap();
    if (ledger->stop_producers.load() != 0) break;  // the ledger is full
    Proc& victim = procs_[rng_() % procs_.size()];
    const unsigned dice = static_cast<unsigned>(rng_() % 100);
    restart_mqd_if_dead();
    if (round % 10 == 9) {
      ::kill(mqd_, SIGKILL);
      ::waitpid(mqd_, nullptr, 0);
      // Every other restart arms a kill point inside mqd's recovery (a no-op with a product mqd).
      static constexpr std::array<const char*, 4> kMqdPoints = {"recovery_writing:1", "recovery_writing:3",
                                                                "redelivery_moving:1", "redelivery_moving:2"};
      const bool armed = rng_() % 2 == 0;
      mqd_ = spawn_mqd(armed ? kMqdPoints[rng_() % kMqdPoints.size()] : nullptr);
      ++events_[armed ? "mqd killed and restarted with a kill point armed" : "mqd killed and restarted"];
      if (!wait_mqd()) {
        fail("mqd did not come back after a restart");
        break;
      }
    } else if (dice < 60) {
      kill(victim, "killed");
      spawn(victim);
    } else if (dice < 88) {
      // Restarted with a test point armed: it kills itself at the point's n-th pass (reaped later).
      kill(victim, "killed");
      if (victim.kind == Proc::Kind::producer)
        spawn(victim, kProducerPoints[rng_() % kProducerPoints.size()], 1 + rng_() % 40);
      else
        spawn(victim, kMemberPoints[rng_() % kMemberPoints.size()], 1 + rng_() % 40);
    } else {
      std::vector<Proc*> members;
      for (auto& p : procs_)
        if (p.kind == Proc::Kind::member) members.push_back(&p);
      Proc& member = *members[rng_() % members.size()];
      ::kill(member.pid, SIGSTOP);
      member.stopped = true;
      std::this_thread::sleep_for(o_.stop_for);  // longer than every recovery timer: it must not be robbed
      ::kill(member.pid, SIGCONT);
      member.stopped = false;
      ++events_["member stopped and continued"];
    }
    if (o_.verbose) std::fprintf(stderr, "round %u: %llu published\n", round, (unsigned long long)ledger->published.load());
  }

  // Wind down: mqd runs without a kill point armed (it may have died at one meanwhile); producers stop; then the
  // topic must still take a record and every group reach the tail.
  ::kill(mqd_, SIGKILL);
  ::waitpid(mqd_, nullptr, 0);
  mqd_ = spawn_mqd();
  if (!wait_mqd()) fail("mqd did not come back for the wind-down");
  ledger->stop_producers.store(1);
  for (auto& p : procs_) {
    if (p.kind != Proc::Kind::producer || p.pid <= 0) continue;
    const auto deadline = Clock::now() + 30s;
    int st = 0;
    while (::waitpid(p.pid, &st, WNOHANG) != p.pid) {
      if (Clock::now() > deadline) {
        kill(p, "killed (did not stop)");
        break;
      }
      std::this_thread::sleep_for(5ms);  // no fd to wait on for a child's exit
    }
    p.pid = -1;
  }
  auto topic = mq::Topic::open(name_, {.ns = ns_});
  if (!topic) {
    fail("cannot open the topic at the end: " + std::string(topic.error().what()));
    return 1;
  }
  {
    mq::Producer last(*topic);
    std::vector<std::byte> payload(64);
    encode(payload, static_cast<std::uint32_t>(o_.producers), 0);
    auto r = last.publish(payload);
    if (!r) fail("the topic took no record at the end: " + std::string(r.error().what()) + "\n" + describe());
    else if (*r < max_offsets) ledger->recorded[*r].store(1);
  }
  const auto deadline = Clock::now() + 60s;
  for (bool drained = false; !drained;) {
    reap();
    const auto info = topic->info();
    drained = true;
    for (const auto& g : info.groups) drained = drained && g.committed == info.latest && g.unacked == 0;
    if (drained) break;
    if (Clock::now() > deadline || ledger->failures.load() != 0) {
      fail("wedged: the groups did not reach the tail within 60 s: " + describe());
      break;
    }
    std::this_thread::sleep_for(20ms);  // members drain the topic; look again
  }
  ledger->stop_members.store(1);
  for (auto& p : procs_) {
    if (p.pid <= 0) continue;
    const auto stop_deadline = Clock::now() + 20s;
    int st = 0;
    while (::waitpid(p.pid, &st, WNOHANG) != p.pid) {
      if (Clock::now() > stop_deadline) {
        kill(p, "killed (did not stop)");
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    p.pid = -1;
  }
  // mqd is up and agrees: every group at lag 0.
  if (::kill(mqd_, 0) != 0) fail("mqd is gone at the end");
  if (auto c = mq::Client::connect({.socket = socket_})) {
    auto groups = c->request("groups", {{"topic", name_}});
    if (!groups) fail("mqd groups: " + std::string(groups.error().what()));
    else
      for (const auto& [k, v] : *groups)
        if (k == "group_lag" && v != "0") fail("mqd shows lag " + v + " at the end");
  } else {
    fail("mqd unreachable at the end");
  }
  const int rc = verify(*topic);
  // Positions no recovery could settle, which mqd repaired after its grace (a sign of a claim recovery cannot prove).
  unsigned repairs = 0;
  if (std::FILE* log = std::fopen((dir_ + "/mqd.log").c_str(), "r")) {
    char line[1024];
    while (std::fgets(line, sizeof line, log) != nullptr) repairs += std::strstr(line, "repaired topic") != nullptr;
    std::fclose(log);
  }
  events_["orphaned positions mqd repaired"] = repairs;
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  std::string events;
  for (const auto& [what, n] : events_) events += "  " + what + ": " + std::to_string(n) + "\n";
  std::printf("chaos: seed %llu, %u rounds in %.1f s, %llu records published; events:\n%s",
              (unsigned long long)o_.seed, round, secs, (unsigned long long)ledger->published.load(), events.c_str());
  ::kill(mqd_, SIGTERM);
  ::waitpid(mqd_, nullptr, 0);
  (void)mq::Topic::remove(name_, {.ns = ns_});
  std::error_code ec;
  if (rc == 0) std::filesystem::remove_all(dir_, ec);
  else std::printf("chaos: kept %s (mqd.log)\n", dir_.c_str());
  return rc;
}

int Driver::verify(const mq::Topic& topic) {
  const auto info = topic.info();
  const mq::Offset latest = std::min<mq::Offset>(info.latest, max_offsets);
  std::vector<mq::Offset> skipped_first;
  for (unsigned g = 0; g < o_.groups; ++g) {
    const GroupLedger& gl = ledger->group[g];
    std::uint64_t lost = 0, duplicates = 0, unexplained = 0;
    std::vector<mq::Offset> skipped;
    for (mq::Offset o = 0; o < latest; ++o) {
      const unsigned n = gl.processed[o].load();
      if (n == 0) {
        skipped.push_back(o);
        if (ledger->recorded[o].load() != 0 && ++lost <= 5)
          fail("group g" + std::to_string(g) + " never processed offset " + std::to_string(o) +
               ", which its producer saw published");
        continue;
      }
      if (n < 2) continue;
      ++duplicates;
      // Only a member that died may have processed a record that went to another member again.
      const std::uint32_t first = gl.first[o].load(), second = gl.second[o].load();
      const bool explained = first != 0 && ledger->killed[first - 1].load() != 0 &&
                             (n < 3 || (second != 0 && ledger->killed[second - 1].load() != 0));
      if (!explained && ++unexplained <= 5)
        fail("group g" + std::to_string(g) + " processed offset " + std::to_string(o) + " " + std::to_string(n) +
             " times, and its first processor did not die (robbed while stopped?): first instance " +
             std::to_string(first) + (first != 0 && ledger->killed[first - 1].load() != 0 ? " (died)" : " (alive)") +
             ", second " + std::to_string(second) +
             (second != 0 && ledger->killed[second - 1].load() != 0 ? " (died)" : " (alive)"));
    }
    if (g == 0) skipped_first = skipped;
    else if (skipped != skipped_first) fail("the groups skipped different offsets (a record lost in one group)");
    std::printf("chaos: group g%u: %llu offsets processed, %llu duplicates (from members that died), %zu skipped\n", g,
                (unsigned long long)(latest - skipped.size()), (unsigned long long)duplicates, skipped.size());
  }
  if (skipped_first.size() > producer_deaths_)
    fail(std::to_string(skipped_first.size()) + " offsets skipped, but only " + std::to_string(producer_deaths_) +
         " producers died (a skip record without a dead producer)");
  std::printf("chaos: %zu skip records, %u producer deaths, %llu bad payloads, %llu failures\n", skipped_first.size(),
              producer_deaths_, (unsigned long long)ledger->bad_payloads.load(),
              (unsigned long long)ledger->failures.load());
  if (ledger->failures.load() != 0) {
    std::printf("chaos: FAILED: %s\n", ledger->first_failure);
    return 1;
  }
  std::printf("chaos: passed\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  po::options_description desc(
      "mq_chaos: producers, consumer-group members and a private mqd under load while members, producers and mqd\n"
      "are killed at random moments and at named points; then checks nothing was lost, corrupted or wedged.\n"
      "Usage: mq_chaos --mqd PATH [options]\nOptions");
  std::string capacity;
  // clang-format off
  desc.add_options()
    ("help,h", "print this help")
    ("mqd", po::value(&o.mqd)->required(), "the mqd binary to run (required)")
    ("rounds", po::value(&o.rounds)->default_value(o.rounds), "rounds of the campaign (one kill, stop or restart each)")
    ("seed", po::value(&o.seed)->default_value(o.seed), "random seed (the run is reproducible up to timing)")
    ("producers", po::value(&o.producers)->default_value(o.producers), "producer processes (1..7)")
    ("groups", po::value(&o.groups)->default_value(o.groups), "consumer groups (1..4)")
    ("members", po::value(&o.members)->default_value(o.members), "member processes per group (1..8)")
    ("capacity", po::value(&capacity)->default_value("4MiB"), "the topic's ring size: a power of two, KiB or MiB")
    ("time-limit", po::value<unsigned>(), "seconds the campaign may take before it fails (default: rounds + 300)")
    ("stop-ms", po::value<unsigned>()->default_value(1500), "ms a stopped member stays stopped")
    ("verbose", "a line per round");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help") != 0) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (po::error& e) {
    std::fprintf(stderr, "mq_chaos: %s (see --help)\n", mqd::option_error_message(e).c_str());
    return 2;
  }
  std::size_t unit = 1;
  std::string number = capacity;
  if (number.ends_with("KiB")) unit = 1024, number.resize(number.size() - 3);
  else if (number.ends_with("MiB")) unit = 1 << 20, number.resize(number.size() - 3);
  o.capacity = std::strtoull(number.c_str(), nullptr, 10) * unit;
  o.time_limit = std::chrono::seconds(vm.count("time-limit") != 0 ? vm["time-limit"].as<unsigned>() : o.rounds + 300);
  o.stop_for = std::chrono::milliseconds(vm["stop-ms"].as<unsigned>());
  o.verbose = vm.count("verbose") != 0;
  if (o.producers < 1 || o.producers >= kMaxProducers || o.groups < 1 || o.groups > kMaxGroups || o.members < 1 ||
      o.members > 8) {
    std::fprintf(stderr, "mq_chaos: --producers 1..%zu, --groups 1..%zu, --members 1..8\n", kMaxProducers - 1,
                 kMaxGroups);
    return 2;
  }
  // Room for ~4096 records a round (this VM publishes a few thousand a round), at least 2M offsets.
  if (!map_ledger(std::max<std::uint64_t>(std::uint64_t{1} << 21, std::uint64_t{o.rounds} * 4096))) {
    std::perror("mq_chaos: mmap");
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // The campaign stops members (SIGSTOP). Should the shell that started it exit meanwhile, their process group is
  // orphaned with stopped processes in it, and the kernel sends the group SIGHUP (then SIGCONT): a member would die
  // of it unrecorded, and its redelivered records would read as robbed. Ignored here, so in every child too (mqd
  // installs its own SIGHUP handler).
  ::signal(SIGHUP, SIG_IGN);
  return Driver(o).run();
}
