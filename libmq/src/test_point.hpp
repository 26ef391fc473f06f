// Named points on the data and recovery paths where a test build kills its own process, so tests and the chaos
// driver make a peer die at exactly the worst moment (after its claim, mid-body, before its commit, ...).
// Compiled in only with MQ_TEST_POINTS (the mq_test_points library the tests link); in the product every call below
// is an empty inline function and costs nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mq {
class Producer;
}

namespace mq::detail {

enum class TestPoint : std::uint8_t {
  claim_announced,   // producer: intent stored in its slot, tail CAS not made yet
  claim_made,        // producer: tail CAS won, nothing written in the ring yet
  pad_written,       // producer: the pad in front of a wrapping claim is written, the record is not
  payload_written,   // producer (publish): payload copied, header not written
  header_written,    // producer: header fields written, seq word (the commit) not yet
  committed,         // producer: seq word exchanged (published), intent not cleared yet
  take_won,          // consumer: taking CAS on the group cursor won, the record not in the held list yet
  ack_started,       // consumer: acking, the held list's head not moved yet
  redelivery_moving, // recoverer: a dead member's records half copied to the redelivery list
  recovery_writing,  // recoverer: producers held, a dead claim's pad written, its skip record not yet
  handover_fenced,   // group mover: epoch bumped and the exclusive producer fenced (membarrier), its claim not seen
  retry_parked,      // consumer (nack): the record is in the group's retry table, not acked yet
  dead_lettered,     // consumer (nack): the record is published to the dead-letter topic, not acked yet
  key_parked,        // consumer (key ordering): a record is parked for its key, the group's cursor not past it yet
  count_
};

// The point's name as tests and MQ_TEST_KILL spell it ("claim_made"), and back.
std::string_view test_point_name(TestPoint point) noexcept;
std::optional<TestPoint> test_point_named(std::string_view name) noexcept;

#ifdef MQ_TEST_POINTS
// Test builds: what a test needs to see of a handle, e.g. the slot of a Producer it is about to declare dead.
struct ProducerSlot;
struct TestAccess {
  static ProducerSlot& slot(const Producer& producer) noexcept;
};

// Test builds: SIGKILLs this process at the `nth` pass (1 = the next one) through `point` from now on. The
// environment variable MQ_TEST_KILL=NAME[:N] arms one point the same way when the process first passes any point.
void arm_test_point(TestPoint point, std::uint64_t nth = 1) noexcept;
void disarm_test_points() noexcept;
void test_point(TestPoint point) noexcept;
#else
inline void test_point(TestPoint) noexcept {}
#endif

}  // namespace mq::detail
