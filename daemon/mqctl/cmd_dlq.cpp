// `mqctl dlq list|show|replay NAME`: the dead letters of topic NAME, which a nack of a record's last attempt
// published to NAME.dlq (Consumer::nack). list and show read the letters not replayed yet without consuming them;
// replay publishes them to NAME again (without their mq.dlq.* headers) and acks them in NAME.dlq's group "replay".
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "table.hpp"

namespace mqctl {

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTempGroupPrefix = "mqctl.dlq.";  // + pid: the group list and show read through

std::string as_text(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// A dead letter: where it came from (its mq.dlq.* headers) and what it holds.
struct Letter {
  mq::Offset offset = 0;  // in NAME.dlq
  std::string source_offset, group, attempts, first_failure, error;
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;  // its own, mq.dlq.* ones left out
  std::string payload;
};

Letter letter_of(const mq::Message& m) {
  Letter l;
  l.offset = m.offset();
  l.payload = as_text(m.payload());
  if (m.key()) l.key = as_text(*m.key());
  for (const auto& h : m.headers()) {
    const std::string value = as_text(h.value);
    if (h.name == mq::dlq_header::offset) l.source_offset = value;
    else if (h.name == mq::dlq_header::group) l.group = value;
    else if (h.name == mq::dlq_header::attempts) l.attempts = value;
    else if (h.name == mq::dlq_header::first_failure) l.first_failure = value;
    else if (h.name == mq::dlq_header::error) l.error = value;
    else if (h.name.substr(0, 7) != "mq.dlq.") l.headers.emplace_back(std::string(h.name), value);
  }
  return l;
}

// CLOCK_REALTIME ns as ISO 8601 UTC with milliseconds; the text as given when it is not a number.
std::string utc(const std::string& ns_text) {
  char* end = nullptr;
  const long long ns = std::strtoll(ns_text.c_str(), &end, 10);
  if (ns_text.empty() || *end != '\0' || ns <= 0) return ns_text;
  const time_t seconds = static_cast<time_t>(ns / 1'000'000'000);
  tm parts{};
  gmtime_r(&seconds, &parts);
  char text[48];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts);
  std::snprintf(text + n, sizeof text - n, ".%03lldZ", (ns / 1'000'000) % 1000);
  return text;
}

// Control characters shown as \xNN, so a payload cannot move the terminal's cursor.
std::string printable(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

// The letters NAME.dlq holds from its replay group's committed offset on (all it holds when that group is gone), of
// `group` if given, at most `max`: read through a temporary group that is deleted after (one a killed mqctl left
// behind is deleted by the next run).
std::vector<Letter> read_letters(mq::Topic& dlq, const std::optional<std::string>& group, std::uint64_t max) {
  const auto info = dlq.info();
  std::optional<mq::Offset> from;
  for (const auto& g : info.groups) {
    if (g.name == mq::kDeadLetterGroup) from = g.committed;
    const std::string_view name = g.name;
    if (name.substr(0, kTempGroupPrefix.size()) == kTempGroupPrefix && g.members == 0) {
      const long pid = std::strtol(g.name.c_str() + kTempGroupPrefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) (void)dlq.delete_group(g.name);
    }
  }
  const std::string temp = std::string(kTempGroupPrefix) + std::to_string(::getpid());
  require(dlq.create_group(temp, mq::Start::earliest));
  struct Drop {  // the temporary group goes whatever happens (its consumer is gone first)
    mq::Topic& dlq;
    const std::string& name;
    ~Drop() { (void)dlq.delete_group(name); }
  } drop{dlq, temp};
  std::vector<Letter> out;
  {
    if (from) require(dlq.reset_group(temp, std::max(*from, info.earliest)));
    mq::ConsumerOptions options;
    options.group = temp;
    options.auto_ack = true;
    mq::Consumer reader = require(mq::Consumer::make(dlq, options));
    while (out.size() < max) {
      auto m = reader.poll(0ns);
      if (!m) {
        if (m.error().code() == mq::Errc::timed_out) break;
        throw Failure(std::string(m.error().message()));
      }
      Letter l = letter_of(*m);
      if (!group || l.group == *group) out.push_back(std::move(l));
    }
  }
  return out;
}

// Publishes NAME.dlq's letters (of `group`, if given; up to `max`) to `source` again and acks them. Letters of other
// groups go back to the end of NAME.dlq. A crash between a publish and its ack publishes that letter twice.
std::pair<std::uint64_t, std::uint64_t> replay(mq::Topic& dlq, mq::Topic& source,
                                               const std::optional<std::string>& group, std::uint64_t max) {
  mq::ConsumerOptions options;
  options.group = std::string(mq::kDeadLetterGroup);
  options.start = mq::Start::earliest;
  options.auto_ack = false;
  mq::Consumer reader = require(mq::Consumer::make(dlq, options));
  mq::Producer to_source = require(mq::Producer::make(source));
  std::optional<mq::Producer> to_dlq;
  std::uint64_t replayed = 0, kept = 0;
  const mq::Offset end = dlq.info().latest;  // letters kept (moved to the end) are not read again
  while (replayed < max) {
    auto m = reader.poll(0ns);
    if (!m) {
      if (m.error().code() == mq::Errc::timed_out) break;
      throw Failure(std::string(m.error().message()));
    }
    if (m->offset() >= end) break;  // (left unacked: it goes back to the group)
    const Letter l = letter_of(*m);
    if (group && l.group != *group) {
      if (!to_dlq) to_dlq.emplace(require(mq::Producer::make(dlq)));
      std::vector<mq::Header> all(m->headers().begin(), m->headers().end());
      require(to_dlq->publish(mq::Record{m->payload(), m->key(), all, m->timestamp_ns()}));
      ++kept;
    } else {
      std::vector<mq::Header> own;
      for (const auto& h : m->headers())
        if (h.name.substr(0, 7) != "mq.dlq.") own.push_back(h);
      require(to_source.publish(mq::Record{m->payload(), m->key(), own, m->timestamp_ns()}));
      ++replayed;
    }
    require(reader.ack(std::move(*m)));
  }
  return {replayed, kept};
}

}  // namespace

int run_dlq(const Args& args, Context& context) {
  CommandLine cl("dlq list|show|replay NAME [--group G] [--max N]",
                 "The dead letters of topic NAME: records a consumer group gave up on after its last retry, which\n"
                 "its consumers' nack published to NAME.dlq with where they came from. list prints one line per\n"
                 "letter not replayed yet; show prints each in full (key, headers, value); replay publishes them to\n"
                 "NAME again (their mq.dlq.* headers dropped, key, other headers and timestamp kept) and marks them\n"
                 "replayed. --group G: only the letters of group G (replay moves the others to the end of NAME.dlq).");
  cl.positional("ACTION");
  cl.positional("NAME");
  // clang-format off
  cl.options()
    ("group", po::value<std::string>()->value_name("G"), "only the dead letters of consumer group G")
    ("max", po::value<std::string>()->value_name("N"), "at most N letters");
  // clang-format on
  cl.epilog("Example: fix what made the records fail, then\n  mqctl dlq replay invitations --group mailer\n");
  if (!cl.parse(args, context)) return 0;
  const std::string action = cl.require("ACTION");
  if (action != "list" && action != "show" && action != "replay")
    throw UsageError("dlq: '" + action + "' is not list, show or replay");
  const std::string name = cl.require("NAME");
  check_topic_name(name);
  const auto group = cl.get("group");
  if (group) check_group_name("--group", *group);
  const std::uint64_t max = cl.has("max") ? parse_count_arg("--max", *cl.get("max")) : ~std::uint64_t{0};
  const std::string dlq_name = name + std::string(mq::kDeadLetterSuffix);
  if (dlq_name.size() > 249) throw UsageError("NAME: a dead-letter topic name (NAME.dlq) would be over 249 characters");

  auto client = connect(context);
  // describe, not open: neither topic is auto-created by asking.
  require(client.describe(name));
  if (auto letters = client.describe(dlq_name); !letters && letters.error().code() == mq::Errc::not_found) {
    std::cout << "No dead letters: topic " << dlq_name << " does not exist (no record of " << name
              << " was dead-lettered).\n";
    return 0;
  }
  mq::Topic source = require(client.open(name));
  auto dlq = client.open(dlq_name);
  if (!dlq) throw Failure(std::string(dlq.error().message()));

  if (action == "replay") {
    const auto [replayed, kept] = replay(*dlq, source, group, max);
    std::cout << "Replayed " << replayed << " dead letter(s) to " << name;
    if (kept != 0) std::cout << "; " << kept << " of other groups kept (moved to the end of " << dlq_name << ")";
    std::cout << ".\n";
    return 0;
  }
  const auto letters = read_letters(*dlq, group, max);
  if (letters.empty()) {
    std::cout << "No dead letters waiting in " << dlq_name << (group ? " for group " + *group : "") << ".\n";
    return 0;
  }
  if (action == "list") {
    Table table({{"OFFSET", Table::Align::right},
                 {"SOURCE-OFFSET", Table::Align::right},
                 {"GROUP"},
                 {"ATTEMPTS", Table::Align::right},
                 {"FIRST-FAILURE"},
                 {"ERROR"}});
    for (const auto& l : letters)
      table.add_row({std::to_string(l.offset), l.source_offset, printable(l.group), l.attempts, utc(l.first_failure),
                     printable(l.error.substr(0, 80))});
    std::cout << table.render();
    return 0;
  }
  for (const auto& l : letters) {
    std::cout << "offset " << l.offset << ": " << name << " offset " << l.source_offset << ", group "
              << printable(l.group) << ", " << l.attempts << " attempt(s), first failure " << utc(l.first_failure)
              << "\n  error: " << printable(l.error) << "\n";
    if (l.key) std::cout << "  key: " << printable(*l.key) << "\n";
    for (const auto& [k, v] : l.headers) std::cout << "  header " << printable(k) << ": " << printable(v) << "\n";
    std::cout << "  value: " << printable(l.payload) << "\n";
  }
  return 0;
}

}  // namespace mqctl
