// Error values of libmq: an Errc code plus a message with context, and Result<T>, the value-or-error that every
// fallible library call returns. Nothing on the publish/consume hot path throws; `Result::value()` is the one place
// that turns an error into an exception (mq::Error), for callers who prefer that.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mq {

enum class Errc {
  full,               // block topic: no room before the timeout; nothing was written
  timed_out,          // poll: nothing arrived before the timeout
  too_large,          // the record is larger than the topic's max message size
  lost,               // overwrite topic: records were overwritten before this reader got them (see Error::lost())
  revoked,            // a claim was recovered (its producer was declared dead) before it was committed
  not_found,          // no such topic or group
  exists,             // a topic or group of that name exists already
  invalid_name,       // a topic or group name breaks the naming rules
  invalid_argument,   // an option or argument is out of range
  bad_segment,        // the shared segment is corrupted or not a libmq topic
  version_mismatch,   // the segment has another layout version, or mqd another control protocol version
  permission_denied,  // the caller lacks rights on the segment or the daemon refused
  no_daemon,          // mqd is not reachable
  io,                 // an operating-system call failed (errno text in the message)
  limit,              // a fixed table is full (producers, groups, members, unacked records)
  busy,               // the object is in use (a group with live members cannot be deleted)
  wrong_process,      // the handle was made in another process (a fork parent); reopen it in this one
};

// The one table of error codes: each code's identifier ("timed_out": Node's `err.mqCode`, mqctl's --json) and its
// text ("timed out": the start of messages, and the status word of mqd's replies, so stable across versions).
struct ErrcInfo {
  Errc code;
  std::string_view name;
  std::string_view text;
};
std::span<const ErrcInfo> errc_table() noexcept;
std::string_view to_string(Errc) noexcept;  // the text
std::string_view errc_name(Errc) noexcept;  // the identifier
// The code whose identifier or text this is.
std::optional<Errc> errc_from_string(std::string_view name_or_text) noexcept;

// An error code with a message that names the context ("topic=orders max=1024 size=2048"). A std::exception (not a
// std::runtime_error, whose every copy takes two locked reference-count updates): an Error made from a code alone
// carries the code's text, which is static, so copying or destroying it (an empty poll returns one) takes no locked
// instruction and no allocation; a message of its own is shared between copies.
class Error : public std::exception {
 public:
  Error(Errc code, std::string_view message, std::uint64_t lost = 0)
      : code_(code), lost_(lost), text_(std::make_shared<const std::string>(message)) {}
  explicit Error(Errc code) noexcept : code_(code), fixed_(to_string(code).data()) {}

  const char* what() const noexcept override { return text_ ? text_->c_str() : fixed_; }
  Errc code() const noexcept { return code_; }
  std::string_view message() const noexcept { return what(); }
  // For Errc::lost: exactly how many records this reader lost. 0 otherwise.
  std::uint64_t lost() const noexcept { return lost_; }

 private:
  Errc code_;
  std::uint64_t lost_ = 0;
  const char* fixed_ = "";                   // the code's text (static), when the error has no message of its own
  std::shared_ptr<const std::string> text_;  // its own message
};

// A T or an Error. Test it with `if (r)`, read it with `*r` / `r->`, or `value()` which throws the Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT(google-explicit-constructor): implicit by design
  // (Not by value: `return *stored_error;` then builds the Error in place, with no temporary to destroy.)
  Result(const Error& error) : v_(error) {}       // NOLINT(google-explicit-constructor)
  Result(Error&& error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool has_value() const noexcept { return v_.index() == 0; }

  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }

  // REQUIRES: !has_value().
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  void check() const {
    if (v_.index() != 0) throw std::get<1>(v_);
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  explicit operator bool() const noexcept { return !error_; }
  bool has_value() const noexcept { return !error_; }
  void value() const {
    if (error_) throw *error_;
  }
  // REQUIRES: !has_value().
  const Error& error() const& { return *error_; }

 private:
  std::optional<Error> error_;  // empty on success: no allocation on the hot path
};

}  // namespace mq
