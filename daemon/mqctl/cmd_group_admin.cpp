// Consumer-group administration: `mqctl create-group NAME --group G` makes a group (with its ordering and retry
// policy) that keeps records from now (or from the oldest held) before its consumers first run, `mqctl reset-offsets
// NAME --group G --to earliest|latest|OFFSET` (or `--to-time TIME`: the first record at or after it) moves a group
// (all its members) and `mqctl delete-group NAME --group G` removes one at once instead of waiting for mqd's group
// expiry. All act on the group's position in the topic, so they work while its consumers are down.
#include <time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <string>

#include "cli.hpp"
#include "commands.hpp"

namespace mqctl {

namespace {

// "earliest", "latest" or a record offset.
mq::ResetTarget check_target(const std::string& to) {
  if (to == "earliest") return mq::Start::earliest;
  if (to == "latest") return mq::Start::latest;
  if (to.empty() || to.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError("--to: '" + to + "' is not earliest, latest or an offset");
  return mq::Offset{parse_count_arg("--to", to)};
}

// TIME -> ns since the epoch: YYYY-MM-DDTHH:MM:SS[.fraction]Z (UTC, ISO 8601) or milliseconds since the epoch.
std::int64_t parse_time(const std::string& text) {
  const auto bad = [&] {
    return UsageError("--to-time: '" + text +
                      "' is not YYYY-MM-DDTHH:MM:SS[.fff]Z (UTC) or milliseconds since the epoch");
  };
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    const bool whole = ec == std::errc() && end == text.data() + text.size();
    if (!whole || ms > std::numeric_limits<std::int64_t>::max() / 1'000'000) throw bad();
    return ms * 1'000'000;
  }
  tm t{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &t);
  if (rest == nullptr) throw bad();
  std::int64_t fraction_ns = 0;
  if (*rest == '.') {
    std::int64_t scale = 100'000'000;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10)
      if (scale > 0) fraction_ns += (*rest - '0') * scale;
  }
  if (std::string(rest) != "Z") throw bad();
  const time_t seconds = timegm(&t);
  if (seconds < 0) throw bad();
  if (seconds >= std::numeric_limits<std::int64_t>::max() / 1'000'000'000)
    throw UsageError("--to-time: '" + text + "' is after 2262-04-11, the last time a record's timestamp can hold");
  return static_cast<std::int64_t>(seconds) * 1'000'000'000 + fraction_ns;
}

// The NAME and --group every command here takes, both checked.
struct TopicGroup {
  std::string name;
  std::string group;
};
TopicGroup topic_and_group(const CommandLine& cl) {
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const auto group = cl.get("group");
  if (!group) throw UsageError("missing --group");
  check_group_name("--group", *group);
  return TopicGroup{name, *group};
}

// The retry policy options of create-group and set-retry.
void add_retry_options(CommandLine& cl) {
  // clang-format off
  cl.options()
    ("max-attempts", po::value<std::string>()->value_name("N"),
     "deliveries of a record, the first included, before a nack dead-letters it to NAME.dlq (1..63; default 5)")
    ("backoff", po::value<std::string>()->value_name("MS"), "the delay after a record's first failure (default 100)")
    ("factor", po::value<std::string>()->value_name("F"),
     "each further failure multiplies the delay by F (1..100; default 2)")
    ("max-backoff", po::value<std::string>()->value_name("MS"), "the longest delay (at most a day; default 30000)")
    ("jitter", po::value<std::string>()->value_name("J"),
     "a delay is shortened by a random fraction of itself up to J (0..1; default 0.1)");
  // clang-format on
}

// The retry options given, each checked against its range (UsageError naming the option).
mq::RetryFields retry_options(const CommandLine& cl) {
  mq::RetryFields f;
  const auto ms = [&](const char* name) {
    return std::chrono::milliseconds(parse_count_arg(std::string("--") + name, *cl.get(name)));
  };
  if (cl.has("max-attempts")) {
    const std::uint64_t n = parse_count_arg("--max-attempts", *cl.get("max-attempts"));
    if (n < 1 || n > mq::kMaxAttempts) throw UsageError("--max-attempts: must be 1..63, not " + std::to_string(n));
    f.max_attempts = static_cast<std::uint32_t>(n);
  }
  if (cl.has("backoff")) f.backoff = ms("backoff");
  if (cl.has("max-backoff")) f.max_backoff = ms("max-backoff");
  if (cl.has("factor")) f.factor = parse_decimal_arg("--factor", *cl.get("factor"));
  if (cl.has("jitter")) f.jitter = parse_decimal_arg("--jitter", *cl.get("jitter"));
  mq::RetryPolicy alone{.backoff = std::chrono::milliseconds(0), .max_backoff = mq::kMaxBackoff};
  if (auto valid = mq::validate_retry_policy(f.over(alone)); !valid)
    throw UsageError(std::string(valid.error().message()));
  return f;
}

// `base` with the options given, checked as a whole (--backoff against the --max-backoff in force).
mq::RetryPolicy checked(const mq::RetryFields& given, const mq::RetryPolicy& base) {
  const mq::RetryPolicy policy = given.over(base);
  if (auto valid = mq::validate_retry_policy(policy); !valid) throw UsageError(std::string(valid.error().message()));
  return policy;
}

std::string describe_retry(const mq::RetryPolicy& r) {
  char factor[32], jitter[32];
  std::snprintf(factor, sizeof factor, "%g", r.factor);
  std::snprintf(jitter, sizeof jitter, "%g", r.jitter);
  return std::to_string(r.max_attempts) + " attempts, backoff " + std::to_string(r.backoff.count()) + " ms x " +
         factor + " up to " + std::to_string(r.max_backoff.count()) + " ms, jitter " + jitter;
}

}  // namespace

int run_reset_offsets(const Args& args, Context& context) {
  CommandLine cl("reset-offsets NAME --group G --to earliest|latest|OFFSET | --to-time TIME",
                 "Moves a consumer group, for all its members, to the topic's earliest record, to its end (latest),\n"
                 "to a record offset between the two, or to the first record written at or after a time (to replay\n"
                 "what came since). The group's next poll continues from there.");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("group", po::value<std::string>()->value_name("G"), "the consumer group (required)")
    ("to", po::value<std::string>()->value_name("WHERE"), "earliest, latest or an OFFSET")
    ("to-time", po::value<std::string>()->value_name("TIME"),
     "the first record at or after TIME (its end if none is that new):\nYYYY-MM-DDTHH:MM:SS[.fff]Z (UTC) or "
     "milliseconds since the epoch");
  // clang-format on
  if (!cl.parse(args, context)) return 0;
  const auto [name, group] = topic_and_group(cl);
  const auto to = cl.get("to");
  const auto to_time = cl.get("to-time");
  if (to && to_time) throw UsageError("--to and --to-time: give one");
  if (to_time) {
    const std::int64_t ns = parse_time(*to_time);
    auto client = connect(context);
    const auto offset =
        require(client.reset_offsets(name, group, mq::TimePoint{static_cast<std::uint64_t>(ns)}));
    // At the topic's end, no record is that new (yet): say so rather than name a record that does not exist.
    const auto report = client.describe(name);
    const bool at_end = offset && report && *offset >= report->latest;
    std::cout << "Reset group " << group << " of topic " << name << " to offset "
              << (offset ? std::to_string(*offset) : std::string("?"))
              << (at_end ? " (the topic's end: no record at or after " : " (the first record at or after ")
              << *to_time << ").\n";
    return 0;
  }
  if (!to) throw UsageError("missing --to (earliest, latest or an offset) or --to-time");
  const mq::ResetTarget target = check_target(*to);
  auto client = connect(context);
  require(client.reset_offsets(name, group, target));
  const auto* offset = std::get_if<mq::Offset>(&target);
  std::cout << "Reset group " << group << " of topic " << name << " to "
            << (offset != nullptr ? std::to_string(*offset) : *to) << ".\n";
  return 0;
}

int run_create_group(const Args& args, Context& context) {
  CommandLine cl(
      "create-group NAME --group G [--start earliest|latest] [--ordering none|key|exclusive] [retry options]",
      "Creates a consumer group of a topic, so it keeps the records it has not read (a block topic waits\n"
      "for it) before its consumers first run. It starts at the oldest record the topic holds (earliest,\n"
      "the default) or at the next one to be written (latest). The ordering says how its members share\n"
      "the records; it is the group's for good. The retry options set how a record its consumers nack\n"
      "is retried (set-retry changes them later).");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("group", po::value<std::string>()->value_name("G"), "the consumer group (required)")
    ("start", po::value<std::string>()->value_name("WHERE"), "earliest (default) or latest")
    ("ordering", po::value<std::string>()->value_name("HOW"),
     "how the members share the records:\n"
     "none (default): whichever member polls takes the next record\n"
     "key: records with the same key go to one member at a time, in offset order\n"
     "exclusive: one member takes, in offset order; the others stand by to take over");
  // clang-format on
  add_retry_options(cl);
  if (!cl.parse(args, context)) return 0;
  const auto [name, group] = topic_and_group(cl);
  const std::string start = cl.get("start").value_or("earliest");
  if (start != "earliest" && start != "latest") throw UsageError("--start: '" + start + "' is not earliest or latest");
  const std::string ordering_text = cl.get("ordering").value_or("none");
  const auto ordering = mq::parse_ordering(ordering_text);
  if (!ordering) throw UsageError("--ordering: '" + ordering_text + "' is not none, key or exclusive");
  const mq::RetryPolicy retry = checked(retry_options(cl), {});
  auto client = connect(context);
  require(client.create_group(name, group, start == "earliest" ? mq::Start::earliest : mq::Start::latest, retry,
                              *ordering));
  std::cout << "Created group " << group << " of topic " << name << ", starting at " << start << ", ordering "
            << mq::ordering_name(*ordering) << "; retries: " << describe_retry(retry) << ".\n";
  return 0;
}

int run_set_retry(const Args& args, Context& context) {
  CommandLine cl("set-retry NAME --group G [retry options]",
                 "Changes how a consumer group retries the records its consumers nack: how many deliveries a\n"
                 "record gets before it is dead-lettered to NAME.dlq, and the delays between them. Options not\n"
                 "given keep their value; without any, prints the policy. Records waiting already keep their delay.");
  cl.positional("NAME");
  cl.options()("group", po::value<std::string>()->value_name("G"), "the consumer group (required)");
  add_retry_options(cl);
  if (!cl.parse(args, context)) return 0;
  const auto [name, group] = topic_and_group(cl);
  const mq::RetryFields given = retry_options(cl);
  auto client = connect(context);
  const auto groups = require(client.groups(name));
  const auto found = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.name == group; });
  if (found == groups.end()) throw Failure("no such group: topic=" + name + " group=" + group);
  const mq::RetryPolicy retry = checked(given, found->retry.over({}));
  const bool change = cl.has("max-attempts") || cl.has("backoff") || cl.has("factor") || cl.has("max-backoff") ||
                      cl.has("jitter");
  if (change) require(client.set_retry_policy(name, group, retry));
  std::cout << "Group " << group << " of topic " << name << (change ? " now retries: " : " retries: ")
            << describe_retry(retry) << ".\n";
  return 0;
}

int run_delete_group(const Args& args, Context& context) {
  CommandLine cl("delete-group NAME --group G",
                 "Deletes a consumer group of a topic at once, so it no longer holds records back. A group with live\n"
                 "members cannot be deleted: stop its consumers first.");
  cl.positional("NAME");
  cl.options()("group", po::value<std::string>()->value_name("G"), "the consumer group (required)");
  if (!cl.parse(args, context)) return 0;
  const auto [name, group] = topic_and_group(cl);
  auto client = connect(context);
  require(client.delete_group(name, group));
  std::cout << "Deleted group " << group << " of topic " << name << ".\n";
  return 0;
}

}  // namespace mqctl
