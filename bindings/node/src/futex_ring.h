// FutexRing: a tiny io_uring of our own that sleeps on a futex word (IORING_OP_FUTEX_WAIT, Linux 6.7+) while the
// event loop polls the ring's fd. A producer's FUTEX_WAKE then completes the request, the fd becomes readable, and
// libuv wakes the loop: one wake-up from producer to JavaScript, where a waiter thread costs two (the thread's,
// then the loop's). open() returns null where io_uring or its FUTEX_WAIT is not there (older kernels, seccomp,
// io_uring_disabled): the caller falls back to a waiter thread.
#pragma once

#include <cstdint>
#include <memory>

namespace mqnode {

class FutexRing {
 public:
  static std::unique_ptr<FutexRing> open();
  ~FutexRing();
  FutexRing(const FutexRing&) = delete;
  FutexRing& operator=(const FutexRing&) = delete;

  int fd() const noexcept { return fd_; }
  // Queues a wait on a shared (not process-private) 32-bit futex word while it holds `value`. False if the kernel
  // refused the request at once (then nothing is queued).
  bool wait(const std::uint32_t* word, std::uint32_t value, std::uint64_t tag) noexcept;
  // Hands each finished request's tag and result (0: woken; -EAGAIN: the word had changed) to `done`.
  template <class Done>
  void reap(Done&& done) noexcept {
    std::uint32_t head = *cq_head_;
    const std::uint32_t tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    for (; head != tail; ++head) {
      const auto& cqe = cqes_[head & cq_mask_];
      done(cqe.user_data, cqe.res);
    }
    __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
  }

 private:
  struct Cqe {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
  };
  FutexRing() = default;
  int fd_ = -1;
  void* sq_ring_ = nullptr;
  std::size_t sq_ring_bytes_ = 0;
  void* cq_ring_ = nullptr;
  std::size_t cq_ring_bytes_ = 0;
  void* sqes_ = nullptr;
  std::size_t sqes_bytes_ = 0;
  std::uint32_t* sq_tail_ = nullptr;
  std::uint32_t sq_mask_ = 0;
  std::uint32_t* sq_array_ = nullptr;
  std::uint32_t* cq_head_ = nullptr;
  std::uint32_t* cq_tail_ = nullptr;
  std::uint32_t cq_mask_ = 0;
  const Cqe* cqes_ = nullptr;
};

}  // namespace mqnode
