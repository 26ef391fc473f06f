// Fuzz target: what mqd and mqctl parse from people: mqd's config file (every key, [topic.NAME] sections, sizes,
// modes, booleans) through mqd's own parse_config, and the byte sizes both tools take ("64KiB"). Input = a config
// file's text. Nothing may crash or throw out of the parser: a file is either taken, with values inside their
// documented ranges, or refused with one line (exit code 2) that names the problem. A size that parses must
// format and parse back to the same number.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config.hpp"
#include "fuzz_input.hpp"
#include "units.hpp"

using mqfuzz::check;

namespace mqfuzz {

std::vector<std::vector<std::uint8_t>> seeds() {
  const std::vector<std::string> texts = {
      "socket = /run/mq/mqd.sock\ndata-dir = /var/lib/mq\ndefault-capacity = 1MiB\ndefault-policy = block\n"
      "default-storage = shm\ndefault-mode = 0660\naccess-group = mq\nauto-create = true\ngroup-expiry = 604800\n"
      "flush-interval = 1000\norphan-grace = 5\nmax-clients = 1024\nframe-timeout = 10000\nlog-level = info\n",
      "[topic.kafka-node]\ncapacity = 4MiB\nmax-message = 64KiB\npolicy = overwrite\nconsumer-group = email-service\n"
      "consumer-group = audit\nmode = 640\nblock-timeout = 250\n",
      "default-capacity = 3MiB\n",         // not a power of two
      "default-mode = 0666\n",             // world-writable
      "[topic.bad name]\ncapacity = 1MiB\n",
      "metrics-listen = 127.0.0.1:9464\nnamespace = test-1\n",
      "default-capacity = 18446744073709551616\n",
      "# only a comment\n\n",
      // Found by this target: Boost's message formatting looped forever on a token holding its own placeholder.
      "%invalid_line%",
      "x%canonical_option%y = %value%\n[topic.%original_token%]\n",
  };
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& t : texts) out.emplace_back(t.begin(), t.end());
  return out;
}

}  // namespace mqfuzz

namespace {

// The config file the parser reads (it takes a path, as mqd does): one per process, rewritten for each input.
const std::string& config_path() {
  static const std::string path = [] {
    auto p = std::filesystem::temp_directory_path() / ("mq-fuzz-config-" + std::to_string(::getpid()) + ".conf");
    return p.string();
  }();
  return path;
}

void check_size(const std::string& text) {
  const auto v = mqd::parse_size(text);
  if (!v) return;
  const auto back = mqd::parse_size(mqd::format_size(*v));
  check(back && *back == *v, "a size that parses formats and parses back to the same number");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::freopen("/dev/null", "w", stderr);  // refusals print one line each: not the fuzzer's output
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    std::ofstream out(config_path(), std::ios::binary | std::ios::trunc);
    out << text;
  }
  const std::string path = config_path();
  const char* argv[] = {"mqd", "--config", path.c_str(), "--socket", "/nonexistent/mqd.sock", nullptr};
  int exit_code = -1;
  const auto config = mqd::parse_config(5, argv, exit_code);
  if (config) {
    check(exit_code == 0 || exit_code == -1, "a config that parses sets no failure");
    const auto capacity = config->defaults.capacity;
    check(capacity >= 65536 && (capacity & (capacity - 1)) == 0, "a default capacity taken is a power of two >= 64KiB");
    check((config->defaults.mode & 02) == 0, "no world-writable mode is taken");
    check(config->max_clients >= 1 && config->frame_timeout.count() >= 1, "limits taken are at least 1");
    for (const auto& t : config->topics) check(!t.name.empty(), "every configured topic has a name");
  } else {
    check(exit_code == 2, "a refused config exits with status 2");
  }
  // The same bytes, line by line, as sizes (mqctl's --capacity, mqd's default-capacity).
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == '\n') {
      check_size(text.substr(start, i - start));
      start = i + 1;
    }
  return 0;
}
