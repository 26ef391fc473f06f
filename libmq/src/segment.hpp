// Segment: one mapped topic segment (shared memory or a file), with PROT_NONE guard pages on both sides so a stray
// read past the mapping faults at once instead of reading a neighbour. Creating one reserves its memory up front, so
// a full /dev/shm is an error at creation and never a SIGBUS later. Opening one validates its header.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "layout.hpp"
#include "libmq/error.hpp"
#include "libmq/options.hpp"

namespace mq::detail {

class Segment {
 public:
  static Result<std::shared_ptr<Segment>> create(std::string_view name, const TopicOptions& options);
  static Result<std::shared_ptr<Segment>> open(std::string_view name, const OpenOptions& options);
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  const std::string& name() const noexcept { return name_; }
  // The shm name or the file path.
  const std::string& path() const noexcept { return path_; }
  // Where it was found (storage, directory, namespace): where a topic beside it (its dead-letter topic) lives.
  const OpenOptions& where() const noexcept { return where_; }
  SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(base_); }
  ProducerSlot& producer(std::size_t i) const noexcept {
    return reinterpret_cast<ProducerSlot*>(base_ + kProducerTableOffset)[i];
  }
  GroupBlock& group(std::size_t i) const noexcept {
    return reinterpret_cast<GroupBlock*>(base_ + kGroupTableOffset)[i];
  }
  RetryTable& retries(std::size_t group) const noexcept {
    return reinterpret_cast<RetryTable*>(base_ + kRetryTableOffset)[group];
  }
  KeyTable& keys(std::size_t group) const noexcept {
    return reinterpret_cast<KeyTable*>(base_ + kKeyTableOffset)[group];
  }
  std::byte* ring() const noexcept { return base_ + kRingOffset; }
  std::uint64_t capacity() const noexcept { return capacity_; }
  std::uint64_t mask() const noexcept { return capacity_ - 1; }
  std::uint64_t max_message() const noexcept { return max_message_; }
  Policy policy() const noexcept { return policy_; }
  Storage storage() const noexcept { return storage_; }
  RecordHeader& record_at(std::uint64_t position) const noexcept {
    return *reinterpret_cast<RecordHeader*>(ring() + (position & mask()));
  }
  std::span<const std::byte> bytes() const noexcept { return {base_, total_}; }
  // Its file was truncated underneath this process: what was past the new end now reads as zeros (fault_guard).
  bool truncated() const noexcept { return truncated_.load(std::memory_order_relaxed); }

  Result<void> flush() const;

 private:
  Segment() = default;
  Result<void> map(int fd, std::size_t bytes);

  std::string name_;
  std::string path_;  // the shm name or the file path, for messages
  OpenOptions where_;
  std::byte* reservation_ = nullptr;
  std::size_t reservation_bytes_ = 0;
  std::byte* base_ = nullptr;
  std::size_t total_ = 0;
  std::uint64_t capacity_ = 0;
  std::uint64_t max_message_ = 0;
  Policy policy_ = Policy::block;
  Storage storage_ = Storage::shm;
  std::atomic<bool> truncated_{false};
  int guard_slot_ = -1;
};

// Errc::bad_segment for an operation on a segment whose file was truncated underneath this process.
Error truncated_error(const Segment& seg);

// Checks a segment image (at least its header and tables) against the layout version (kLayoutVersion): every field that later code
// trusts. `bytes` is the whole mapping. Used at open and by the fuzzer.
Result<void> validate_segment(std::span<const std::byte> bytes, std::string_view name);

// The shm name ("mq@[ns@]topic") or file path of a topic, after validating the name and namespace.
Result<std::string> segment_path(std::string_view name, Storage storage, const std::string& directory,
                                 const std::optional<std::string>& ns);
// The namespace in force: the option, else $MQ_NAMESPACE, else none.
std::string effective_namespace(const std::optional<std::string>& ns);

}  // namespace mq::detail
