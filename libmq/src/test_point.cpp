// Kill points for test builds (see test_point.hpp). The names are in every build, so tools can list them; the
// arming and the kill exist only with MQ_TEST_POINTS.
#include "test_point.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>

namespace mq::detail {

namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(TestPoint::count_)> kNames = {
    "claim_announced", "claim_made",    "pad_written",       "payload_written",  "header_written",
    "committed",       "take_won",      "ack_started",       "redelivery_moving", "recovery_writing", "handover_fenced",
    "retry_parked",    "dead_lettered", "key_parked"};

}  // namespace

std::string_view test_point_name(TestPoint point) noexcept {
  const auto i = static_cast<std::size_t>(point);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

std::optional<TestPoint> test_point_named(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<TestPoint>(i);
  return std::nullopt;
}

#ifdef MQ_TEST_POINTS

namespace {

// countdown[p]: passes left before the kill (0 = disarmed). Process-wide: a fork child inherits the parent's arming,
// which is what a test that arms a point in the child wants anyway.
std::array<std::atomic<std::uint64_t>, kNames.size()> g_countdown{};
std::atomic<bool> g_env_read{false};

void read_environment() noexcept {
  if (g_env_read.exchange(true)) return;
  const char* spec = std::getenv("MQ_TEST_KILL");
  if (spec == nullptr) return;
  const std::string_view s(spec);
  const auto colon = s.find(':');
  const auto point = test_point_named(s.substr(0, colon));
  if (!point) return;
  std::uint64_t nth = 1;
  if (colon != std::string_view::npos) nth = std::strtoull(std::string(s.substr(colon + 1)).c_str(), nullptr, 10);
  arm_test_point(*point, nth == 0 ? 1 : nth);
}

}  // namespace

void arm_test_point(TestPoint point, std::uint64_t nth) noexcept {
  g_env_read.store(true);  // an explicit arming wins over the environment
  g_countdown[static_cast<std::size_t>(point)].store(nth);
}

void disarm_test_points() noexcept {
  g_env_read.store(true);
  for (auto& c : g_countdown) c.store(0);
}

void test_point(TestPoint point) noexcept {
  if (!g_env_read.load(std::memory_order_relaxed)) read_environment();
  auto& left = g_countdown[static_cast<std::size_t>(point)];
  if (left.load(std::memory_order_relaxed) == 0) return;
  if (left.fetch_sub(1) == 1) ::kill(::getpid(), SIGKILL);
}

#endif

}  // namespace mq::detail
