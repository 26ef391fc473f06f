// mqd's configuration: command line and config file (Boost.Program_options), including the topics to create at
// start ([topic.NAME] sections). Bad options are reported naming the option; the caller exits with code 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libmq/libmq.hpp"

namespace mqd {

enum class LogLevel { error, warn, info, debug };

// Settings of one topic; the daemon's defaults fill what a request or a config section leaves out.
struct TopicSettings {
  std::uint64_t capacity = std::uint64_t{1} << 20;
  std::uint64_t max_message = 0;  // 0 = the library's default (capacity / 4)
  mq::Policy policy = mq::Policy::block;
  mq::Storage storage = mq::Storage::shm;
  std::uint32_t mode = 0660;
  std::string access_group;  // empty = mqd's own group
  std::chrono::milliseconds block_timeout{10'000};
};

struct TopicConfig {
  std::string name;
  TopicSettings settings;
  std::vector<std::string> groups;
  std::map<std::string, mq::Ordering> orderings;  // groups given an ordering other than none
};

struct Config {
  std::string config_file = "/etc/mq/mqd.conf";
  bool config_file_given = false;
  std::string socket = std::string(mq::kDefaultSocket);
  std::string ns;
  std::string data_dir = "/var/lib/mq";
  TopicSettings defaults;
  bool auto_create = true;
  std::chrono::seconds group_expiry{7 * 24 * 3600};
  std::chrono::milliseconds flush_interval{1000};
  // How long a position readers wait on, that no live producer claims (TopicInfo::stuck), is shown in describe
  // before mqd repairs it with skip records. Dead producers' claims are recovered at once; this is the safety net.
  std::chrono::seconds orphan_grace{5};
  // Control connections mqd serves at once (each costs a file descriptor and up to one 64 KiB frame); a connection
  // beyond it gets an error reply naming the limit and is closed.
  std::size_t max_clients = 1024;
  // A request frame that has begun (its length read) must arrive whole within this, or the connection is closed.
  std::chrono::milliseconds frame_timeout{10'000};
  LogLevel log_level = LogLevel::info;
  std::string metrics_listen;  // "ADDR:PORT", empty = off
  std::vector<TopicConfig> topics;
};

// Parses argv and the config file. On --help/--version prints and sets exit_code 0; on a bad option prints one
// line naming it and sets exit_code 2. Returns nullopt in both cases.
std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code);
// Re-reads the config file named in `current` (SIGHUP); command-line values keep precedence.
mq::Result<Config> reload_config(const Config& current, int argc, const char* const* argv);

}  // namespace mqd
