// The bridge's log lines (see log.hpp).
#include "log.hpp"

#include <unistd.h>

namespace bridge {

void log(LogLevel level, const std::string& line) {
  if (level > g_log_level) return;
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  static constexpr const char* kPriorities[] = {"<3>", "<4>", "<6>", "<7>"};
  static const bool journal = stderr_is_journal();
  const int i = static_cast<int>(level);
  std::string text = journal ? kPriorities[i] : "";
  text += "mq-kafka-bridge: ";
  text += kNames[i];
  text += ": ";
  text += line;
  text += '\n';
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace bridge
