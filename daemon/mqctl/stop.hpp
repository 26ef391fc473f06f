// Stopping the long-running commands (consume, top) cleanly on Ctrl-C or SIGTERM: the handlers only set a flag,
// and the loops check it between short waits, so a consumer leaves its group in order (records not yet printed go
// back to the group) and top gives the terminal its cursor back.
#pragma once

#include <chrono>

namespace mqctl {

// Installs the SIGINT and SIGTERM handlers and ignores SIGPIPE (a closed stdout is then a write error the command
// handles). Call once, before the loop.
void install_stop_handlers();
bool stop_requested() noexcept;
// Sleeps for `duration`, returning early once a stop is requested.
void sleep_unless_stopped(std::chrono::milliseconds duration);

}  // namespace mqctl
