// Topic: a mapped topic plus, lazily, a Producer on it. publish/publishBatch/send copy the record once, from the
// JS Buffer (or a UTF-8 scratch copy of a string) straight into the ring, and never wait: on a full `block` topic
// they throw Errc::full at once; sendAsync then waits for room in the libuv pool with the topic's block timeout.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>

#include "addon.h"

namespace mqnode {

namespace {

// One record read from a kafkajs message object {key?, value, headers?, timestamp?}; views stay valid while the
// JS values and `store` live (the synchronous call).
struct Parsed {
  std::span<const std::byte> payload;
  std::optional<std::span<const std::byte>> key;
  std::vector<mq::Header> headers;
  std::optional<std::int64_t> timestamp_ns;
};

struct Scratch {
  std::string payload;
  std::string key;
  std::deque<std::string> store;  // header names and string values (deque: stable addresses)
  void clear() { store.clear(); }
};

std::optional<std::int64_t> parse_timestamp(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  double ms = 0;
  if (v.IsNumber()) {
    ms = v.As<Napi::Number>().DoubleValue();
  } else if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    long long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || p != s.data() + s.size()) throw_type(env, "message timestamp must be milliseconds: " + s);
    ms = static_cast<double>(n);
  } else if (v.IsBigInt()) {
    bool lossless = false;
    ms = static_cast<double>(v.As<Napi::BigInt>().Int64Value(&lossless));
  } else {
    throw_type(env, "message timestamp must be a string or number of milliseconds");
  }
  return static_cast<std::int64_t>(ms) * 1'000'000;
}

void add_header(Napi::Env env, Parsed& out, Scratch& s, std::string_view name, Napi::Value v) {
  if (v.IsString()) {  // encoded once into the scratch store
    s.store.push_back(v.As<Napi::String>().Utf8Value());
    const std::string& str = s.store.back();
    out.headers.push_back(mq::Header{name, std::as_bytes(std::span(str.data(), str.size()))});
  } else {  // a Buffer: a view, no copy (null is an empty value)
    std::string unused;
    out.headers.push_back(mq::Header{name, bytes_of(env, v, unused, "header value")});
  }
}

// A Buffer / typed array / string / null: a record's value alone, not a message object.
bool is_value(Napi::Env env, Napi::Value v) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (type != napi_object) return true;
  bool is = false;
  napi_is_typedarray(env, v, &is);
  return is;
}

Parsed parse_message(Napi::Env env, Napi::Value m, Scratch& s) {
  if (is_value(env, m)) {  // a bare value
    Parsed p;
    p.payload = bytes_of(env, m, s.payload, "message value");
    return p;
  }
  if (!m.IsObject()) throw_type(env, "each message must be an object {key?, value, headers?, timestamp?}");
  Napi::Object o = m.As<Napi::Object>();
  Parsed p;
  p.payload = bytes_of(env, o.Get("value"), s.payload, "message value");
  Napi::Value key = o.Get("key");
  if (!key.IsUndefined() && !key.IsNull()) p.key = bytes_of(env, key, s.key, "message key");
  Napi::Value headers = o.Get("headers");
  if (headers.IsObject()) {
    Napi::Object h = headers.As<Napi::Object>();
    Napi::Array names = h.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      s.store.push_back(names.Get(i).ToString().Utf8Value());
      const std::string& name = s.store.back();
      Napi::Value v = h.Get(name);
      if (v.IsUndefined()) continue;
      if (v.IsArray()) {  // kafkajs: an array is a repeated header
        Napi::Array a = v.As<Napi::Array>();
        for (uint32_t j = 0; j < a.Length(); ++j) add_header(env, p, s, name, a.Get(j));
      } else {
        add_header(env, p, s, name, v);
      }
    }
  }
  p.timestamp_ns = parse_timestamp(env, o.Get("timestamp"));
  return p;
}

// A record owned by native memory, for sendAsync (JS values cannot be read off the JS thread).
struct Owned {
  std::string payload;
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::int64_t> timestamp_ns;
};

Owned own(const Parsed& p) {
  Owned o;
  o.payload.assign(reinterpret_cast<const char*>(p.payload.data()), p.payload.size());
  if (p.key) o.key.emplace(reinterpret_cast<const char*>(p.key->data()), p.key->size());
  for (const auto& h : p.headers)
    o.headers.emplace_back(std::string(h.name), std::string(reinterpret_cast<const char*>(h.value.data()), h.value.size()));
  o.timestamp_ns = p.timestamp_ns;
  return o;
}

Napi::Value offset_number(Napi::Env env, mq::Offset o) { return Napi::Number::New(env, static_cast<double>(o)); }

Napi::Error with_progress(Napi::Env env, const mq::Error& e, std::size_t published, std::optional<mq::Offset> first) {
  Napi::Error err = to_js_error(env, e);
  err.Set("published", Napi::Number::New(env, static_cast<double>(published)));
  if (first) err.Set("firstOffset", offset_number(env, *first));
  return err;
}

// What a batched publish achieved: how many records went out (in order), the first offset, and the error that
// stopped it, if any.
struct Progress {
  std::size_t published = 0;
  std::optional<mq::Offset> first;
  std::optional<mq::Error> error;
};
// Called with each chunk's first offset and size, in order (a chunk's offsets are consecutive; two chunks' need
// not be, when other producers publish in between).
using ChunkDone = std::function<void(mq::Offset, std::size_t)>;

// Publishes `records` in order, as few publish_batch calls as fit (each one claim: at most kMaxPublishBatch
// records and half the ring), so a batch of small records costs one CAS, not one each. A chunk is all or nothing;
// a record over the topic's max_message goes alone, so its error is publish()'s and `published` is its index.
Progress publish_chunks(mq::Producer& p, std::span<const mq::Record> records, const RingLimits& limits,
                        const ChunkDone& on_chunk = nullptr) {
  Progress out;
  while (out.published < records.size()) {
    const auto rest = records.subspan(out.published);
    std::size_t n = 0;
    std::size_t bytes = 0;
    while (n < rest.size() && n < mq::kMaxPublishBatch) {
      const mq::Record& r = rest[n];
      std::size_t parts = r.payload.size() + (r.key ? r.key->size() : 0);
      for (const auto& h : r.headers) parts += 8 + h.name.size() + h.value.size();
      const std::size_t size = 112 + parts;  // at least its ring bytes: 40 of header, up to 7 + 63 of alignment
      const bool alone = parts > limits.max_message;
      if (n != 0 && (alone || bytes + size > limits.capacity / 2)) break;
      bytes += size;
      ++n;
      if (alone) break;
    }
    auto first = n == 1 ? p.publish(rest.front()) : p.publish_batch(rest.first(n));
    if (!first) {
      out.error = std::move(first).error();
      return out;
    }
    if (!out.first) out.first = *first;
    if (on_chunk) on_chunk(*first, n);
    out.published += n;
  }
  return out;
}

}  // namespace

void TopicWrap::Init(Napi::Env env, Napi::Object exports, AddonData& data) {
  Napi::Function ctor = DefineClass(env, "Topic",
                                    {InstanceAccessor<&TopicWrap::Name>("name"),
                                     InstanceMethod<&TopicWrap::Info>("info"),
                                     InstanceMethod<&TopicWrap::Publish>("publish"),
                                     InstanceMethod<&TopicWrap::PublishBatch>("publishBatch"),
                                     InstanceMethod<&TopicWrap::Send>("send"),
                                     InstanceMethod<&TopicWrap::SendValue>("sendValue"),
                                     InstanceMethod<&TopicWrap::Earliest>("earliest"),
                                     InstanceMethod<&TopicWrap::OffsetForTime>("offsetForTime"),
                                     InstanceMethod<&TopicWrap::SendAsync>("sendAsync"),
                                     InstanceMethod<&TopicWrap::ResetGroup>("resetGroup"),
                                     InstanceMethod<&TopicWrap::SetRetryPolicy>("setRetryPolicy"),
                                     InstanceMethod<&TopicWrap::Consumer>("consumer"),
                                     InstanceMethod<&TopicWrap::Close>("close")});
  data.topic_ctor = Napi::Persistent(ctor);
  exports.Set("Topic", ctor);
}

struct TopicInit {
  mq::Topic topic;
  std::shared_ptr<mq::Client> client;
};

Napi::Object TopicWrap::Make(Napi::Env env, mq::Topic topic, std::shared_ptr<mq::Client> client) {
  auto* data = env.GetInstanceData<AddonData>();
  TopicInit init{std::move(topic), std::move(client)};
  return data->topic_ctor.New({Napi::External<TopicInit>::New(env, &init)});
}

TopicWrap::TopicWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TopicWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw_type(info.Env(), "use Client.open() to get a Topic");
  auto* init = info[0].As<Napi::External<TopicInit>>().Data();
  topic_ = std::move(init->topic);
  client_ = std::move(init->client);
  const mq::TopicInfo ring = topic_->info();
  limits_ = RingLimits{ring.capacity, ring.max_message};
}

void TopicWrap::check_open(Napi::Env env) const {
  if (!topic_) throw_js(env, mq::Error(mq::Errc::invalid_argument, "topic handle is closed"));
}

// Synchronous calls wait for a running sendAsync's records to go out first, so records keep their order.
void TopicWrap::check_idle(Napi::Env env) const {
  if (busy_)
    throw_js(env, mq::Error(mq::Errc::busy, "a sendAsync on this topic is still waiting for room: topic=" + topic_->name()));
}

mq::Producer& TopicWrap::producer(Napi::Env env) {
  check_open(env);
  if (!producer_) {
    mq::ProducerOptions o;
    o.block_timeout = std::chrono::milliseconds(0);
    auto p = mq::Producer::make(*topic_, o);
    if (!p) throw_js(env, p.error());
    producer_.emplace(std::move(*p));
  }
  return *producer_;
}

Napi::Value TopicWrap::Name(const Napi::CallbackInfo& info) {
  check_open(info.Env());
  return Napi::String::New(info.Env(), topic_->name());
}

Napi::Value TopicWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_open(env);
  return topic_object(env, topic_->info());
}

// publish(value) -> bigint offset. Synchronous; never waits (Errc::full on a full block topic).
Napi::Value TopicWrap::Publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  thread_local std::string scratch;
  auto bytes = bytes_of(env, info[0], scratch, "value");
  auto r = producer(env).publish(bytes);
  if (!r) throw_js(env, r.error());
  return Napi::BigInt::New(env, static_cast<uint64_t>(*r));
}

// publishBatch([values]) -> BigUint64Array of offsets. On an error part-way, the error says how many were
// published (`published`); those stay published.
Napi::Value TopicWrap::PublishBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  if (info.Length() < 1 || !info[0].IsArray()) throw_type(env, "publishBatch takes an array of Buffers or strings");
  Napi::Array values = info[0].As<Napi::Array>();
  const uint32_t n = values.Length();
  auto& p = producer(env);
  // UTF-8 of string values, alive until the batch is out; sized before use (no reallocation moves a string that a
  // record points into) and kept between calls, so a steady sender allocates nothing here.
  thread_local std::vector<std::string> strings;
  thread_local std::vector<mq::Record> records;
  if (strings.size() < n) strings.resize(n);
  records.clear();
  for (uint32_t i = 0; i < n; ++i)
    records.push_back(mq::Record{bytes_of(env, values.Get(i), strings[i], "value"), std::nullopt, {}, std::nullopt});
  auto offsets = Napi::BigUint64Array::New(env, n);
  std::size_t at = 0;
  const Progress done = publish_chunks(
      p, records, limits_,
      [&](mq::Offset first, std::size_t count) {
        for (std::size_t k = 0; k < count; ++k) offsets[at++] = first + k;
      });
  if (done.error) throw with_progress(env, *done.error, done.published, done.first);
  return offsets;
}

// send(messages, start = 0) -> the first record's offset (a number; null for no records), for kafkajs' send().
// kafkajs message objects or bare values; synchronous; never waits: Errc::full throws with `published` (how many of
// messages[start..] went out) and `firstOffset`, and the caller continues with sendAsync(messages, start + published).
Napi::Value TopicWrap::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  if (info.Length() < 1 || !info[0].IsArray()) throw_type(env, "messages must be an array");
  Napi::Array messages = info[0].As<Napi::Array>();
  const uint32_t start = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  const uint32_t n = messages.Length();
  auto& p = producer(env);
  // Every record read from JS first (their bytes stay where they are: views), then published in chunks of one claim.
  // Sized before use and kept between calls, like PublishBatch's strings.
  thread_local std::vector<Scratch> scratch;
  thread_local std::vector<Parsed> parsed;
  thread_local std::vector<mq::Record> records;
  const std::size_t count = n > start ? n - start : 0;
  if (scratch.size() < count) scratch.resize(count);
  if (parsed.size() < count) parsed.resize(count);
  records.clear();
  for (uint32_t i = start; i < n; ++i) {
    Napi::Value item = messages.Get(i);
    Scratch& s = scratch[i - start];
    if (is_value(env, item)) {  // a bare value (JS passes these when no message has key/headers/timestamp)
      records.push_back(mq::Record{bytes_of(env, item, s.payload, "message value"), std::nullopt, {}, std::nullopt});
    } else {
      s.clear();
      Parsed& m = parsed[i - start] = parse_message(env, item, s);
      records.push_back(mq::Record{m.payload, m.key, std::span<const mq::Header>(m.headers), m.timestamp_ns});
    }
  }
  const Progress done = publish_chunks(p, records, limits_);
  if (done.error) throw with_progress(env, *done.error, done.published, done.first);
  return done.first ? offset_number(env, *done.first) : env.Null();
}

// sendValue(value) -> its offset (a number): send([value]) of one bare value (a Buffer, string or null), without
// the arrays. The same errors as send(), with published = 0.
Napi::Value TopicWrap::SendValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  auto& p = producer(env);
  thread_local std::string scratch;
  const auto r = p.publish(bytes_of(env, info[0], scratch, "message value"));
  if (!r) throw with_progress(env, r.error(), 0, std::nullopt);
  return offset_number(env, *r);
}

// earliest() -> the topic's earliest offset (a number; kafkajs' logStartOffset).
Napi::Value TopicWrap::Earliest(const Napi::CallbackInfo& info) {
  check_open(info.Env());
  return offset_number(info.Env(), topic_->earliest());
}

// offsetForTime(ms) -> number: the offset of the first record held whose timestamp is at or after `ms` (ms since
// the epoch, fractions allowed), else the next offset (mq::Topic::offset_for_time). Reads the records held.
Napi::Value TopicWrap::OffsetForTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_open(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw_type(env, "offsetForTime(ms: number)");
  const double ms = info[0].As<Napi::Number>().DoubleValue();
  if (std::isnan(ms)) throw_type(env, "offsetForTime(ms): ms must be a number, not NaN");
  // ns since the epoch, clamped to what a timestamp can hold (year 2262 either way).
  constexpr double kMaxMs = static_cast<double>(std::numeric_limits<std::int64_t>::max()) / 1e6;
  const double clamped = std::clamp(ms, -kMaxMs, kMaxMs);
  auto found = topic_->offset_for_time(static_cast<std::int64_t>(clamped * 1e6));
  if (!found) throw_js(env, found.error());
  return offset_number(env, *found);
}

// sendAsync(messages, start = 0) -> Promise<[firstOffset, earliest]>: as send(), but waits for room in the libuv
// pool (the records are copied to native memory first), through a Producer of this handle's own, at most
// kSendSlice per call: on Errc::full it rejects with `published` (how many went out) and the caller, which knows the
// topic's block timeout, calls again for the rest. A pool thread is never held for a whole block timeout. Until it
// settles the synchronous calls on this topic throw Errc::busy, so records keep their order.
Napi::Value TopicWrap::SendAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_open(env);
  check_idle(env);
  if (info.Length() < 1 || !info[0].IsArray()) throw_type(env, "messages must be an array");
  Napi::Array messages = info[0].As<Napi::Array>();
  const uint32_t start = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  auto records = std::make_shared<std::vector<Owned>>();
  Scratch scratch;
  for (uint32_t i = start; i < messages.Length(); ++i) {
    scratch.clear();
    records->push_back(own(parse_message(env, messages.Get(i), scratch)));
  }
  busy_ = true;
  Ref();  // keep this object (and its topic) alive while the pool thread uses it
  struct Out {
    std::optional<mq::Offset> first;
    mq::Offset earliest = 0;
    std::size_t published = 0;
  };
  auto out = std::make_shared<Out>();
  if (!async_producer_) {
    auto p = mq::Producer::make(*topic_, mq::ProducerOptions{kSendSlice});
    if (!p) {
      busy_ = false;
      Unref();
      throw_js(env, p.error());
    }
    async_producer_.emplace(std::move(*p));
  }
  mq::Topic topic = *topic_;
  mq::Producer* producer = &*async_producer_;
  return Task::run(
      env,
      [topic, producer, records, out]() -> std::optional<mq::Error> {
        auto* p = producer;  // this handle's, kept alive by Ref() until the task settles
        for (const auto& o : *records) {
          std::vector<mq::Header> headers;
          for (const auto& [k, v] : o.headers) headers.push_back(mq::Header{k, std::as_bytes(std::span(v.data(), v.size()))});
          mq::Record rec{std::as_bytes(std::span(o.payload.data(), o.payload.size())),
                         o.key ? std::optional(std::as_bytes(std::span(o.key->data(), o.key->size()))) : std::nullopt,
                         std::span<const mq::Header>(headers), o.timestamp_ns};
          auto r = p->publish(rec);
          if (!r) return r.error();
          if (!out->first) out->first = *r;
          ++out->published;
        }
        out->earliest = topic.earliest();
        return std::nullopt;
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, 2);
        a.Set(0u, out->first ? offset_number(env, *out->first) : env.Null());
        a.Set(1u, offset_number(env, out->earliest));
        return a;
      },
      [this, out](Napi::Env env, Napi::Object* error) {
        busy_ = false;
        if (error) {  // how far it got: those records stay published
          error->Set("published", Napi::Number::New(env, static_cast<double>(out->published)));
          if (out->first) error->Set("firstOffset", offset_number(env, *out->first));
        }
        Unref();
      });
}

// resetGroup(group, 'earliest' | 'latest' | offset): moves the group for all its members (Topic::reset_group).
Napi::Value TopicWrap::ResetGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_open(env);
  if (info.Length() < 2 || !info[0].IsString()) throw_type(env, "resetGroup(group, 'earliest' | 'latest' | offset)");
  const std::string group = info[0].As<Napi::String>().Utf8Value();
  mq::Result<void> r;
  Napi::Value to = info[1];
  if (to.IsString() && to.As<Napi::String>().Utf8Value() == "earliest") {
    r = topic_->reset_group(group, mq::Start::earliest);
  } else if (to.IsString() && to.As<Napi::String>().Utf8Value() == "latest") {
    r = topic_->reset_group(group, mq::Start::latest);
  } else {
    std::uint64_t off = 0;
    if (to.IsBigInt()) {
      bool lossless = false;
      off = to.As<Napi::BigInt>().Uint64Value(&lossless);
    } else if (to.IsNumber()) {
      off = static_cast<std::uint64_t>(to.As<Napi::Number>().DoubleValue());
    } else if (to.IsString()) {
      const std::string s = to.As<Napi::String>().Utf8Value();
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), off);
      if (ec != std::errc() || p != s.data() + s.size()) throw_type(env, "offset must be a decimal string: " + s);
    } else {
      throw_type(env, "offset must be 'earliest', 'latest', a bigint, a number or a decimal string");
    }
    r = topic_->reset_group(group, mq::Offset{off});
  }
  if (!r) throw_js(env, r.error());
  return env.Undefined();
}

// setRetryPolicy(group, {maxAttempts, backoffMs, factor, maxBackoffMs, jitter}): the group's retry policy for nacked
// records (Topic::set_retry_policy; missing fields take RetryPolicy's defaults). Records waiting for a retry keep
// the delay they got. Errors: not_found (no such group), invalid_argument naming the field out of range.
Napi::Value TopicWrap::SetRetryPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_open(env);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
    throw_type(env, "setRetryPolicy(group, {maxAttempts, backoffMs, factor, maxBackoffMs, jitter})");
  const mq::RetryPolicy policy = retry_policy(env, info[1], topic_->name());
  if (auto r = topic_->set_retry_policy(info[0].As<Napi::String>().Utf8Value(), policy); !r) throw_js(env, r.error());
  return env.Undefined();
}

Napi::Value TopicWrap::Consumer(const Napi::CallbackInfo& info) {
  check_open(info.Env());
  return MakeConsumer(info, *this);
}

// close(): releases the producer slot and this handle's mapping (consumers made from it keep their own).
Napi::Value TopicWrap::Close(const Napi::CallbackInfo& info) {
  check_idle(info.Env());
  producer_.reset();
  async_producer_.reset();
  topic_.reset();
  client_.reset();
  return info.Env().Undefined();
}

}  // namespace mqnode
