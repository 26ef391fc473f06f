// mq-demo: the blog post's scenario on one host: one process publishes invitation messages, two worker processes
// in one consumer group share them, each printing "offset # value" as the post's consumer.js. Through mqd when
// --socket (or $MQ_SOCKET) is given, else embedded (the demo creates and removes its own topic).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "libmq/libmq.hpp"

namespace {

constexpr std::string_view kStop = "stop";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: mq-demo [--messages N] [--topic NAME] [--socket PATH]\n"
               "  Publishes N messages (default 20) to topic NAME (default kafka-node) and consumes them with two\n"
               "  worker processes in consumer group \"email-service\", printing \"offset # value\" per record.\n"
               "  With --socket PATH (or $MQ_SOCKET) the topic is opened through mqd (create it first with\n"
               "  `mqctl create NAME --consumer-group email-service`, or rely on mqd's auto-create). Without, the\n"
               "  demo runs embedded: its topic lives in namespace $MQ_NAMESPACE (default demo-PID) and is removed.\n");
}

// Opens the topic in this process: through the daemon when there is one, else directly.
mq::Result<mq::Topic> open_topic(const std::string& name, const std::string& socket,
                                 std::optional<mq::Client>& client) {
  if (socket.empty()) return mq::Topic::open(name);
  auto c = mq::Client::connect({.socket = socket, .client_id = "mq-demo"});
  if (!c) return std::move(c).error();
  client = std::move(*c);
  return client->open(name);
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
  std::string socket = std::getenv("MQ_SOCKET") != nullptr ? std::getenv("MQ_SOCKET") : "";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if ((arg == "--messages" || arg == "--topic" || arg == "--socket") && i + 1 < argc) {
      const char* value = argv[++i];
      if (arg == "--topic") {
        name = value;
        continue;
      }
      if (arg == "--socket") {
        socket = value;
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
  const bool embedded = socket.empty();
  if (embedded && std::getenv("MQ_NAMESPACE") == nullptr)
    setenv("MQ_NAMESPACE", ("demo-" + std::to_string(getpid())).c_str(), 1);

  // The group exists before its workers start, so nothing published before they join is dropped.
  std::optional<mq::Client> client;
  auto topic = embedded ? mq::Topic::create(name, {.groups = {"email-service"}}) : open_topic(name, socket, client);
  if (!topic) {
    std::fprintf(stderr, "mq-demo: %s\n", std::string(topic.error().message()).c_str());
    return 1;
  }
  if (!embedded) (void)topic->create_group("email-service", mq::Start::latest);  // exists already if mqctl made it
  pid_t workers[2];
  for (int id = 0; id < 2; ++id) {
    workers[id] = fork();
    if (workers[id] == 0) {
      std::optional<mq::Client> mine_client;  // handles belong to the process that made them
      auto mine = open_topic(name, socket, mine_client);
      if (!mine) std::fprintf(stderr, "worker %d: %s\n", id + 1, std::string(mine.error().message()).c_str());
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
  if (embedded) (void)mq::Topic::remove(name);
  return status;
}
