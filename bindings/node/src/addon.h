// The libmq Node.js addon: native handles under the JavaScript API of index.js.
//
//   connect(socket, clientId, timeoutMs) -> Promise<Client>     (mq::Client; every request runs off the JS thread)
//   Client.open/create/remove/list/request/close
//   Topic: publish/publishBatch/send (synchronous, never wait), sendAsync (waits for room in the libuv pool),
//          info, earliest, offsetForTime, resetGroup, setRetryPolicy, consumer(options, onEvent), close
//   Consumer: take/ack/nack on the JS thread, a waiter (io_uring or a thread) while parked: see consumer.cc.
//
// Shared memory never reaches JavaScript: consumed records are copied in the consumer thread into a heap batch
// that becomes a Buffer without a second copy; published Buffers are copied once, straight into the ring.
#pragma once

#include <napi.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "libmq/libmq.hpp"

namespace mqnode {

// Per-environment data: constructors of the wrapped classes.
struct AddonData {
  Napi::FunctionReference client_ctor;
  Napi::FunctionReference topic_ctor;
  Napi::FunctionReference consumer_ctor;
};

// A JS Error carrying the libmq message, `mqCode` (mq::errc_name: "not_found", ...) and (Errc::lost) `lost`.
Napi::Error to_js_error(Napi::Env env, const mq::Error& e);
[[noreturn]] void throw_js(Napi::Env env, const mq::Error& e);
// A TypeError in JS.
[[noreturn]] void throw_type(Napi::Env env, const std::string& what);

// The bytes of a Buffer / TypedArray / DataView / ArrayBuffer (no copy), or of a string (UTF-8, into `scratch`);
// null and undefined are empty. Throws a TypeError otherwise.
std::span<const std::byte> bytes_of(Napi::Env env, Napi::Value v, std::string& scratch, const char* what);

// A retry policy from JS, {maxAttempts, backoffMs, factor, maxBackoffMs, jitter} (a missing field keeps
// mq::RetryPolicy's default); throws a TypeError naming a field that is not a number. libmq checks the ranges.
mq::RetryPolicy retry_policy(Napi::Env env, Napi::Value v, const std::string& topic);
// The same shape from a policy.
Napi::Object retry_object(Napi::Env env, const mq::RetryPolicy& r);

// A topic as JS sees it, from the segment (mq::TopicInfo: Topic.info()) or from mqd (mq::TopicReport: the admin's
// describe, which adds accessGroup, rates, orphansRepaired and stuck): {name, capacity, maxMessage, policy, storage,
// blockTimeoutMs, mode (a number), earliest, latest, bytesWritten, producers, stalledProducers,
// groups: [{name, committed, next, lag, members, unacked, ordering, activePid}]}, offsets and byte counts as decimal
// strings; `ordering` is 'none', 'key' or 'exclusive' (absent in the report of an mqd that does not send it), and
// `activePid`, for an exclusive group, the process of the member that takes (absent while none does). From the
// segment, each group also has `retrying` (records waiting for a retry) and `retry` (its policy, retry_object).
Napi::Object topic_object(Napi::Env env, const mq::TopicInfo& t);
Napi::Object topic_object(Napi::Env env, const mq::TopicReport& t);

// Runs `work` in the libuv thread pool and settles a promise: rejects with the mq::Error it returns or throws,
// resolves with `done(env)` otherwise.
class Task : public Napi::AsyncWorker {
 public:
  using Work = std::function<std::optional<mq::Error>()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  // Runs on the JS thread before the promise settles, either way; may add properties to the rejection error.
  using Finally = std::function<void(Napi::Env, Napi::Object* error)>;
  static Napi::Promise run(Napi::Env env, Work work, Done done, Finally fin = nullptr);

  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Task(Napi::Env env, Work work, Done done, Finally fin);
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Finally finally_;
  std::optional<mq::Error> error_;
};

class ClientWrap : public Napi::ObjectWrap<ClientWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData& data);
  explicit ClientWrap(const Napi::CallbackInfo& info);
  std::shared_ptr<mq::Client> client() const { return client_; }

 private:
  static Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Create(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value List(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value ResetOffsets(const Napi::CallbackInfo& info);
  Napi::Value DeleteGroup(const Napi::CallbackInfo& info);
  Napi::Value DeleteRecords(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value SocketPath(const Napi::CallbackInfo& info);
  std::shared_ptr<mq::Client> checked(Napi::Env env) const;

  std::shared_ptr<mq::Client> client_;
};

// A topic's ring: its bytes and the largest record it takes (key + headers + payload).
struct RingLimits {
  std::size_t capacity = 0;
  std::size_t max_message = 0;
};

class TopicWrap : public Napi::ObjectWrap<TopicWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData& data);
  static Napi::Object Make(Napi::Env env, mq::Topic topic, std::shared_ptr<mq::Client> client);
  explicit TopicWrap(const Napi::CallbackInfo& info);
  const mq::Topic& topic() const { return *topic_; }
  std::shared_ptr<mq::Client> client() const { return client_; }

 private:
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Publish(const Napi::CallbackInfo& info);
  Napi::Value PublishBatch(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendValue(const Napi::CallbackInfo& info);
  Napi::Value Earliest(const Napi::CallbackInfo& info);
  Napi::Value OffsetForTime(const Napi::CallbackInfo& info);
  Napi::Value SendAsync(const Napi::CallbackInfo& info);
  Napi::Value ResetGroup(const Napi::CallbackInfo& info);
  Napi::Value SetRetryPolicy(const Napi::CallbackInfo& info);
  Napi::Value Consumer(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  mq::Producer& producer(Napi::Env env);
  void check_open(Napi::Env env) const;
  void check_idle(Napi::Env env) const;

  std::optional<mq::Topic> topic_;
  std::shared_ptr<mq::Client> client_;       // keeps the daemon connection (this process's liveness) alive
  std::optional<mq::Producer> producer_;     // block_timeout 0: the synchronous path never waits
  std::optional<mq::Producer> async_producer_;  // sendAsync's, in the pool: waits kSendSlice per call at most
  static constexpr std::chrono::milliseconds kSendSlice{100};
  bool busy_ = false;                        // a sendAsync is using the topic (send()s wait for it)
  RingLimits limits_;  // how large a batched publish's chunks may be
};

}  // namespace mqnode

namespace mqnode {
// consumer.cc
void InitConsumer(Napi::Env env, Napi::Object exports, AddonData& data);
// topic.consumer(options, onEvent): see consumer.cc.
Napi::Value MakeConsumer(const Napi::CallbackInfo& info, TopicWrap& topic);
}  // namespace mqnode
