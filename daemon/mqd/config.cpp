// Option and config-file parsing for mqd (see config.hpp).
#include "config.hpp"

#include <grp.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "log.hpp"
#include "metrics.hpp"  // parse_listen_address
#include "option_error.hpp"
#include "units.hpp"

namespace po = boost::program_options;

namespace mqd {

namespace {

constexpr const char* kVersion = "mqd (libmq) 0.1.0";

po::options_description describe_options() {
  po::options_description o("Options (also keys of the config file, without the dashes)");
  o.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", po::value<std::string>(), "config file (default /etc/mq/mqd.conf; a missing default file is fine)")
    ("socket", po::value<std::string>(), "control socket path (default /run/mq/mqd.sock)")
    ("namespace", po::value<std::string>(), "shared-memory name prefix, so several daemons never collide (default none)")
    ("data-dir", po::value<std::string>(), "folder of file-backed topics (default /var/lib/mq)")
    ("default-capacity", po::value<std::string>(), "ring size of new topics, a power of two >= 64KiB (default 1MiB)")
    ("default-max-message", po::value<std::string>(), "largest record of new topics (default capacity/4)")
    ("default-policy", po::value<std::string>(), "block | overwrite (default block)")
    ("default-storage", po::value<std::string>(), "shm | file (default shm)")
    ("default-mode", po::value<std::string>(), "permission bits of new topics, octal, never world-writable (default 0660)")
    ("default-block-timeout", po::value<std::string>(), "ms a publish waits on a full block topic (default 10000)")
    ("access-group", po::value<std::string>(), "Unix group of new topics (default mq if it exists, else mqd's group)")
    ("auto-create", po::value<std::string>(), "create a topic on first open: true | false (default true)")
    ("group-expiry", po::value<std::string>(), "seconds a consumer group may have no member before it is removed (default 604800)")
    ("flush-interval", po::value<std::string>(), "ms between msyncs of file-backed topics (default 1000)")
    ("orphan-grace", po::value<std::string>(), "seconds readers may wait on a position no live producer claims before mqd repairs it with skip records (default 5)")
    ("max-clients", po::value<std::string>(), "control connections served at once; one more gets an error reply (default 1024)")
    ("frame-timeout", po::value<std::string>(), "ms a begun request frame may take to arrive whole before its connection is closed (default 10000)")
    ("log-level", po::value<std::string>(), "error | warn | info | debug (default info)")
    ("metrics-listen", po::value<std::string>(), "ADDR:PORT for Prometheus metrics over HTTP (default off)");
  return o;
}

struct Failure {
  std::string message;
};

std::uint64_t need_size(const std::string& option, const std::string& text) {
  auto v = parse_size(text);
  if (!v) throw Failure{"option --" + option + ": '" + text + "' is not a size (examples: 65536, 64KiB, 1MiB)"};
  return *v;
}

std::uint64_t need_number(const std::string& option, const std::string& text) {
  std::uint64_t v = 0;
  std::size_t used = 0;
  try {
    if (!text.empty() && text[0] != '-') v = std::stoull(text, &used, 10);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw Failure{"option --" + option + ": '" + text + "' is not a whole number"};
  return v;
}

std::uint32_t need_mode(const std::string& option, const std::string& text) {
  std::size_t used = 0;
  unsigned long v = 0;
  try {
    v = std::stoul(text, &used, 8);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v > 0777)
    throw Failure{"option --" + option + ": '" + text + "' is not an octal mode like 0660"};
  if ((v & 02) != 0) throw Failure{"option --" + option + ": mode " + text + " is world-writable; refused"};
  return static_cast<std::uint32_t>(v);
}

// A block timeout in ms, at most mq::kMaxBlockTimeout (its nanoseconds must fit the futex wait's int64), checked
// here so that a bad config stops mqd at start instead of failing every create of a topic. `what` names the option
// or the config key, and the file, for the message.
std::chrono::milliseconds need_block_timeout(const std::string& what, const std::string& option,
                                             const std::string& text) {
  const std::uint64_t ms = need_number(option, text);
  if (ms > static_cast<std::uint64_t>(mq::kMaxBlockTimeout.count()))
    throw Failure{what + ": " + text + " ms is past the longest block timeout, " +
                  std::to_string(mq::kMaxBlockTimeout.count()) + " ms (about 292 years)"};
  return std::chrono::milliseconds(ms);
}

mq::Policy need_policy(const std::string& option, const std::string& text) {
  if (text == "block") return mq::Policy::block;
  if (text == "overwrite") return mq::Policy::overwrite;
  throw Failure{"option --" + option + ": '" + text + "' is not block or overwrite"};
}

mq::Storage need_storage(const std::string& option, const std::string& text) {
  if (text == "shm") return mq::Storage::shm;
  if (text == "file") return mq::Storage::file;
  throw Failure{"option --" + option + ": '" + text + "' is not shm or file"};
}

bool need_bool(const std::string& option, const std::string& text) {
  if (text == "true" || text == "yes" || text == "1" || text == "on") return true;
  if (text == "false" || text == "no" || text == "0" || text == "off") return false;
  throw Failure{"option --" + option + ": '" + text + "' is not true or false"};
}

void apply_topic_key(TopicConfig& t, const std::string& key, const std::string& value, const std::string& file) {
  const std::string option = "topic." + t.name + "." + key;
  if (key == "capacity") t.settings.capacity = need_size(option, value);
  else if (key == "max-message") t.settings.max_message = need_size(option, value);
  else if (key == "policy") t.settings.policy = need_policy(option, value);
  else if (key == "storage") t.settings.storage = need_storage(option, value);
  else if (key == "mode") t.settings.mode = need_mode(option, value);
  else if (key == "access-group") t.settings.access_group = value;
  else if (key == "block-timeout")
    t.settings.block_timeout =
        need_block_timeout("config file " + file + ": block-timeout in section [topic." + t.name + "]", option, value);
  else if (key == "consumer-group") {
    // "G" or "G ordering=none|key|exclusive"
    std::string name = value;
    std::optional<mq::Ordering> ordering;
    if (const auto at = value.rfind(" ordering="); at != std::string::npos) {
      const std::string given = value.substr(at + 10);
      ordering = mq::parse_ordering(given);
      if (!ordering)
        throw Failure{"option " + option + ": ordering '" + given + "' is not none, key or exclusive"};
      name = value.substr(0, value.find_last_not_of(' ', at) + 1);
    }
    if (auto valid = mq::validate_group_name(name); !valid)
      throw Failure{"option " + option + ": " + std::string(valid.error().message())};
    t.groups.push_back(name);
    if (ordering && *ordering != mq::Ordering::none) t.orderings[name] = *ordering;
  } else {
    throw Failure{"config file " + file + ": unknown key '" + key + "' in section [topic." + t.name +
                  "] (known: capacity, max-message, policy, storage, mode, access-group, block-timeout, "
                  "consumer-group)"};
  }
}

// A topic's sizes, checked when the config is read rather than at the first create: the capacity a power of two
// from 64 KiB to 1 TiB, max-message at most a quarter of it (as mq::Topic::create requires).
void check_sizes(const std::string& where, const TopicSettings& s) {
  if ((s.capacity & (s.capacity - 1)) != 0 || s.capacity < mq::kMinCapacity || s.capacity > mq::kMaxCapacity)
    throw Failure{where + "capacity: " + format_size(s.capacity) + " is not a power of two from 64KiB to 1TiB"};
  if (s.max_message > s.capacity / 4)
    throw Failure{where + "max-message: " + format_size(s.max_message) + " is more than a quarter of the capacity (" +
                  format_size(s.capacity) + ")"};
}

std::string default_access_group() { return ::getgrnam("mq") != nullptr ? "mq" : std::string(); }

// The [topic.NAME] section headers of a config file, in order (a section without keys makes a topic with the
// defaults too); a section of any other name is an error naming it.
std::vector<std::string> topic_sections(const std::string& file, const std::string& text) {
  std::vector<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    const auto last = line.find_last_not_of(" \t\r");
    if (first == std::string::npos || line[first] != '[' || line[last] != ']') continue;
    const std::string section = line.substr(first + 1, last - first - 1);
    if (section.rfind("topic.", 0) != 0 || section.size() == 6)
      throw Failure{"config file " + file + ": unknown section [" + section + "] (known: [topic.NAME])"};
    names.push_back(section.substr(6));
  }
  return names;
}

// `on_command_line`: the options given there (the rest of vm came from `file`).
Config build(const po::variables_map& vm, const std::vector<po::option>& file_extra,
             const std::vector<std::string>& sections, const std::string& file,
             const std::set<std::string>& on_command_line) {
  // Where an option's value came from, for an error about it: nothing for the command line, else the file.
  const auto from_file = [&](const std::string& option) {
    return on_command_line.count(option) != 0 ? std::string() : " in config file " + file;
  };
  Config c;
  c.defaults.access_group = default_access_group();
  auto str = [&](const char* k) -> std::optional<std::string> {
    if (vm.count(k) == 0) return std::nullopt;
    return vm[k].as<std::string>();
  };
  if (auto v = str("config")) {
    c.config_file = *v;
    c.config_file_given = true;
  }
  if (auto v = str("socket")) c.socket = *v;
  if (auto v = str("namespace")) {
    if (!v->empty() && !mq::validate_topic_name(*v)) throw Failure{"option --namespace: '" + *v + "' must be [A-Za-z0-9._-]{1,64}"};
    c.ns = *v;
  }
  if (auto v = str("data-dir")) c.data_dir = *v;
  if (auto v = str("default-capacity")) c.defaults.capacity = need_size("default-capacity", *v);
  if (auto v = str("default-max-message")) c.defaults.max_message = need_size("default-max-message", *v);
  if (auto v = str("default-policy")) c.defaults.policy = need_policy("default-policy", *v);
  if (auto v = str("default-storage")) c.defaults.storage = need_storage("default-storage", *v);
  if (auto v = str("default-mode")) c.defaults.mode = need_mode("default-mode", *v);
  if (auto v = str("default-block-timeout")) {
    const std::string option = "default-block-timeout";
    c.defaults.block_timeout = need_block_timeout("option --" + option + from_file(option), option, *v);
  }
  if (auto v = str("access-group")) {
    if (!v->empty() && ::getgrnam(v->c_str()) == nullptr) throw Failure{"option --access-group: no such group '" + *v + "'"};
    c.defaults.access_group = *v;
  }
  if (auto v = str("auto-create")) c.auto_create = need_bool("auto-create", *v);
  if (auto v = str("group-expiry")) c.group_expiry = std::chrono::seconds(need_number("group-expiry", *v));
  if (auto v = str("flush-interval")) {
    c.flush_interval = std::chrono::milliseconds(need_number("flush-interval", *v));
    if (c.flush_interval.count() == 0) throw Failure{"option --flush-interval: must be at least 1 ms"};
  }
  if (auto v = str("orphan-grace")) c.orphan_grace = std::chrono::seconds(need_number("orphan-grace", *v));
  if (auto v = str("max-clients")) {
    c.max_clients = need_number("max-clients", *v);
    if (c.max_clients == 0 || c.max_clients > 1'000'000) throw Failure{"option --max-clients: must be 1..1000000, got " + *v};
  }
  if (auto v = str("frame-timeout")) {
    c.frame_timeout = std::chrono::milliseconds(need_number("frame-timeout", *v));
    if (c.frame_timeout.count() == 0) throw Failure{"option --frame-timeout: must be at least 1 ms"};
  }
  if (auto v = str("log-level")) {
    if (*v == "error") c.log_level = LogLevel::error;
    else if (*v == "warn") c.log_level = LogLevel::warn;
    else if (*v == "info") c.log_level = LogLevel::info;
    else if (*v == "debug") c.log_level = LogLevel::debug;
    else throw Failure{"option --log-level: '" + *v + "' is not error, warn, info or debug"};
  }
  if (auto v = str("metrics-listen")) {
    if (auto parsed = parse_listen_address(*v); !parsed)
      throw Failure{"option --metrics-listen: " + std::string(parsed.error().message())};
    c.metrics_listen = *v;
  }
  // [topic.NAME] sections: keys arrive as "topic.NAME.key" (NAME may itself contain dots).
  std::map<std::string, TopicConfig> topics;
  std::vector<std::string> order;
  const auto section = [&](const std::string& name) -> TopicConfig& {
    if (auto valid = mq::validate_topic_name(name); !valid)
      throw Failure{"config section [topic." + name + "]: " + std::string(valid.error().message())};
    auto [it, fresh] = topics.try_emplace(name, TopicConfig{name, c.defaults, {}, {}});
    if (fresh) order.push_back(name);
    return it->second;
  };
  for (const auto& name : sections) section(name);
  for (const auto& opt : file_extra) {
    const std::string& key = opt.string_key;
    const auto last = key.rfind('.');
    if (key.rfind("topic.", 0) != 0 || last == std::string::npos || last <= 6)
      throw Failure{"config file " + file + ": unknown option '" + key + "'"};
    TopicConfig& topic = section(key.substr(6, last - 6));
    for (const auto& value : opt.value) apply_topic_key(topic, key.substr(last + 1), value, file);
  }
  for (const auto& name : order) c.topics.push_back(topics[name]);
  check_sizes("option --default-", c.defaults);
  for (const auto& t : c.topics) check_sizes("config section [topic." + t.name + "]: ", t.settings);
  return c;
}

// Parses the command line, then the config file; command-line values win.
Config parse_all(int argc, const char* const* argv, const po::options_description& desc, bool& help, bool& version) {
  po::variables_map vm;
  try {
    store_command_line(argc, argv, desc, "mqd", vm);
  } catch (po::error& e) {
    throw Failure{option_error_message(e)};
  }
  std::set<std::string> on_command_line;
  for (const auto& entry : vm) on_command_line.insert(entry.first);
  help = vm.count("help") != 0;
  version = vm.count("version") != 0;
  if (help || version) return {};
  const bool given = vm.count("config") != 0;
  const std::string file = given ? vm["config"].as<std::string>() : "/etc/mq/mqd.conf";
  std::vector<po::option> extra;
  std::vector<std::string> sections;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw Failure{"option --config: '" + file + "' is a folder, not a file"};
  std::ifstream in(file);
  if (!in) {
    if (given) throw Failure{"option --config: cannot read '" + file + "'"};
  } else {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    sections = topic_sections(file, text);
    try {
      extra = store_config_text(text, desc, vm);
    } catch (po::error& e) {
      throw Failure{"config file " + file + ": " + option_error_message(e)};
    }
  }
  po::notify(vm);
  return build(vm, extra, sections, file, on_command_line);
}

}  // namespace

std::optional<Config> parse_config(int argc, const char* const* argv, int& exit_code) {
  const auto desc = describe_options();
  bool help = false, version = false;
  try {
    Config c = parse_all(argc, argv, desc, help, version);
    if (help) {
      std::cout << "usage: mqd [OPTIONS]\n"
                   "The libmq daemon: creates, names, permissions and recovers shared-memory topics, and answers\n"
                   "mqctl and clients on a Unix socket. It is never on the data path.\n\n"
                << desc
                << "\nConfig file sections [topic.NAME] create topics at start: capacity, max-message, policy,\n"
                   "storage, mode, access-group, block-timeout, consumer-group (repeatable).\n"
                   "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP re-reads the config file. See mqd(8).\n";
      exit_code = 0;
      return std::nullopt;
    }
    if (version) {
      std::cout << kVersion << "\n";
      exit_code = 0;
      return std::nullopt;
    }
    return c;
  } catch (const Failure& f) {
    std::cerr << (stderr_is_journal() ? "<3>" : "") << "mqd: " << f.message << "\n";  // an error in the journal
    exit_code = 2;
    return std::nullopt;
  }
}

mq::Result<Config> reload_config(const Config& current, int argc, const char* const* argv) {
  (void)current;
  const auto desc = describe_options();
  bool help = false, version = false;
  try {
    return parse_all(argc, argv, desc, help, version);
  } catch (const Failure& f) {
    return mq::Error(mq::Errc::invalid_argument, f.message);
  }
}

}  // namespace mqd
