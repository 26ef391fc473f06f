// Sizes with binary units ("64KiB", "1MiB", "65536"), shared by mqd (options, config file, requests) and mqctl
// (its options and output), so a size that works in one works in the other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mqd {

// Bytes, or nullopt for anything that is not a whole number with an optional unit B, KiB, MiB, GiB, TiB (also
// K, M, G, T, KB, MB, GB, TB, all binary), or that overflows.
std::optional<std::uint64_t> parse_size(std::string_view text);
// "1MiB", "64KiB", "1000B": the largest unit that divides it.
std::string format_size(std::uint64_t bytes);
// An approximate size with one decimal, for rates and totals: 1536 -> "1.5KiB", 12 -> "12B".
std::string format_size_approx(double bytes);

}  // namespace mqd
