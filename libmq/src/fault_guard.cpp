// See fault_guard.hpp.
#include "fault_guard.hpp"

#include <signal.h>
#include <sys/mman.h>

#include <cstdint>
#include <mutex>

#include "layout.hpp"

namespace mq::detail {

namespace {

// The mappings the handler knows. Read by the handler without locks: a slot is published (state 2) after its
// fields are written, and withdrawn (state 0) before its mapping goes away.
struct Slot {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 live
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::size_t> bytes{0};
  std::atomic<std::atomic<bool>*> truncated{nullptr};
};
constexpr int kSlots = 4096;
Slot slots[kSlots];
struct sigaction previous {};
std::once_flag installed;

// Hands a fault that is not ours to the handler that was there before.
void chain(int sig, siginfo_t* info, void* context) {
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler != nullptr) {
    previous.sa_handler(sig);
  } else {
    // Default (or ignored, which a fault cannot be): die of the signal as without us when the access re-runs.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
  }
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (Slot& s : slots) {
    if (s.state.load(std::memory_order_acquire) != 2) continue;
    const std::uintptr_t base = s.base.load(std::memory_order_relaxed);
    const std::size_t bytes = s.bytes.load(std::memory_order_relaxed);
    if (addr < base || addr >= base + bytes) continue;
    // The file ends before this page: zero pages from here to the end of the mapping (a syscall, safe here).
    const std::uintptr_t page = addr & ~(std::uintptr_t{kPageSize} - 1);
    void* zeros = ::mmap(reinterpret_cast<void*>(page), base + bytes - page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (zeros == MAP_FAILED) break;
    s.truncated.load(std::memory_order_relaxed)->store(true, std::memory_order_release);
    return;
  }
  chain(sig, info, context);
}

void install() noexcept {
  struct sigaction act {};
  act.sa_sigaction = on_sigbus;
  act.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&act.sa_mask);
  ::sigaction(SIGBUS, &act, &previous);
}

}  // namespace

int guard_mapping(std::byte* base, std::size_t bytes, std::atomic<bool>* truncated) noexcept {
  std::call_once(installed, install);
  for (int i = 0; i < kSlots; ++i) {
    int free = 0;
    if (!slots[i].state.compare_exchange_strong(free, 1, std::memory_order_acquire)) continue;
    slots[i].base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_relaxed);
    slots[i].bytes.store(bytes, std::memory_order_relaxed);
    slots[i].truncated.store(truncated, std::memory_order_relaxed);
    slots[i].state.store(2, std::memory_order_release);
    return i;
  }
  return -1;
}

void unguard_mapping(int slot) noexcept {
  if (slot >= 0 && slot < kSlots) slots[slot].state.store(0, std::memory_order_release);
}

}  // namespace mq::detail
