// Consumer: one member of a consumer group, driven by its own native thread.
//
// The thread owns the mq::Consumer (one thread at a time, as libmq requires). Holding nothing, it polls with a
// 100 ms timeout (the library's futex wait: an idle topic costs no CPU). When records come, it takes what is there
// up to a batch, COPIES each record (payload, key, headers) into one heap buffer and hands the batch to JS through a
// ThreadSafeFunction (queue bounded at kQueue batches; the records held are bounded by maxInFlight <= kMaxUnacked).
// While JS works on records it holds, it only takes what is there at once and otherwise sleeps on a condition
// variable that JS signals when it has finished what the thread waits for (at most kBusyPoll), so finished records
// are acked at once. The event loop never waits for data.
//
// JS tells the thread what it finished by storing into a small Float64Array shared with it (ctl[0]: every record
// with a lower sequence number is done; see ctl_ below), applied by the thread as one cumulative
// mq::Consumer::ack. Records handed to JS but not finished stay unacked in the ring, so a crash (SIGKILL
// included) redelivers them to the group. seek / rejoin / pause / close are commands the thread applies between
// polls; batches from before a seek or a rejoin carry an older generation number and JS drops them.
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "addon.h"

namespace mqnode {

namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(100);
constexpr auto kBusyPoll = std::chrono::milliseconds(20);  // holding records: look for new ones this often
constexpr std::size_t kQueue = 8;
constexpr int kMetaStride = 10;  // offHi, offLo, timestampMs, valueStart, valueLen, keyStart, keyLen (-1 = null),
                                 // headersStart, headersLen, redelivered

enum EventKind { kBatch = 0, kError = 1, kSeeked = 2 };

struct Event {
  EventKind kind = kBatch;
  std::uint64_t gen = 0;
  std::uint64_t first_seq = 0;
  std::vector<char> data;
  std::vector<double> meta;
  std::size_t count = 0;
  std::string code;  // kError / kSeeked: the Errc name ("" = success)
  std::string message;
  std::uint64_t lost = 0;  // kError with code "lost": how many records the group lost (mq::Error::lost())
};

void put_u32(std::vector<char>& out, std::uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64): JS reads readUInt32LE
  out.insert(out.end(), b, b + 4);
}

// The one copy out of the ring (block topics: the spans are valid until acked; overwrite: until the next poll).
void append(Event& ev, const mq::Message& m) {
  auto& d = ev.data;
  const std::uint64_t o = m.offset();
  const double vstart = static_cast<double>(d.size());
  d.insert(d.end(), reinterpret_cast<const char*>(m.payload().data()),
           reinterpret_cast<const char*>(m.payload().data()) + m.payload().size());
  double kstart = static_cast<double>(d.size());
  double klen = -1;
  if (auto k = m.key()) {
    d.insert(d.end(), reinterpret_cast<const char*>(k->data()), reinterpret_cast<const char*>(k->data()) + k->size());
    klen = static_cast<double>(k->size());
  }
  const std::size_t hstart = d.size();
  for (const auto& h : m.headers()) {
    put_u32(d, static_cast<std::uint32_t>(h.name.size()));
    d.insert(d.end(), h.name.begin(), h.name.end());
    put_u32(d, static_cast<std::uint32_t>(h.value.size()));
    d.insert(d.end(), reinterpret_cast<const char*>(h.value.data()),
             reinterpret_cast<const char*>(h.value.data()) + h.value.size());
  }
  const double meta[kMetaStride] = {static_cast<double>(o >> 32),
                                    static_cast<double>(o & 0xffffffffu),
                                    static_cast<double>(m.timestamp_ns() / 1'000'000),
                                    vstart,
                                    static_cast<double>(m.payload().size()),
                                    kstart,
                                    klen,
                                    static_cast<double>(hstart),
                                    static_cast<double>(d.size() - hstart),
                                    m.redelivered() ? 1.0 : 0.0};
  ev.meta.insert(ev.meta.end(), meta, meta + kMetaStride);
  ++ev.count;
}

}  // namespace

class ConsumerWrap;
void CallJs(Napi::Env env, Napi::Function cb, ConsumerWrap* self, Event* ev);
using Tsfn = Napi::TypedThreadSafeFunction<ConsumerWrap, Event, &CallJs>;

struct ConsumerInit {
  mq::Topic topic;
  mq::Consumer consumer;
  mq::ConsumerOptions options;
  std::size_t max_in_flight;
  std::size_t max_batch;
};

class ConsumerWrap : public Napi::ObjectWrap<ConsumerWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData& data) {
    Napi::Function ctor = DefineClass(env, "Consumer",
                                      {InstanceMethod<&ConsumerWrap::Ack>("ack"),
                                       InstanceMethod<&ConsumerWrap::Pause>("pause"),
                                       InstanceMethod<&ConsumerWrap::Resume>("resume"),
                                       InstanceMethod<&ConsumerWrap::Seek>("seek"),
                                       InstanceMethod<&ConsumerWrap::Rejoin>("rejoin"),
                                       InstanceMethod<&ConsumerWrap::Close>("close"),
                                       InstanceMethod<&ConsumerWrap::Wake>("wake"),
                                       InstanceAccessor<&ConsumerWrap::Ctl>("ctl")});
    data.consumer_ctor = Napi::Persistent(ctor);
    exports.Set("Consumer", ctor);
  }

  explicit ConsumerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ConsumerWrap>(info) {
    if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsFunction())
      throw_type(info.Env(), "use Topic.consumer() to make a Consumer");
    auto* init = info[0].As<Napi::External<ConsumerInit>>().Data();
    topic_.emplace(std::move(init->topic));
    consumer_.emplace(std::move(init->consumer));
    options_ = init->options;
    max_in_flight_ = init->max_in_flight;
    max_batch_ = init->max_batch;
    Napi::Float64Array ctl = Napi::Float64Array::New(info.Env(), 2);
    ctl_ = ctl.Data();
    ctl_[0] = 1;
    ctl_[1] = 0;
    ctl_ref_ = Napi::Persistent(ctl);
    tsfn_ = Tsfn::New(info.Env(), info[1].As<Napi::Function>(), "libmq consumer", kQueue, 1, this,
                      [](Napi::Env, ConsumerWrap* self, ConsumerWrap*) { self->finalized(); }, this);
    Ref();  // alive while the thread runs; released by the finalizer
    thread_ = std::thread([this] { run(); });
  }

  ~ConsumerWrap() override {
    stop_thread();
    if (thread_.joinable()) thread_.join();
  }

  friend void CallJs(Napi::Env env, Napi::Function cb, ConsumerWrap* self, Event* ev);

 private:
  struct Held {
    std::uint64_t seq;
    mq::Message message;
  };
  struct Command {
    enum Kind { seek, rejoin } kind;
    std::uint64_t gen = 0;
    int to = 0;  // seek: 0 earliest, 1 latest, 2 offset
    mq::Offset offset = 0;
    int delay_ms = 0;
  };

  void stop_thread() {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

  // TSFN finalizer, on the JS thread: after the thread released it (close) or at environment teardown.
  void finalized() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      tsfn_gone_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    done_ = true;
    if (closed_) {
      closed_->Resolve(Env().Undefined());
      closed_.reset();
    }
    Unref();
  }

  // Hands an event to JS; false when the environment is going away.
  bool deliver(Event* ev) {
    if (tsfn_.BlockingCall(ev) != napi_ok) {
      delete ev;
      std::lock_guard lock(mu_);
      tsfn_gone_ = true;
      return false;
    }
    return true;
  }

  bool report(EventKind kind, std::uint64_t gen, const mq::Error* e) {
    auto* ev = new Event;
    ev->kind = kind;
    ev->gen = gen;
    if (e) {
      ev->code = errc_name(e->code());
      ev->message = std::string(e->message());
      ev->lost = e->lost();
    }
    return deliver(ev);
  }

  // Waits on the command variable up to `d` (returns early on a command, stop, resume or ack).
  void nap(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stop_ || !commands_.empty(); });
  }

  void run() {
    std::deque<Held> held;
    std::uint64_t next_seq = 1;
    std::uint64_t gen = 0;
    bool alive = true;

    auto ack_done = [&] {
      const std::uint64_t done = acked();
      if (held.empty() || held.front().seq >= done || !consumer_) return;
      std::optional<mq::Message> last;
      while (!held.empty() && held.front().seq < done) {
        last.emplace(std::move(held.front().message));
        held.pop_front();
      }
      if (auto r = consumer_->ack(std::move(*last)); !r) alive = report(kError, gen, &r.error());
    };

    while (alive) {
      std::optional<Command> cmd;
      bool stop = false;
      bool paused = false;
      {
        std::lock_guard lock(mu_);
        stop = stop_;
        paused = paused_;
        if (!commands_.empty()) {
          cmd = commands_.front();
          commands_.pop_front();
        }
      }
      ack_done();
      if (stop) break;

      if (cmd && cmd->kind == Command::seek) {
        gen = cmd->gen;
        if (consumer_) (void)consumer_->ack_all();
        held.clear();
        mq::Result<void> r = cmd->to == 0   ? topic_->reset_group(options_.group, mq::Start::earliest)
                             : cmd->to == 1 ? topic_->reset_group(options_.group, mq::Start::latest)
                                            : topic_->reset_group(options_.group, cmd->offset);
        alive = report(kSeeked, gen, r ? nullptr : &r.error());
        continue;
      }
      if (cmd && cmd->kind == Command::rejoin) {
        // eachMessage failed: leave the group so that what we hold unfinished goes back to it (redelivered to
        // the next member that polls, this one included once it has rejoined after the delay).
        gen = cmd->gen;
        held.clear();
        consumer_.reset();
        nap(std::chrono::milliseconds(cmd->delay_ms));
        continue;
      }
      if (!consumer_) {
        auto c = mq::Consumer::make(*topic_, options_);
        if (!c) {
          alive = report(kError, gen, &c.error());
          nap(std::chrono::milliseconds(1000));
          continue;
        }
        consumer_.emplace(std::move(*c));
      }

      if (paused || held.size() >= max_in_flight_) {
        std::unique_lock lock(mu_);
        // Full: wake when a batch's worth is finished (not at every ack: that would be a syscall per record).
        set_wake(held.empty() ? kNoAckWake : held[std::min(max_batch_, held.size()) - 1].seq + 1);
        // Re-check after publishing wake_at: JS stores ctl[0] and then reads ctl[1].
        const bool acks = !held.empty() && acked() > held.front().seq;
        if (!acks && !stop_ && commands_.empty() && (paused_ || held.size() >= max_in_flight_))
          cv_.wait_for(lock, kBusyPoll);
        set_wake(0);
        continue;
      }

      // Holding records JS has not finished: take only what is there now, else sleep until JS acks (ack()
      // wakes us) or a while passes, so that finished records are acked at once. Holding nothing: wait for data.
      auto r = consumer_->poll(held.empty() ? kIdlePoll : std::chrono::milliseconds(0));
      if (!r) {
        const mq::Errc code = r.error().code();
        if (code == mq::Errc::timed_out) {
          if (!held.empty()) {
            std::unique_lock lock(mu_);
            set_wake(held.front().seq + 1);  // any progress: ack it at once
            if (acked() <= held.front().seq && !stop_ && commands_.empty()) cv_.wait_for(lock, kBusyPoll);
            set_wake(0);
          }
          continue;
        }
        alive = report(kError, gen, &r.error());
        if (code != mq::Errc::lost) nap(std::chrono::milliseconds(100));  // do not spin on a persistent error
        continue;
      }
      auto* ev = new Event;
      ev->kind = kBatch;
      ev->gen = gen;
      ev->first_seq = next_seq;
      const std::size_t room = std::min(max_batch_, max_in_flight_ - held.size());
      ev->meta.reserve(room * kMetaStride);  // one allocation for the batch's metadata
      append(*ev, *r);
      held.push_back(Held{next_seq++, std::move(*r)});
      while (ev->count < room) {
        auto more = consumer_->poll(std::chrono::nanoseconds(0));
        if (!more) {
          if (more.error().code() != mq::Errc::timed_out) {
            if (!deliver(ev)) { ev = nullptr; alive = false; break; }
            ev = nullptr;
            alive = report(kError, gen, &more.error());
          }
          break;
        }
        append(*ev, *more);
        held.push_back(Held{next_seq++, std::move(*more)});
      }
      if (ev && alive) alive = deliver(ev);
    }

    // Ack what JS finished; leaving the group hands everything else back to it (auto_ack is off).
    ack_done();
    held.clear();
    consumer_.reset();
    std::lock_guard lock(mu_);
    if (!tsfn_gone_) tsfn_.Release();
  }

  // ack(seq): every record with a sequence number below seq is finished (the same as JS storing ctl[0]).
  Napi::Value Ack(const Napi::CallbackInfo& info) {
    const auto seq = static_cast<std::uint64_t>(info[0].As<Napi::Number>().DoubleValue());
    std::atomic_ref<double> a(ctl_[0]);
    if (static_cast<double>(seq) > a.load()) a.store(static_cast<double>(seq));
    const double wake = std::atomic_ref<double>(ctl_[1]).load();
    if (wake != 0 && static_cast<double>(seq) >= wake) notify();
    return info.Env().Undefined();
  }

  // wake(): JS stored ctl[0] itself and saw it reach ctl[1].
  Napi::Value Wake(const Napi::CallbackInfo& info) {
    notify();
    return info.Env().Undefined();
  }

  Napi::Value Ctl(const Napi::CallbackInfo& info) { return ctl_ref_.Value(); }

  void notify() {
    { std::lock_guard lock(mu_); }  // the thread is either before its re-check (sees ctl[0]) or waiting
    cv_.notify_one();               // outside the lock: the woken thread does not block on mu_ again
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    std::lock_guard lock(mu_);
    paused_ = true;
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    std::lock_guard lock(mu_);
    paused_ = false;
    cv_.notify_all();
    return info.Env().Undefined();
  }

  // seek(gen, 'earliest' | 'latest' | offset): moves the group (all members); batches of older generations are
  // to be dropped by JS. Reported back as a kSeeked event.
  Napi::Value Seek(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Command c{Command::seek};
    c.gen = static_cast<std::uint64_t>(info[0].As<Napi::Number>().DoubleValue());
    Napi::Value to = info[1];
    if (to.IsString() && to.As<Napi::String>().Utf8Value() == "earliest") {
      c.to = 0;
    } else if (to.IsString() && to.As<Napi::String>().Utf8Value() == "latest") {
      c.to = 1;
    } else if (to.IsBigInt()) {
      bool lossless = false;
      c.to = 2;
      c.offset = to.As<Napi::BigInt>().Uint64Value(&lossless);
    } else if (to.IsNumber()) {
      c.to = 2;
      c.offset = static_cast<mq::Offset>(to.As<Napi::Number>().DoubleValue());
    } else {
      throw_type(env, "seek(gen, 'earliest' | 'latest' | offset)");
    }
    std::lock_guard lock(mu_);
    commands_.push_back(c);
    cv_.notify_all();
    return env.Undefined();
  }

  // rejoin(gen, delayMs): give back every unfinished record and join again after the delay.
  Napi::Value Rejoin(const Napi::CallbackInfo& info) {
    Command c{Command::rejoin};
    c.gen = static_cast<std::uint64_t>(info[0].As<Napi::Number>().DoubleValue());
    c.delay_ms = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    std::lock_guard lock(mu_);
    commands_.push_back(c);
    cv_.notify_all();
    return info.Env().Undefined();
  }

  // close() -> Promise: stops the thread (within one poll timeout), acks what JS finished, leaves the group.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto d = Napi::Promise::Deferred::New(env);
    if (done_) {
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    if (!closed_) closed_.emplace(d);
    else d = *closed_;
    stop_thread();
    return d.Promise();
  }

  std::optional<mq::Topic> topic_;
  std::optional<mq::Consumer> consumer_;  // used by the thread only (after construction)
  mq::ConsumerOptions options_;
  std::size_t max_in_flight_ = kMaxInFlightDefault;
  std::size_t max_batch_ = 16;
  std::thread thread_;
  Tsfn tsfn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool paused_ = false;
  bool tsfn_gone_ = false;
  std::deque<Command> commands_;
  // Shared with JS (a Float64Array over a V8-owned ArrayBuffer kept alive by ctl_ref_), so that a finished record
  // is acked with a plain store instead of a call into the addon: ctl[0] = every sequence number below it is
  // finished (starts at 1); ctl[1] = 0, or the value of ctl[0] at which the sleeping thread wants a wake() call.
  // JS has no store-load fence: a wake-up missed in that window costs at most one kBusyPoll.
  Napi::Reference<Napi::Float64Array> ctl_ref_;
  double* ctl_ = nullptr;
  static constexpr std::uint64_t kNoAckWake = ~std::uint64_t{0} >> 12;  // above any sequence number
  std::uint64_t acked() const { return static_cast<std::uint64_t>(std::atomic_ref<double>(ctl_[0]).load(std::memory_order_acquire)); }
  void set_wake(std::uint64_t seq) { std::atomic_ref<double>(ctl_[1]).store(static_cast<double>(seq)); }
  bool done_ = false;                    // JS thread only
  std::optional<Napi::Promise::Deferred> closed_;

 public:
  static constexpr std::size_t kMaxInFlightDefault = 32;
};

void CallJs(Napi::Env env, Napi::Function cb, ConsumerWrap* self, Event* ev) {
  std::unique_ptr<Event> owned(ev);
  if (env == nullptr || cb.IsEmpty()) return;  // tearing down
  Napi::Value args[6];
  args[0] = Napi::Number::New(env, ev->kind);
  args[1] = Napi::Number::New(env, static_cast<double>(ev->gen));
  if (ev->kind == kBatch) {
    args[2] = Napi::Number::New(env, static_cast<double>(ev->first_seq));
    if (ev->data.empty()) {
      args[3] = Napi::Buffer<char>::New(env, 0);
    } else {  // the batch's heap copy becomes the Buffer itself (no second copy); the Buffer owns the Event now
      Event* kept = owned.release();  // alive until the Buffer is collected, which args[3] prevents below
      args[3] = Napi::Buffer<char>::New(env, kept->data.data(), kept->data.size(),
                                        [](Napi::Env, char*, Event* e) { delete e; }, kept);
    }
    auto meta = Napi::Float64Array::New(env, ev->meta.size());
    std::memcpy(meta.Data(), ev->meta.data(), ev->meta.size() * sizeof(double));
    args[4] = meta;
    args[5] = Napi::Number::New(env, static_cast<double>(ev->count));
  } else {
    args[2] = ev->code.empty() ? env.Null() : Napi::String::New(env, ev->code);
    args[3] = Napi::String::New(env, ev->message);
    args[4] = Napi::Number::New(env, static_cast<double>(ev->lost));
    args[5] = env.Undefined();
  }
  try {
    cb.Call(self->Value(), {args[0], args[1], args[2], args[3], args[4], args[5]});
  } catch (const Napi::Error& e) {
    // An exception in the JS handler: report it as an uncaught exception rather than losing it.
    napi_fatal_exception(env, e.Value());
  }
}

void InitConsumer(Napi::Env env, Napi::Object exports, AddonData& data) { ConsumerWrap::Init(env, exports, data); }

// topic.consumer({group, fromBeginning, maxInFlight, maxBatch, wait}, onEvent) -> Consumer
// onEvent(kind, gen, ...): kind 0 = batch (firstSeq, data: Buffer, meta: Float64Array, count),
// 1 = error (code, message), 2 = seek done (code or null, message).
Napi::Value MakeConsumer(const Napi::CallbackInfo& info, TopicWrap& topic) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw_type(env, "consumer({group, fromBeginning, maxInFlight, maxBatch, wait}, onEvent)");
  Napi::Object o = info[0].As<Napi::Object>();
  mq::ConsumerOptions options;
  Napi::Value group = o.Get("group");
  if (!group.IsString()) throw_type(env, "consumer group must be a string");
  options.group = group.As<Napi::String>().Utf8Value();
  options.start = o.Get("fromBeginning").ToBoolean() ? mq::Start::earliest : mq::Start::latest;
  options.auto_ack = false;  // acks follow JS (ack(seq)); leaving hands unfinished records back
  // Default wait: futex (no spinning). The JS thread is the slow hop anyway, and on a small machine a consumer thread
  // spinning ~20 us per wake-up takes the core the event loop needs: measured p50 ping-pong one-way latency
  // 12 us with futex vs 30 us with spin_futex on 2 cores (bench/bench.js). Idle, both sleep.
  options.wait = mq::Wait::futex;
  Napi::Value wait = o.Get("wait");
  if (wait.IsString()) {
    const std::string w = wait.As<Napi::String>().Utf8Value();
    if (w == "busy_spin") options.wait = mq::Wait::busy_spin;
    else if (w == "spin_yield") options.wait = mq::Wait::spin_yield;
    else if (w == "spin_futex") options.wait = mq::Wait::spin_futex;
    else if (w == "futex") options.wait = mq::Wait::futex;
    else throw_type(env, "wait must be busy_spin, spin_yield, spin_futex or futex");
  }
  std::size_t max_in_flight = ConsumerWrap::kMaxInFlightDefault;
  Napi::Value mif = o.Get("maxInFlight");
  if (mif.IsNumber()) max_in_flight = static_cast<std::size_t>(mif.As<Napi::Number>().Int64Value());
  if (max_in_flight < 1 || max_in_flight > mq::kMaxUnacked)
    throw_js(env, mq::Error(mq::Errc::invalid_argument, "maxInFlight must be 1.." + std::to_string(mq::kMaxUnacked) +
                                                            ": topic=" + topic.topic().name()));
  // One batch fills the window: per-batch costs (a ThreadSafeFunction call, a wake-up) dominate small records, and
  // measured 1.4 M msgs/s with 32-record batches against 1.1 M with two batches of 16 in flight.
  std::size_t max_batch = max_in_flight;
  Napi::Value mb = o.Get("maxBatch");
  if (mb.IsNumber()) max_batch = std::clamp<std::size_t>(static_cast<std::size_t>(mb.As<Napi::Number>().Int64Value()), 1, max_in_flight);
  auto c = mq::Consumer::make(topic.topic(), options);
  if (!c) throw_js(env, c.error());
  ConsumerInit init{topic.topic(), std::move(*c), options, max_in_flight, max_batch};
  auto* data = env.GetInstanceData<AddonData>();
  return data->consumer_ctor.New({Napi::External<ConsumerInit>::New(env, &init), info[1]});
}

}  // namespace mqnode
