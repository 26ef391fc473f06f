// `mqctl top`: a live view of the message and byte rates of the topics the caller may use and of their groups' lag
// and ack rate, refreshed in place. Rates here are measured by top itself from two snapshots an interval apart, so
// they are the rates of that interval. On a terminal each frame redraws the screen with ANSI escapes (home, clear
// to end of line and of screen; the cursor hidden meanwhile); when stdout is not a terminal, frames are printed one
// after another, separated by a blank line, with no escapes (like `top -b`).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "commands.hpp"
#include "report.hpp"
#include "stats_view.hpp"
#include "stop.hpp"

namespace mqctl {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kHome = "\x1b[H";
constexpr const char* kClearScreen = "\x1b[2J";
constexpr const char* kClearLine = "\x1b[K";
constexpr const char* kClearBelow = "\x1b[J";
constexpr const char* kHideCursor = "\x1b[?25l";
constexpr const char* kShowCursor = "\x1b[?25h";

std::string wall_clock() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[16];
  std::strftime(text, sizeof text, "%H:%M:%S", &local);
  return text;
}

// On a terminal: hides the cursor now and shows it again on every way out.
class Screen {
 public:
  explicit Screen(bool tty) : tty_(tty) {
    if (tty_) {
      std::fputs(kHideCursor, stdout);
      std::fputs(kClearScreen, stdout);
    }
  }
  ~Screen() {
    if (tty_) {
      std::fputs(kShowCursor, stdout);
      std::fflush(stdout);
    }
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  // Draws one frame: in place on a terminal, appended otherwise. False when stdout is gone.
  bool draw(const std::string& frame, bool first) {
    std::string out;
    if (tty_) {
      out = kHome;
      std::size_t start = 0;
      while (start < frame.size()) {  // clear the rest of each line: the previous frame may have been wider
        const auto end = frame.find('\n', start);
        out += frame.substr(start, end - start) + kClearLine + "\n";
        if (end == std::string::npos) break;
        start = end + 1;
      }
      out += kClearBelow;
    } else {
      out = (first ? "" : "\n") + frame;
    }
    return std::fwrite(out.data(), 1, out.size(), stdout) == out.size() && std::fflush(stdout) == 0;
  }

 private:
  bool tty_;
};

}  // namespace

int run_top(const Args& args, Context& context) {
  CommandLine cl("top [--interval SECONDS] [--iterations N]",
                 "A live view of the topics you may use (message and byte rates, producers) and their consumer\n"
                 "groups (lag, members, records acked per second), refreshed in place every interval until\n"
                 "Ctrl-C. Rates are measured over the interval; the first frame shows mqd's own. When stdout is\n"
                 "not a terminal, frames are printed one after another without escapes.");
  // clang-format off
  cl.options()
    ("interval", po::value<std::string>()->value_name("SECONDS")->default_value("1"),
     "seconds between refreshes (whole seconds, >= 1)")
    ("iterations", po::value<std::string>()->value_name("N"), "stop after N frames (for scripts)");
  // clang-format on
  if (!cl.parse(args, context)) return 0;
  const auto interval_s = parse_count_arg("--interval", *cl.get("interval"));
  if (interval_s < 1 || interval_s > 3600) throw UsageError("--interval: must be 1..3600 seconds");
  const std::chrono::milliseconds interval = std::chrono::seconds(interval_s);
  std::optional<std::uint64_t> iterations;
  if (auto v = cl.get("iterations")) {
    iterations = parse_count_arg("--iterations", *v);
    if (*iterations == 0) throw UsageError("--iterations: must be at least 1");
  }

  auto client = connect(context);
  install_stop_handlers();
  Screen screen(::isatty(STDOUT_FILENO) == 1);
  std::optional<mq::DaemonStats> previous;
  Clock::time_point previous_at;
  for (std::uint64_t frame = 0; !stop_requested() && (!iterations || frame < *iterations); ++frame) {
    if (frame > 0) sleep_unless_stopped(interval);
    if (stop_requested()) break;
    auto reply = client.stats();
    const auto now_at = Clock::now();
    std::string text = "mqctl top - " + wall_clock() + " - mqd at " + client.socket_path() + " - every " +
                       std::to_string(interval_s) + " s\n";
    if (!reply) {
      // The daemon may be restarting: the client reconnects by itself, so show the error and keep trying.
      if (!previous) throw Failure(std::string(reply.error().message()));
      text += "mqd: " + std::string(reply.error().message()) + "\n";
    } else {
      mq::DaemonStats now = std::move(*reply);
      const double seconds = previous ? std::chrono::duration<double>(now_at - previous_at).count() : 0.0;
      const RateTable rates = previous ? sampled_rates(*previous, now, seconds) : daemon_rates(now);
      text +=
          render_summary(now) + "\n\n" + render_topic_table(now, rates) + "\n" + render_group_table(now, rates, true);
      previous = std::move(now);
      previous_at = now_at;
    }
    if (!screen.draw(text, frame == 0)) return 0;  // stdout closed
  }
  return 0;
}

}  // namespace mqctl
