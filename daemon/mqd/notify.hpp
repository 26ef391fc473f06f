// systemd notification (libsystemd's sd_notify): READY=1, STATUS=, and WATCHDOG=1 at half of WATCHDOG_USEC.
// Without NOTIFY_SOCKET (not under systemd) every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace mqd {

void notify_ready(const std::string& status);
void notify_status(const std::string& status);
void notify_stopping();
void notify_watchdog();
// Half the watchdog period systemd asked for, or nullopt when the watchdog is off.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace mqd
