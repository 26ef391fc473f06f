// Batches under concurrency (threads over one mapping, for ThreadSanitizer): producers publish batches of 1..16
// records with one claim each (publish_batch and claim_batch), members take runs of up to 63 records with one CAS
// (poll_batch), ack part of a run and close holding the rest, while others keep consuming. Every record is processed
// exactly once per group (what a closing member held goes back as a run, flagged redelivered), payloads intact.
// g++ 12 reports a false -Wrestrict (GCC PR 105329) in std::string code inlined here; silence it before any header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace mqtest::scenario;
using namespace std::chrono_literals;

struct Ledger {
  Ledger(std::uint64_t records, std::size_t groups) : processed(groups * records), records(records) {}
  std::vector<std::atomic<std::uint32_t>> processed;  // [group * records + (producer, seq)]
  std::atomic<std::uint64_t> total[2]{};
  std::atomic<std::uint64_t> handed_back{0};
  std::uint64_t records;
};

// Publishes w.per_producer records as producer `id` in batches of 1..16, alternating publish_batch and claim_batch.
std::string batch_producer(const mq::Topic& topic, unsigned id, const Workload& w) {
  auto producer = mq::Producer::make(topic, mq::ProducerOptions{500ms});
  if (!producer) return producer.error().what();
  std::mt19937_64 rng(w.seed + id);
  StallDetector stall;
  for (std::uint64_t seq = 0; seq < w.per_producer;) {
    const std::size_t n = std::min<std::uint64_t>(1 + rng() % 16, w.per_producer - seq);
    std::vector<std::vector<std::byte>> payloads(n);
    std::vector<std::size_t> sizes(n);
    for (std::size_t i = 0; i < n; ++i) {
      payloads[i].resize(kHeadBytes + rng() % (w.max_filler + 1));
      encode_payload(payloads[i], id, seq + i, kUnknownOffset, rng);
      sizes[i] = payloads[i].size();
    }
    mq::Result<mq::Offset> r = mq::Offset{0};
    if (rng() % 2 == 0) {
      std::vector<std::span<const std::byte>> spans(payloads.begin(), payloads.end());
      r = producer->publish_batch(spans);
    } else if (auto claim = producer->claim_batch(sizes)) {
      for (std::size_t i = 0; i < n; ++i) std::memcpy(claim->bytes(i).data(), payloads[i].data(), sizes[i]);
      r = std::move(*claim).commit();
    } else {
      r = std::move(claim).error();
    }
    if (!r) {
      if (r.error().code() != mq::Errc::full) return r.error().what();
      if (aborted()) return kAborted;
      if (stall.stalled(topic.info().bytes_written)) return "full for too long\n" + dump_topic(topic);
      continue;  // nothing was written: the same batch again
    }
    seq += n;
  }
  return {};
}

std::string book(const mq::Message& m, Ledger& ledger, std::size_t g, const Workload& w) {
  std::string why;
  auto head = decode_payload(m.payload(), &why);
  if (!head) return "offset " + std::to_string(m.offset()) + ": " + why;
  if (head->producer >= w.producers || head->seq >= w.per_producer) return "a record of nobody's";
  ledger.processed[g * ledger.records + head->producer * w.per_producer + head->seq].fetch_add(1);
  ledger.total[g].fetch_add(1);
  return {};
}

// Takes runs until its group processed everything; a churning member acks part of each run, then closes holding
// the rest (which goes back to the group), every few runs.
std::string batch_member(const mq::Topic& topic, std::size_t g, bool churn, const Workload& w, Ledger& ledger,
                         std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  StallDetector stall;
  const std::string group = "g" + std::to_string(g);
  while (ledger.total[g].load() < w.total()) {
    auto c = mq::Consumer::make(topic, member_options(group, mq::Start::earliest, mq::Wait::spin_futex, false));
    if (!c) return c.error().what();
    std::vector<mq::Message> batch;
    for (int runs = 0; ledger.total[g].load() < w.total(); ++runs) {
      auto n = c->poll_batch(batch, 1 + rng() % mq::kMaxBatch, 20ms);
      if (!n) return n.error().what();
      if (aborted()) return kAborted;
      if (*n == 0) {
        if (stall.stalled(ledger.total[g].load())) return group + " wedged\n" + dump_topic(topic);
        continue;
      }
      if (churn && runs % 5 == 4) {
        // Process and ack a prefix; the rest goes back to the group with this member.
        const std::size_t done = rng() % batch.size();
        for (std::size_t i = 0; i < done; ++i)
          if (auto e = book(batch[i], ledger, g, w); !e.empty()) return e;
        if (done != 0)
          if (auto a = c->ack(std::move(batch[done - 1])); !a) return a.error().what();
        ledger.handed_back.fetch_add(batch.size() - done);
        break;  // closes holding batch[done..]
      }
      for (const auto& m : batch)
        if (auto e = book(m, ledger, g, w); !e.empty()) return e;
      if (auto a = c->ack(std::move(batch.back())); !a) return a.error().what();
    }
  }
  return {};
}

TEST_F(Concurrency, BatchesArePublishedAndTakenExactlyOncePerGroup) {
  const Workload w{2, kThreadSanitizer ? 3'000u : 30'000u, 200, 11};
  auto topic = mq::Topic::create("batches", {.capacity = std::size_t{256} << 10, .policy = mq::Policy::block});
  ASSERT_TRUE(topic) << topic.error().what();
  ASSERT_TRUE(topic->create_group("g0", mq::Start::earliest));
  ASSERT_TRUE(topic->create_group("g1", mq::Start::earliest));
  Ledger ledger(w.total(), 2);
  std::vector<std::string> failures;
  {
    ThreadCrew crew(*topic);
    for (std::size_t g = 0; g < 2; ++g) {
      crew.spawn("steady-" + std::to_string(g), [&, g](const mq::Topic& t) { return batch_member(t, g, false, w, ledger, g); });
      crew.spawn("churn-" + std::to_string(g), [&, g](const mq::Topic& t) { return batch_member(t, g, true, w, ledger, 10 + g); });
    }
    for (unsigned p = 0; p < w.producers; ++p)
      crew.spawn("producer-" + std::to_string(p), [&, p](const mq::Topic& t) { return batch_producer(t, p, w); });
    failures = crew.join();
  }
  expect_no_failures(failures);
  for (std::size_t g = 0; g < 2; ++g) {
    int wrong = 0;
    for (std::uint64_t i = 0; i < w.total() && wrong < 10; ++i)
      if (const auto n = ledger.processed[g * ledger.records + i].load(); n != 1) {
        ++wrong;
        ADD_FAILURE() << "group g" << g << ": producer " << i / w.per_producer << " seq " << i % w.per_producer
                      << " processed " << n << " times";
      }
  }
  EXPECT_GT(ledger.handed_back.load(), 0u) << "no member closed holding a part of a run";
  const auto info = topic->info();
  EXPECT_EQ(info.latest, w.total());
  for (const auto& g : info.groups) {
    EXPECT_EQ(g.committed, w.total()) << g.name;
    EXPECT_EQ(g.unacked, 0u) << g.name;
  }
}

}  // namespace
