// FutexRing (see futex_ring.h): io_uring through its raw system calls (no liburing: Debian 12's has no futex
// support), one request at a time.
#include "futex_ring.h"

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mqnode {

namespace {

// Linux 6.7's opcode and flag, which the uapi headers of Debian 12 (6.1) predate.
constexpr std::uint8_t kOpFutexWait = 51;
static_assert(IORING_OP_SENDMSG_ZC == 48, "the io_uring opcodes as Linux numbers them (FUTEX_WAIT = 51)");
constexpr std::uint32_t kFutex2SizeU32 = 0x02;  // FUTEX2_SIZE_U32, and not FUTEX2_PRIVATE: the word is shared
constexpr std::uint64_t kMatchAnyBit = 0xffffffffu;  // FUTEX_BITSET_MATCH_ANY

}  // namespace

std::unique_ptr<FutexRing> FutexRing::open() {
  if (const char* force = std::getenv("MQ_NODE_WAITER"); force != nullptr && std::strcmp(force, "thread") == 0)
    return nullptr;  // tests of the fallback
  io_uring_params p{};
  const int fd = static_cast<int>(::syscall(__NR_io_uring_setup, 2, &p));
  if (fd < 0) return nullptr;
  std::unique_ptr<FutexRing> r(new FutexRing);
  r->fd_ = fd;
  r->sq_ring_bytes_ = p.sq_off.array + p.sq_entries * sizeof(std::uint32_t);
  r->cq_ring_bytes_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  const bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && r->cq_ring_bytes_ > r->sq_ring_bytes_) r->sq_ring_bytes_ = r->cq_ring_bytes_;
  r->sq_ring_ = ::mmap(nullptr, r->sq_ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                       IORING_OFF_SQ_RING);
  if (r->sq_ring_ == MAP_FAILED) return r->sq_ring_ = nullptr, nullptr;
  if (single) {
    r->cq_ring_ = r->sq_ring_;
  } else {
    r->cq_ring_ = ::mmap(nullptr, r->cq_ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                         IORING_OFF_CQ_RING);
    if (r->cq_ring_ == MAP_FAILED) return r->cq_ring_ = nullptr, nullptr;
  }
  r->sqes_bytes_ = p.sq_entries * sizeof(io_uring_sqe);
  r->sqes_ = ::mmap(nullptr, r->sqes_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (r->sqes_ == MAP_FAILED) return r->sqes_ = nullptr, nullptr;
  auto* sq = static_cast<char*>(r->sq_ring_);
  auto* cq = static_cast<char*>(r->cq_ring_);
  r->sq_tail_ = reinterpret_cast<std::uint32_t*>(sq + p.sq_off.tail);
  r->sq_mask_ = *reinterpret_cast<std::uint32_t*>(sq + p.sq_off.ring_mask);
  r->sq_array_ = reinterpret_cast<std::uint32_t*>(sq + p.sq_off.array);
  r->cq_head_ = reinterpret_cast<std::uint32_t*>(cq + p.cq_off.head);
  r->cq_tail_ = reinterpret_cast<std::uint32_t*>(cq + p.cq_off.tail);
  r->cq_mask_ = *reinterpret_cast<std::uint32_t*>(cq + p.cq_off.ring_mask);
  r->cqes_ = reinterpret_cast<const Cqe*>(cq + p.cq_off.cqes);
  static_assert(sizeof(Cqe) == sizeof(io_uring_cqe));
  // Does this kernel know FUTEX_WAIT? A wait on a word that does not hold the value finishes at once with -EAGAIN
  // where it does, and -EINVAL where it does not.
  static const std::uint32_t probe = 1;
  if (!r->wait(&probe, 0, 0)) return nullptr;
  if (::syscall(__NR_io_uring_enter, fd, 0, 1, IORING_ENTER_GETEVENTS, nullptr, 0) < 0) return nullptr;
  int result = 0;
  r->reap([&](std::uint64_t, std::int32_t res) { result = res; });
  if (result != -EAGAIN) return nullptr;
  return r;
}

bool FutexRing::wait(const std::uint32_t* word, std::uint32_t value, std::uint64_t tag) noexcept {
  const std::uint32_t tail = *sq_tail_;
  const std::uint32_t index = tail & sq_mask_;
  auto& sqe = static_cast<io_uring_sqe*>(sqes_)[index];
  std::memset(&sqe, 0, sizeof sqe);
  sqe.opcode = kOpFutexWait;
  sqe.fd = static_cast<std::int32_t>(kFutex2SizeU32);
  sqe.addr = reinterpret_cast<std::uint64_t>(word);
  sqe.addr2 = value;
  sqe.addr3 = kMatchAnyBit;
  sqe.user_data = tag;
  sq_array_[index] = index;
  __atomic_store_n(sq_tail_, tail + 1, __ATOMIC_RELEASE);
  return ::syscall(__NR_io_uring_enter, fd_, 1, 0, 0, nullptr, 0) == 1;
}

FutexRing::~FutexRing() {
  if (sqes_ != nullptr) ::munmap(sqes_, sqes_bytes_);
  if (cq_ring_ != nullptr && cq_ring_ != sq_ring_) ::munmap(cq_ring_, cq_ring_bytes_);
  if (sq_ring_ != nullptr) ::munmap(sq_ring_, sq_ring_bytes_);
  if (fd_ >= 0) ::close(fd_);  // cancels a wait still queued
}

}  // namespace mqnode
