// Creating, opening, validating and mapping topic segments. Names and permissions go through Boost.Interprocess's
// shared_memory_object (or open(2) for file topics); the mapping is a plain mmap placed with MAP_FIXED inside a
// PROT_NONE reservation, because the guard pages around it need that placement.
#include "segment.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <algorithm>
#include <limits>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "atomic16.hpp"
#include "clock.hpp"
#include "fault_guard.hpp"
#include "groups.hpp"
#include "libmq/topic.hpp"

namespace bip = boost::interprocess;

namespace mq::detail {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

Error os_error(int e, const std::string& what, std::string_view name) {
  Errc code = Errc::io;
  if (e == ENOENT) code = Errc::not_found;
  if (e == EEXIST) code = Errc::exists;
  if (e == EACCES || e == EPERM) code = Errc::permission_denied;
  return Error(code, what + ": topic=" + std::string(name) + ": " + errno_text(e));
}

bool is_pow2(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Segments up to this size are pre-faulted when mapped (Segment::map).
constexpr std::size_t kPrefaultMaxBytes = std::size_t{256} << 20;

// Whether every page of a mapping is in memory (mincore): after a pre-fault, whether each page could be allocated.
bool all_resident(std::span<const std::byte> bytes) {
  std::vector<unsigned char> pages((bytes.size() + kPageSize - 1) / kPageSize);
  if (::mincore(const_cast<std::byte*>(bytes.data()), bytes.size(), pages.data()) != 0) return false;
  return std::all_of(pages.begin(), pages.end(), [](unsigned char p) { return (p & 1) != 0; });
}

// The mappings this process holds, by file identity: opening a topic this process has mapped already shares that
// mapping (a producer and a consumer of one topic in one process read and write the same pages). One mapping per
// topic per process costs one set of page tables, and pages once touched stay mapped: on a VM with shadow paging
// the first touch of each 4 KiB page through a new mapping costs microseconds (bench/RESULTS.md). A fork child maps
// its own (the pid is part of the key).
struct Mapping {
  dev_t dev;
  ino_t ino;
  pid_t pid;
  std::weak_ptr<Segment> segment;
};
std::mutex mappings_mu;
std::vector<Mapping> mappings;  // GUARDED_BY(mappings_mu)

std::shared_ptr<Segment> mapped_already(const struct stat& st) {
  std::lock_guard lock(mappings_mu);
  const pid_t self = ::getpid();
  for (const auto& m : mappings)
    if (m.dev == st.st_dev && m.ino == st.st_ino && m.pid == self) return m.segment.lock();
  return nullptr;
}

void remember_mapping(const struct stat& st, const std::shared_ptr<Segment>& seg) {
  std::lock_guard lock(mappings_mu);
  const pid_t self = ::getpid();
  std::erase_if(mappings, [&](const Mapping& m) { return m.segment.expired() || m.pid != self; });
  mappings.push_back(Mapping{st.st_dev, st.st_ino, self, seg});
}

Result<void> check_options(std::string_view name, const TopicOptions& o) {
  const std::string ctx = "topic=" + std::string(name);
  if (!is_pow2(o.capacity) || o.capacity < kMinCapacity || o.capacity > kMaxCapacity)
    return Error(Errc::invalid_argument, "capacity must be a power of two from 64 KiB to 1 TiB: " + ctx +
                                             " capacity=" + std::to_string(o.capacity));
  if (o.max_message > o.capacity / 4)
    return Error(Errc::invalid_argument, "max_message must be at most capacity / 4: " + ctx + " capacity=" +
                                             std::to_string(o.capacity) + " max_message=" +
                                             std::to_string(o.max_message));
  if (o.max_message > kMaxMessageLimit)
    return Error(Errc::invalid_argument, "max_message must be at most 1 GiB: " + ctx + " max_message=" +
                                             std::to_string(o.max_message));
  if (o.block_timeout.count() < 0 || o.block_timeout > kMaxBlockTimeout)
    return Error(Errc::invalid_argument, "block_timeout must be from 0 to " + std::to_string(kMaxBlockTimeout.count()) +
                                             " ms: " + ctx + " block_timeout_ms=" + std::to_string(o.block_timeout.count()));
  if ((o.mode & ~0777u) != 0 || (o.mode & 0002u) != 0)
    return Error(Errc::invalid_argument, "mode must be within 0777 and not world-writable: " + ctx + " mode=0" +
                                             [&] { char b[16]; std::snprintf(b, sizeof b, "%o", o.mode); return std::string(b); }());
  if (o.storage == Storage::file && o.directory.empty())
    return Error(Errc::invalid_argument, "storage=file needs a directory: " + ctx);
  if (o.groups.size() > kMaxGroups)
    return Error(Errc::limit, "too many groups: " + ctx + " groups=" + std::to_string(o.groups.size()) +
                                  " max=" + std::to_string(kMaxGroups));
  for (const auto& g : o.groups)
    if (auto r = validate_group_name(g); !r) return r;
  return {};
}

void init_header(SegmentHeader& h, std::string_view name, const TopicOptions& o, std::uint64_t max_message,
                 std::size_t total) {
  h.version = kLayoutVersion;
  h.header_bytes = static_cast<std::uint32_t>(kRingOffset);
  h.capacity = o.capacity;
  h.max_message = max_message;
  h.policy = static_cast<std::uint32_t>(o.policy);
  h.storage = static_cast<std::uint32_t>(o.storage);
  h.block_timeout_ms = static_cast<std::uint64_t>(o.block_timeout.count());
  h.created_ns = realtime_ns();
  h.mode = o.mode;
  h.name_len = static_cast<std::uint32_t>(name.size());
  h.producer_slots = kMaxProducers;
  h.group_slots = kMaxGroups;
  h.member_slots = kMaxMembers;
  h.held_slots = kMaxUnacked;
  h.redeliver_slots = kRedeliverSlots;
  h.index_slots = kIndexSlots;
  h.retry_slots = kRetrySlots;
  h.key_slots = kKeySlots;
  h.ring_offset = kRingOffset;
  h.total_bytes = total;
  h.room_wanted.store(kNone, std::memory_order_relaxed);  // no producer waits for room
  std::memcpy(h.name, name.data(), name.size());
}

}  // namespace

std::string effective_namespace(const std::optional<std::string>& ns) {
  if (ns) return *ns;
  const char* env = std::getenv("MQ_NAMESPACE");
  return env != nullptr ? std::string(env) : std::string();
}

Result<std::string> segment_path(std::string_view name, Storage storage, const std::string& directory,
                                 const std::optional<std::string>& ns_option) {
  if (auto r = validate_topic_name(name); !r) return r.error();
  const std::string ns = effective_namespace(ns_option);
  if (!ns.empty()) {
    if (ns.size() > 64 || !validate_topic_name(ns))
      return Error(Errc::invalid_name, "namespace must be 1..64 of [A-Za-z0-9._-], not . or ..: namespace=" + ns);
  }
  std::string file = "mq@" + (ns.empty() ? std::string() : ns + "@") + std::string(name);
  if (file.size() > 255)
    return Error(Errc::invalid_name, "namespace + topic name do not fit a file name (255 bytes): topic=" +
                                         std::string(name) + " namespace=" + ns);
  if (storage == Storage::file) {
    if (directory.empty()) return Error(Errc::invalid_argument, "storage=file needs a directory: topic=" + std::string(name));
    return directory + "/" + file;
  }
  return file;
}

Result<void> validate_segment(std::span<const std::byte> bytes, std::string_view name) {
  const std::string ctx = "topic=" + std::string(name);
  if (bytes.size() < kRingOffset)
    return Error(Errc::bad_segment, "segment too small for a libmq header: " + ctx + " bytes=" +
                                        std::to_string(bytes.size()));
  const auto& h = *reinterpret_cast<const SegmentHeader*>(bytes.data());
  const std::uint64_t magic = std::atomic_ref<const std::uint64_t>(
      *reinterpret_cast<const std::uint64_t*>(&h.magic)).load(std::memory_order_acquire);
  if (magic != kMagic) return Error(Errc::bad_segment, "not a libmq topic segment (bad magic): " + ctx);
  if (h.version != kLayoutVersion)
    return Error(Errc::version_mismatch, "segment layout version " + std::to_string(h.version) +
                                             ", this libmq reads version " + std::to_string(kLayoutVersion) + ": " + ctx);
  auto bad = [&](const std::string& what) { return Error(Errc::bad_segment, "corrupted segment header: " + what + ": " + ctx); };
  if (h.header_bytes != kRingOffset || h.ring_offset != kRingOffset) return bad("header size");
  if (h.producer_slots != kMaxProducers || h.group_slots != kMaxGroups || h.member_slots != kMaxMembers ||
      h.held_slots != kMaxUnacked || h.redeliver_slots != kRedeliverSlots || h.index_slots != kIndexSlots ||
      h.retry_slots != kRetrySlots || h.key_slots != kKeySlots)
    return bad("table sizes");
  if (!is_pow2(h.capacity) || h.capacity < kMinCapacity || h.capacity > kMaxCapacity) return bad("capacity");
  if (h.total_bytes != kRingOffset + h.capacity || h.total_bytes != bytes.size())
    return bad("size " + std::to_string(bytes.size()) + " != header + capacity");
  if (h.max_message == 0 || h.max_message > h.capacity / 4 || h.max_message > kMaxMessageLimit)
    return bad("max_message");
  if (h.policy > 1 || h.storage > 1) return bad("policy or storage");
  if (h.block_timeout_ms > static_cast<std::uint64_t>(kMaxBlockTimeout.count()))
    return bad("block_timeout_ms");
  if (h.name_len == 0 || h.name_len >= kNameBytes) return bad("name length");
  const auto* groups = reinterpret_cast<const GroupBlock*>(bytes.data() + kGroupTableOffset);
  for (std::size_t g = 0; g < kMaxGroups; ++g) {
    const std::uint32_t state = std::atomic_ref<const std::uint32_t>(
        *reinterpret_cast<const std::uint32_t*>(&groups[g].state)).load(std::memory_order_acquire);
    if (state > kGroupActive) return bad("group " + std::to_string(g) + " state");
    if (state != kGroupFree && (groups[g].name_len == 0 || groups[g].name_len >= kNameBytes))
      return bad("group " + std::to_string(g) + " name length");
  }
  return {};
}

Segment::~Segment() {
  unguard_mapping(guard_slot_);
  if (reservation_ != nullptr) ::munmap(reservation_, reservation_bytes_);
}

Error truncated_error(const Segment& seg) {
  return Error(Errc::bad_segment, "the topic's segment was truncated underneath this process (by another process "
                                  "with write rights); it is unusable: topic=" + seg.name());
}

Result<void> Segment::map(int fd, std::size_t bytes) {
  // Reserve guard + segment + guard as PROT_NONE, then map the segment over the middle with MAP_FIXED.
  reservation_bytes_ = bytes + 2 * kPageSize;
  void* r = ::mmap(nullptr, reservation_bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return os_error(errno, "cannot reserve address space", name_);
  reservation_ = static_cast<std::byte*>(r);
  // Small segments are pre-faulted: otherwise each process pays a page fault on its first touch of every ring
  // page, which shows up as millisecond outliers in the first lap.
  const int populate = bytes <= kPrefaultMaxBytes ? MAP_POPULATE : 0;
  void* m = ::mmap(reservation_ + kPageSize, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | populate, fd, 0);
  if (m == MAP_FAILED) return os_error(errno, "cannot map segment " + path_, name_);
  base_ = static_cast<std::byte*>(m);
  total_ = bytes;
  guard_slot_ = guard_mapping(base_, total_, &truncated_);  // a SIGBUS here becomes Errc::bad_segment
  return {};
}

Result<std::shared_ptr<Segment>> Segment::create(std::string_view name, const TopicOptions& options) {
  auto path = segment_path(name, options.storage, options.directory, options.ns);
  if (!path) return std::move(path).error();
  if (auto r = check_options(name, options); !r) return r.error();
  const std::uint64_t max_message =
      options.max_message != 0 ? options.max_message : std::min<std::uint64_t>(options.capacity / 4, kMaxMessageLimit);
  const std::size_t total = kRingOffset + options.capacity;

  std::shared_ptr<Segment> seg(new Segment());
  seg->name_ = std::string(name);
  seg->path_ = *path;
  seg->where_ = OpenOptions{options.storage, options.directory, effective_namespace(options.ns)};
  int fd = -1;
  std::unique_ptr<bip::shared_memory_object> shm;
  if (options.storage == Storage::shm) {
    try {
      shm = std::make_unique<bip::shared_memory_object>(bip::create_only, path->c_str(), bip::read_write,
                                                        bip::permissions(options.mode));
    } catch (const bip::interprocess_exception& e) {
      return os_error(e.get_native_error() != 0 ? e.get_native_error() : EEXIST, "cannot create topic", name);
    }
    fd = shm->get_mapping_handle().handle;
  } else {
    fd = ::open(path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, options.mode);
    if (fd < 0) return os_error(errno, "cannot create topic file " + *path, name);
  }
  auto unlink_on_error = [&] {
    if (options.storage == Storage::shm) bip::shared_memory_object::remove(path->c_str());
    else ::unlink(path->c_str());
  };
  auto close_fd = [&] { if (options.storage == Storage::file) ::close(fd); };
  ::fchmod(fd, options.mode);  // the umask may have narrowed it
  if (!options.access_group.empty()) {
    const ::group* g = ::getgrnam(options.access_group.c_str());
    const int e = g == nullptr ? ENOENT : (::fchown(fd, static_cast<uid_t>(-1), g->gr_gid) == 0 ? 0 : errno);
    if (e != 0) {
      close_fd();
      unlink_on_error();
      return Error(e == ENOENT ? Errc::invalid_argument : Errc::permission_denied,
                   (e == ENOENT ? "no such group: access_group=" : "cannot give the segment to group ") +
                       options.access_group + ": topic=" + std::string(name) +
                       (e == ENOENT ? std::string() : std::string(": ") + std::strerror(e) + " (needs CAP_CHOWN)"));
    }
  }
  // Reserve every page now: a full /dev/shm (or disk) is an error here, not a SIGBUS on first touch. An shm segment
  // that map() pre-faults is reserved by that (each page is allocated then; mincore says whether all were), and
  // posix_fallocate reserves the others, or the pages a pre-fault could not get (or says there is no room). Pages
  // posix_fallocate allocated cost another process's mapping several times more on its first touch of each on a
  // hypervisor that shadows page tables (6.5 against 2.1 us a page here; bench/RESULTS.md).
  const auto reserve = [&]() -> Result<void> {
    if (const int e = ::posix_fallocate(fd, 0, static_cast<off_t>(total)); e != 0)
      return Error(Errc::io, "cannot reserve " + std::to_string(total) + " bytes for topic=" + std::string(name) +
                                 " at " + *path + ": " + errno_text(e));
    return {};
  };
  const bool prefaulted = options.storage == Storage::shm && total <= kPrefaultMaxBytes;
  const Result<void> reserved =
      !prefaulted ? reserve()
      : ::ftruncate(fd, static_cast<off_t>(total)) == 0 ? Result<void>()
                                                          : os_error(errno, "cannot size topic segment " + *path, name);
  if (!reserved) {
    close_fd();
    unlink_on_error();
    return reserved.error();
  }
  struct stat identity{};
  const bool known = ::fstat(fd, &identity) == 0;
  auto mapped = seg->map(fd, total);
  if (mapped && prefaulted && !all_resident(seg->bytes())) mapped = reserve();
  close_fd();
  if (!mapped) {
    unlink_on_error();
    return mapped.error();
  }
  seg->capacity_ = options.capacity;
  seg->max_message_ = max_message;
  seg->policy_ = options.policy;
  seg->storage_ = options.storage;
  auto& h = seg->header();
  init_header(h, name, options, max_message, total);
  for (auto& slot : h.index) slot.store(0, std::memory_order_relaxed);
  for (std::size_t i = 0; i < kMaxProducers; ++i) seg->producer(i).intent_pos.store(kNone, std::memory_order_relaxed);
  for (std::size_t g = 0; g < kMaxGroups; ++g)
    for (auto& m : seg->group(g).members) m.low.store(kNone, std::memory_order_relaxed);
  // Groups from the options start at the (empty) beginning of the log.
  for (std::size_t g = 0; g < options.groups.size(); ++g) {
    auto& block = seg->group(g);
    block.name_len = static_cast<std::uint32_t>(options.groups[g].size());
    std::memcpy(block.name, options.groups[g].data(), options.groups[g].size());
    store_retry_policy(block, RetryPolicy{});
    block.state.store(kGroupActive, std::memory_order_relaxed);
  }
  for (std::size_t a = 0; a < options.groups.size(); ++a)
    for (std::size_t b = a + 1; b < options.groups.size(); ++b)
      if (options.groups[a] == options.groups[b]) {
        unlink_on_error();
        return Error(Errc::exists, "group listed twice: topic=" + std::string(name) + " group=" + options.groups[a]);
      }
  // Publish the segment: openers wait for the magic.
  h.magic.store(kMagic, std::memory_order_release);
  if (known) remember_mapping(identity, seg);
  return seg;
}

Result<std::shared_ptr<Segment>> Segment::open(std::string_view name, const OpenOptions& options) {
  auto path = segment_path(name, options.storage, options.directory, options.ns);
  if (!path) return std::move(path).error();
  std::shared_ptr<Segment> seg(new Segment());
  seg->name_ = std::string(name);
  seg->path_ = *path;
  seg->where_ = OpenOptions{options.storage, options.directory, effective_namespace(options.ns)};
  int fd = -1;
  std::unique_ptr<bip::shared_memory_object> shm;
  if (options.storage == Storage::shm) {
    try {
      shm = std::make_unique<bip::shared_memory_object>(bip::open_only, path->c_str(), bip::read_write);
    } catch (const bip::interprocess_exception& e) {
      const int err = e.get_native_error() != 0 ? e.get_native_error() : ENOENT;
      if (err == ENOENT) return Error(Errc::not_found, "no such topic: topic=" + std::string(name));
      return os_error(err, "cannot open topic", name);
    }
    fd = shm->get_mapping_handle().handle;
  } else {
    fd = ::open(path->c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Error(Errc::not_found, "no such topic: topic=" + std::string(name) + " file=" + *path);
      return os_error(errno, "cannot open topic file " + *path, name);
    }
  }
  auto close_fd = [&] { if (options.storage == Storage::file) ::close(fd); };
  // The creator reserves, maps and writes the header before the magic; give a racing creator a moment.
  struct stat st{};
  for (int attempt = 0;; ++attempt) {
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      close_fd();
      return os_error(e, "cannot stat topic", name);
    }
    if (st.st_size != 0 || attempt >= 2000) break;  // 0: the creator has not reserved it yet
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto bytes = static_cast<std::size_t>(st.st_size);
  if (bytes < kRingOffset || bytes % kPageSize != 0) {
    close_fd();
    return Error(Errc::bad_segment, "segment size " + std::to_string(bytes) + " is not a libmq topic: topic=" + std::string(name));
  }
  if (auto shared = mapped_already(st); shared && shared->bytes().size() == bytes && shared->name() == name &&
                                        !shared->truncated()) {
    close_fd();
    if (auto valid = validate_segment(shared->bytes(), name); !valid) return valid.error();
    return shared;
  }
  auto mapped = seg->map(fd, bytes);
  close_fd();
  if (!mapped) return mapped.error();
  for (int attempt = 0; seg->header().magic.load(std::memory_order_acquire) == 0 && attempt < 2000; ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (auto valid = validate_segment(seg->bytes(), name); !valid) return valid.error();
  const auto& h = seg->header();
  if (std::string_view(h.name, h.name_len) != name)
    return Error(Errc::bad_segment, "segment holds another topic (" + std::string(h.name, h.name_len) + "): topic=" + std::string(name));
  seg->capacity_ = h.capacity;
  seg->max_message_ = h.max_message;
  seg->policy_ = static_cast<Policy>(h.policy);
  seg->storage_ = static_cast<Storage>(h.storage);
  remember_mapping(st, seg);
  return seg;
}

Result<void> Segment::flush() const {
  if (storage_ != Storage::file) return {};
  if (::msync(base_, total_, MS_SYNC) != 0) return os_error(errno, "msync failed", name_);
  return {};
}

}  // namespace mq::detail
