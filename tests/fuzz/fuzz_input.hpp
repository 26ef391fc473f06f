// Helpers shared by the libFuzzer targets: a cursor over the fuzzer's bytes (reads past the end yield zeros, so
// every input is a valid program), a writer that builds seed inputs in the same format, and the one way a target
// reports a broken invariant (print, then abort, so libFuzzer saves the input as a crash artifact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <vector>

namespace mqfuzz {

// Reads little-endian integers and byte runs from the input, front to back. Never reads outside it.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const noexcept { return at_ >= size_; }
  std::size_t left() const noexcept { return size_ - at_; }

  // `bytes` (<= 8) little-endian bytes; missing ones read as zero.
  std::uint64_t take(std::size_t bytes) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
      const std::uint64_t b = at_ < size_ ? data_[at_++] : 0;
      v |= b << (8 * i);
    }
    return v;
  }
  std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(take(1)); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(take(2)); }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(take(4)); }
  std::uint64_t u64() noexcept { return take(8); }

  // Up to `n` bytes (fewer at the end of the input).
  std::span<const std::uint8_t> bytes(std::size_t n) noexcept {
    const std::size_t k = n < left() ? n : left();
    std::span<const std::uint8_t> out(data_ + at_, k);
    at_ += k;
    return out;
  }
  std::span<const std::uint8_t> rest() noexcept { return bytes(left()); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// Builds an input in the format Input reads (for seeds).
class Writer {
 public:
  Writer& put(std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Writer& u8(std::uint64_t v) { return put(v, 1); }
  Writer& u16(std::uint64_t v) { return put(v, 2); }
  Writer& u32(std::uint64_t v) { return put(v, 4); }
  Writer& u64(std::uint64_t v) { return put(v, 8); }
  Writer& raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
    return *this;
  }
  Writer& zeros(std::size_t n) {
    out_.insert(out_.end(), n, 0);
    return *this;
  }
  std::vector<std::uint8_t> done() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

// An exact-size, zeroed heap block with the given alignment: ASan's redzones sit right before and after it, so a
// read one byte outside is reported. (A real segment is a mapping with guard pages; this is the fuzzer's stand-in.)
class Buffer {
 public:
  Buffer(std::size_t size, std::size_t align)
      : align_(align), data_(static_cast<std::byte*>(::operator new(size == 0 ? 1 : size, std::align_val_t{align}))),
        size_(size) {
    std::memset(data_, 0, size);
  }
  ~Buffer() { ::operator delete(data_, std::align_val_t{align_}); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  std::size_t align_;
  std::byte* data_;
  std::size_t size_;
};

// A broken invariant: the fuzzer found a bug. Abort so libFuzzer keeps the input.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// Each target defines its seed inputs; fuzz_seeds_main.cpp writes them as the seed corpus and replays them.
std::vector<std::vector<std::uint8_t>> seeds();

}  // namespace mqfuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
