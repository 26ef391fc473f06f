// The registry of topics (see registry.hpp).
#include "registry.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#include "log.hpp"
#include "units.hpp"

namespace mqd {

using mq::Errc;
using mq::Error;

namespace {

std::string group_name(gid_t gid) {
  const ::group* g = ::getgrgid(gid);
  return g != nullptr ? g->gr_name : std::to_string(gid);
}

Error denied(const std::string& name, const Peer& peer) {
  return Error(Errc::permission_denied, "permission denied: topic=" + name + " " + peer.describe());
}

// The request's settings over the daemon's defaults.
TopicSettings settings_from(const mq::CreateOptions& o, TopicSettings s) {
  if (o.capacity) s.capacity = *o.capacity;
  if (o.max_message) s.max_message = *o.max_message;
  if (o.policy) s.policy = *o.policy;
  if (o.storage) s.storage = *o.storage;
  if (o.block_timeout) s.block_timeout = *o.block_timeout;
  if (o.mode) s.mode = *o.mode;
  if (o.access_group) s.access_group = *o.access_group;
  return s;
}

}  // namespace

Registry::Registry(Config config) : config_(std::move(config)) {}

void Registry::reconfigure(Config config) {
  config.socket = config_.socket;  // where we listen and what we manage do not move under running clients
  config.ns = config_.ns;
  config.data_dir = config_.data_dir;
  config_ = std::move(config);
  create_configured();
}

mq::OpenOptions Registry::where(mq::Storage storage) const {
  return mq::OpenOptions{storage, config_.data_dir, config_.ns};
}

Registry::Entry& Registry::add(const std::string& name, mq::Topic topic, mq::Storage storage) {
  std::string path = topic.file();
  Entry e{std::move(topic), storage, std::move(path)};
  const auto info = e.topic.info();
  e.last_latest = info.latest;
  e.last_bytes = info.bytes_written;
  e.last_sample = std::chrono::steady_clock::now();
  for (const auto& g : info.groups) e.group_seen[g.name] = e.last_sample;
  return topics_.insert_or_assign(name, std::move(e)).first->second;
}

std::size_t Registry::adopt() {
  std::size_t n = 0;
  for (const auto storage : {mq::Storage::shm, mq::Storage::file}) {
    if (storage == mq::Storage::file && ::access(config_.data_dir.c_str(), R_OK) != 0) continue;
    auto names = mq::Topic::list(where(storage));
    if (!names) {
      log(LogLevel::warn, "cannot list topics: " + std::string(names.error().message()));
      continue;
    }
    for (const auto& name : *names) {
      auto topic = mq::Topic::open(name, where(storage));
      if (!topic) {
        log(LogLevel::error, "not adopting topic " + name + ": " + std::string(topic.error().message()));
        continue;
      }
      add(name, std::move(*topic), storage);
      ++n;
      log(LogLevel::info, "adopted topic " + name + (storage == mq::Storage::file ? " (file)" : ""));
    }
  }
  return n;
}

mq::Result<void> Registry::create_topic(const std::string& name, const TopicSettings& s,
                                        const std::vector<std::string>& groups) {
  mq::TopicOptions o;
  o.capacity = s.capacity;
  o.max_message = s.max_message;
  o.policy = s.policy;
  o.block_timeout = s.block_timeout;
  o.storage = s.storage;
  o.directory = config_.data_dir;
  o.mode = s.mode;
  o.access_group = s.access_group;
  o.groups = groups;
  o.ns = config_.ns;
  auto topic = mq::Topic::create(name, o);
  if (!topic) return topic.error();
  add(name, std::move(*topic), s.storage);
  log(LogLevel::info, "created topic " + name + " capacity=" + format_size(s.capacity));
  return {};
}

void Registry::create_configured() {
  for (const auto& t : config_.topics) {
    const auto ordering = [&](const std::string& g) {
      const auto it = t.orderings.find(g);
      return it == t.orderings.end() ? mq::Ordering::none : it->second;
    };
    if (topics_.count(t.name) == 0) {
      // Groups of ordering none come with the topic; the others are created right after (from its earliest record).
      std::vector<std::string> plain;
      for (const auto& g : t.groups)
        if (ordering(g) == mq::Ordering::none) plain.push_back(g);
      if (auto r = create_topic(t.name, t.settings, plain); !r) {
        log(LogLevel::error, "cannot create configured topic " + t.name + ": " + std::string(r.error().message()));
        continue;
      }
    }
    // Groups listed later are created on the existing topic (records are kept for them from now on).
    for (const auto& g : t.groups)
      if (auto r = topics_.at(t.name).topic.create_group(g, mq::Start::earliest, {}, ordering(g));
          !r && r.error().code() != mq::Errc::exists)
        log(LogLevel::error, "cannot create configured group " + g + " of topic " + t.name + ": " +
                                 std::string(r.error().message()));
  }
}

mq::Result<Registry::Entry*> Registry::find(const std::string& name) {
  if (auto valid = mq::validate_topic_name(name); !valid) return valid.error();
  if (auto it = topics_.find(name); it != topics_.end()) return &it->second;
  // Created by an embedded process in our namespace since we started: adopt it now.
  for (const auto storage : {mq::Storage::shm, mq::Storage::file}) {
    auto topic = mq::Topic::open(name, where(storage));
    if (topic) return &add(name, std::move(*topic), storage);
    if (topic.error().code() != Errc::not_found) return topic.error();
  }
  return Error(Errc::not_found, "no such topic: topic=" + name);
}

mq::Result<Registry::Entry*> Registry::authorized(const Peer& peer, const std::string& name, bool usable) {
  auto e = find(name);
  if (!e) return e;
  struct stat st{};
  if (::stat((*e)->path.c_str(), &st) != 0) {
    if (!usable) return e;  // deleting what was removed underneath mqd: forgetting it is all there is to do
    return Error(Errc::not_found, "topic segment is gone: topic=" + name);
  }
  if (!may_use(peer, st)) return denied(name, peer);
  if (usable && !sound(name, **e)) return Error(Errc::bad_segment, (*e)->broken + " (mqctl delete removes it)");
  return e;
}

bool Registry::sound(const std::string& name, Entry& e) const {
  const auto valid = e.topic.validate();
  if (valid && !e.broken.empty()) {
    log(LogLevel::info, "topic " + name + ": its segment's header is valid again; serving it");
    e.broken.clear();
  } else if (!valid && e.broken.empty()) {
    e.broken = std::string(valid.error().message());
    log(LogLevel::error, "topic " + name + ": " + e.broken + "; mqd stops touching it (mqctl delete removes it)");
  }
  return e.broken.empty();
}

mq::Result<mq::control::Opened> Registry::create(const Peer& peer, const mq::control::Create& request) {
  const std::string& name = request.topic;
  if (auto valid = mq::validate_topic_name(name); !valid) return valid.error();
  const TopicSettings s = settings_from(request.options, config_.defaults);
  gid_t gid = ::getegid();
  if (!s.access_group.empty()) {
    const ::group* g = ::getgrnam(s.access_group.c_str());
    if (g == nullptr) return Error(Errc::invalid_argument, "no such group: access_group=" + s.access_group);
    gid = g->gr_gid;
  }
  if (!may_create(peer, gid)) return denied(name, peer);
  if (topics_.count(name) != 0 || find(name)) return Error(Errc::exists, "topic exists: topic=" + name);
  if (auto r = create_topic(name, s, request.options.groups); !r) return r.error();
  return open(peer, name);
}

mq::Result<mq::control::Opened> Registry::open(const Peer& peer, const std::string& name) {
  auto e = authorized(peer, name);
  if (!e && e.error().code() == Errc::not_found && config_.auto_create) {
    gid_t gid = ::getegid();
    if (!config_.defaults.access_group.empty())
      if (const ::group* g = ::getgrnam(config_.defaults.access_group.c_str())) gid = g->gr_gid;
    if (!may_create(peer, gid)) return denied(name, peer);
    if (auto r = create_topic(name, config_.defaults, {}); !r && r.error().code() != Errc::exists) return r.error();
    e = authorized(peer, name);
  }
  if (!e && e.error().code() == Errc::not_found && !config_.auto_create)
    return Error(Errc::not_found, std::string(e.error().message()) +
                                      " (mqd's auto-create is off: create it first, e.g. `mqctl create " + name + "`)");
  if (!e) return e.error();
  const mq::Storage storage = (*e)->storage;
  return mq::control::Opened{storage, storage == mq::Storage::file ? config_.data_dir : "", config_.ns};
}

mq::Result<mq::control::Opened> Registry::create_dead_letter(const Peer& peer, const std::string& source) {
  auto e = authorized(peer, source);
  if (!e) return e.error();
  const std::string name = source + std::string(mq::kDeadLetterSuffix);
  if (auto valid = mq::validate_topic_name(name); !valid)
    return Error(Errc::invalid_name, "the dead-letter topic of " + source + " would have an invalid name: " +
                                         std::string(valid.error().message()));
  if (topics_.count(name) == 0 && !find(name)) {
    const mq::TopicOptions o = mq::dead_letter_options((*e)->topic);
    const TopicSettings s{.capacity = o.capacity,
                          .max_message = o.max_message,
                          .policy = o.policy,
                          .storage = o.storage,
                          .mode = o.mode,
                          .access_group = o.access_group,
                          .block_timeout = o.block_timeout};
    if (auto r = create_topic(name, s, o.groups); !r && r.error().code() != Errc::exists) return r.error();
    log(LogLevel::info, "created dead-letter topic " + name + " of " + source + " (" + peer.describe() + ")");
  }
  return open(peer, name);
}

mq::Result<void> Registry::remove(const Peer& peer, const std::string& name) {
  auto e = authorized(peer, name, /*usable=*/false);
  if (!e) return e.error();
  const mq::Storage storage = (*e)->storage;
  if (auto r = mq::Topic::remove(name, where(storage)); !r && r.error().code() != Errc::not_found) return r;
  topics_.erase(name);  // also when its file was removed underneath mqd
  log(LogLevel::info, "deleted topic " + name + " (" + peer.describe() + ")");
  return {};
}

bool Registry::visible(const Peer& peer, const Entry& e) const {
  struct stat st{};
  if (::stat(e.path.c_str(), &st) == 0) return may_use(peer, st);
  // Its segment file is gone (removed underneath mqd) or cannot be looked at: its rights cannot be checked, so only
  // the peers who may use every topic see it (and can delete it); to anyone else its name stays hidden.
  return may_use_any(peer);
}

std::vector<std::string> Registry::names(const Peer& peer) const {
  std::vector<std::string> out;
  for (const auto& [name, e] : topics_)
    if (visible(peer, e)) out.push_back(name);
  return out;
}

mq::TopicReport Registry::report(const Entry& e) const {
  const auto info = e.topic.info();
  struct stat st{};
  const bool have = ::stat(e.path.c_str(), &st) == 0;
  mq::TopicReport t{.name = info.name,
                    .capacity = info.capacity,
                    .max_message = info.max_message,
                    .policy = info.policy,
                    .storage = info.storage,
                    .mode = have ? static_cast<std::uint32_t>(st.st_mode & 0777) : info.mode,
                    .access_group = have ? group_name(st.st_gid) : "",
                    .block_timeout = info.block_timeout,
                    .earliest = info.earliest,
                    .latest = info.latest,
                    .bytes = info.bytes_written,
                    .producers = info.producers,
                    .stalled_producers = info.stalled_producers,
                    .msgs_per_s = static_cast<std::uint64_t>(e.msgs_per_s),
                    .bytes_per_s = static_cast<std::uint64_t>(e.bytes_per_s),
                    .orphans_repaired = e.orphans_repaired};
  if (info.exclusive_pid != 0) {
    t.exclusive_pid = static_cast<std::uint64_t>(info.exclusive_pid);
    t.exclusive_plain = info.exclusive_plain;
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& s : info.stuck) {
    const auto seen = e.stuck_since.find({s.group, s.position});
    const auto since = seen == e.stuck_since.end() ? now : seen->second;
    t.stuck.push_back({s.group, s.offset, s.position, s.cause, static_cast<std::uint64_t>(s.pid),
                       static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(now - since).count())});
  }
  for (const auto& g : info.groups) {
    const bool exclusive = g.ordering == mq::Ordering::exclusive;
    t.groups.push_back(
        {g.name, g.committed, g.next, g.lag, g.members, g.unacked, g.retrying, g.parked, mq::RetryFields::of(g.retry),
         g.ordering, exclusive ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(g.active_pid)) : std::nullopt});
  }
  return t;
}

mq::Result<mq::TopicReport> Registry::describe(const Peer& peer, const std::string& name) {
  auto e = authorized(peer, name);
  if (!e) return e.error();
  return report(**e);
}

std::vector<mq::TopicReport> Registry::stats(const Peer& peer) const {
  std::vector<mq::TopicReport> out;
  for (const auto& [name, e] : topics_)
    if (e.broken.empty() && visible(peer, e)) out.push_back(report(e));  // a corrupted one is in `list` and in the log, not here
  return out;
}

mq::Result<void> Registry::create_group(const Peer& peer, const mq::control::CreateGroup& request) {
  auto e = authorized(peer, request.topic);
  if (!e) return e.error();
  const mq::RetryPolicy retry = request.retry.over(mq::RetryPolicy{});
  const mq::Ordering ordering = request.ordering.value_or(mq::Ordering::none);
  if (auto r = (*e)->topic.create_group(request.group, request.start.value_or(mq::Start::earliest), retry, ordering);
      !r)
    return r;
  (*e)->group_seen[request.group] = std::chrono::steady_clock::now();
  return {};
}

mq::Result<void> Registry::set_retry(const Peer& peer, const mq::control::SetRetry& request) {
  auto e = authorized(peer, request.topic);
  if (!e) return e.error();
  for (const auto& g : (*e)->topic.info().groups)
    if (g.name == request.group) return (*e)->topic.set_retry_policy(request.group, request.retry.over(g.retry));
  return mq::Error(mq::Errc::not_found, "no such group: topic=" + request.topic + " group=" + request.group);
}

mq::Result<void> Registry::delete_group(const Peer& peer, const mq::control::DeleteGroup& request) {
  auto e = authorized(peer, request.topic);
  if (!e) return e.error();
  return (*e)->topic.delete_group(request.group);
}

mq::Result<mq::control::ResetDone> Registry::reset_offsets(const Peer& peer, const mq::control::ResetOffsets& request) {
  auto e = authorized(peer, request.topic);
  if (!e) return e.error();
  mq::Topic& topic = (*e)->topic;
  if (const auto* start = std::get_if<mq::Start>(&request.to)) {
    if (auto r = topic.reset_group(request.group, *start); !r) return r.error();
    return mq::control::ResetDone{};
  }
  if (const auto* offset = std::get_if<mq::Offset>(&request.to)) {
    if (auto r = topic.reset_group(request.group, *offset); !r) return r.error();
    return mq::control::ResetDone{};
  }
  // The first record at or after a time (one past int64's ns is past every record: the end).
  const std::uint64_t ns = std::get<mq::TimePoint>(request.to).ns_since_epoch;
  auto offset = topic.offset_for_time(static_cast<std::int64_t>(std::min<std::uint64_t>(ns, INT64_MAX)));
  if (!offset) return offset.error();
  if (auto r = topic.reset_group(request.group, *offset); !r) return r.error();
  return mq::control::ResetDone{*offset};
}

mq::Result<mq::control::RecordsDeleted> Registry::delete_records(const Peer& peer,
                                                                 const mq::control::DeleteRecords& request) {
  auto e = authorized(peer, request.topic);
  if (!e) return e.error();
  auto earliest = (*e)->topic.delete_records(mq::Offset{request.before});
  if (!earliest) return earliest.error();
  log(LogLevel::info, "topic " + request.topic + ": records before offset " + std::to_string(*earliest) +
                          " deleted by " + peer.describe());
  return mq::control::RecordsDeleted{*earliest};
}

mq::Result<std::vector<mq::OrphanRepair>> Registry::repair_orphans(const std::string& name, Entry& e,
                                                                   const std::string& why) {
  auto repaired = e.topic.repair_orphans();
  if (!repaired) {
    log(LogLevel::error, "cannot repair topic " + name + ": " + std::string(repaired.error().message()));
    return repaired;
  }
  for (const auto& r : *repaired) {
    ++e.orphans_repaired;
    const std::string offsets = r.records == 1 ? "offset " + std::to_string(r.offset)
                                               : "offsets " + std::to_string(r.offset) + ".." +
                                                     std::to_string(r.offset + r.records - 1);
    log(LogLevel::warn, "repaired topic " + name + " (" + why + "): " + offsets + " at position " +
                            std::to_string(r.position) + " skipped: " + std::to_string(r.records) +
                            " claim(s) of dead producers that no recovery could finish");
  }
  if (!repaired->empty()) e.stuck_since.clear();
  return repaired;
}

mq::Result<mq::RepairReport> Registry::repair(const Peer& peer, const std::string& name) {
  auto e = authorized(peer, name);
  if (!e) return e.error();
  auto& entry = **e;
  (void)entry.topic.recover_dead();
  auto repaired = repair_orphans(name, entry, "asked by " + peer.describe());
  if (!repaired) return repaired.error();
  mq::RepairReport out;
  for (const auto& r : *repaired) out.repaired.push_back({r.offset, r.records, r.position});
  for (const auto& s : entry.topic.info().stuck)  // what is still stuck: a live producer's claim
    out.stuck.push_back({s.group, s.offset, s.cause, static_cast<std::uint64_t>(s.pid)});
  return out;
}

std::string Registry::prometheus(std::size_t clients) const {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::string samples;
  };
  Family f[] = {
      {"mq_topic_latest_offset", "gauge", "The offset the next record of the topic will get.", {}},
      {"mq_topic_earliest_offset", "gauge", "The oldest offset the topic still holds.", {}},
      {"mq_topic_bytes_written_total", "counter", "Bytes claimed in the topic's ring, padding included.", {}},
      {"mq_topic_capacity_bytes", "gauge", "The topic's ring size.", {}},
      {"mq_topic_producers", "gauge", "Producers attached to the topic.", {}},
      {"mq_topic_stalled_producers", "gauge", "Live producers whose open claim blocks readers.", {}},
      {"mq_topic_messages_per_second", "gauge", "Records published per second (last second).", {}},
      {"mq_topic_bytes_per_second", "gauge", "Bytes published per second (last second).", {}},
      {"mq_group_lag", "gauge", "Records published and not yet acked by the group.", {}},
      {"mq_group_committed_offset", "gauge", "Every record before this offset was acked by the group.", {}},
      {"mq_group_members", "gauge", "Consumers attached to the group.", {}},
      {"mq_group_unacked", "gauge", "Records held by members or waiting for redelivery.", {}},
      {"mq_group_retrying", "gauge", "Records nacked and waiting for their retry.", {}},
      {"mq_group_parked", "gauge",
       "Records back in the group waiting for a member: a dead member's, or parked behind a key another member holds.",
       {}},
      {"mq_topic_stuck_positions", "gauge",
       "Positions a group waits on although the tail has passed them (a claim not finished yet).", {}},
      {"mq_topic_orphans_repaired_total", "counter",
       "Positions no producer could finish that mqd turned into skip records (their claims are lost).", {}},
  };
  auto put = [](Family& fam, const std::string& labels, double value) {
    char v[64];
    std::snprintf(v, sizeof v, "%.17g", value);
    fam.samples += std::string(fam.name) + "{" + labels + "} " + v + "\n";
  };
  for (const auto& [name, e] : topics_) {
    if (!e.broken.empty()) continue;
    const auto info = e.topic.info();
    const std::string t = "topic=\"" + name + "\"";  // topic names are [A-Za-z0-9._-]: nothing to escape
    put(f[0], t, static_cast<double>(info.latest));
    put(f[1], t, static_cast<double>(info.earliest));
    put(f[2], t, static_cast<double>(info.bytes_written));
    put(f[3], t, static_cast<double>(info.capacity));
    put(f[4], t, info.producers);
    put(f[5], t, info.stalled_producers);
    put(f[6], t, e.msgs_per_s);
    put(f[7], t, e.bytes_per_s);
    put(f[14], t, static_cast<double>(info.stuck.size()));
    put(f[15], t, static_cast<double>(e.orphans_repaired));
    for (const auto& g : info.groups) {
      std::string escaped;
      for (const char c : g.name) {
        if (c == '\\' || c == '"') escaped += '\\';
        escaped += c;
      }
      const std::string l = t + ",group=\"" + escaped + "\"";
      put(f[8], l, static_cast<double>(g.lag));
      put(f[9], l, static_cast<double>(g.committed));
      put(f[10], l, g.members);
      put(f[11], l, g.unacked);
      put(f[12], l, g.retrying);
      put(f[13], l, g.parked);
    }
  }
  std::string out = "# HELP mq_clients Control connections open to mqd.\n# TYPE mq_clients gauge\nmq_clients " +
                    std::to_string(clients) + "\n# HELP mq_topics Topics mqd manages.\n# TYPE mq_topics gauge\n" +
                    "mq_topics " + std::to_string(topics_.size()) + "\n";
  for (const auto& fam : f)
    out += std::string("# HELP ") + fam.name + " " + fam.help + "\n# TYPE " + fam.name + " " + fam.type + "\n" +
           fam.samples;
  return out;
}

void Registry::recover(const std::set<std::string>& names) {
  for (const auto& name : names) {
    auto it = topics_.find(name);
    if (it == topics_.end()) continue;
    if (const std::size_t n = it->second.topic.recover_dead(); n != 0)
      log(LogLevel::info, "recovered " + std::to_string(n) + " claim(s)/member(s) of dead processes in topic " + name);
  }
}

void Registry::tick() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [name, e] : topics_) {
    if (!sound(name, e)) continue;
    if (const std::size_t n = e.topic.recover_dead(); n != 0)
      log(LogLevel::info, "recovered " + std::to_string(n) + " claim(s)/member(s) of dead processes in topic " + name);
    const auto info = e.topic.info();
    const double secs = std::chrono::duration<double>(now - e.last_sample).count();
    if (secs > 0) {
      e.msgs_per_s = static_cast<double>(info.latest - e.last_latest) / secs;
      e.bytes_per_s = static_cast<double>(info.bytes_written - e.last_bytes) / secs;
    }
    e.last_latest = info.latest;
    e.last_bytes = info.bytes_written;
    e.last_sample = now;
    // Stuck positions: remember since when; one that no live producer claims is repaired after the grace period.
    std::map<std::pair<std::string, std::uint64_t>, std::chrono::steady_clock::time_point> stuck;
    bool due = false;
    for (const auto& s : info.stuck) {
      const auto key = std::make_pair(s.group, s.position);
      const auto seen = e.stuck_since.find(key);
      const auto since = seen == e.stuck_since.end() ? now : seen->second;
      if (seen == e.stuck_since.end())
        log(s.cause == mq::StuckInfo::Cause::stalled_producer ? LogLevel::info : LogLevel::warn,
            "topic " + name + ": group " + s.group + " waits at offset " + std::to_string(s.offset) + " (position " +
                std::to_string(s.position) + "): " + std::string(mq::to_string(s.cause)) +
                (s.pid != 0 ? " pid " + std::to_string(s.pid) : std::string()));
      stuck.emplace(key, since);
      due = due || (s.cause != mq::StuckInfo::Cause::stalled_producer && now - since >= config_.orphan_grace);
    }
    e.stuck_since = std::move(stuck);
    if (due) (void)repair_orphans(name, e, "stuck for " + std::to_string(config_.orphan_grace.count()) + " s");
    // A dead-letter topic's group "replay" has a member only while mqctl replays: it keeps the letters, not expired.
    const bool dead_letters = name.size() > mq::kDeadLetterSuffix.size() &&
                              name.ends_with(mq::kDeadLetterSuffix);
    for (const auto& g : info.groups) {
      auto [seen, fresh] = e.group_seen.try_emplace(g.name, now);
      if (g.members != 0 || fresh || (dead_letters && g.name == mq::kDeadLetterGroup)) {
        seen->second = now;
        continue;
      }
      if (now - seen->second < config_.group_expiry) continue;
      if (auto r = e.topic.delete_group(g.name); r) {
        log(LogLevel::info, "removed consumer group " + g.name + " of topic " + name + ": no member for " +
                                std::to_string(config_.group_expiry.count()) + " s (group-expiry)");
        e.group_seen.erase(seen);
      }
    }
  }
}

void Registry::flush() {
  for (auto& [name, e] : topics_)
    if (e.storage == mq::Storage::file)
      if (auto r = e.topic.flush(); !r) log(LogLevel::error, std::string(r.error().message()));
}

}  // namespace mqd
