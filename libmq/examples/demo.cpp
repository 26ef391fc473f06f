// mq-demo: the blog post's scenario on one host, embedded (no daemon): one process publishes invitation messages,
// two worker processes in one consumer group share them, each printing "offset # value" as the post's consumer.js.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "libmq/libmq.hpp"

namespace {

constexpr std::string_view kStop = "stop";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: mq-demo [--messages N] [--topic NAME]\n"
               "  Publishes N messages (default 20) to topic NAME (default kafka-node) and consumes them with two\n"
               "  worker processes in consumer group \"email-service\", printing \"offset # value\" per record.\n"
               "  The topic lives in namespace $MQ_NAMESPACE (default: demo-PID) and is removed at the end.\n");
}

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

int worker(const mq::Topic& topic, int id) {
  mq::Consumer consumer(topic, {.group = "email-service", .start = mq::Start::earliest});
  int handled = 0;
  for (;;) {
    auto msg = consumer.poll(std::chrono::seconds(30));
    if (!msg) {
      std::fprintf(stderr, "worker %d: %s\n", id, std::string(msg.error().message()).c_str());
      return 1;
    }
    const auto payload = msg->payload();
    const std::string_view value(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (value == kStop) {
      (void)consumer.ack(std::move(*msg));
      std::fprintf(stderr, "worker %d handled %d invitations\n", id, handled);
      return 0;
    }
    std::printf("%llu # %.*s\n", static_cast<unsigned long long>(msg->offset()), static_cast<int>(value.size()),
                value.data());
    std::fflush(stdout);
    ++handled;
  }
}

}  // namespace

int main(int argc, char** argv) {
  long messages = 20;
  std::string name = "kafka-node";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if ((arg == "--messages" || arg == "--topic") && i + 1 < argc) {
      const char* value = argv[++i];
      if (arg == "--topic") {
        name = value;
        continue;
      }
      char* end = nullptr;
      messages = std::strtol(value, &end, 10);
      if (*end != '\0' || messages < 0 || messages > 1'000'000) {
        std::fprintf(stderr, "mq-demo: --messages must be a number from 0 to 1000000, got '%s'\n", value);
        return 2;
      }
      continue;
    }
    std::fprintf(stderr, "mq-demo: unknown argument '%s'\n", argv[i]);
    usage(stderr);
    return 2;
  }
  if (std::getenv("MQ_NAMESPACE") == nullptr)
    setenv("MQ_NAMESPACE", ("demo-" + std::to_string(getpid())).c_str(), 1);

  // The group exists before its workers start, so nothing published before they join is dropped.
  auto topic = mq::Topic::create(name, {.groups = {"email-service"}});
  if (!topic) {
    std::fprintf(stderr, "mq-demo: %s\n", std::string(topic.error().message()).c_str());
    return 1;
  }
  pid_t workers[2];
  for (int id = 0; id < 2; ++id) {
    workers[id] = fork();
    if (workers[id] == 0) {
      auto mine = mq::Topic::open(name);  // handles belong to the process that made them
      _exit(mine ? worker(*mine, id + 1) : 1);
    }
  }
  int status = 0;
  {
    mq::Producer producer(*topic);
    for (long i = 1; i <= messages; ++i) {
      const std::string value = "Hello consumer from producer: " + std::to_string(i);
      if (auto offset = producer.publish(bytes(value)); !offset) {
        std::fprintf(stderr, "mq-demo: publish failed: %s\n", std::string(offset.error().message()).c_str());
        status = 1;
        break;
      }
    }
    for (int id = 0; id < 2; ++id) (void)producer.publish(bytes(kStop));  // one per worker
  }
  for (pid_t w : workers) {
    int ws = 0;
    waitpid(w, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) status = 1;
  }
  (void)mq::Topic::remove(name);
  return status;
}
