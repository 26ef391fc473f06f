// Size parsing and formatting for mqctl (see size.hpp).
#include "size.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace mqctl {

namespace {

// The power of 1024 a unit stands for, or -1 when it is not a unit.
int unit_shift(std::string_view unit) {
  std::string u(unit);
  for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (u.empty() || u == "B") return 0;
  if (u == "K" || u == "KB" || u == "KIB") return 10;
  if (u == "M" || u == "MB" || u == "MIB") return 20;
  if (u == "G" || u == "GB" || u == "GIB") return 30;
  if (u == "T" || u == "TB" || u == "TIB") return 40;
  return -1;
}

constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  const char* begin = text.data();
  const char* end = begin + text.size();
  // from_chars takes no sign, no blanks and no "0x": exactly the digits we accept.
  const auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || stop == begin) return std::nullopt;
  const int shift = unit_shift(std::string_view(stop, static_cast<std::size_t>(end - stop)));
  if (shift < 0) return std::nullopt;
  if (shift > 0 && value > (~std::uint64_t{0} >> shift)) return std::nullopt;
  return value << shift;
}

std::string format_size(std::uint64_t bytes) {
  std::size_t unit = 0;
  while (unit + 1 < kUnits.size() && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + kUnits[unit];
}

std::string format_size_approx(double bytes) {
  std::size_t unit = 0;
  while (unit + 1 < kUnits.size() && bytes >= 1024) {
    bytes /= 1024;
    ++unit;
  }
  std::array<char, 32> text{};
  if (unit == 0) {
    std::snprintf(text.data(), text.size(), "%.0f%s", bytes, kUnits[unit]);
  } else {
    std::snprintf(text.data(), text.size(), "%.1f%s", bytes, kUnits[unit]);
  }
  return text.data();
}

}  // namespace mqctl
