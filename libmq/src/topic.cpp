// Topic handles: create/open/remove/list, names, group administration and the topic's info snapshot.
#include "libmq/topic.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <algorithm>
#include <cstring>

#include "atomic16.hpp"
#include "clock.hpp"
#include "groups.hpp"
#include "layout.hpp"
#include "liveness.hpp"
#include "log.hpp"
#include "recovery.hpp"
#include "segment.hpp"

namespace mq {

using namespace detail;

Result<void> validate_topic_name(std::string_view name) {
  if (name.empty() || name.size() > 249)
    return Error(Errc::invalid_name, "topic name must be 1..249 characters: length=" + std::to_string(name.size()));
  if (name == "." || name == "..") return Error(Errc::invalid_name, "topic name must not be '.' or '..'");
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) {
      char shown[8];
      std::snprintf(shown, sizeof shown, c >= 0x20 && c < 0x7f ? "'%c'" : "0x%02x", static_cast<unsigned char>(c));
      return Error(Errc::invalid_name, std::string("topic name may hold only [A-Za-z0-9._-], found ") + shown +
                                           " in \"" + std::string(name.substr(0, 64)) + "\"");
    }
  }
  return {};
}

Result<void> validate_group_name(std::string_view name) {
  if (name.empty() || name.size() > 255)
    return Error(Errc::invalid_name, "group name must be 1..255 characters: length=" + std::to_string(name.size()));
  for (const char c : name)
    if (c < 0x20 || c > 0x7e)
      return Error(Errc::invalid_name, "group name must be printable ASCII: found a byte " +
                                           std::to_string(static_cast<unsigned char>(c)));
  return {};
}

Result<void> validate_retry_policy(const RetryPolicy& r) {
  const auto bad = [](const std::string& what) { return Error(Errc::invalid_argument, "retry policy: " + what); };
  if (r.max_attempts < 1 || r.max_attempts > kMaxAttempts)
    return bad("max_attempts must be 1.." + std::to_string(kMaxAttempts) + ": max_attempts=" +
               std::to_string(r.max_attempts));
  if (r.max_backoff.count() < 0 || r.max_backoff > kMaxBackoff)
    return bad("max_backoff must be 0.." + std::to_string(kMaxBackoff.count()) + " ms: max_backoff_ms=" +
               std::to_string(r.max_backoff.count()));
  if (r.backoff.count() < 0 || r.backoff > r.max_backoff)
    return bad("backoff must be 0..max_backoff (" + std::to_string(r.max_backoff.count()) + " ms): backoff_ms=" +
               std::to_string(r.backoff.count()));
  if (!(r.factor >= 1.0 && r.factor <= 100.0)) return bad("factor must be 1..100: factor=" + std::to_string(r.factor));
  if (!(r.jitter >= 0.0 && r.jitter <= 1.0)) return bad("jitter must be 0..1: jitter=" + std::to_string(r.jitter));
  return {};
}

std::string_view ordering_name(Ordering ordering) {
  switch (ordering) {
    case Ordering::none: return "none";
    case Ordering::key: return "key";
    case Ordering::exclusive: return "exclusive";
  }
  return "none";
}

std::optional<Ordering> parse_ordering(std::string_view name) {
  for (const Ordering o : {Ordering::none, Ordering::key, Ordering::exclusive})
    if (name == ordering_name(o)) return o;
  return std::nullopt;
}

Result<Topic> Topic::create(std::string_view name, const TopicOptions& options) {
  auto seg = Segment::create(name, options);
  if (!seg) return std::move(seg).error();
  return Topic(std::move(*seg));
}

Result<Topic> Topic::open(std::string_view name, const OpenOptions& options) {
  auto seg = Segment::open(name, options);
  if (!seg) return std::move(seg).error();
  return Topic(std::move(*seg));
}

Result<Topic> Topic::open_or_create(std::string_view name, const TopicOptions& options) {
  const OpenOptions where{options.storage, options.directory, options.ns};
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto opened = open(name, where);
    if (opened || opened.error().code() != Errc::not_found) return opened;
    auto created = create(name, options);
    if (created || created.error().code() != Errc::exists) return created;
  }
  return open(name, where);
}

Result<void> Topic::remove(std::string_view name, const OpenOptions& options) {
  auto path = segment_path(name, options.storage, options.directory, options.ns);
  if (!path) return std::move(path).error();
  int rc = 0;
  if (options.storage == Storage::shm) {
    rc = ::shm_unlink(path->c_str());
  } else {
    rc = ::unlink(path->c_str());
  }
  if (rc != 0) {
    const int e = errno;
    if (e == ENOENT) return Error(Errc::not_found, "no such topic: topic=" + std::string(name));
    return Error(e == EACCES || e == EPERM ? Errc::permission_denied : Errc::io,
                 "cannot remove topic=" + std::string(name) + ": " + std::strerror(e));
  }
  return {};
}

Result<std::vector<std::string>> Topic::list(const OpenOptions& options) {
  const std::string ns = effective_namespace(options.ns);
  const std::string prefix = "mq@" + (ns.empty() ? std::string() : ns + "@");
  const std::string dir = options.storage == Storage::shm ? "/dev/shm" : options.directory;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error(Errc::io, "cannot list " + dir + ": " + std::strerror(errno));
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view file(e->d_name);
    if (file.substr(0, prefix.size()) != prefix) continue;
    const std::string_view topic = file.substr(prefix.size());
    if (validate_topic_name(topic)) names.emplace_back(topic);  // '@' in the rest: another namespace
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

const std::string& Topic::name() const { return segment_->name(); }

Offset Topic::earliest() const { return detail::earliest(*segment_).hi; }

Result<Offset> Topic::offset_for_time(std::int64_t timestamp_ns) const {
  const Segment& seg = *segment_;
  const std::uint64_t capacity = seg.capacity();
  // A producer may lap the scan (overwrite topics; block topics below the slowest group): then start again from the
  // new oldest record. Each try reads at most one ring's worth.
  for (int attempt = 0; attempt < 16; ++attempt) {
    if (seg.truncated()) return truncated_error(seg);
    Word16 at = detail::earliest(seg);
    const Word16 tail = tail_snapshot(seg);
    const auto lapped = [&] { return tail_position(seg) > at.lo + capacity; };
    while (at.lo < tail.lo) {
      auto v = read_record(seg, at.lo);
      if (!v) {
        if (lapped()) break;
        return std::move(v).error();
      }
      if (v->state == kPad) {
        at.lo += v->length;
        continue;
      }
      if (v->state != kCommitted && v->state != kSkip) {  // not written yet, or a later lap's
        if (lapped()) break;
        return timestamp_ns <= realtime_ns() ? at.hi : tail.hi;  // in flight: it is being written now
      }
      if (v->offset != at.hi) {
        if (lapped()) break;
        return Error(Errc::bad_segment, "corrupted segment: record offset " + std::to_string(v->offset) +
                                            " where " + std::to_string(at.hi) + " belongs: topic=" + seg.name());
      }
      // Its fields are this lap's only if no producer has lapped it since we read them.
      if (v->state == kCommitted && v->timestamp_ns >= timestamp_ns) {
        if (lapped()) break;
        return at.hi;
      }
      at.lo += v->length;
      ++at.hi;
    }
    if (at.lo >= tail.lo) return tail.hi;
  }
  return Error(Errc::busy, "producers lap the topic faster than it can be searched: topic=" + seg.name());
}

TopicInfo Topic::info() const {
  const Segment& seg = *segment_;
  const auto& h = seg.header();
  TopicInfo info;
  info.name = seg.name();
  info.capacity = seg.capacity();
  info.max_message = seg.max_message();
  info.policy = seg.policy();
  info.storage = seg.storage();
  info.block_timeout = std::chrono::milliseconds(h.block_timeout_ms);
  info.mode = h.mode;
  const Word16 tail = tail_snapshot(seg);
  info.latest = tail.hi;
  info.bytes_written = tail.lo;
  info.earliest = detail::earliest(seg).hi;
  for (std::size_t i = 0; i < kMaxProducers; ++i) {
    if (seg.producer(i).owner.load() == 0) continue;
    ++info.producers;
    if (seg.producer(i).stalled.load() != 0) ++info.stalled_producers;
  }
  // The mark counts once its slot is recorded (make_exclusive sets the owner first, and drops it if it must refuse).
  if (const std::uint64_t slot = h.exclusive_slot.load(); slot != 0) {
    info.exclusive_pid = owner_pid(h.exclusive_owner.load());
    info.exclusive_plain = (slot & kExclusivePlain) != 0;
  }
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    const auto& block = seg.group(g);
    if (block.state.load() != kGroupActive) continue;
    GroupInfo gi;
    gi.name = group_name(block);
    const Word16 next = load16(const_cast<Word16*>(&block.next));
    gi.next = next.hi;
    gi.committed = next.hi;
    const auto low = group_low(seg, g);
    if (low && *low < next.lo) {
      auto v = read_record(seg, *low);
      if (v && (v->state == kCommitted || v->state == kSkip)) gi.committed = v->offset;
    }
    gi.lag = info.latest - gi.committed;
    for (const auto& m : block.members) {
      const std::uint64_t owner = m.owner.load();
      if (owner == 0) continue;
      if (owner != kOrphanOwner) ++gi.members;  // an orphaned slot only waits to hand its records back
      const std::uint64_t head = m.head.load();
      const std::uint64_t runs = std::min<std::uint64_t>(m.tail.load() - head, kMaxUnacked);
      for (std::uint64_t i = 0; i < runs; ++i) gi.unacked += static_cast<unsigned>(run_count(m.held[(head + i) % kMaxUnacked].load()));
    }
    if (block.redeliver_count.load() != 0)
      for (const auto& r : block.redeliver) gi.parked += static_cast<unsigned>(run_count(r.load()));
    gi.unacked += gi.parked;
    gi.retrying = static_cast<unsigned>(count_retries(seg, g));
    gi.retry = load_retry_policy(block);
    gi.ordering = load_ordering(block);
    if (const std::uint64_t active = block.active.load(); gi.ordering == Ordering::exclusive && active != kNoActive &&
                                                          active != 0 && active <= kMaxMembers)
      gi.active_pid = owner_pid(block.members[active - 1].owner.load());
    info.groups.push_back(std::move(gi));
  }
  info.stuck = stuck_positions(seg);
  return info;
}

Result<void> Topic::create_group(std::string_view group, Start start, const RetryPolicy& retry, Ordering ordering) {
  if (auto valid = validate_group_name(group); !valid) return valid;
  if (auto valid = validate_retry_policy(retry); !valid) return valid;
  TableLock lock(*segment_);
  if (!lock) return lock.error();
  if (find_group(*segment_, group))
    return Error(Errc::exists, "group exists: topic=" + name() + " group=" + std::string(group));
  auto created = create_group_locked(*segment_, group, start, retry, ordering);
  if (!created) return std::move(created).error();
  return {};
}

Result<void> Topic::set_retry_policy(std::string_view group, const RetryPolicy& retry) {
  if (auto valid = validate_retry_policy(retry); !valid) return valid;
  TableLock lock(*segment_);
  if (!lock) return lock.error();
  auto g = find_group(*segment_, group);
  if (!g) return Error(Errc::not_found, "no such group: topic=" + name() + " group=" + std::string(group));
  store_retry_policy(segment_->group(*g), retry);
  return {};
}

Result<void> Topic::delete_group(std::string_view group) {
  TableLock lock(*segment_);
  if (!lock) return lock.error();
  auto g = find_group(*segment_, group);
  if (!g) return Error(Errc::not_found, "no such group: topic=" + name() + " group=" + std::string(group));
  auto& block = segment_->group(*g);
  for (std::size_t m = 0; m < kMaxMembers; ++m) {
    const std::uint64_t owner = block.members[m].owner.load();
    if (owner == 0) continue;
    if (owner != self_owner() && owner_dead(owner)) {
      release_member_locked(*segment_, *g, m);
      block.members[m].owner.store(0);
      continue;
    }
    return Error(Errc::busy, "group has live members: topic=" + name() + " group=" + std::string(group) +
                                 " pid=" + std::to_string(owner_pid(owner)));
  }
  block.state.store(kGroupFree);  // producers now ignore it
  return {};
}

Result<void> Topic::reset_group(std::string_view group, Start start) {
  TableLock lock(*segment_);
  if (!lock) return lock.error();
  auto g = find_group(*segment_, group);
  if (!g) return Error(Errc::not_found, "no such group: topic=" + name() + " group=" + std::string(group));
  return move_group_locked(*segment_, *g, start);
}

Result<void> Topic::reset_group(std::string_view group, Offset offset) {
  TableLock lock(*segment_);
  if (!lock) return lock.error();
  auto g = find_group(*segment_, group);
  if (!g) return Error(Errc::not_found, "no such group: topic=" + name() + " group=" + std::string(group));
  return move_group_locked(*segment_, *g, offset);
}

Result<Offset> Topic::delete_records(Offset before) {
  TableLock lock(*segment_);
  if (!lock) return lock.error();
  const Segment& seg = *segment_;
  const Word16 from = detail::earliest(seg);
  if (before <= from.hi) return from.hi;
  const Word16 tail = detail::tail_snapshot(seg);
  if (before > tail.hi)
    return Error(Errc::invalid_argument, "offset " + std::to_string(before) + " is past the latest offset " +
                                             std::to_string(tail.hi) + ": topic=" + name());
  auto start = before == tail.hi ? std::optional<Word16>(tail) : detail::locate_offset(seg, before);
  if (!start)
    return Error(Errc::busy, "a record before offset " + std::to_string(before) +
                                 " is still being written; try again: topic=" + name());
  detail::raise_log_start(seg, *start);
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    const auto& block = seg.group(g);
    if (block.state.load() != detail::kGroupActive) continue;
    // Records waiting for a retry before the new start are deleted too (a group past `before` keeps the rest).
    detail::drop_retries_before(seg, g, start->lo);
    if (detail::load_half(block.next.hi) >= before) continue;
    if (auto moved = detail::move_group_locked(seg, g, before); !moved) return moved.error();
  }
  return before;
}

std::size_t Topic::recover_dead() {
  return recover_dead_producers(*segment_) + recover_dead_members(*segment_);
}

Result<std::vector<OrphanRepair>> Topic::repair_orphans() { return detail::repair_orphans(*segment_); }

Result<void> Topic::flush() { return segment_->flush(); }

std::string Topic::file() const {
  return segment_->storage() == Storage::shm ? "/dev/shm/" + segment_->path() : segment_->path();
}

Result<void> Topic::validate() const {
  // A segment file cut shorter than the mapping would raise SIGBUS on the first read past its end: look first.
  const auto bytes = segment_->bytes();
  const std::string path = file();
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    return Error(Errc::bad_segment, "its segment file " + path + " was removed");
  if (static_cast<std::size_t>(st.st_size) < bytes.size())
    return Error(Errc::bad_segment, "its segment file " + path + " was truncated to " + std::to_string(st.st_size) +
                                        " bytes (" + std::to_string(bytes.size()) + " mapped)");
  return detail::validate_segment(bytes, segment_->name());
}

}  // namespace mq
