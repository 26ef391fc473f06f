// fuzz_segment: libFuzzer target for mq::detail::validate_segment, the check Topic::open runs on a segment image that
// another (possibly hostile) process wrote. A whole image is >= 124 KiB, so the input is not the image itself but a
// short program that edits a valid header and picks the image's size: small inputs then reach every check.
//
// Input: u8 sizing, [u32 size when sizing % 4 == 2 | u8 shift when 3], then ops until the input ends:
//   op % kOps <  kFields      set header field op to the next `width` bytes
//   op % kOps == kFields      group field: u8 group, u8 which (0 state, 1 name_len), u32 value
//   op % kOps == kFields + 1  raw patch: u16 offset (mod the header size), u8 length, bytes
// The image is an exact-size heap block (page-aligned, as a mapping is), so ASan reports any read past it; a header
// that claims a ring over 1 MiB (sizing 0) gets a sparse mapping whose ring is PROT_NONE. When validation passes,
// every field later code trusts is re-checked here; when it fails, the error must say why.
#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input.hpp"
#include "layout.hpp"
#include "segment.hpp"

namespace mqfuzz {

namespace {

using namespace mq::detail;

constexpr std::size_t kImageAlign = kPageSize;                      // a mapping starts on a page
constexpr std::size_t kMinImage = kRingOffset + mq::kMinCapacity;  // the smallest valid segment
constexpr std::size_t kMaxImage = kRingOffset + (std::size_t{1} << 20);  // bounds the work per input
constexpr std::string_view kName = "fuzz-topic";

struct Field {
  std::size_t offset;
  std::size_t width;
};

constexpr Field kHeaderFields[] = {
    {offsetof(SegmentHeader, magic), 8},          {offsetof(SegmentHeader, version), 4},
    {offsetof(SegmentHeader, header_bytes), 4},   {offsetof(SegmentHeader, capacity), 8},
    {offsetof(SegmentHeader, max_message), 8},    {offsetof(SegmentHeader, policy), 4},
    {offsetof(SegmentHeader, storage), 4},        {offsetof(SegmentHeader, block_timeout_ms), 8},
    {offsetof(SegmentHeader, created_ns), 8},     {offsetof(SegmentHeader, mode), 4},
    {offsetof(SegmentHeader, name_len), 4},       {offsetof(SegmentHeader, producer_slots), 4},
    {offsetof(SegmentHeader, group_slots), 4},    {offsetof(SegmentHeader, member_slots), 4},
    {offsetof(SegmentHeader, held_slots), 4},     {offsetof(SegmentHeader, redeliver_slots), 4},
    {offsetof(SegmentHeader, index_slots), 4},    {offsetof(SegmentHeader, ring_offset), 8},
    {offsetof(SegmentHeader, total_bytes), 8},    {offsetof(SegmentHeader, retry_slots), 4},
};
constexpr std::size_t kFields = std::size(kHeaderFields);
constexpr std::size_t kOpGroup = kFields;
constexpr std::size_t kOpPatch = kFields + 1;
constexpr std::size_t kOps = kFields + 2;
// Field indexes the seeds use.
constexpr std::uint8_t kFieldVersion = 1;
constexpr std::uint8_t kFieldCapacity = 3;
constexpr std::uint8_t kFieldMaxMessage = 4;
constexpr std::uint8_t kFieldTotal = 18;
static_assert(kHeaderFields[kFieldTotal].offset == offsetof(SegmentHeader, total_bytes));

std::size_t group_field(std::size_t g, bool name_len) {
  return kGroupTableOffset + g * kGroupBlockBytes +
         (name_len ? offsetof(GroupBlock, name_len) : offsetof(GroupBlock, state));
}

std::uint64_t get(const std::byte* image, std::size_t offset, std::size_t width) {
  std::uint64_t v = 0;
  std::memcpy(&v, image + offset, width);  // little-endian host
  return v;
}
void put(std::byte* image, std::size_t offset, std::size_t width, std::uint64_t v) {
  std::memcpy(image + offset, &v, width);
}

// A header as Segment::create writes it, for a kMinCapacity ring, with one active group "g".
void valid_header(std::byte* h) {
  std::memset(h, 0, kRingOffset);
  auto set = [&](std::size_t offset, std::size_t width, std::uint64_t v) { put(h, offset, width, v); };
  set(offsetof(SegmentHeader, magic), 8, kMagic);
  set(offsetof(SegmentHeader, version), 4, kLayoutVersion);
  set(offsetof(SegmentHeader, header_bytes), 4, kRingOffset);
  set(offsetof(SegmentHeader, capacity), 8, mq::kMinCapacity);
  set(offsetof(SegmentHeader, max_message), 8, mq::kMinCapacity / 4);
  set(offsetof(SegmentHeader, mode), 4, 0660);
  set(offsetof(SegmentHeader, name_len), 4, kName.size());
  std::memcpy(h + offsetof(SegmentHeader, name), kName.data(), kName.size());
  set(offsetof(SegmentHeader, producer_slots), 4, mq::kMaxProducers);
  set(offsetof(SegmentHeader, group_slots), 4, mq::kMaxGroups);
  set(offsetof(SegmentHeader, member_slots), 4, mq::kMaxMembers);
  set(offsetof(SegmentHeader, held_slots), 4, mq::kMaxUnacked);
  set(offsetof(SegmentHeader, redeliver_slots), 4, kRedeliverSlots);
  set(offsetof(SegmentHeader, index_slots), 4, kIndexSlots);
  set(offsetof(SegmentHeader, retry_slots), 4, mq::kRetrySlots);
  set(offsetof(SegmentHeader, key_slots), 4, kKeySlots);
  set(offsetof(SegmentHeader, ring_offset), 8, kRingOffset);
  set(offsetof(SegmentHeader, total_bytes), 8, kMinImage);
  set(group_field(0, false), 4, kGroupActive);
  set(group_field(0, true), 4, 1);
  h[kGroupTableOffset + offsetof(GroupBlock, name)] = std::byte{'g'};
}

bool is_pow2(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// validate_segment said yes: everything Segment::open and the data path go on to trust must hold.
void check_accepted(const std::byte* image, std::size_t size) {
  check(size >= kRingOffset, "accepted an image smaller than the header");
  check(get(image, offsetof(SegmentHeader, magic), 8) == kMagic, "accepted a bad magic");
  check(get(image, offsetof(SegmentHeader, version), 4) == kLayoutVersion, "accepted another layout version");
  const std::uint64_t capacity = get(image, offsetof(SegmentHeader, capacity), 8);
  check(is_pow2(capacity) && capacity >= mq::kMinCapacity && capacity <= mq::kMaxCapacity, "accepted capacity");
  check(size == kRingOffset + capacity, "accepted an image whose size is not header + capacity");
  const std::uint64_t max_message = get(image, offsetof(SegmentHeader, max_message), 8);
  check(max_message >= 1 && max_message <= capacity / 4 && max_message <= mq::kMaxMessageLimit,
        "accepted max_message (record lengths are 32-bit)");
  check(get(image, offsetof(SegmentHeader, policy), 4) <= 1, "accepted policy");
  check(get(image, offsetof(SegmentHeader, storage), 4) <= 1, "accepted storage");
  const std::uint64_t name_len = get(image, offsetof(SegmentHeader, name_len), 4);
  check(name_len >= 1 && name_len < kNameBytes, "accepted name_len");
  check(get(image, offsetof(SegmentHeader, header_bytes), 4) == kRingOffset, "accepted header_bytes");
  check(get(image, offsetof(SegmentHeader, ring_offset), 8) == kRingOffset, "accepted ring_offset");
  check(get(image, offsetof(SegmentHeader, producer_slots), 4) == mq::kMaxProducers &&
            get(image, offsetof(SegmentHeader, group_slots), 4) == mq::kMaxGroups &&
            get(image, offsetof(SegmentHeader, member_slots), 4) == mq::kMaxMembers &&
            get(image, offsetof(SegmentHeader, held_slots), 4) == mq::kMaxUnacked &&
            get(image, offsetof(SegmentHeader, redeliver_slots), 4) == kRedeliverSlots &&
            get(image, offsetof(SegmentHeader, index_slots), 4) == kIndexSlots &&
            get(image, offsetof(SegmentHeader, retry_slots), 4) == mq::kRetrySlots &&
            get(image, offsetof(SegmentHeader, key_slots), 4) == kKeySlots,
        "accepted table sizes");
  for (std::size_t g = 0; g < mq::kMaxGroups; ++g) {
    const std::uint64_t state = get(image, group_field(g, false), 4);
    check(state <= kGroupActive, "accepted a group state");
    if (state == kGroupFree) continue;
    const std::uint64_t len = get(image, group_field(g, true), 4);
    check(len >= 1 && len < kNameBytes, "accepted a group name length");
  }
}

// validate_segment said no: the error is one of its two codes and names the topic (and both versions).
void check_refused(const std::byte* image, std::size_t size, const mq::Error& error) {
  const std::string message(error.message());
  check(message.find("topic=" + std::string(kName)) != std::string::npos, "error does not name the topic");
  if (error.code() == mq::Errc::version_mismatch) {
    check(size >= kRingOffset, "version_mismatch on an image smaller than the header");
    const std::uint64_t version = get(image, offsetof(SegmentHeader, version), 4);
    check(version != kLayoutVersion, "version_mismatch on a matching version");
    check(message.find(std::to_string(version)) != std::string::npos &&
              message.find(std::to_string(kLayoutVersion)) != std::string::npos,
          "version_mismatch does not name both versions");
    return;
  }
  check(error.code() == mq::Errc::bad_segment, "validate_segment returned an unexpected error code");
}

int validate(const std::byte* image, std::size_t size) {
  const auto result = validate_segment(std::span<const std::byte>(image, size), kName);
  if (result) check_accepted(image, size);
  else check_refused(image, size, result.error());
  return 0;
}

// A segment image too large to allocate (rings up to kMaxCapacity): the header pages are read-write, the ring and a
// guard page after it PROT_NONE, so a read of the ring or past the end faults at once. Address space only.
class SparseImage {
 public:
  explicit SparseImage(std::size_t size) : size_(size), mapped_(size + kPageSize) {
    void* p = ::mmap(nullptr, mapped_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    if (::mprotect(p, kRingOffset, PROT_READ | PROT_WRITE) != 0) {
      ::munmap(p, mapped_);
      return;
    }
    data_ = static_cast<std::byte*>(p);
  }
  ~SparseImage() {
    if (data_ != nullptr) ::munmap(data_, mapped_);
  }
  SparseImage(const SparseImage&) = delete;
  SparseImage& operator=(const SparseImage&) = delete;
  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  std::size_t size_;
  std::size_t mapped_;
  std::byte* data_ = nullptr;
};

}  // namespace

std::vector<std::vector<std::uint8_t>> seeds() {
  std::vector<std::vector<std::uint8_t>> out;
  out.push_back(Writer().u8(0).done());                                              // valid as is
  out.push_back(Writer().u8(0).u8(kFieldVersion).u32(kLayoutVersion + 1).done());    // another version
  out.push_back(Writer().u8(3).u8(1).u8(kFieldCapacity).u64(mq::kMinCapacity << 1)  // 128 KiB ring, valid
                    .u8(kFieldTotal).u64(kRingOffset + (mq::kMinCapacity << 1))
                    .u8(kFieldMaxMessage).u64(mq::kMinCapacity / 2).done());
  out.push_back(Writer().u8(2).u32(kRingOffset - 8).done());                         // image smaller than a header
  out.push_back(Writer().u8(1).u8(kOpGroup).u8(3).u8(0).u32(kGroupActive)            // group 3 active, no name
                    .u8(kOpGroup).u8(3).u8(1).u32(kNameBytes).done());
  out.push_back(Writer().u8(1).u8(kOpPatch).u16(offsetof(SegmentHeader, policy)).u8(8)
                    .u32(1).u32(1).done());                                           // overwrite + file
  constexpr std::uint64_t kHuge = std::uint64_t{16} << 30;                            // a 16 GiB ring, sparse
  out.push_back(Writer().u8(0).u8(kFieldCapacity).u64(kHuge).u8(kFieldTotal).u64(kRingOffset + kHuge)
                    .u8(kFieldMaxMessage).u64(mq::kMaxMessageLimit).done());          // valid
  out.push_back(Writer().u8(0).u8(kFieldCapacity).u64(kHuge).u8(kFieldTotal).u64(kRingOffset + kHuge)
                    .u8(kFieldMaxMessage).u64(kHuge / 4).done());                     // 4 GiB records: refused
  return out;
}

}  // namespace mqfuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mq::detail;
  using namespace mqfuzz;
  Input in(data, size);
  const std::uint8_t sizing = in.u8() % 4;
  std::size_t image_size = kMinImage;
  if (sizing == 2) image_size = in.u32() % (kMinImage + 2 * kPageSize + 1);  // anything, header-short included
  if (sizing == 3) image_size = kRingOffset + (mq::kMinCapacity << (in.u8() % 5));  // 64 KiB .. 1 MiB rings

  alignas(kImageAlign) static std::byte header[kRingOffset];
  valid_header(header);
  while (!in.empty()) {
    const std::size_t op = in.u8() % kOps;
    if (op < kFields) {
      put(header, kHeaderFields[op].offset, kHeaderFields[op].width, in.take(kHeaderFields[op].width));
    } else if (op == kOpGroup) {
      const std::size_t g = in.u8() % mq::kMaxGroups;
      const bool name_len = (in.u8() & 1) != 0;
      put(header, group_field(g, name_len), 4, in.u32());
    } else {
      const std::size_t at = in.u16() % kRingOffset;
      const auto patch = in.bytes(in.u8());
      const std::size_t n = std::min(patch.size(), kRingOffset - at);
      if (n != 0) std::memcpy(header + at, patch.data(), n);
    }
  }
  if (sizing == 0) {  // the size the header claims
    const std::uint64_t total = get(header, offsetof(SegmentHeader, total_bytes), 8);
    if (total <= kMaxImage) {
      image_size = static_cast<std::size_t>(total);
    } else if (total % kPageSize == 0 && total <= kRingOffset + mq::kMaxCapacity) {
      // Up to 1 TiB: a sparse mapping whose ring is PROT_NONE (validation must not read it).
      const SparseImage image(static_cast<std::size_t>(total));
      if (image.data() == nullptr) return 0;  // no address space: not the library's fault
      std::memcpy(image.data(), header, kRingOffset);
      return validate(image.data(), image.size());
    }
  }
  // Exactly image_size bytes: ASan's redzone sits right behind the last one.
  const Buffer image(image_size, kImageAlign);
  std::memcpy(image.data(), header, std::min(image_size, kRingOffset));
  return validate(image.data(), image_size);
}
