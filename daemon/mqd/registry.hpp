// The topics mqd knows: created through it, listed in its config, or found in its namespace and data dir at start
// (adopted after validation). Every operation on behalf of a client checks that client's rights first.
// Not thread-safe: mqd calls it only from the one thread that runs its io_context (main.cpp), which serializes every
// request, timer and signal. What it shares with other processes (the segments) is safe by libmq's own protocols.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config.hpp"
#include "libmq/control.hpp"
#include "libmq/libmq.hpp"
#include "peer.hpp"

namespace mqd {

class Registry {
 public:
  explicit Registry(Config config);

  const Config& config() const { return config_; }
  // SIGHUP: new defaults apply to topics created from now on; topics newly listed in the config are created.
  void reconfigure(Config config);

  // Maps every valid topic of the namespace (shm) and the data dir (file). Returns how many.
  std::size_t adopt();
  // Creates the topics (and groups) the config lists that do not exist yet.
  void create_configured();

  // Requests (libmq/control.hpp), with the rights of `peer` checked first.
  mq::Result<mq::control::Opened> create(const Peer& peer, const mq::control::Create& request);
  mq::Result<mq::control::Opened> open(const Peer& peer, const std::string& name);
  mq::Result<void> remove(const Peer& peer, const std::string& name);
  mq::Result<mq::TopicReport> describe(const Peer& peer, const std::string& name);
  mq::Result<void> create_group(const Peer& peer, const mq::control::CreateGroup& request);
  mq::Result<void> delete_group(const Peer& peer, const mq::control::DeleteGroup& request);
  mq::Result<void> set_retry(const Peer& peer, const mq::control::SetRetry& request);
  mq::Result<mq::control::ResetDone> reset_offsets(const Peer& peer, const mq::control::ResetOffsets& request);
  // Kafka's DeleteRecords (`before`: the first offset to keep); replies with the topic's new `earliest`.
  mq::Result<mq::control::RecordsDeleted> delete_records(const Peer& peer, const mq::control::DeleteRecords& request);
  // Repairs the topic's orphaned positions now (mqctl repair), without waiting for --orphan-grace.
  mq::Result<mq::RepairReport> repair(const Peer& peer, const std::string& name);
  // The dead-letter topic of `source` (mq::dead_letter_options), created first if missing; opened as open() does.
  mq::Result<mq::control::Opened> create_dead_letter(const Peer& peer, const std::string& source);
  // The topics `peer` may use (a corrupted one too); stats: the sound ones (a corrupted one is in names() and in
  // the log, not here). A topic the peer has no rights on is not shown to it, as describe would refuse it.
  std::vector<std::string> names(const Peer& peer) const;
  std::vector<mq::TopicReport> stats(const Peer& peer) const;
  // Prometheus text exposition of every topic and group, plus the client count. No rights are checked: whoever
  // reaches --metrics-listen sees it all (the docs say so).
  std::string prometheus(std::size_t clients) const;

  // Recovers what dead processes left in these topics (a client's connection closed).
  void recover(const std::set<std::string>& names);
  // Housekeeping, about once a second: rates, dead-peer recovery, stuck positions (repaired after
  // --orphan-grace), group expiry.
  void tick();
  // msync file-backed topics (on the flush interval and at a clean stop).
  void flush();
  std::size_t size() const { return topics_.size(); }
  bool has(const std::string& name) const { return topics_.count(name) != 0; }

 private:
  struct Entry {
    mq::Topic topic;
    mq::Storage storage;
    std::string path{};  // the segment's file, for rights checks
    std::uint64_t last_latest = 0;
    std::uint64_t last_bytes = 0;
    std::chrono::steady_clock::time_point last_sample{};
    double msgs_per_s = 0;
    double bytes_per_s = 0;
    std::map<std::string, std::chrono::steady_clock::time_point> group_seen{};  // last time with a member
    // Where groups wait on a claim the tail has passed, by (group, position): since when mqd has seen it.
    std::map<std::pair<std::string, std::uint64_t>, std::chrono::steady_clock::time_point> stuck_since{};
    std::uint64_t orphans_repaired = 0;  // positions mqd (or mqctl repair) turned into skip records
    std::string broken{};  // why the segment's header does not validate (a client scribbled on it); "" = sound
  };

  mq::OpenOptions where(mq::Storage storage) const;
  mq::Result<Entry*> find(const std::string& name);
  // `usable`: also a sound segment (not for delete, which must work on a corrupted one).
  mq::Result<Entry*> authorized(const Peer& peer, const std::string& name, bool usable = true);
  // Validates the segment's header again (as Topic::open does); a corrupted one is logged once and not touched
  // until it validates again or is deleted: mqd never reads garbage as positions, pids or sizes.
  bool sound(const std::string& name, Entry& e) const;
  Entry& add(const std::string& name, mq::Topic topic, mq::Storage storage);
  mq::Result<void> create_topic(const std::string& name, const TopicSettings& s, const std::vector<std::string>& groups);
  mq::TopicReport report(const Entry& e) const;
  bool visible(const Peer& peer, const Entry& e) const;
  // Repairs the orphans of `e` and logs each repair; `why` says who asked. Returns what was repaired.
  mq::Result<std::vector<mq::OrphanRepair>> repair_orphans(const std::string& name, Entry& e, const std::string& why);

  Config config_;
  std::map<std::string, Entry> topics_;
};

}  // namespace mqd
