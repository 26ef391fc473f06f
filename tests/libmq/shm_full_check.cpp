// Run inside `unshare -m` with a 1 MiB tmpfs on /dev/shm (see tests/CMakeLists.txt): creating a topic larger than
// the space left must fail at creation with a clear error and leave no segment behind; once /dev/shm is full to the
// last byte, a topic made before keeps publishing and delivering (never a SIGBUS) and a new one is refused.
#include <sys/statvfs.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "libmq/libmq.hpp"

int main() {
  struct statvfs fs{};
  if (statvfs("/dev/shm", &fs) != 0 || fs.f_blocks * fs.f_frsize > (std::size_t{8} << 20)) {
    std::fprintf(stderr, "expected a small tmpfs on /dev/shm (run through the ctest entry)\n");
    return 1;
  }
  auto big = mq::Topic::create("too-big", {.capacity = std::size_t{4} << 20});
  if (big || big.error().code() != mq::Errc::io) {
    std::fprintf(stderr, "FAIL: a 4 MiB topic in a 1 MiB /dev/shm was %s\n", big ? "created" : "refused with another code");
    return 1;
  }
  const std::string message(big.error().message());
  std::printf("refused as expected: %s\n", message.c_str());
  if (message.find("cannot reserve") == std::string::npos || message.find("too-big") == std::string::npos) {
    std::fprintf(stderr, "FAIL: the message should say it cannot reserve the bytes and name the topic\n");
    return 1;
  }
  if (auto left = mq::Topic::open("too-big"); left || left.error().code() != mq::Errc::not_found) {
    std::fprintf(stderr, "FAIL: the failed topic left a segment behind\n");
    return 1;
  }
  auto small = mq::Topic::create("fits", {.capacity = std::size_t{64} << 10});
  if (!small) {
    std::fprintf(stderr, "FAIL: a 64 KiB topic should fit: %s\n", std::string(small.error().message()).c_str());
    return 1;
  }
  // Now fill /dev/shm to the last byte: publishing and consuming must go on (every page of the topic was reserved
  // at creation, so no SIGBUS), and a new topic is refused cleanly.
  {
    FILE* filler = std::fopen("/dev/shm/filler", "wb");
    if (filler == nullptr) return 1;
    const std::string block(4096, 'f');
    while (std::fwrite(block.data(), 1, block.size(), filler) == block.size() && std::fflush(filler) == 0) {
    }
    std::fclose(filler);
    struct statvfs full{};
    statvfs("/dev/shm", &full);
    std::printf("/dev/shm full: %llu blocks free\n", static_cast<unsigned long long>(full.f_bavail));
  }
  auto another = mq::Topic::create("no-room", {.capacity = std::size_t{64} << 10});
  if (another || another.error().code() != mq::Errc::io) {
    std::fprintf(stderr, "FAIL: a topic was %s in a full /dev/shm\n", another ? "created" : "refused with another code");
    return 1;
  }
  mq::Producer producer(*small);
  auto consumer = mq::Consumer::make(*small, {.group = "readers", .start = mq::Start::earliest});
  if (!consumer) return 1;
  const std::string value(1000, 'x');
  for (int i = 0; i < 500; ++i) {  // several laps of the 64 KiB ring while /dev/shm is full
    if (auto r = producer.publish(std::as_bytes(std::span(value.data(), value.size()))); !r) {
      std::fprintf(stderr, "FAIL: publish %d in a full /dev/shm: %s\n", i, std::string(r.error().message()).c_str());
      return 1;
    }
    auto m = consumer->poll(std::chrono::seconds(5));
    if (!m || m->payload().size() != value.size()) {
      std::fprintf(stderr, "FAIL: record %d did not come back in a full /dev/shm\n", i);
      return 1;
    }
  }
  std::printf("ok\n");
  return 0;
}
