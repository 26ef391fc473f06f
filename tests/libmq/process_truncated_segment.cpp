// A topic's file truncated underneath running clients (by a peer with write rights): every access past the new
// end would be a SIGBUS. libmq turns it into Errc::bad_segment: the producer's publish and the consumer's poll fail
// with that error, a zero-copy payload view still reads (zeros), and the process lives (src/fault_guard.hpp). Run in
// a child, so a SIGBUS fails the test instead of killing the test binary.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"  // GCC PR 105329, as in the other suites
#endif

#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

TEST_F(MultiProcess, ASegmentTruncatedUnderneathIsBadSegmentNotASigbus) {
  const std::string path = "/dev/shm/mq@" + ns() + "@cut";
  mqtest::Child child([&]() -> int {
    auto topic = mq::Topic::create("cut", {.capacity = std::size_t{64} << 10, .groups = {"g"}});
    if (!topic) return child_fail(topic.error().what());
    mq::Producer producer(*topic);
    for (int i = 0; i < 10; ++i)
      if (!producer.publish(mqtest::bytes("record " + std::to_string(i)))) return child_fail("publish before");
    auto consumer = mq::Consumer::make(*topic, {.group = "g", .auto_ack = false});
    if (!consumer) return child_fail(consumer.error().what());
    auto held = consumer->poll(1s);  // a zero-copy view into the ring
    if (!held) return child_fail(held.error().what());
    if (::truncate(path.c_str(), 0) != 0) return child_fail("truncate " + path);
    // The view reads what is now past the file's end: zeros, not a SIGBUS.
    unsigned sum = 0;
    for (const std::byte b : held->payload()) sum += static_cast<unsigned>(b);
    if (sum != 0) return child_fail("the payload view of a truncated segment reads " + std::to_string(sum));
    auto published = producer.publish(mqtest::bytes("after"));
    if (published || published.error().code() != mq::Errc::bad_segment)
      return child_fail("publish after the truncation: " + std::string(published ? "succeeded" : published.error().what()));
    if (!mqtest::contains(published.error().message(), "truncated underneath this process"))
      return child_fail("the error does not say why: " + std::string(published.error().message()));
    auto polled = consumer->poll(100ms);
    if (polled || polled.error().code() != mq::Errc::bad_segment)
      return child_fail("poll after the truncation: " + std::string(polled ? "a record" : polled.error().what()));
    std::vector<mq::Message> batch;
    auto taken = consumer->poll_batch(batch, 8, 0ms);
    if (taken || taken.error().code() != mq::Errc::bad_segment) return child_fail("poll_batch after the truncation");
    (void)topic->info();  // reads zeros; must not crash either
    return 0;
  });
  EXPECT_EQ(child.wait(), 0) << "135 = killed by SIGBUS";
}

}  // namespace
