// Consumer: one member of a consumer group, pulled by JavaScript on its own thread.
//
// While records flow, JS calls take(): one synchronous call acks what JS finished (cumulatively) and takes the next
// run of records (mq::Consumer::poll_batch: one CAS for up to 63 records), copying them into one new Buffer laid out
// as batchLayout says (a header, a metadata row per record, then the bytes). No thread hop, one allocation per batch.
// The copy is what makes message.value stable after eachMessage returns (kafkajs users keep it); shared memory is
// never exposed to JavaScript.
//
// When a take comes back empty, JS parks the consumer, and is called back (onReady) once a take may find something.
// Where the kernel has io_uring's FUTEX_WAIT (Linux 6.7+), the member registers as a sleeper and a FUTEX_WAIT on the
// topic's wake word goes into a small ring of its own (futex_ring.h) whose fd libuv polls: a producer's FUTEX_WAKE
// wakes the event loop directly (one wake-up), and a 100 ms timer runs the slow path (dead peers) meanwhile. Elsewhere
// a waiter thread (one per consumer, started once) waits on the futex (mq::Consumer::wait_ready: a brief spin as
// `wait` says, then sleep) and calls JS back through a ThreadSafeFunction: two wake-ups. Only the waiter touches the
// mq::Consumer while parked; a take, seek, rejoin or close first takes it back (interrupt_wait wakes it at once).
//
// Records JS holds unacked stay held in the ring: a crash (SIGKILL included) redelivers them to the group.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iterator>
#include <mutex>
#include <thread>

#include <uv.h>

#include "addon.h"
#include "futex_ring.h"

namespace mqnode {

namespace {

// The batch Buffer, shared with lib/common.js through `batchLayout` (one definition: this enum).
enum BatchLayout : int {
  kCount = 0,      // header: records in the batch
  kFirstSeq = 1,   // header: the first record's sequence number (ack(seq) acks every record below seq)
  kLost = 2,       // header: records the group lost (overwrite topics) since the previous batch
  kHeader = 3,     // header doubles; the rows follow
  // A row per record (kStride doubles):
  kOffsetHigh = 0,
  kOffsetLow = 1,
  kTimestampMs = 2,
  kValueStart = 3,   // byte offsets into the Buffer
  kValueLength = 4,
  kKeyStart = 5,
  kKeyLength = 6,    // -1: a null key
  kHeadersStart = 7, // encoded headers: (u32 nameLength, name, u32 valueLength, value)*, little-endian
  kHeadersLength = 8,
  kRedelivered = 9,  // 1: handed out before (to a member that died or left, or nacked)
  kAttempt = 10,     // the group's delivery of this record: 1, +1 per nack (mq::Message::attempt)
  kFirstFailureMs = 11,  // CLOCK_REALTIME ms of the record's first nack; 0 on attempt 1
  kStride = 12,
};

constexpr auto kWaitSlice = std::chrono::milliseconds(100);  // the waiter looks at its flags at least this often
constexpr std::uint64_t kTickMs = 100;  // the io_uring path: a parked member's slow-path look, this often

std::size_t encoded_headers(const mq::Message& m) {
  std::size_t n = 0;
  for (const auto& h : m.headers()) n += 8 + h.name.size() + h.value.size();
  return n;
}

}  // namespace

class ConsumerWrap;
void CallJs(Napi::Env env, Napi::Function cb, ConsumerWrap* self, std::nullptr_t*);
using Tsfn = Napi::TypedThreadSafeFunction<ConsumerWrap, std::nullptr_t, &CallJs>;

struct ConsumerInit {
  mq::Topic topic;
  mq::Consumer consumer;
  mq::ConsumerOptions options;
  std::size_t max_batch;
  bool kernel_wait;  // may park in io_uring's FUTEX_WAIT ('futex', 'spin'); else the waiter thread's strategy
};

class ConsumerWrap : public Napi::ObjectWrap<ConsumerWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports, AddonData& data) {
    Napi::Function ctor = DefineClass(env, "Consumer",
                                      {InstanceMethod<&ConsumerWrap::Take>("take"),
                                       InstanceMethod<&ConsumerWrap::Ack>("ack"),
                                       InstanceMethod<&ConsumerWrap::Nack>("nack"),
                                       InstanceMethod<&ConsumerWrap::Park>("park"),
                                       InstanceMethod<&ConsumerWrap::Seek>("seek"),
                                       InstanceMethod<&ConsumerWrap::Rejoin>("rejoin"),
                                       InstanceMethod<&ConsumerWrap::Close>("close"),
                                       InstanceAccessor<&ConsumerWrap::Held>("held"),
                                       InstanceAccessor<&ConsumerWrap::Waiter>("waiter")});
    data.consumer_ctor = Napi::Persistent(ctor);
    exports.Set("Consumer", ctor);
    Napi::Object layout = Napi::Object::New(env);
    const std::pair<const char*, int> fields[] = {
        {"count", kCount},           {"firstSeq", kFirstSeq},         {"lost", kLost},
        {"header", kHeader},         {"offsetHigh", kOffsetHigh},     {"offsetLow", kOffsetLow},
        {"timestampMs", kTimestampMs}, {"valueStart", kValueStart},   {"valueLength", kValueLength},
        {"keyStart", kKeyStart},     {"keyLength", kKeyLength},       {"headersStart", kHeadersStart},
        {"headersLength", kHeadersLength}, {"redelivered", kRedelivered}, {"attempt", kAttempt},
        {"firstFailureMs", kFirstFailureMs}, {"stride", kStride}};
    for (const auto& [name, value] : fields) layout.Set(name, Napi::Number::New(env, value));
    layout.Set("maxBatch", Napi::Number::New(env, static_cast<double>(mq::kMaxBatch)));
    layout.Set("maxHeld", Napi::Number::New(env, static_cast<double>(mq::kMaxUnacked)));  // runs (takes) held
    exports.Set("batchLayout", layout);
    // The bounds of a group's retry policy and table (mq::RetryPolicy, Consumer::nack), for JS's option checks.
    Napi::Object retry = Napi::Object::New(env);
    retry.Set("maxAttempts", Napi::Number::New(env, static_cast<double>(mq::kMaxAttempts)));
    retry.Set("maxBackoffMs", Napi::Number::New(env, static_cast<double>(mq::kMaxBackoff.count())));
    retry.Set("slots", Napi::Number::New(env, static_cast<double>(mq::kRetrySlots)));
    const mq::RetryPolicy defaults;
    retry.Set("defaults", retry_object(env, defaults));
    exports.Set("retryLimits", retry);
    // The names of a group's orderings (mq::ordering_name), for JS's option checks.
    const mq::Ordering orderings[] = {mq::Ordering::none, mq::Ordering::key, mq::Ordering::exclusive};
    Napi::Array names = Napi::Array::New(env, std::size(orderings));
    for (std::uint32_t i = 0; i < std::size(orderings); ++i)
      names.Set(i, Napi::String::New(env, std::string(mq::ordering_name(orderings[i]))));
    exports.Set("orderings", names);
  }

  explicit ConsumerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ConsumerWrap>(info) {
    if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsFunction())
      throw_type(info.Env(), "use Topic.consumer() to make a Consumer");
    auto* init = info[0].As<Napi::External<ConsumerInit>>().Data();
    topic_.emplace(std::move(init->topic));
    consumer_.emplace(std::move(init->consumer));
    options_ = init->options;
    max_batch_ = init->max_batch;
    Ref();  // alive while its waiter (ring or thread) may call back; released when the close completes
    if (init->kernel_wait) ring_ = FutexRing::open();
    if (ring_) {
      on_ready_ = Napi::Persistent(info[1].As<Napi::Function>());
      async_ = std::make_unique<Napi::AsyncContext>(info.Env(), "libmq consumer");
      uv_loop_t* loop = nullptr;
      napi_get_uv_event_loop(info.Env(), &loop);
      poll_ = new uv_poll_t;
      timer_ = new uv_timer_t;
      uv_poll_init(loop, poll_, ring_->fd());
      uv_timer_init(loop, timer_);
      poll_->data = this;
      timer_->data = this;
      return;
    }
    tsfn_ = Tsfn::New(info.Env(), info[1].As<Napi::Function>(), "libmq consumer", 1, 1, this,
                      [](Napi::Env, ConsumerWrap* self, ConsumerWrap*) { self->finalized(); }, this);
    waiter_ = std::thread([this] { wait_loop(); });
  }

  ~ConsumerWrap() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (waiter_.joinable()) waiter_.join();
  }

  friend void CallJs(Napi::Env env, Napi::Function cb, ConsumerWrap* self, std::nullptr_t*);

 private:
  struct Taken {
    std::uint64_t first_seq = 0;
    std::vector<mq::Message> messages;
    std::size_t acked = 0;  // messages[0 .. acked) are acked
  };

  // --- the waiter thread -------------------------------------------------------------------------------------
  void wait_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || armed_; });
      if (stop_) break;
      waiting_ = true;
      bool ready = false;
      while (!ready && !stop_ && !cancel_) {
        lock.unlock();
        ready = consumer_->wait_ready(kWaitSlice);
        lock.lock();
      }
      waiting_ = false;
      const bool tell = armed_ && !cancel_ && !stop_;
      armed_ = false;
      cancel_ = false;
      cv_.notify_all();  // a take waiting for us to let go of the consumer
      if (tell) {
        lock.unlock();
        tsfn_.NonBlockingCall();
        lock.lock();
      }
    }
    lock.unlock();
    tsfn_.Release();
  }

  // --- the io_uring path (JS thread only) ----------------------------------------------------------------------
  static void on_poll(uv_poll_t* handle, int, int) {
    auto* self = static_cast<ConsumerWrap*>(handle->data);
    self->ring_->reap([&](std::uint64_t, std::int32_t) { self->wait_queued_ = false; });
    if (!self->parked_) return;
    self->unpark_ring();
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->on_ready_.MakeCallback(self->Value(), {}, *self->async_);  // runs the microtasks it queues, too
  }
  // Every 100 ms while parked, and when a retry this member nacked comes due: the slow path (a dead peer's claim or
  // records are recovered), then a look for what no wake announces: a nacked record whose retry came due.
  // prepare_wait() says so (and unregisters); else the member stays registered and the queued FUTEX_WAIT keeps
  // waiting. (mq::Consumer does not say when the group's next retry is due: one another member nacked reaches a
  // member parked here up to 100 ms after it is due.)
  static void on_timer(uv_timer_t* handle) {
    auto* self = static_cast<ConsumerWrap*>(handle->data);
    if (!self->parked_ || !self->consumer_) return;
    self->consumer_->maintain();
    if (self->consumer_->prepare_wait()) {
      if (const auto first = self->next_tick_ms(); first < kTickMs)
        uv_timer_start(self->timer_, on_timer, first, kTickMs);
      return;
    }
    self->unpark_ring();
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->on_ready_.MakeCallback(self->Value(), {}, *self->async_);
  }
  // Parks on the ring; false when a take would find something now.
  bool park_ring() {
    if (parked_) return true;
    auto word = consumer_->prepare_wait();
    if (!word) return false;
    // A wait still queued from an earlier park keeps waiting in the kernel's queue for the word: any wake completes
    // it. Else queue one; the kernel checks the value at once (a wake since prepare_wait: -EAGAIN, a completion).
    if (!wait_queued_) {
      if (!ring_->wait(word->word, word->value, 1)) {
        consumer_->done_waiting();
        return false;
      }
      wait_queued_ = true;
    }
    parked_ = true;
    uv_poll_start(poll_, UV_READABLE, on_poll);
    uv_timer_start(timer_, on_timer, next_tick_ms(), kTickMs);
    return true;
  }
  // Milliseconds to the parked member's next look: kTickMs, or less when a retry it nacked is due sooner (those
  // past are dropped: the look that found nothing due already saw them taken).
  std::uint64_t next_tick_ms() {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(retry_due_, [&](auto due) { return due <= now; });
    std::uint64_t ms = kTickMs;
    for (auto due : retry_due_)
      ms = std::min<std::uint64_t>(ms, std::chrono::ceil<std::chrono::milliseconds>(due - now).count());
    return ms;
  }
  // A retry this member just nacked at its `attempt` (the io_uring path): when it is due at the latest, from the
  // group's policy (the jitter only shortens a delay) or the explicit delay.
  void note_retry(std::uint32_t attempt, std::optional<std::chrono::milliseconds> delay) {
    if (!ring_) return;
    double ms = delay ? static_cast<double>(delay->count()) : -1;
    if (!delay) {
      for (const auto& g : topic_->info().groups) {
        if (g.name != options_.group) continue;
        ms = static_cast<double>(g.retry.backoff.count());
        for (std::uint32_t i = 1; i < attempt && ms < static_cast<double>(g.retry.max_backoff.count()); ++i)
          ms *= g.retry.factor;
        ms = std::min(ms, static_cast<double>(g.retry.max_backoff.count()));
      }
    }
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(retry_due_, [&](auto due) { return due <= now; });
    if (ms < 0 || retry_due_.size() >= 2 * mq::kRetrySlots) return;  // (stale hints: the tick looks anyway)
    retry_due_.push_back(now + std::chrono::milliseconds(static_cast<std::int64_t>(ms) + 1));
  }
  void unpark_ring() {
    if (!parked_) return;
    parked_ = false;
    consumer_->done_waiting();
    uv_poll_stop(poll_);
    uv_timer_stop(timer_);
  }
  // Closes the handles; the last close callback completes the close.
  void close_ring() {
    unpark_ring();
    auto done = [](uv_handle_t* h) {
      auto* self = static_cast<ConsumerWrap*>(h->data);
      if (h->type == UV_POLL) delete reinterpret_cast<uv_poll_t*>(h);
      else delete reinterpret_cast<uv_timer_t*>(h);
      if (--self->open_handles_ != 0) return;
      // From libuv, not from JS: a handle scope, and a callback scope so the close's promise settles its reactions.
      Napi::Env env = self->Env();
      Napi::HandleScope handles(env);
      Napi::CallbackScope callback(env, *self->async_);
      self->finalized();
    };
    open_handles_ = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), done);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), done);
    poll_ = nullptr;
    timer_ = nullptr;
  }

  // Takes the consumer back from the waiter (JS thread): after this, only the JS thread uses it.
  void unpark() {
    if (ring_) return unpark_ring();
    std::unique_lock lock(mu_);
    if (!armed_ && !waiting_) return;
    armed_ = false;
    if (waiting_) {
      cancel_ = true;
      consumer_->interrupt_wait();
      cv_.wait(lock, [&] { return !waiting_; });
      cancel_ = false;
    }
  }

  // The end of a close, on the JS thread: the waiter thread released the TSFN (or the environment is going away),
  // or the ring's handles are closed.
  void finalized() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (waiter_.joinable()) waiter_.join();  // it released the TSFN last: it has finished, or finishes now
    ring_.reset();                           // cancels a FUTEX_WAIT still queued
    consumer_.reset();                       // leaves the group: unacked records go back to it
    topic_.reset();
    closed_ = true;
    if (on_closed_) {
      on_closed_->Resolve(Env().Undefined());
      on_closed_.reset();
    }
    Unref();
  }

  void check_usable(Napi::Env env) const {
    if (closing_ || !consumer_) throw_js(env, mq::Error(mq::Errc::invalid_argument, "the consumer is closed"));
    if (busy_) throw_js(env, mq::Error(mq::Errc::busy, "a seek or rejoin of this consumer is under way"));
  }

  // Acks every record with a sequence number below `seq`: one cumulative mq::Consumer::ack of the last of them.
  void ack_below(Napi::Env env, std::uint64_t seq) {
    std::optional<std::size_t> entry;  // the take holding the last record below `seq` not acked yet
    std::size_t through = 0;
    for (std::size_t e = 0; e < taken_.size() && taken_[e].first_seq < seq; ++e) {
      const std::size_t n = std::min<std::uint64_t>(seq - taken_[e].first_seq, taken_[e].messages.size());
      if (n > taken_[e].acked) {
        entry = e;
        through = n;
      }
    }
    if (!entry) return;
    auto r = consumer_->ack(std::move(taken_[*entry].messages[through - 1]));
    if (!r) throw_js(env, r.error());
    settled(*entry, through);
  }

  // messages[0 .. through) of taken_[entry] are no longer held (acked, or the last of them nacked), and so is every
  // record of the takes before it (an ack or a nack covers what this member received before): drops what is done.
  void settled(std::size_t entry, std::size_t through) {
    taken_[entry].acked = through;
    std::size_t done = entry + (through == taken_[entry].messages.size() ? 1 : 0);
    for (; done > 0; --done) {
      spare_.push_back(std::move(taken_.front().messages));
      spare_.back().clear();
      taken_.pop_front();
    }
  }

  // take(max, ackSeq, slab, at) -> number: acks every record below ackSeq, then takes up to `max` records and
  // writes them into the Buffer `slab` from byte `at` (8-aligned) on, laid out as batchLayout says, with every
  // position counted from the slab's start. Returns the bytes written; 0 when there is nothing (or JS holds the most
  // it may: ack first); -n when the batch needs n bytes and the slab has less room: the records wait here, and the
  // next take (with a fresh slab) writes them. JS hands out views of the slab and never writes it again, so a
  // message stays valid for as long as it is referenced, while a batch costs no allocation (Node's Buffer pool does
  // the same with its 8 KiB slabs).
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_usable(env);
    unpark();
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBuffer() || !info[3].IsNumber())
      throw_type(env, "take(max, ackSeq, slab, at)");
    const double max_arg = info[0].As<Napi::Number>().DoubleValue();
    if (!(max_arg >= 1 && max_arg <= static_cast<double>(mq::kMaxBatch)))
      throw_js(env, mq::Error(mq::Errc::invalid_argument, "take(max): max must be 1.." +
                                                              std::to_string(mq::kMaxBatch) + ": " + context()));
    const auto max = static_cast<std::size_t>(max_arg);
    ack_below(env, static_cast<std::uint64_t>(info[1].As<Napi::Number>().DoubleValue()));
    auto slab = info[2].As<Napi::Buffer<char>>();
    const double at_arg = info[3].As<Napi::Number>().DoubleValue();
    if (!(at_arg >= 0 && at_arg <= static_cast<double>(slab.Length())) || static_cast<std::size_t>(at_arg) % 8 != 0 ||
        reinterpret_cast<std::uintptr_t>(slab.Data()) % 8 != 0)
      throw_type(env, "take: `at` must be an 8-aligned offset inside an 8-aligned slab");
    const auto at = static_cast<std::size_t>(at_arg);
    if (!pending_) {
      if (taken_.size() >= mq::kMaxUnacked) return Napi::Number::New(env, 0);  // JS holds the most it may
      std::vector<mq::Message> messages;
      if (!spare_.empty()) {
        messages = std::move(spare_.back());
        spare_.pop_back();
      }
      for (;;) {
        auto n = consumer_->poll_batch(messages, max, std::chrono::nanoseconds(0));
        if (n) break;
        if (n.error().code() != mq::Errc::lost) {
          spare_.push_back(std::move(messages));
          throw_js(env, n.error());
        }
        lost_ += n.error().lost();  // the group moved past them: go on with what follows
      }
      if (messages.empty()) {
        spare_.push_back(std::move(messages));
        return Napi::Number::New(env, 0);
      }
      pending_.emplace(std::move(messages));
    }
    // The batch: the header and rows (doubles), then each record's value, key and headers.
    const std::vector<mq::Message>& messages = *pending_;
    const std::size_t count = messages.size();
    const std::size_t meta_bytes = (kHeader + count * kStride) * sizeof(double);
    std::size_t bytes = meta_bytes;
    for (const auto& m : messages) {
      bytes += m.payload().size() + encoded_headers(m);
      if (auto k = m.key()) bytes += k->size();
    }
    bytes = (bytes + 7) & ~std::size_t{7};  // the next batch starts 8-aligned
    if (bytes > slab.Length() - at) return Napi::Number::New(env, -static_cast<double>(bytes));
    char* data = slab.Data();
    auto* meta = reinterpret_cast<double*>(data + at);
    meta[kCount] = static_cast<double>(count);
    meta[kFirstSeq] = static_cast<double>(next_seq_);
    meta[kLost] = static_cast<double>(lost_);
    lost_ = 0;
    std::size_t pos = at + meta_bytes;
    for (std::size_t i = 0; i < count; ++i) {
      const mq::Message& m = messages[i];
      double* row = meta + kHeader + i * kStride;
      const mq::Offset o = m.offset();
      row[kOffsetHigh] = static_cast<double>(o >> 32);
      row[kOffsetLow] = static_cast<double>(o & 0xffffffffu);
      row[kTimestampMs] = static_cast<double>(m.timestamp_ns() / 1'000'000);
      row[kValueStart] = static_cast<double>(pos);
      row[kValueLength] = static_cast<double>(m.payload().size());
      if (!m.payload().empty()) std::memcpy(data + pos, m.payload().data(), m.payload().size());
      pos += m.payload().size();
      row[kKeyStart] = static_cast<double>(pos);
      row[kKeyLength] = -1;
      if (auto k = m.key()) {
        if (!k->empty()) std::memcpy(data + pos, k->data(), k->size());
        row[kKeyLength] = static_cast<double>(k->size());
        pos += k->size();
      }
      row[kHeadersStart] = static_cast<double>(pos);
      for (const auto& h : m.headers()) {  // little-endian hosts only (x86-64, aarch64): JS reads readUInt32LE
        const auto name = static_cast<std::uint32_t>(h.name.size());
        const auto value = static_cast<std::uint32_t>(h.value.size());
        std::memcpy(data + pos, &name, 4);
        std::memcpy(data + pos + 4, h.name.data(), name);
        std::memcpy(data + pos + 4 + name, &value, 4);
        if (value != 0) std::memcpy(data + pos + 8 + name, h.value.data(), value);
        pos += 8 + name + value;
      }
      row[kHeadersLength] = static_cast<double>(pos - static_cast<std::size_t>(row[kHeadersStart]));
      row[kRedelivered] = m.redelivered() ? 1 : 0;
      row[kAttempt] = static_cast<double>(m.attempt());
      row[kFirstFailureMs] = static_cast<double>(m.first_failure_ns() / 1'000'000);
    }
    taken_.push_back(Taken{next_seq_, std::move(*pending_), 0});
    pending_.reset();
    next_seq_ += count;
    return Napi::Number::New(env, static_cast<double>(bytes));
  }

  // ack(seq): every record with a sequence number below `seq` is finished.
  Napi::Value Ack(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_usable(env);
    unpark();
    if (info.Length() < 1 || !info[0].IsNumber()) throw_type(env, "ack(seq)");
    ack_below(env, static_cast<std::uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
    return env.Undefined();
  }

  // nack(seq, delayMs, error) -> boolean: hands the record with sequence number `seq` back to the group for a later
  // attempt (mq::Consumer::nack), acking every record received before it; true when that was its last attempt and
  // it went to the dead-letter topic instead. delayMs: a whole number 0..kMaxBackoff, or -1 for the group's policy;
  // error: a string (the dead letter's mq.dlq.error header). Throws what libmq returns (mqCode 'limit': the group's
  // retry table is full; 'invalid_argument': not held, or an overwrite topic), and then the record stays held.
  Napi::Value Nack(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_usable(env);
    unpark();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString())
      throw_type(env, "nack(seq, delayMs, error)");
    const double seq_arg = info[0].As<Napi::Number>().DoubleValue();
    const double delay_arg = info[1].As<Napi::Number>().DoubleValue();
    const auto most = static_cast<double>(mq::kMaxBackoff.count());
    if (delay_arg != -1 && !(delay_arg >= 0 && delay_arg <= most &&
                             delay_arg == static_cast<double>(static_cast<std::int64_t>(delay_arg))))
      throw_js(env,
               mq::Error(mq::Errc::invalid_argument, "nack: delayMs must be a whole number 0.." +
                                                         std::to_string(mq::kMaxBackoff.count()) + ": " + context()));
    const std::string error = info[2].As<Napi::String>().Utf8Value();
    const auto seq = static_cast<std::uint64_t>(seq_arg);
    std::size_t e = 0;
    while (e < taken_.size() && seq >= taken_[e].first_seq + taken_[e].messages.size()) ++e;
    if (e == taken_.size() || seq < taken_[e].first_seq + taken_[e].acked)
      throw_js(env, mq::Error(mq::Errc::invalid_argument,
                              "nack: the record is not held (acked or nacked already, or handed out before the last "
                              "take acked it): " +
                                  context()));
    const std::size_t i = seq - taken_[e].first_seq;
    // nack takes the Message by rvalue reference and leaves it as it was when it fails ("the record stays held,
    // unchanged"): on an error it is still ours, to ack or nack again.
    mq::Message& m = taken_[e].messages[i];
    const std::uint32_t attempt = m.attempt();
    std::optional<std::chrono::milliseconds> delay;
    if (delay_arg >= 0) delay = std::chrono::milliseconds(static_cast<std::int64_t>(delay_arg));
    auto r = delay ? consumer_->nack(std::move(m), *delay, error) : consumer_->nack(std::move(m), error);
    if (!r) throw_js(env, r.error());
    if (*r == mq::Consumer::Nacked::retry) note_retry(attempt, delay);
    settled(e, i + 1);
    return Napi::Boolean::New(env, *r == mq::Consumer::Nacked::dead_lettered);
  }

  // park() -> boolean: a take came back empty. true: onReady will be called once a take may find something;
  // false: take again now (something came in meanwhile).
  Napi::Value Park(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    if (ring_) return Napi::Boolean::New(info.Env(), park_ring());
    {
      std::lock_guard lock(mu_);
      armed_ = true;
    }
    cv_.notify_all();
    return Napi::Boolean::New(info.Env(), true);
  }

  // waiter -> 'io_uring' (one wake-up) or 'thread' (the fallback), how a parked consumer waits.
  Napi::Value Waiter(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), ring_ ? "io_uring" : "thread");
  }

  // held -> how many runs (takes) JS holds unacked; at batchLayout.maxHeld a take returns nothing.
  Napi::Value Held(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(taken_.size()));
  }

  // Runs `work` on the consumer in the libuv pool (a table-lock operation that must not hold the event loop); takes
  // and acks are refused until it settles.
  Napi::Value in_pool(Napi::Env env, std::function<std::optional<mq::Error>(ConsumerWrap&)> work) {
    check_usable(env);
    unpark();
    busy_ = true;
    Ref();
    return Task::run(
        env, [this, work] { return work(*this); }, [](Napi::Env env) { return env.Undefined(); },
        [this](Napi::Env, Napi::Object*) {
          busy_ = false;
          if (closing_) stop_waiter();  // a close() came while the pool had the consumer
          Unref();
        });
  }

  // seek('earliest' | 'latest' | offset) -> Promise: what JS was handed counts as done; the group (all its members)
  // moves; the next take reads from there.
  Napi::Value Seek(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Value to = info.Length() > 0 ? info[0] : env.Undefined();
    std::optional<mq::Start> start;
    mq::Offset offset = 0;
    if (to.IsString() && to.As<Napi::String>().Utf8Value() == "earliest") {
      start = mq::Start::earliest;
    } else if (to.IsString() && to.As<Napi::String>().Utf8Value() == "latest") {
      start = mq::Start::latest;
    } else if (to.IsBigInt()) {
      bool lossless = false;
      offset = to.As<Napi::BigInt>().Uint64Value(&lossless);
    } else if (to.IsNumber()) {
      offset = static_cast<mq::Offset>(to.As<Napi::Number>().DoubleValue());
    } else {
      throw_type(env, "seek('earliest' | 'latest' | offset)");
    }
    check_usable(env);
    unpark();
    (void)consumer_->ack_all();
    release_taken();
    return in_pool(env, [start, offset](ConsumerWrap& self) -> std::optional<mq::Error> {
      auto r = start ? self.topic_->reset_group(self.options_.group, *start)
                     : self.topic_->reset_group(self.options_.group, offset);
      if (!r) return r.error();
      return std::nullopt;
    });
  }

  // rejoin() -> Promise: leaves the group, handing back every record JS holds unfinished (redelivered to the next
  // member that takes, this one included), then joins again.
  Napi::Value Rejoin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_usable(env);
    unpark();
    release_taken();  // dropped unacked: the consumer hands them back when it leaves
    return in_pool(env, [](ConsumerWrap& self) -> std::optional<mq::Error> {
      self.consumer_.reset();
      auto c = mq::Consumer::make(*self.topic_, self.options_);
      if (!c) return c.error();
      self.consumer_.emplace(std::move(*c));
      return std::nullopt;
    });
  }

  void release_taken() {
    pending_.reset();  // taken but not handed to JS yet: unacked, so the consumer hands them back when it leaves
    for (auto& t : taken_) {
      spare_.push_back(std::move(t.messages));
      spare_.back().clear();
    }
    taken_.clear();
  }

  // close() -> Promise: stops the waiter, leaves the group (what JS did not ack goes back to it).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto d = Napi::Promise::Deferred::New(env);
    if (closed_) {
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    if (on_closed_) return on_closed_->Promise();
    on_closed_.emplace(d);
    closing_ = true;
    release_taken();
    if (!busy_) stop_waiter();  // else when the seek or rejoin in the pool is done with the consumer
    return d.Promise();
  }

  // Ends the waiter: the ring's handles close, or the thread ends and releases the ThreadSafeFunction, whose
  // finalizer completes the close.
  void stop_waiter() {
    if (ring_) return close_ring();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      if (waiting_) consumer_->interrupt_wait();
    }
    cv_.notify_all();
  }

  std::string context() const { return "topic=" + topic_->name() + " group=" + options_.group; }

  std::optional<mq::Topic> topic_;
  std::optional<mq::Consumer> consumer_;
  mq::ConsumerOptions options_;
  std::size_t max_batch_ = mq::kMaxBatch;
  std::deque<Taken> taken_;                        // JS thread only
  std::optional<std::vector<mq::Message>> pending_;  // taken, waiting for a slab with room
  std::vector<std::vector<mq::Message>> spare_;    // emptied message vectors, reused (their capacity)
  std::uint64_t next_seq_ = 1;
  std::uint64_t lost_ = 0;
  bool busy_ = false;     // a seek or rejoin runs in the pool
  bool closing_ = false;
  bool closed_ = false;
  std::optional<Napi::Promise::Deferred> on_closed_;
  // The io_uring path (ring_ set): JS thread only.
  std::unique_ptr<FutexRing> ring_;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  int open_handles_ = 0;
  bool parked_ = false;
  bool wait_queued_ = false;  // a FUTEX_WAIT request is in the ring
  std::vector<std::chrono::steady_clock::time_point> retry_due_;  // retries this member nacked: due by then
  Napi::FunctionReference on_ready_;
  std::unique_ptr<Napi::AsyncContext> async_;
  // The thread path.
  Tsfn tsfn_;
  std::thread waiter_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;     // close: the waiter ends
  bool armed_ = false;    // park(): call JS back when something may be there
  bool waiting_ = false;  // the waiter is in wait_ready (it owns the consumer)
  bool cancel_ = false;   // a take wants the consumer back
};

void CallJs(Napi::Env env, Napi::Function cb, ConsumerWrap* self, std::nullptr_t*) {
  if (env == nullptr || cb.IsEmpty() || self->closing_) return;  // tearing down, or closed meanwhile
  try {
    cb.Call(self->Value(), {});
  } catch (const Napi::Error& e) {
    // An exception escaped the JS handler (lib/ catches its own): report it as an uncaught exception.
    napi_fatal_exception(env, e.Value());
  }
}

void InitConsumer(Napi::Env env, Napi::Object exports, AddonData& data) { ConsumerWrap::Init(env, exports, data); }

// topic.consumer({group, fromBeginning, maxBatch, wait, retry, ordering}, onReady) -> Consumer. `retry`: the group's
// retry policy if this member creates the group (retry_policy(); libmq checks the ranges). `ordering`: 'none'
// (default), 'key' or 'exclusive' (mq::parse_ordering), the group's ordering if this member creates the group; an
// existing group keeps its own (topic.info() says which). `wait`: how a parked member
// waits: 'futex' (default) and 'spin' (JS spins before it parks) sleep in io_uring's FUTEX_WAIT where the kernel has
// it (the waiter thread sleeping on the futex where not); 'spin_futex' (spins ~20 us first), 'spin_yield' and
// 'busy_spin' always use the waiter thread, with that strategy.
Napi::Value MakeConsumer(const Napi::CallbackInfo& info, TopicWrap& topic) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw_type(env, "consumer({group, fromBeginning, maxBatch, wait, retry, ordering}, onReady)");
  Napi::Object o = info[0].As<Napi::Object>();
  mq::ConsumerOptions options;
  Napi::Value group = o.Get("group");
  if (!group.IsString()) throw_type(env, "consumer group must be a string");
  options.group = group.As<Napi::String>().Utf8Value();
  options.start = o.Get("fromBeginning").ToBoolean() ? mq::Start::earliest : mq::Start::latest;
  options.auto_ack = false;  // acks follow JS (take's ackSeq, ack(seq)); leaving hands unfinished records back
  options.wait = mq::Wait::futex;
  bool kernel_wait = true;
  Napi::Value wait = o.Get("wait");
  if (wait.IsString()) {
    const std::string w = wait.As<Napi::String>().Utf8Value();
    kernel_wait = w == "futex" || w == "spin";  // 'spin' spins in JS, then parks as 'futex' does
    if (w == "busy_spin") options.wait = mq::Wait::busy_spin;
    else if (w == "spin_yield") options.wait = mq::Wait::spin_yield;
    else if (w == "spin_futex" || w == "spin") options.wait = mq::Wait::spin_futex;
    else if (w == "futex") options.wait = mq::Wait::futex;
    else
      throw_js(env, mq::Error(mq::Errc::invalid_argument, "wait must be 'futex', 'spin', 'spin_futex', 'spin_yield' or "
                                                              "'busy_spin', not '" + w + "': topic=" + topic.topic().name()));
  }
  std::size_t max_batch = mq::kMaxBatch;
  Napi::Value mb = o.Get("maxBatch");
  if (!mb.IsUndefined() && !mb.IsNull()) {
    const double v = mb.IsNumber() ? mb.As<Napi::Number>().DoubleValue() : 0;
    if (!mb.IsNumber() || v < 1 || v > static_cast<double>(mq::kMaxBatch) || v != static_cast<double>(static_cast<std::int64_t>(v)))
      throw_js(env, mq::Error(mq::Errc::invalid_argument, "maxBatch must be a whole number 1.." +
                                                              std::to_string(mq::kMaxBatch) + ": topic=" + topic.topic().name()));
    max_batch = static_cast<std::size_t>(v);
  }
  Napi::Value retry = o.Get("retry");
  if (!retry.IsUndefined() && !retry.IsNull()) options.retry = retry_policy(env, retry, topic.topic().name());
  Napi::Value ordering = o.Get("ordering");
  if (!ordering.IsUndefined() && !ordering.IsNull()) {
    if (!ordering.IsString()) throw_type(env, "ordering must be a string: 'none', 'key' or 'exclusive'");
    const std::string name = ordering.As<Napi::String>().Utf8Value();
    const auto parsed = mq::parse_ordering(name);
    if (!parsed)
      throw_js(env, mq::Error(mq::Errc::invalid_argument, "ordering must be 'none', 'key' or 'exclusive', not '" +
                                                              name + "': topic=" + topic.topic().name() +
                                                              " group=" + options.group));
    options.ordering = *parsed;
  }
  auto c = mq::Consumer::make(topic.topic(), options);
  if (!c) throw_js(env, c.error());
  ConsumerInit init{topic.topic(), std::move(*c), options, max_batch, kernel_wait};
  auto* data = env.GetInstanceData<AddonData>();
  return data->consumer_ctor.New({Napi::External<ConsumerInit>::New(env, &init), info[1]});
}

}  // namespace mqnode
