// Run inside `unshare -m` with a 1 MiB tmpfs on /dev/shm (see tests/CMakeLists.txt): creating a topic larger than
// the space left must fail at creation with a clear error and leave no segment behind, never SIGBUS later.
#include <sys/statvfs.h>

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
  mq::Producer producer(*small);
  const std::string value(1000, 'x');
  for (int i = 0; i < 500; ++i)  // several laps: every page was reserved at creation, so no SIGBUS here
    if (!producer.publish(std::as_bytes(std::span(value.data(), value.size())))) return 1;
  std::printf("ok\n");
  return 0;
}
