// The typed requests and replies of the control protocol (see libmq/control.hpp): the one table of field names.
// Each message's fields are listed once, by a visit() below; the encoder, the decoder and the protocol table are
// three visitors of that one list.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <limits>
#include <type_traits>

#include "libmq/control.hpp"

namespace mq {

std::string_view to_string(StuckInfo::Cause cause) noexcept {
  switch (cause) {
    case StuckInfo::Cause::stalled_producer: return "stalled_producer";
    case StuckInfo::Cause::dead_producer: return "dead_producer";
    case StuckInfo::Cause::orphaned: return "orphaned";
  }
  return "orphaned";
}

namespace control {

namespace {

template <class M, class T>
concept Is = std::same_as<std::remove_const_t<M>, T>;

// How a number is written: decimal, or octal (permission bits, as chmod takes them).
enum class Base { dec, oct };

// ---- The table: every message's fields, in wire order. A nested entry's first field marks where it starts. ----

template <Is<Hello> M, class V>
void visit(M& m, V& v) {
  v.field("pid", m.pid);
  v.field("client_id", m.client_id);
  v.field("topic", m.topics);
}
template <Is<Welcome> M, class V>
void visit(M& m, V& v) {
  v.field("version", m.version);
  v.field("namespace", m.ns);
}
template <Is<Create> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
  v.field("capacity", m.options.capacity);
  v.field("max_message", m.options.max_message);
  v.field("policy", m.options.policy);
  v.field("block_timeout_ms", m.options.block_timeout);
  v.field("storage", m.options.storage);
  v.field("mode", m.options.mode, Base::oct);
  v.field("access_group", m.options.access_group);
  v.field("group", m.options.groups);
}
template <Is<Opened> M, class V>
void visit(M& m, V& v) {
  v.field("storage", m.storage);
  v.field("directory", m.directory);
  v.field("namespace", m.ns);
}
template <class M, class V>
  requires Is<M, Open> || Is<M, Delete> || Is<M, Describe> || Is<M, Groups> || Is<M, Repair> || Is<M, CreateDeadLetter>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
}
template <class M, class V>
  requires Is<M, List> || Is<M, Stats> || Is<M, Done>
void visit(M&, V&) {}
template <Is<TopicNames> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topics);
}
template <Is<GroupReport> M, class V>
void visit(M& m, V& v) {
  v.field("group", m.name);
  v.field("group_committed", m.committed);
  v.field("group_next", m.next);
  v.field("group_lag", m.lag);
  v.field("group_members", m.members);
  v.field("group_unacked", m.unacked);
  v.field("group_retrying", m.retrying);
  v.field("group_parked", m.parked);
  v.field("group_max_attempts", m.retry.max_attempts);
  v.field("group_backoff_ms", m.retry.backoff);
  v.field("group_factor", m.retry.factor);
  v.field("group_max_backoff_ms", m.retry.max_backoff);
  v.field("group_jitter", m.retry.jitter);
  v.field("group_ordering", m.ordering);
  v.field("group_active_pid", m.active_pid);
}
// A retry policy in a request (create-group, set-retry).
template <class R, class V>
void visit_retry(R& r, V& v) {
  v.field("max_attempts", r.max_attempts);
  v.field("backoff_ms", r.backoff);
  v.field("factor", r.factor);
  v.field("max_backoff_ms", r.max_backoff);
  v.field("jitter", r.jitter);
}
template <Is<StuckReport> M, class V>
void visit(M& m, V& v) {
  v.field("stuck", m.group);
  v.field("stuck_offset", m.offset);
  v.field("stuck_position", m.position);
  v.field("stuck_cause", m.cause);
  v.field("stuck_pid", m.pid);
  v.field("stuck_for_s", m.for_s);
}
template <Is<TopicReport> M, class V>
void visit(M& m, V& v) {
  v.field("name", m.name);
  v.field("capacity", m.capacity);
  v.field("max_message", m.max_message);
  v.field("policy", m.policy);
  v.field("storage", m.storage);
  v.field("mode", m.mode, Base::oct);
  v.field("access_group", m.access_group);
  v.field("block_timeout_ms", m.block_timeout);
  v.field("earliest", m.earliest);
  v.field("latest", m.latest);
  v.field("bytes", m.bytes);
  v.field("producers", m.producers);
  v.field("stalled_producers", m.stalled_producers);
  v.field("msgs_per_s", m.msgs_per_s);
  v.field("bytes_per_s", m.bytes_per_s);
  v.field("orphans_repaired", m.orphans_repaired);
  v.field("exclusive_pid", m.exclusive_pid);
  v.field("exclusive_plain", m.exclusive_plain);
  v.nested(m.stuck);
  v.nested(m.groups);
}
template <Is<GroupList> M, class V>
void visit(M& m, V& v) {
  v.nested(m.groups);
}
template <Is<DaemonStats> M, class V>
void visit(M& m, V& v) {
  v.field("topics", m.topics);
  v.field("clients", m.clients);
  v.field("uptime_s", m.uptime_s);
  v.nested(m.sections);
}
template <Is<CreateGroup> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
  v.field("group", m.group);
  v.field("start", m.start);
  visit_retry(m.retry, v);
  v.field("ordering", m.ordering);
}
template <Is<SetRetry> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
  v.field("group", m.group);
  visit_retry(m.retry, v);
}
template <Is<DeleteGroup> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
  v.field("group", m.group);
}
template <Is<ResetOffsets> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
  v.field("group", m.group);
  v.target("to", "to_time", m.to);
}
template <Is<ResetDone> M, class V>
void visit(M& m, V& v) {
  v.field("offset", m.offset);
}
template <Is<DeleteRecords> M, class V>
void visit(M& m, V& v) {
  v.field("topic", m.topic);
  v.field("before", m.before);
}
template <Is<RecordsDeleted> M, class V>
void visit(M& m, V& v) {
  v.field("earliest", m.earliest);
}
template <Is<RepairReport::Repaired> M, class V>
void visit(M& m, V& v) {
  v.field("repaired_offset", m.offset);
  v.field("repaired_records", m.records);
  v.field("repaired_position", m.position);
}
template <Is<RepairReport::Stuck> M, class V>
void visit(M& m, V& v) {
  v.field("stuck", m.group);
  v.field("stuck_offset", m.offset);
  v.field("stuck_cause", m.cause);
  v.field("stuck_pid", m.pid);
}
template <Is<RepairReport> M, class V>
void visit(M& m, V& v) {
  v.nested(m.repaired);
  v.nested(m.stuck);
}

// ---- Values as text ----

// Enum words, in the order of the enum's values.
template <class E>
struct Words;
template <>
struct Words<Policy> {
  static constexpr std::string_view list[] = {"block", "overwrite"};
};
template <>
struct Words<Storage> {
  static constexpr std::string_view list[] = {"shm", "file"};
};
template <>
struct Words<Start> {
  static constexpr std::string_view list[] = {"earliest", "latest"};
};
template <>
struct Words<StuckInfo::Cause> {
  static constexpr std::string_view list[] = {"stalled_producer", "dead_producer", "orphaned"};
};
template <class E>
concept Worded = requires { Words<E>::list; };

std::string text(const std::string& v, Base) { return v; }
std::string text(std::uint64_t v, Base base) {
  if (base == Base::dec) return std::to_string(v);
  char b[24];
  std::snprintf(b, sizeof b, "%llo", static_cast<unsigned long long>(v));
  return b;
}
std::string text(std::uint32_t v, Base base) { return text(std::uint64_t{v}, base); }
std::string text(bool v, Base) { return v ? "true" : "false"; }
std::string text(double v, Base) {
  char b[32];
  const auto [end, ec] = std::to_chars(b, b + sizeof b, v);  // the shortest text that reads back as v
  return ec == std::errc() ? std::string(b, end) : std::string("nan");
}
std::string text(std::chrono::milliseconds v, Base) { return std::to_string(v.count()); }
std::string text(Ordering v, Base) { return std::string(ordering_name(v)); }
template <Worded E>
std::string text(E v, Base) {
  return std::string(Words<E>::list[static_cast<std::size_t>(v)]);
}

Error bad_value(std::string_view key, std::string_view value, std::string_view want) {
  return Error(Errc::invalid_argument,
               std::string(key) + "='" + std::string(value.substr(0, 64)) + "' is not " + std::string(want));
}

std::optional<std::uint64_t> whole(std::string_view t, Base base) {
  std::uint64_t v = 0;
  const auto [stop, ec] = std::from_chars(t.data(), t.data() + t.size(), v, base == Base::dec ? 10 : 8);
  if (t.empty() || ec != std::errc() || stop != t.data() + t.size()) return std::nullopt;
  return v;
}

std::optional<Error> parse(std::string_view, std::string_view t, std::string& out, Base) {
  out = std::string(t);
  return std::nullopt;
}
std::optional<Error> parse(std::string_view key, std::string_view t, std::uint64_t& out, Base base) {
  auto v = whole(t, base);
  if (!v) return bad_value(key, t, base == Base::dec ? "a whole number" : "an octal number");
  out = *v;
  return std::nullopt;
}
std::optional<Error> parse(std::string_view key, std::string_view t, std::uint32_t& out, Base base) {
  auto v = whole(t, base);
  if (base == Base::oct && (!v || *v > 0777)) return bad_value(key, t, "an octal mode like 660");
  if (!v || *v > std::numeric_limits<std::uint32_t>::max()) return bad_value(key, t, "a 32-bit whole number");
  out = static_cast<std::uint32_t>(*v);
  return std::nullopt;
}
std::optional<Error> parse(std::string_view key, std::string_view t, bool& out, Base) {
  if (t != "true" && t != "false") return bad_value(key, t, "true or false");
  out = t == "true";
  return std::nullopt;
}
std::optional<Error> parse(std::string_view key, std::string_view t, double& out, Base) {
  double v = 0;
  const auto [stop, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || stop != t.data() + t.size() || !std::isfinite(v))
    return bad_value(key, t, "a decimal number");
  out = v;
  return std::nullopt;
}
std::optional<Error> parse(std::string_view key, std::string_view t, std::chrono::milliseconds& out, Base) {
  auto v = whole(t, Base::dec);
  if (!v || *v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return bad_value(key, t, "a number of milliseconds");
  out = std::chrono::milliseconds(static_cast<std::int64_t>(*v));
  return std::nullopt;
}
// Spelt by ordering_name(), the one spelling mqctl and the Node addon use too.
std::optional<Error> parse(std::string_view key, std::string_view t, Ordering& out, Base) {
  const auto ordering = parse_ordering(t);
  if (!ordering) return bad_value(key, t, "none, key or exclusive");
  out = *ordering;
  return std::nullopt;
}
template <Worded E>
std::optional<Error> parse(std::string_view key, std::string_view t, E& out, Base) {
  std::string want;
  for (std::size_t i = 0; i < std::size(Words<E>::list); ++i) {
    if (t == Words<E>::list[i]) {
      out = static_cast<E>(i);
      return std::nullopt;
    }
    want += (i == 0 ? "" : i + 1 == std::size(Words<E>::list) ? " or " : ", ") + std::string(Words<E>::list[i]);
  }
  return bad_value(key, t, want);
}

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

// The key a nested entry starts with: its first field.
struct First {
  std::string_view key;
  template <class T>
  void field(std::string_view k, T&, Base = Base::dec) {
    if (key.empty()) key = k;
  }
  template <class T>
  void nested(T&) {}
};
template <class S>
std::string_view marker() {
  First first;
  S s{};
  visit(s, first);
  return first.key;
}

// ---- The three visitors ----

class Encoder {
 public:
  explicit Encoder(Frame& out) : out_(out) {}
  template <class T>
  void field(std::string_view key, const T& v, Base base = Base::dec) {
    out_.add(std::string(key), text(v, base));
  }
  template <class T>
  void field(std::string_view key, const std::optional<T>& v, Base base = Base::dec) {
    if (v) field(key, *v, base);
  }
  void field(std::string_view key, const std::vector<std::string>& values, Base = Base::dec) {
    for (const auto& v : values) field(key, v);
  }
  template <class S>
  void nested(const std::vector<S>& entries) {
    for (const auto& e : entries) visit(e, *this);
  }
  void target(std::string_view to_key, std::string_view time_key, const ResetTarget& to) {
    if (const auto* start = std::get_if<Start>(&to)) field(to_key, *start);
    if (const auto* offset = std::get_if<Offset>(&to)) field(to_key, *offset);
    if (const auto* time = std::get_if<TimePoint>(&to)) field(time_key, time->ns_since_epoch);
  }

 private:
  Frame& out_;
};

using Fields = std::span<const std::pair<std::string, std::string>>;

// Reads the fields of one message (or of one nested entry: from its marker to the next entry's) into its struct;
// the first problem is kept, and reading stops there.
class Decoder {
 public:
  // `single`: a field not marked repeated must appear once (requests). Replies may gain nested fields that share a
  // name with a top-level one, so their first value is taken.
  Decoder(Fields fields, std::string what, bool single) : fields_(fields), what_(std::move(what)), single_(single) {}
  template <class T>
  void field(std::string_view key, T& out, Base base = Base::dec) {
    if (error) return;
    const auto* v = find(key);
    if (error) return;
    if (v == nullptr) {
      error = Error(Errc::invalid_argument, what_ + " without field '" + std::string(key) + "'");
      return;
    }
    error = parse(key, *v, out, base);
  }
  template <class T>
  void field(std::string_view key, std::optional<T>& out, Base base = Base::dec) {
    if (error) return;
    const auto* v = find(key);
    if (v == nullptr || error) return;
    T value{};
    error = parse(key, *v, value, base);
    out = std::move(value);
  }
  void field(std::string_view key, std::vector<std::string>& out, Base = Base::dec) {
    for (const auto& [k, v] : fields_)
      if (k == key) out.push_back(v);
  }
  template <class S>
  void nested(std::vector<S>& out) {
    const std::string_view key = marker<S>();
    std::size_t begin = fields_.size();
    for (std::size_t i = 0; i <= fields_.size() && !error; ++i) {
      if (i < fields_.size() && fields_[i].first != key) continue;
      if (begin < i) {
        Decoder entry(fields_.subspan(begin, i - begin), what_, single_);
        visit(out.emplace_back(), entry);
        error = std::move(entry.error);
      }
      begin = i;
    }
  }
  void target(std::string_view to_key, std::string_view time_key, ResetTarget& to) {
    if (error) return;
    const auto* time = find(time_key);
    const auto* t = find(to_key);
    if (error) return;
    if (time != nullptr && t != nullptr) {
      error = Error(Errc::invalid_argument, what_ + " with both '" + std::string(to_key) + "' and '" +
                                                std::string(time_key) + "': give one");
      return;
    }
    if (time != nullptr) {
      auto ns = whole(*time, Base::dec);
      if (!ns)
        error = bad_value(time_key, *time, "ns since the epoch");
      else
        to = TimePoint{*ns};
      return;
    }
    if (t == nullptr) {
      error = Error(Errc::invalid_argument, what_ + " without field '" + std::string(to_key) + "' or '" +
                                                std::string(time_key) + "'");
      return;
    }
    const std::string_view text = *t;
    if (text == "earliest" || text == "latest") {
      to = text == "earliest" ? Start::earliest : Start::latest;
    } else if (auto offset = whole(text, Base::dec)) {
      to = Offset{*offset};
    } else {
      error = bad_value(to_key, text, "earliest, latest or an offset");
    }
  }

  std::optional<Error> error;

 private:
  // The value of a field that appears at most once: in a request a second one is an error (which one was meant is a
  // guess); in a reply the first is taken.
  const std::string* find(std::string_view key) {
    const std::string* found = nullptr;
    for (const auto& [k, v] : fields_) {
      if (k != key) continue;
      if (found != nullptr) {
        if (!single_) return found;
        if (!error) error = Error(Errc::invalid_argument, what_ + " repeats field '" + std::string(key) + "'");
        return nullptr;
      }
      found = &v;
    }
    return found;
  }
  Fields fields_;
  std::string what_;
  bool single_;
};

// The field names, for protocol_table(): "name?" optional, "name*" repeated (a nested entry's fields too).
class Namer {
 public:
  template <class T>
  void field(std::string_view key, T&, Base = Base::dec) {
    add(key, is_optional<T>::value ? "?" : is_vector<T>::value ? "*" : "");
  }
  template <class S>
  void nested(std::vector<S>&) {
    Namer entry;
    S s{};
    visit(s, entry);
    for (const auto& n : entry.names) names.push_back(n.back() == '*' || n.back() == '?' ? n : n + "*");
  }
  void target(std::string_view to_key, std::string_view time_key, ResetTarget&) {
    add(to_key, "?");
    add(time_key, "?");
  }
  std::vector<std::string> names;

 private:
  template <class T>
  struct is_optional : std::false_type {};
  template <class T>
  struct is_optional<std::optional<T>> : std::true_type {};
  void add(std::string_view key, std::string_view mark) { names.push_back(std::string(key) + std::string(mark)); }
};

template <class M>
std::vector<std::string> names_of() {
  Namer n;
  M m{};
  visit(m, n);
  return n.names;
}

// A request naming a field its type does not have is refused: a misspelt option must not be dropped in silence.
// (Replies may gain fields: a client ignores those it does not know.)
template <class R>
Result<Request> decode_as(const Frame& frame) {
  const std::string what = std::string(R::type) + " request";
  const auto known = names_of<R>();
  for (const auto& field : frame.fields) {
    const std::string& key = field.first;
    const bool listed = std::any_of(known.begin(), known.end(), [&key](std::string_view n) {
      return n.substr(0, n.find_first_of("?*")) == key;  // the name without its mark
    });
    if (!listed) return Error(Errc::invalid_argument, what + " with unknown field '" + key.substr(0, 64) + "'");
  }
  R request{};
  Decoder d(frame.fields, what, true);
  visit(request, d);
  if (d.error) return std::move(*d.error);
  return Request(std::move(request));
}

}  // namespace

Frame to_frame(const Request& request) {
  return std::visit(
      [](const auto& r) {
        Frame f{std::string(r.type)};
        Encoder e(f);
        visit(r, e);
        return f;
      },
      request);
}

Result<Request> request_from(const Frame& frame) {
  std::optional<Result<Request>> out;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (void)((frame.type == std::variant_alternative_t<I, Request>::type
                ? (out.emplace(decode_as<std::variant_alternative_t<I, Request>>(frame)), true)
                : false) ||
           ...);
  }(std::make_index_sequence<std::variant_size_v<Request>>());
  if (out) return std::move(*out);
  return Error(Errc::invalid_argument, "unknown request type '" + frame.type.substr(0, 64) + "'");
}

// Every request must say whether it is idempotent: a type that forgot would otherwise pass for one or the other.
template <class R>
concept SaysIfIdempotent = std::is_same_v<decltype(R::idempotent), const bool>;

bool idempotent(std::string_view type) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    static_assert((SaysIfIdempotent<std::variant_alternative_t<I, Request>> && ...));
    // The value, not the member's presence: a request declared `idempotent = false` must not be sent twice.
    return ((type == std::variant_alternative_t<I, Request>::type &&
             std::variant_alternative_t<I, Request>::idempotent) ||
            ...);
  }(std::make_index_sequence<std::variant_size_v<Request>>());
}

template <class Reply>
Frame reply_frame(const Reply& reply) {
  Frame f = ok_reply();
  Encoder e(f);
  visit(reply, e);
  return f;
}

template <class Reply>
Result<Reply> reply_from(const Frame& frame) {
  Reply reply{};
  Decoder d(frame.fields, "mqd's reply", false);
  visit(reply, d);
  if (d.error) return std::move(*d.error);
  return reply;
}

// Every reply type's codec (the replies of Request's alternatives).
template Frame reply_frame<Done>(const Done&);
template Result<Done> reply_from<Done>(const Frame&);
template Frame reply_frame<Opened>(const Opened&);
template Result<Opened> reply_from<Opened>(const Frame&);
template Frame reply_frame<Welcome>(const Welcome&);
template Result<Welcome> reply_from<Welcome>(const Frame&);
template Frame reply_frame<TopicNames>(const TopicNames&);
template Result<TopicNames> reply_from<TopicNames>(const Frame&);
template Frame reply_frame<mq::TopicReport>(const mq::TopicReport&);
template Result<mq::TopicReport> reply_from<mq::TopicReport>(const Frame&);
template Frame reply_frame<GroupList>(const GroupList&);
template Result<GroupList> reply_from<GroupList>(const Frame&);
template Frame reply_frame<mq::DaemonStats>(const mq::DaemonStats&);
template Result<mq::DaemonStats> reply_from<mq::DaemonStats>(const Frame&);
template Frame reply_frame<ResetDone>(const ResetDone&);
template Result<ResetDone> reply_from<ResetDone>(const Frame&);
template Frame reply_frame<RecordsDeleted>(const RecordsDeleted&);
template Result<RecordsDeleted> reply_from<RecordsDeleted>(const Frame&);
template Frame reply_frame<mq::RepairReport>(const mq::RepairReport&);
template Result<mq::RepairReport> reply_from<mq::RepairReport>(const Frame&);

std::vector<MessageSpec> protocol_table() {
  std::vector<MessageSpec> out;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (out.push_back(MessageSpec{std::variant_alternative_t<I, Request>::type,
                               names_of<std::variant_alternative_t<I, Request>>(),
                               names_of<typename std::variant_alternative_t<I, Request>::Reply>()}),
     ...);
  }(std::make_index_sequence<std::variant_size_v<Request>>());
  return out;
}

CreateGroup CreateGroup::of(std::string topic, std::string group, Start start, const RetryPolicy& retry,
                            Ordering ordering) {
  const RetryPolicy defaults;
  RetryFields fields;
  if (retry.max_attempts != defaults.max_attempts) fields.max_attempts = retry.max_attempts;
  if (retry.backoff != defaults.backoff) fields.backoff = retry.backoff;
  if (retry.factor != defaults.factor) fields.factor = retry.factor;
  if (retry.max_backoff != defaults.max_backoff) fields.max_backoff = retry.max_backoff;
  if (retry.jitter != defaults.jitter) fields.jitter = retry.jitter;
  return CreateGroup{std::move(topic), std::move(group), start, fields,
                     ordering == Ordering::none ? std::nullopt : std::optional<Ordering>(ordering)};
}

}  // namespace control

RetryFields RetryFields::of(const RetryPolicy& p) {
  return RetryFields{p.max_attempts, p.backoff, p.factor, p.max_backoff, p.jitter};
}

RetryPolicy RetryFields::over(RetryPolicy base) const {
  if (max_attempts) base.max_attempts = *max_attempts;
  if (backoff) base.backoff = *backoff;
  if (factor) base.factor = *factor;
  if (max_backoff) base.max_backoff = *max_backoff;
  if (jitter) base.jitter = *jitter;
  return base;
}

}  // namespace mq
