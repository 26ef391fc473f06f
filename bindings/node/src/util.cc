// Errors, byte views of JS values, and the promise-returning thread-pool task.
#include <cstring>
#include <type_traits>

#include "addon.h"

namespace mqnode {

Napi::Error to_js_error(Napi::Env env, const mq::Error& e) {
  auto err = Napi::Error::New(env, std::string(e.message()));
  err.Set("mqCode", Napi::String::New(env, std::string(mq::errc_name(e.code()))));
  if (e.code() == mq::Errc::lost) err.Set("lost", Napi::Number::New(env, static_cast<double>(e.lost())));
  return err;
}

void throw_js(Napi::Env env, const mq::Error& e) { throw to_js_error(env, e); }

void throw_type(Napi::Env env, const std::string& what) { throw Napi::TypeError::New(env, what); }

namespace {
std::span<const std::byte> span_of(const void* data, std::size_t size) {
  return {static_cast<const std::byte*>(data), size};  // empty values may have a null data(): publish takes them
}
}  // namespace

std::span<const std::byte> bytes_of(Napi::Env env, Napi::Value v, std::string& scratch, const char* what) {
  napi_value raw = v;
  napi_valuetype type;
  napi_typeof(env, raw, &type);
  if (type == napi_string) {
    size_t len = 0;
    napi_get_value_string_utf8(env, raw, nullptr, 0, &len);
    scratch.resize(len + 1);
    napi_get_value_string_utf8(env, raw, scratch.data(), scratch.size(), &len);
    scratch.resize(len);
    return span_of(scratch.data(), scratch.size());
  }
  if (type == napi_null || type == napi_undefined) return span_of(nullptr, 0);
  bool is = false;
  if (napi_is_typedarray(env, raw, &is) == napi_ok && is) {
    napi_typedarray_type ta;
    size_t length = 0;
    void* data = nullptr;
    napi_value ab;
    size_t offset = 0;
    napi_get_typedarray_info(env, raw, &ta, &length, &data, &ab, &offset);
    size_t elem = 1;
    switch (ta) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: break;
    }
    return span_of(data, length * elem);
  }
  if (napi_is_dataview(env, raw, &is) == napi_ok && is) {
    size_t length = 0;
    void* data = nullptr;
    napi_get_dataview_info(env, raw, &length, &data, nullptr, nullptr);
    return span_of(data, length);
  }
  if (napi_is_arraybuffer(env, raw, &is) == napi_ok && is) {
    void* data = nullptr;
    size_t length = 0;
    napi_get_arraybuffer_info(env, raw, &data, &length);
    return span_of(data, length);
  }
  throw_type(env, std::string(what) + " must be a Buffer, a typed array or a string");
}

Task::Task(Napi::Env env, Work work, Done done, Finally fin)
    : Napi::AsyncWorker(env, "libmq"),
      deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)),
      done_(std::move(done)),
      finally_(std::move(fin)) {}

Napi::Promise Task::run(Napi::Env env, Work work, Done done, Finally fin) {
  auto* task = new Task(env, std::move(work), std::move(done), std::move(fin));
  auto promise = task->deferred_.Promise();
  task->Queue();
  return promise;
}

void Task::Execute() {
  try {
    error_ = work_();
  } catch (const mq::Error& e) {
    error_ = e;
  } catch (const std::exception& e) {
    error_ = mq::Error(mq::Errc::io, e.what());
  }
}

void Task::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (error_) {
    Napi::Object err = to_js_error(env, *error_).Value();
    if (finally_) finally_(env, &err);
    deferred_.Reject(err);
    return;
  }
  if (finally_) finally_(env, nullptr);
  try {
    deferred_.Resolve(done_(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (const mq::Error& e) {
    deferred_.Reject(to_js_error(env, e).Value());
  }
}

void Task::OnError(const Napi::Error& e) {
  Napi::Object err = e.Value();
  if (finally_) finally_(Env(), &err);
  deferred_.Reject(err);
}

mq::RetryPolicy retry_policy(Napi::Env env, Napi::Value v, const std::string& topic) {
  if (!v.IsObject()) throw_type(env, "retry policy must be an object: topic=" + topic);
  Napi::Object o = v.As<Napi::Object>();
  mq::RetryPolicy r;
  const auto number = [&](const char* name, auto& field, auto convert) {
    Napi::Value x = o.Get(name);
    if (x.IsUndefined()) return;
    if (!x.IsNumber()) throw_type(env, std::string("retry policy: ") + name + " must be a number: topic=" + topic);
    field = convert(x.As<Napi::Number>().DoubleValue());
  };
  // A count that is negative, fractional or huge would wrap or truncate: it becomes one libmq's check refuses.
  const auto whole = [](double d) {
    return d >= 0 && d <= 1e13 && d == static_cast<double>(static_cast<std::int64_t>(d));
  };
  const auto ms = [&](double d) { return std::chrono::milliseconds(whole(d) ? static_cast<std::int64_t>(d) : -1); };
  number("maxAttempts", r.max_attempts,
         [&](double d) { return whole(d) && d <= 1e9 ? static_cast<std::uint32_t>(d) : 0u; });
  number("backoffMs", r.backoff, ms);
  number("maxBackoffMs", r.max_backoff, ms);
  number("factor", r.factor, [](double d) { return d; });
  number("jitter", r.jitter, [](double d) { return d; });
  return r;
}

Napi::Object retry_object(Napi::Env env, const mq::RetryPolicy& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("maxAttempts", static_cast<double>(r.max_attempts));
  o.Set("backoffMs", static_cast<double>(r.backoff.count()));
  o.Set("factor", r.factor);
  o.Set("maxBackoffMs", static_cast<double>(r.max_backoff.count()));
  o.Set("jitter", r.jitter);
  return o;
}

namespace {

Napi::String decimal(Napi::Env env, std::uint64_t v) { return Napi::String::New(env, std::to_string(v)); }

// The exclusive producer's pid, 0 when there is none: TopicInfo says it in place, mqd's TopicReport when present.
int exclusive_pid(const mq::TopicInfo& t) { return t.exclusive_pid; }
int exclusive_pid(const mq::TopicReport& t) { return static_cast<int>(t.exclusive_pid.value_or(0)); }

// An exclusive group's taking member's pid, 0 when there is none (or the group is not exclusive): GroupInfo says it
// in place, mqd's GroupReport when present (as its ordering: an older mqd omits both).
int active_pid(const mq::GroupInfo& g) { return g.active_pid; }
int active_pid(const mq::GroupReport& g) { return static_cast<int>(g.active_pid.value_or(0)); }

// What TopicInfo and TopicReport share (their groups have the same fields).
template <class T>
Napi::Object common_topic_object(Napi::Env env, const T& t, std::uint64_t bytes_written) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", t.name);
  o.Set("capacity", static_cast<double>(t.capacity));
  o.Set("maxMessage", static_cast<double>(t.max_message));
  o.Set("policy", t.policy == mq::Policy::block ? "block" : "overwrite");
  o.Set("storage", t.storage == mq::Storage::shm ? "shm" : "file");
  o.Set("blockTimeoutMs", static_cast<double>(t.block_timeout.count()));
  o.Set("mode", static_cast<double>(t.mode));
  o.Set("earliest", decimal(env, t.earliest));
  o.Set("latest", decimal(env, t.latest));
  o.Set("bytesWritten", decimal(env, bytes_written));
  o.Set("producers", static_cast<double>(t.producers));
  o.Set("stalledProducers", static_cast<double>(t.stalled_producers));
  if (const int pid = exclusive_pid(t); pid != 0) o.Set("exclusiveProducerPid", static_cast<double>(pid));
  Napi::Array groups = Napi::Array::New(env, t.groups.size());
  for (std::size_t i = 0; i < t.groups.size(); ++i) {
    const auto& g = t.groups[i];
    Napi::Object go = Napi::Object::New(env);
    go.Set("name", g.name);
    go.Set("committed", decimal(env, g.committed));
    go.Set("next", decimal(env, g.next));
    go.Set("lag", decimal(env, g.lag));
    go.Set("members", static_cast<double>(g.members));
    go.Set("unacked", static_cast<double>(g.unacked));
    if constexpr (std::is_same_v<std::decay_t<decltype(g)>, mq::GroupInfo>) {  // the segment's, not mqd's report
      go.Set("retrying", static_cast<double>(g.retrying));
      go.Set("parked", static_cast<double>(g.parked));
      go.Set("retry", retry_object(env, g.retry));
    }
    if (const std::optional<mq::Ordering> ordering = g.ordering)
      go.Set("ordering", std::string(mq::ordering_name(*ordering)));
    if (const int pid = active_pid(g); pid != 0) go.Set("activePid", static_cast<double>(pid));
    groups.Set(static_cast<uint32_t>(i), go);
  }
  o.Set("groups", groups);
  return o;
}

}  // namespace

Napi::Object topic_object(Napi::Env env, const mq::TopicInfo& t) { return common_topic_object(env, t, t.bytes_written); }

Napi::Object topic_object(Napi::Env env, const mq::TopicReport& t) {
  Napi::Object o = common_topic_object(env, t, t.bytes);
  o.Set("accessGroup", t.access_group);
  o.Set("msgsPerS", static_cast<double>(t.msgs_per_s));
  o.Set("bytesPerS", static_cast<double>(t.bytes_per_s));
  o.Set("orphansRepaired", static_cast<double>(t.orphans_repaired));
  Napi::Array stuck = Napi::Array::New(env, t.stuck.size());
  for (std::size_t i = 0; i < t.stuck.size(); ++i) {
    const auto& s = t.stuck[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("group", s.group);
    e.Set("offset", decimal(env, s.offset));
    e.Set("position", decimal(env, s.position));
    e.Set("cause", std::string(mq::to_string(s.cause)));
    e.Set("pid", static_cast<double>(s.pid));
    e.Set("forS", static_cast<double>(s.for_s));
    stuck.Set(static_cast<uint32_t>(i), e);
  }
  o.Set("stuck", stuck);
  return o;
}

}  // namespace mqnode
