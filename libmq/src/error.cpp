// The table of error codes (libmq/error.hpp): one row per Errc, read by to_string, errc_name, the control protocol's
// status words (control/frame.cpp) and the Node addon's `mqCode`. Its texts are string literals: Error(Errc) keeps
// a pointer to one as its message (NUL-terminated, never freed).
#include "libmq/error.hpp"

#include <array>

namespace mq {

namespace {

constexpr std::array kErrcTable = {
    ErrcInfo{Errc::full, "full", "topic full"},
    ErrcInfo{Errc::timed_out, "timed_out", "timed out"},
    ErrcInfo{Errc::too_large, "too_large", "record too large"},
    ErrcInfo{Errc::lost, "lost", "records lost"},
    ErrcInfo{Errc::revoked, "revoked", "claim revoked"},
    ErrcInfo{Errc::not_found, "not_found", "not found"},
    ErrcInfo{Errc::exists, "exists", "already exists"},
    ErrcInfo{Errc::invalid_name, "invalid_name", "invalid name"},
    ErrcInfo{Errc::invalid_argument, "invalid_argument", "invalid argument"},
    ErrcInfo{Errc::bad_segment, "bad_segment", "bad segment"},
    ErrcInfo{Errc::version_mismatch, "version_mismatch", "layout version mismatch"},
    ErrcInfo{Errc::permission_denied, "permission_denied", "permission denied"},
    ErrcInfo{Errc::no_daemon, "no_daemon", "daemon not reachable"},
    ErrcInfo{Errc::io, "io", "i/o error"},
    ErrcInfo{Errc::limit, "limit", "limit reached"},
    ErrcInfo{Errc::busy, "busy", "busy"},
    ErrcInfo{Errc::wrong_process, "wrong_process", "handle belongs to another process"},
};

// Row i is Errc i: the lookups below index the table, and a code added to the enum without a row fails here.
constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kErrcTable.size(); ++i)
    if (static_cast<std::size_t>(kErrcTable[i].code) != i) return false;
  return static_cast<std::size_t>(Errc::wrong_process) + 1 == kErrcTable.size();
}
static_assert(in_enum_order(), "kErrcTable: one row per Errc, in the enum's order (the last is wrong_process)");

const ErrcInfo* row(Errc code) noexcept {
  const auto i = static_cast<std::size_t>(code);
  return i < kErrcTable.size() ? &kErrcTable[i] : nullptr;
}

}  // namespace

std::span<const ErrcInfo> errc_table() noexcept { return kErrcTable; }

std::string_view to_string(Errc code) noexcept {
  const ErrcInfo* r = row(code);
  return r != nullptr ? r->text : "unknown error";
}

std::string_view errc_name(Errc code) noexcept {
  const ErrcInfo* r = row(code);
  return r != nullptr ? r->name : "unknown";
}

std::optional<Errc> errc_from_string(std::string_view name_or_text) noexcept {
  for (const ErrcInfo& r : kErrcTable)
    if (r.name == name_or_text || r.text == name_or_text) return r.code;
  return std::nullopt;
}

}  // namespace mq
