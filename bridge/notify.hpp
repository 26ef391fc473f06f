// systemd notification for mq-kafka-bridge (libsystemd's sd_notify), as mqd does it (daemon/mqd/notify.hpp):
// READY=1, STATUS=, STOPPING=1, WATCHDOG=1. Without NOTIFY_SOCKET (not under systemd) every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace bridge {

void notify_ready(const std::string& status);
void notify_stopping();
void notify_watchdog();
// Half the watchdog period systemd asked for (WatchdogSec=), or nullopt when the watchdog is off.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace bridge
