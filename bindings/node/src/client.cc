// Client: the connection to mqd (mq::Client). Every request runs in the libuv thread pool, so a slow or absent
// daemon never blocks the event loop; an absent one fails at once (connect() on the socket is refused).
#include <charconv>

#include "addon.h"

namespace mqnode {

namespace {

using Holder = std::shared_ptr<mq::Client>;

std::string get_string(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsString()) throw_type(env, std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::optional<double> get_number(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (v.IsBigInt()) {
    bool lossless = false;
    return static_cast<double>(v.As<Napi::BigInt>().Uint64Value(&lossless));
  }
  if (v.IsString()) return std::stod(v.As<Napi::String>().Utf8Value());
  if (!v.IsNumber()) throw_type(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// Runs `work` (mq::Client& -> Result<T>) in the thread pool; resolves with to_js(env, the T).
template <class T, class Work, class ToJs>
Napi::Value ask(Napi::Env env, std::shared_ptr<mq::Client> client, Work work, ToJs to_js) {
  auto out = std::make_shared<std::optional<T>>();
  return Task::run(
      env,
      [client, work, out]() -> std::optional<mq::Error> {
        auto r = work(*client);
        if (!r) return r.error();
        out->emplace(std::move(*r));
        return std::nullopt;
      },
      [out, to_js](Napi::Env env) -> Napi::Value { return to_js(env, **out); });
}

}  // namespace

void ClientWrap::Init(Napi::Env env, Napi::Object exports, AddonData& data) {
  Napi::Function ctor = DefineClass(env, "Client",
                                    {InstanceMethod<&ClientWrap::Open>("open"),
                                     InstanceMethod<&ClientWrap::Create>("create"),
                                     InstanceMethod<&ClientWrap::Remove>("remove"),
                                     InstanceMethod<&ClientWrap::List>("list"),
                                     InstanceMethod<&ClientWrap::Describe>("describe"),
                                     InstanceMethod<&ClientWrap::ResetOffsets>("resetOffsets"),
                                     InstanceMethod<&ClientWrap::DeleteGroup>("deleteGroup"),
                                     InstanceMethod<&ClientWrap::DeleteRecords>("deleteRecords"),
                                     InstanceMethod<&ClientWrap::Close>("close"),
                                     InstanceAccessor<&ClientWrap::SocketPath>("socketPath")});
  data.client_ctor = Napi::Persistent(ctor);
  exports.Set("Client", ctor);
  exports.Set("connect", Napi::Function::New(env, &ClientWrap::Connect, "connect"));
}

ClientWrap::ClientWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ClientWrap>(info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw_type(info.Env(), "use connect() to make a Client");
  client_ = *info[0].As<Napi::External<Holder>>().Data();
}

// connect(socket: string ('' = $MQ_SOCKET or the default), clientId: string, timeoutMs: number) -> Promise<Client>
Napi::Value ClientWrap::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  mq::ClientOptions options;
  if (info.Length() > 0 && info[0].IsString()) options.socket = info[0].As<Napi::String>().Utf8Value();
  if (info.Length() > 1 && info[1].IsString()) options.client_id = info[1].As<Napi::String>().Utf8Value();
  if (info.Length() > 2 && info[2].IsNumber())
    options.timeout = std::chrono::milliseconds(static_cast<long long>(info[2].As<Napi::Number>().DoubleValue()));
  auto out = std::make_shared<Holder>();
  return Task::run(
      env,
      [options, out]() -> std::optional<mq::Error> {
        auto c = mq::Client::connect(options);
        if (!c) return c.error();
        *out = std::make_shared<mq::Client>(std::move(*c));
        return std::nullopt;
      },
      [out](Napi::Env env) -> Napi::Value {
        auto* data = env.GetInstanceData<AddonData>();
        auto ext = Napi::External<Holder>::New(env, new Holder(*out), [](Napi::Env, Holder* h) { delete h; });
        return data->client_ctor.New({ext});
      });
}

Holder ClientWrap::checked(Napi::Env env) const {
  if (!client_) throw_js(env, mq::Error(mq::Errc::no_daemon, "the connection to mqd was closed (disconnect())"));
  return client_;
}

Napi::Value ClientWrap::SocketPath(const Napi::CallbackInfo& info) {
  if (!client_) return info.Env().Null();
  return Napi::String::New(info.Env(), client_->socket_path());
}

// open(name) -> Promise<Topic>: asks mqd for the topic (auto-created if the daemon allows) and maps it.
Napi::Value ClientWrap::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto client = checked(env);
  std::string name = get_string(env, info[0], "topic");
  auto out = std::make_shared<std::optional<mq::Topic>>();
  return Task::run(
      env,
      [client, name, out]() -> std::optional<mq::Error> {
        auto t = client->open(name);
        if (!t) return t.error();
        *out = std::move(*t);
        return std::nullopt;
      },
      [client, out](Napi::Env env) -> Napi::Value { return TopicWrap::Make(env, std::move(**out), client); });
}

// create(name, {capacity, maxMessage, policy, blockTimeoutMs, storage, mode, accessGroup, groups}) -> Promise<Topic>
Napi::Value ClientWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto client = checked(env);
  std::string name = get_string(env, info[0], "topic");
  mq::CreateOptions o;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object opts = info[1].As<Napi::Object>();
    if (auto v = get_number(opts, "capacity")) o.capacity = static_cast<std::size_t>(*v);
    if (auto v = get_number(opts, "maxMessage")) o.max_message = static_cast<std::size_t>(*v);
    if (auto v = get_number(opts, "blockTimeoutMs")) o.block_timeout = std::chrono::milliseconds(static_cast<long long>(*v));
    if (auto v = get_number(opts, "mode")) o.mode = static_cast<std::uint32_t>(*v);
    Napi::Value policy = opts.Get("policy");
    if (policy.IsString()) {
      const std::string p = policy.As<Napi::String>().Utf8Value();
      if (p == "block") o.policy = mq::Policy::block;
      else if (p == "overwrite") o.policy = mq::Policy::overwrite;
      else throw_js(env, mq::Error(mq::Errc::invalid_argument, "policy must be block or overwrite: topic=" + name + " policy=" + p));
    }
    Napi::Value storage = opts.Get("storage");
    if (storage.IsString()) {
      const std::string s = storage.As<Napi::String>().Utf8Value();
      if (s == "shm") o.storage = mq::Storage::shm;
      else if (s == "file") o.storage = mq::Storage::file;
      else throw_js(env, mq::Error(mq::Errc::invalid_argument, "storage must be shm or file: topic=" + name + " storage=" + s));
    }
    Napi::Value group = opts.Get("accessGroup");
    if (group.IsString()) o.access_group = group.As<Napi::String>().Utf8Value();
    Napi::Value groups = opts.Get("groups");
    if (groups.IsArray()) {
      Napi::Array a = groups.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) o.groups.push_back(get_string(env, a.Get(i), "group"));
    }
  }
  auto out = std::make_shared<std::optional<mq::Topic>>();
  return Task::run(
      env,
      [client, name, o, out]() -> std::optional<mq::Error> {
        auto t = client->create(name, o);
        if (!t) return t.error();
        *out = std::move(*t);
        return std::nullopt;
      },
      [client, out](Napi::Env env) -> Napi::Value { return TopicWrap::Make(env, std::move(**out), client); });
}

Napi::Value ClientWrap::Remove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto client = checked(env);
  std::string name = get_string(env, info[0], "topic");
  return Task::run(
      env,
      [client, name]() -> std::optional<mq::Error> {
        auto r = client->remove(name);
        if (!r) return r.error();
        return std::nullopt;
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value ClientWrap::List(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto client = checked(env);
  auto out = std::make_shared<std::vector<std::string>>();
  return Task::run(
      env,
      [client, out]() -> std::optional<mq::Error> {
        auto r = client->list();
        if (!r) return r.error();
        *out = std::move(*r);
        return std::nullopt;
      },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, out->size());
        for (std::size_t i = 0; i < out->size(); ++i) a.Set(static_cast<uint32_t>(i), (*out)[i]);
        return a;
      });
}

// describe(topic) -> Promise<topic_object (addon.h) of mqd's report>
Napi::Value ClientWrap::Describe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = get_string(env, info[0], "topic");
  return ask<mq::TopicReport>(
      env, checked(env), [name](mq::Client& c) { return c.describe(name); },
      [](Napi::Env env, const mq::TopicReport& t) -> Napi::Value { return topic_object(env, t); });
}

// resetOffsets(topic, group, to: 'earliest' | 'latest' | an offset as a decimal string) -> Promise<undefined>
Napi::Value ClientWrap::ResetOffsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string topic = get_string(env, info[0], "topic");
  std::string group = get_string(env, info[1], "group");
  const std::string to = get_string(env, info[2], "to");
  mq::ResetTarget target = mq::Start::earliest;
  if (to == "latest") {
    target = mq::Start::latest;
  } else if (to != "earliest") {
    mq::Offset offset = 0;
    const auto [stop, ec] = std::from_chars(to.data(), to.data() + to.size(), offset);
    if (to.empty() || ec != std::errc() || stop != to.data() + to.size())
      throw_js(env, mq::Error(mq::Errc::invalid_argument,
                              "offset '" + to + "' is not earliest, latest or a whole number: topic=" + topic));
    target = offset;
  }
  return ask<std::optional<mq::Offset>>(
      env, checked(env), [topic, group, target](mq::Client& c) { return c.reset_offsets(topic, group, target); },
      [](Napi::Env env, const std::optional<mq::Offset>&) -> Napi::Value { return env.Undefined(); });
}

// deleteGroup(topic, group) -> Promise<undefined>
Napi::Value ClientWrap::DeleteGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string topic = get_string(env, info[0], "topic");
  std::string group = get_string(env, info[1], "group");
  return ask<bool>(
      env, checked(env),
      [topic, group](mq::Client& c) -> mq::Result<bool> {
        if (auto r = c.delete_group(topic, group); !r) return r.error();
        return true;
      },
      [](Napi::Env env, bool) -> Napi::Value { return env.Undefined(); });
}

// deleteRecords(topic, before: bigint) -> Promise<string>: the topic's new earliest offset.
Napi::Value ClientWrap::DeleteRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string topic = get_string(env, info[0], "topic");
  if (info.Length() < 2 || !info[1].IsBigInt()) throw_type(env, "before must be a bigint");
  bool lossless = false;
  const mq::Offset before = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw_js(env, mq::Error(mq::Errc::invalid_argument, "before is not an offset: topic=" + topic));
  return ask<mq::Offset>(
      env, checked(env), [topic, before](mq::Client& c) { return c.delete_records(topic, before); },
      [](Napi::Env env, const mq::Offset& earliest) -> Napi::Value {
        return Napi::String::New(env, std::to_string(earliest));
      });
}

// close(): drops this handle's share of the connection; it closes (joining mq::Client's monitor thread, which
// takes microseconds) once the topics opened through it are closed or collected too.
Napi::Value ClientWrap::Close(const Napi::CallbackInfo& info) {
  client_.reset();
  return info.Env().Undefined();
}

}  // namespace mqnode
