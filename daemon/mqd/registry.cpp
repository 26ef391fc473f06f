// The registry of topics (see registry.hpp).
#include "registry.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <limits>

#include "log.hpp"
#include "segment.hpp"
#include "units.hpp"

namespace mqd {

using mq::Errc;
using mq::Error;
using mq::control::Frame;

namespace {

std::string octal(std::uint32_t mode) {
  char b[16];
  std::snprintf(b, sizeof b, "%o", mode);
  return b;
}

std::string group_name(gid_t gid) {
  const ::group* g = ::getgrgid(gid);
  return g != nullptr ? g->gr_name : std::to_string(gid);
}

Error denied(const std::string& name, const Peer& peer) {
  return Error(Errc::permission_denied, "permission denied: topic=" + name + " " + peer.describe());
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  if (text.empty()) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9' || v > (~std::uint64_t{0} - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// Request fields over the daemon's defaults; errors name the field.
mq::Result<TopicSettings> settings_from(const Frame& r, TopicSettings s) {
  auto bad = [](const std::string& field, std::string_view value, const std::string& want) {
    return Error(Errc::invalid_argument, field + "='" + std::string(value) + "' is not " + want);
  };
  if (auto v = r.get("capacity")) {
    auto n = parse_size(*v);
    if (!n) return bad("capacity", *v, "a size");
    s.capacity = *n;
  }
  if (auto v = r.get("max_message")) {
    auto n = parse_size(*v);
    if (!n) return bad("max_message", *v, "a size");
    s.max_message = *n;
  }
  if (auto v = r.get("policy")) {
    if (*v == "block") s.policy = mq::Policy::block;
    else if (*v == "overwrite") s.policy = mq::Policy::overwrite;
    else return bad("policy", *v, "block or overwrite");
  }
  if (auto v = r.get("storage")) {
    if (*v == "shm") s.storage = mq::Storage::shm;
    else if (*v == "file") s.storage = mq::Storage::file;
    else return bad("storage", *v, "shm or file");
  }
  if (auto v = r.get("block_timeout_ms")) {
    auto n = number(*v);
    if (!n) return bad("block_timeout_ms", *v, "a number of milliseconds");
    s.block_timeout = std::chrono::milliseconds(*n);
  }
  if (auto v = r.get("mode")) {
    std::uint32_t m = 0;
    bool ok = !v->empty() && v->size() <= 4;
    for (const char c : *v) ok = ok && c >= '0' && c <= '7', m = m * 8 + static_cast<std::uint32_t>(c - '0');
    if (!ok || m > 0777) return bad("mode", *v, "an octal mode like 660");
    s.mode = m;
  }
  if (auto v = r.get("access_group")) s.access_group = std::string(*v);
  return s;
}

const char* stuck_cause(mq::StuckInfo::Cause cause) {
  switch (cause) {
    case mq::StuckInfo::Cause::stalled_producer: return "stalled_producer";
    case mq::StuckInfo::Cause::dead_producer: return "dead_producer";
    case mq::StuckInfo::Cause::orphaned: return "orphaned";
  }
  return "unknown";
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
  auto path = mq::detail::segment_path(name, storage, config_.data_dir, config_.ns);
  Entry e{std::move(topic), storage, storage == mq::Storage::shm ? "/dev/shm/" + *path : *path};
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
    if (topics_.count(t.name) != 0) {
      // Groups listed later are created on the existing topic (records are kept for them from now on).
      for (const auto& g : t.groups) (void)topics_.at(t.name).topic.create_group(g, mq::Start::earliest);
      continue;
    }
    if (auto r = create_topic(t.name, t.settings, t.groups); !r)
      log(LogLevel::error, "cannot create configured topic " + t.name + ": " + std::string(r.error().message()));
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
  // A segment file cut shorter than the mapping would raise SIGBUS on the first read past its end: look first.
  const auto bytes = e.topic.segment()->bytes();
  struct stat st{};
  mq::Result<void> valid;
  if (::stat(e.path.c_str(), &st) != 0)
    valid = Error(Errc::bad_segment, "its segment file " + e.path + " was removed underneath mqd");
  else if (static_cast<std::size_t>(st.st_size) < bytes.size())
    valid = Error(Errc::bad_segment, "its segment file " + e.path + " was truncated to " + std::to_string(st.st_size) +
                                         " bytes (" + std::to_string(bytes.size()) + " mapped)");
  else
    valid = mq::detail::validate_segment(bytes, name);
  if (valid && !e.broken.empty()) {
    log(LogLevel::info, "topic " + name + ": its segment's header is valid again; serving it");
    e.broken.clear();
  } else if (!valid && e.broken.empty()) {
    e.broken = std::string(valid.error().message());
    log(LogLevel::error, "topic " + name + ": " + e.broken + "; mqd stops touching it (mqctl delete removes it)");
  }
  return e.broken.empty();
}

mq::Result<void> Registry::create(const Peer& peer, const Frame& request, Frame& reply) {
  const std::string name(request.get("topic").value_or(""));
  if (auto valid = mq::validate_topic_name(name); !valid) return valid.error();
  auto s = settings_from(request, config_.defaults);
  if (!s) return s.error();
  gid_t gid = ::getegid();
  if (!s->access_group.empty()) {
    const ::group* g = ::getgrnam(s->access_group.c_str());
    if (g == nullptr) return Error(Errc::invalid_argument, "no such group: access_group=" + s->access_group);
    gid = g->gr_gid;
  }
  if (!may_create(peer, gid)) return denied(name, peer);
  if (topics_.count(name) != 0 || find(name)) return Error(Errc::exists, "topic exists: topic=" + name);
  std::vector<std::string> groups;
  for (const auto g : request.all("group")) groups.emplace_back(g);
  if (auto r = create_topic(name, *s, groups); !r) return r;
  return open(peer, name, reply);
}

mq::Result<void> Registry::open(const Peer& peer, const std::string& name, Frame& reply) {
  auto e = authorized(peer, name);
  if (!e && e.error().code() == Errc::not_found && config_.auto_create) {
    gid_t gid = ::getegid();
    if (!config_.defaults.access_group.empty())
      if (const ::group* g = ::getgrnam(config_.defaults.access_group.c_str())) gid = g->gr_gid;
    if (!may_create(peer, gid)) return denied(name, peer);
    if (auto r = create_topic(name, config_.defaults, {}); !r && r.error().code() != Errc::exists) return r;
    e = authorized(peer, name);
  }
  if (!e) return e.error();
  reply.add("storage", (*e)->storage == mq::Storage::file ? "file" : "shm");
  reply.add("directory", (*e)->storage == mq::Storage::file ? config_.data_dir : "");
  reply.add("namespace", config_.ns);
  return {};
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

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : topics_) out.push_back(name);
  return out;
}

void Registry::section(const Entry& e, Frame& out, bool groups_only) const {
  const auto info = e.topic.info();
  if (!groups_only) {
    struct stat st{};
    const bool have = ::stat(e.path.c_str(), &st) == 0;
    out.add("name", info.name);
    out.add("capacity", std::to_string(info.capacity));
    out.add("max_message", std::to_string(info.max_message));
    out.add("policy", info.policy == mq::Policy::block ? "block" : "overwrite");
    out.add("storage", info.storage == mq::Storage::file ? "file" : "shm");
    out.add("mode", octal(have ? (st.st_mode & 0777) : info.mode));
    out.add("access_group", have ? group_name(st.st_gid) : "");
    out.add("block_timeout_ms", std::to_string(info.block_timeout.count()));
    out.add("earliest", std::to_string(info.earliest));
    out.add("latest", std::to_string(info.latest));
    out.add("bytes", std::to_string(info.bytes_written));
    out.add("producers", std::to_string(info.producers));
    out.add("stalled_producers", std::to_string(info.stalled_producers));
    out.add("msgs_per_s", std::to_string(static_cast<std::uint64_t>(e.msgs_per_s)));
    out.add("bytes_per_s", std::to_string(static_cast<std::uint64_t>(e.bytes_per_s)));
    out.add("orphans_repaired", std::to_string(e.orphans_repaired));
    const auto now = std::chrono::steady_clock::now();
    for (const auto& s : info.stuck) {
      const auto seen = e.stuck_since.find({s.group, s.position});
      const auto since = seen == e.stuck_since.end() ? now : seen->second;
      out.add("stuck", s.group);
      out.add("stuck_offset", std::to_string(s.offset));
      out.add("stuck_position", std::to_string(s.position));
      out.add("stuck_cause", stuck_cause(s.cause));
      out.add("stuck_pid", std::to_string(s.pid));
      out.add("stuck_for_s", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - since).count()));
    }
  }
  for (const auto& g : info.groups) {
    out.add("group", g.name);
    out.add("group_committed", std::to_string(g.committed));
    out.add("group_next", std::to_string(g.next));
    out.add("group_lag", std::to_string(g.lag));
    out.add("group_members", std::to_string(g.members));
    out.add("group_unacked", std::to_string(g.unacked));
  }
}

mq::Result<void> Registry::describe(const Peer& peer, const std::string& name, Frame& reply, bool groups_only) {
  auto e = authorized(peer, name);
  if (!e) return e.error();
  section(**e, reply, groups_only);
  return {};
}

void Registry::stats(Frame& reply) const {
  for (const auto& [name, e] : topics_)
    if (e.broken.empty()) section(e, reply, false);  // a corrupted one is in `list` and in the log, not here
}

mq::Result<void> Registry::group_op(const Peer& peer, const Frame& request, Frame& reply) {
  const std::string name(request.get("topic").value_or(""));
  const std::string group(request.get("group").value_or(""));
  auto e = authorized(peer, name);
  if (!e) return e.error();
  mq::Topic& topic = (*e)->topic;
  if (request.type == "create-group") {
    const auto start = request.get("start").value_or("earliest");
    if (start != "earliest" && start != "latest")
      return Error(Errc::invalid_argument, "start='" + std::string(start) + "' is not earliest or latest");
    if (auto r = topic.create_group(group, start == "earliest" ? mq::Start::earliest : mq::Start::latest); !r) return r;
    (*e)->group_seen[group] = std::chrono::steady_clock::now();
    return {};
  }
  if (request.type == "delete-group") return topic.delete_group(group);
  if (const auto at = request.get("to_time")) {  // the first record at or after a time (ns since the epoch)
    const auto ns = number(*at);
    if (!ns || *ns > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return Error(Errc::invalid_argument, "to_time='" + std::string(*at) + "' is not ns since the epoch");
    auto offset = topic.offset_for_time(static_cast<std::int64_t>(*ns));
    if (!offset) return offset.error();
    if (auto r = topic.reset_group(group, *offset); !r) return r;
    reply.add("offset", std::to_string(*offset));
    return {};
  }
  const auto to = request.get("to").value_or("");
  if (to == "earliest") return topic.reset_group(group, mq::Start::earliest);
  if (to == "latest") return topic.reset_group(group, mq::Start::latest);
  auto offset = number(to);
  if (!offset) return Error(Errc::invalid_argument, "to='" + std::string(to) + "' is not earliest, latest or an offset");
  return topic.reset_group(group, mq::Offset{*offset});
}

mq::Result<void> Registry::delete_records(const Peer& peer, const Frame& request, Frame& reply) {
  const std::string name(request.get("topic").value_or(""));
  auto e = authorized(peer, name);
  if (!e) return e.error();
  const auto before_text = request.get("before").value_or("");
  const auto before = number(before_text);
  if (!before) return Error(Errc::invalid_argument, "before='" + std::string(before_text) + "' is not an offset");
  auto earliest = (*e)->topic.delete_records(mq::Offset{*before});
  if (!earliest) return earliest.error();
  log(LogLevel::info, "topic " + name + ": records before offset " + std::to_string(*earliest) + " deleted by " +
                          peer.describe());
  reply.add("earliest", std::to_string(*earliest));
  return {};
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

mq::Result<void> Registry::repair(const Peer& peer, const std::string& name, Frame& reply) {
  auto e = authorized(peer, name);
  if (!e) return e.error();
  auto& entry = **e;
  (void)entry.topic.recover_dead();
  auto repaired = repair_orphans(name, entry, "asked by " + peer.describe());
  if (!repaired) return repaired.error();
  for (const auto& r : *repaired) {
    reply.add("repaired_offset", std::to_string(r.offset));
    reply.add("repaired_records", std::to_string(r.records));
    reply.add("repaired_position", std::to_string(r.position));
  }
  for (const auto& s : entry.topic.info().stuck) {  // what is still stuck: a live producer's claim
    reply.add("stuck", s.group);
    reply.add("stuck_offset", std::to_string(s.offset));
    reply.add("stuck_cause", stuck_cause(s.cause));
    reply.add("stuck_pid", std::to_string(s.pid));
  }
  return {};
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
    put(f[12], t, static_cast<double>(info.stuck.size()));
    put(f[13], t, static_cast<double>(e.orphans_repaired));
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

void Registry::recover(const std::vector<std::string>& names) {
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
                std::to_string(s.position) + "): " + stuck_cause(s.cause) +
                (s.pid != 0 ? " pid " + std::to_string(s.pid) : std::string()));
      stuck.emplace(key, since);
      due = due || (s.cause != mq::StuckInfo::Cause::stalled_producer && now - since >= config_.orphan_grace);
    }
    e.stuck_since = std::move(stuck);
    if (due) (void)repair_orphans(name, e, "stuck for " + std::to_string(config_.orphan_grace.count()) + " s");
    for (const auto& g : info.groups) {
      auto [seen, fresh] = e.group_seen.try_emplace(g.name, now);
      if (g.members != 0 || fresh) {
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
