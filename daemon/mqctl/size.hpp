// Byte sizes on mqctl's command line: "65536", "64KiB", "1MiB", "4GiB". The units are the ones mqd accepts in its
// options and config file (B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB, any case, all binary), so a size that works
// in mqd.conf works here too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqctl {

// Bytes, or nullopt for anything but a whole number with an optional unit, or a value that overflows 64 bits.
std::optional<std::uint64_t> parse_size(std::string_view text);

// The size with the largest binary unit that divides it exactly: 1048576 -> "1MiB", 1000 -> "1000B".
std::string format_size(std::uint64_t bytes);

// An approximate human size with one decimal for rates and totals: 1536 -> "1.5KiB", 12 -> "12B".
std::string format_size_approx(double bytes);

}  // namespace mqctl
