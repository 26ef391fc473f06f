// `mqctl consume NAME`: joins a consumer group and prints each record as `offset # value`, like the blog's
// consumer.js. A record is acked only after its line reached stdout, so a record that could not be printed (reader
// gone, Ctrl-C) goes back to the group for its next member: at-least-once, as for any consumer.
//
// When it stops: after --max records (exit 0); with --timeout S when no record arrived for S seconds (exit 0, or
// exit 1 when --max was given and not reached); on Ctrl-C or SIGTERM (exit 0); when stdout is closed (exit 0).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "cli.hpp"
#include "commands.hpp"
#include "stop.hpp"

namespace mqctl {

namespace {

using Clock = std::chrono::steady_clock;

// Writes one line and flushes it, so a pipe sees each record as it comes. False when stdout is closed or broken.
bool print_record(const mq::Message& message) {
  const std::string head = std::to_string(message.offset()) + " # ";
  const auto payload = message.payload();
  const bool ok = std::fwrite(head.data(), 1, head.size(), stdout) == head.size() &&
                  std::fwrite(payload.data(), 1, payload.size(), stdout) == payload.size() &&
                  std::fputc('\n', stdout) != EOF && std::fflush(stdout) == 0;
  return ok;
}

// True when standard output is a pipe whose reader has gone (`| head` has what it wanted): Linux reports POLLERR on
// the write end. Checked while idle, when no write would tell.
bool output_closed() {
  pollfd out{STDOUT_FILENO, 0, 0};
  return ::poll(&out, 1, 0) == 1 && (out.revents & (POLLERR | POLLHUP)) != 0;
}

}  // namespace

int run_consume(const Args& args, Context& context) {
  CommandLine cl("consume NAME [--group G] [--from-beginning] [--max N] [--timeout SECONDS]",
                 "Prints the records of a topic as 'offset # value', one per line, as a member of a consumer\n"
                 "group: each record goes to one member of the group, and every group sees every record. A new\n"
                 "group starts at the topic's end, or its earliest record with --from-beginning; an existing group\n"
                 "continues from its committed position (use reset-offsets or another --group to read again).\n"
                 "A record is acked once its line is written. The group stays after mqctl exits and, in a block\n"
                 "topic, keeps what it has not consumed until it is deleted (delete-group) or expires in mqd.");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("group", po::value<std::string>()->value_name("G")->default_value("mqctl"), "the consumer group")
    ("from-beginning", "a new group starts at the earliest record held (default: at the end, as Kafka)")
    ("max", po::value<std::string>()->value_name("N"), "exit after N records")
    ("timeout", po::value<std::string>()->value_name("SECONDS"),
     "exit when no record arrived for SECONDS (whole seconds)");
  // clang-format on
  cl.epilog(
      "Exit status: 0 after --max records, on Ctrl-C/SIGTERM, when stdout closes, or when --timeout expires\n"
      "without --max; 1 when --timeout expires before --max records arrived, or a request failed; 2 bad usage.");
  if (!cl.parse(args, context)) return 0;
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const std::string group = *cl.get("group");
  check_group_name("--group", group);
  std::optional<std::uint64_t> max;
  if (auto v = cl.get("max")) {
    max = parse_count_arg("--max", *v);
    if (*max == 0) throw UsageError("--max: must be at least 1");
  }
  std::optional<std::chrono::seconds> timeout;
  if (auto v = cl.get("timeout")) {
    const auto seconds = parse_count_arg("--timeout", *v);
    if (seconds > 365ULL * 24 * 3600) throw UsageError("--timeout: at most one year");
    timeout = std::chrono::seconds(seconds);
  }

  auto client = connect(context);
  mq::ConsumerOptions options;
  options.group = group;
  options.start = cl.has("from-beginning") ? mq::Start::earliest : mq::Start::latest;
  options.auto_ack = false;  // acked after printing, below
  // `topic` outlives `consumer` on purpose: libmq's Consumer::release() still touches the segment after dropping
  // its own Topic handle, which crashes when that handle was the last one (reported upstream).
  const mq::Topic topic = require(client.open(name));
  auto consumer = require(mq::Consumer::make(topic, options));
  install_stop_handlers();

  std::uint64_t got = 0;
  auto idle_until = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  while (!stop_requested() && (!max || got < *max)) {
    // Short waits, so a stop request or the idle timeout is noticed promptly.
    auto wait = std::chrono::nanoseconds(std::chrono::milliseconds(200));
    if (timeout) {
      const auto left = idle_until - Clock::now();
      if (left <= Clock::duration::zero()) {
        if (max) {
          throw Failure("no record for " + std::to_string(timeout->count()) + " s: got " + std::to_string(got) +
                        " of " + std::to_string(*max) + " records from topic=" + name + " group=" + group);
        }
        return 0;
      }
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    }
    auto message = consumer.poll(wait);
    if (!message) {
      const auto& error = message.error();
      if (error.code() == mq::Errc::timed_out) {
        if (output_closed()) return 0;  // `| head` is done and no record came to find out by a write
        continue;
      }
      if (error.code() == mq::Errc::lost) {  // overwrite topic: say so, and carry on with what is still there
        std::fprintf(stderr, "mqctl consume: %s\n", std::string(error.message()).c_str());
        continue;
      }
      throw Failure(std::string(error.message()));
    }
    if (!print_record(*message)) {
      if (errno == EPIPE) return 0;  // the reader is gone (`| head`); the unprinted record goes back to the group
      throw Failure(std::string("cannot write to standard output: ") + std::strerror(errno));
    }
    require(consumer.ack(std::move(*message)));
    ++got;
    if (timeout) idle_until = Clock::now() + *timeout;
  }
  return 0;
}

}  // namespace mqctl
