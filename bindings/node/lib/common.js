'use strict';
// Shared helpers: where mqd listens, connecting, and decoding the consumer thread's batches.
const util = require('util');
const native = require('./native');
const { EventEmitter } = require('events');
const { KafkaJSError, KafkaJSNonRetriableError, fromNative } = require('./errors');

const DEFAULT_SOCKET = '/run/mq/mqd.sock';

// The daemon socket: an explicit `socket` option, else a `unix:/path` broker, else $MQ_SOCKET, else the default.
function resolveSocket({ socket, brokers } = {}) {
  if (socket) return socket;
  if (Array.isArray(brokers)) {
    for (const b of brokers) if (typeof b === 'string' && b.startsWith('unix:')) return b.slice('unix:'.length);
  }
  return process.env.MQ_SOCKET || DEFAULT_SOCKET;
}

// -> a native Client; rejects with KafkaJSConnectionError naming the socket when mqd is not there.
async function connect(socket, clientId = '', timeoutMs = 5000) {
  try {
    return await native.connect(socket, clientId || '', timeoutMs);
  } catch (e) {
    throw fromNative(e, { socket });
  }
}

// The batches a native consumer's take() returns: one Buffer holding a header and a row of numbers per record
// (positions named by the addon's batchLayout, defined once in src/consumer.cc), then the records' bytes.
const L = native.batchLayout;
const { header: HEADER, stride: STRIDE } = L;

// The batch written at byte `at` of `slab` -> {buf: the slab (every position in the rows counts from its start),
// meta: the header and rows, count, firstSeq, lost}
function readBatch(slab, at) {
  const count = new Float64Array(slab.buffer, slab.byteOffset + at, HEADER)[L.count];
  const meta = new Float64Array(slab.buffer, slab.byteOffset + at, HEADER + count * STRIDE);
  return { buf: slab, meta, count, firstSeq: meta[L.firstSeq], lost: meta[L.lost] };
}

// Slabs the native consumer writes batches into, one after the other, as Node's Buffer pool hands out slices of
// its 8 KiB slabs: a batch costs no allocation, and a slab, once written, is never written again, so the messages
// (views of it) stay valid for as long as they are referenced. Keeping one message keeps its slab (64 KiB) alive.
// (Slabs of the addon's own memory, recycled by a finalizer, faulted in more pages than these: V8 frees a Buffer's
// memory at the scavenge that finds it dead, and knows its size, so it collects as often as the slabs need.)
const SLAB_BYTES = 64 * 1024;

class Slabs {
  constructor() {
    this.slab = null;
    this.at = 0;
  }

  // The next batch from `member` (acking every record below ackSeq first), or null when it has none.
  take(member, max, ackSeq) {
    if (this.slab === null) this.fresh(SLAB_BYTES);
    let n = member.take(max, ackSeq, this.slab, this.at);
    if (n < 0) {  // not enough room left in this slab: the batch waits in the member for a fresh one
      this.fresh(Math.max(SLAB_BYTES, -n));
      n = member.take(max, ackSeq, this.slab, this.at);
    }
    if (n === 0) return null;
    const batch = readBatch(this.slab, this.at);
    this.at += n;
    return batch;
  }

  fresh(bytes) {
    this.slab = Buffer.allocUnsafeSlow(bytes);  // its own ArrayBuffer: 8-aligned at byte 0
    this.at = 0;
  }
}

function offsetBigInt(hi, lo) {
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

// Header bytes as the addon writes them: (u32 nameLen, name, u32 valueLen, value)*. Repeated names become an array
// of Buffers, as kafkajs 2 gives them.
function decodeHeaders(data, start, len) {
  const headers = {};
  let at = start;
  const end = start + len;
  while (at < end) {
    const nl = data.readUInt32LE(at);
    const name = data.toString('utf8', at + 4, at + 4 + nl);
    at += 4 + nl;
    const vl = data.readUInt32LE(at);
    const value = data.subarray(at + 4, at + 4 + vl);
    at += 4 + vl;
    const prev = headers[name];
    if (prev === undefined) headers[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = [prev, value];
  }
  return headers;
}

// The row's first-failure time as `as(ms)`, or undefined when the record has not failed (attempt 1).
function firstFailureMs(meta, row, as) {
  const ms = meta[row + L.firstFailureMs];
  return ms === 0 ? undefined : as(ms);
}

// A received record with kafkajs' KafkaMessage fields (`offset` and `timestamp` strings, `value`, `key` and header
// values Buffers: views of the batch's one Buffer, which holds the copy made off the ring). Each field is computed on
// first access and kept: a handler that reads only `value` pays for nothing else. Fields can be reassigned, as on
// kafkajs' plain objects. Being getters, they are not own properties: `{...message}` copies none of them, and
// JSON.stringify and console.log go through toJSON() / inspect, which give the plain kafkajs shape.
class KafkaMessage {
  #meta;
  #buf;
  #row;
  #value;
  #key;
  #offset;
  #timestamp;
  #headers;

  constructor(batch, index) {
    this.#meta = batch.meta;
    this.#buf = batch.buf;
    this.#row = HEADER + index * STRIDE;
  }

  get value() {
    if (this.#value === undefined) {
      const start = this.#meta[this.#row + L.valueStart];
      this.#value = this.#buf.subarray(start, start + this.#meta[this.#row + L.valueLength]);
    }
    return this.#value;
  }
  set value(v) { this.#value = v; }

  get key() {
    if (this.#key === undefined) {
      const len = this.#meta[this.#row + L.keyLength];
      const start = this.#meta[this.#row + L.keyStart];
      this.#key = len < 0 ? null : this.#buf.subarray(start, start + len);
    }
    return this.#key;
  }
  set key(v) { this.#key = v; }

  get offset() {
    if (this.#offset === undefined) {
      const hi = this.#meta[this.#row + L.offsetHigh];
      const lo = this.#meta[this.#row + L.offsetLow];
      this.#offset = hi === 0 ? String(lo) : offsetBigInt(hi, lo).toString();
    }
    return this.#offset;
  }
  set offset(v) { this.#offset = v; }

  get timestamp() {
    if (this.#timestamp === undefined) this.#timestamp = String(this.#meta[this.#row + L.timestampMs]);
    return this.#timestamp;
  }
  set timestamp(v) { this.#timestamp = v; }

  get headers() {
    if (this.#headers === undefined) {
      const len = this.#meta[this.#row + L.headersLength];
      this.#headers = len === 0 ? {} : decodeHeaders(this.#buf, this.#meta[this.#row + L.headersStart], len);
    }
    return this.#headers;
  }
  set headers(v) { this.#headers = v; }

  get size() { return this.#meta[this.#row + L.valueLength]; }
  get attributes() { return 0; }
  get isControlRecord() { return false; }
  // libmq: handed out before (to a member that died or left without acking it, or nacked: a retry).
  get redelivered() { return this.#meta[this.#row + L.redelivered] === 1; }
  // libmq: the group's delivery of this record: 1, then +1 per failed handler call (nack).
  get attempt() { return this.#meta[this.#row + L.attempt]; }
  // libmq: when the record first failed (ms since the epoch, a string like `timestamp`); undefined on attempt 1.
  get firstFailureTimestamp() { return firstFailureMs(this.#meta, this.#row, String); }

  toJSON() {
    return {
      key: this.key, value: this.value, timestamp: this.timestamp, attributes: 0, offset: this.offset,
      headers: this.headers, size: this.size, isControlRecord: false, redelivered: this.redelivered,
      attempt: this.attempt, firstFailureTimestamp: this.firstFailureTimestamp,
    };
  }
  [util.inspect.custom](depth, options, inspect) {
    return `KafkaMessage ${inspect(this.toJSON(), options)}`;
  }
}

// The fast path's record: `offset` a bigint, `timestamp` and `firstFailureTimestamp` numbers (ms); the same lazy
// fields otherwise.
class FastMessage {
  #meta;
  #buf;
  #row;
  #value;
  #key;
  #headers;
  #owner;

  constructor(batch, index, seq, owner) {
    this.#meta = batch.meta;
    this.#buf = batch.buf;
    this.#row = HEADER + index * STRIDE;
    this.#owner = owner;
    this.seq = seq;  // for ack(msg), nack(msg)
  }

  // Whether `consumer` handed this message out (nack checks).
  from(consumer) { return this.#owner === consumer; }

  get value() {
    if (this.#value === undefined) {
      const start = this.#meta[this.#row + L.valueStart];
      this.#value = this.#buf.subarray(start, start + this.#meta[this.#row + L.valueLength]);
    }
    return this.#value;
  }
  get key() {
    if (this.#key === undefined) {
      const len = this.#meta[this.#row + L.keyLength];
      const start = this.#meta[this.#row + L.keyStart];
      this.#key = len < 0 ? null : this.#buf.subarray(start, start + len);
    }
    return this.#key;
  }
  get offset() { return offsetBigInt(this.#meta[this.#row + L.offsetHigh], this.#meta[this.#row + L.offsetLow]); }
  get timestamp() { return this.#meta[this.#row + L.timestampMs]; }
  get headers() {
    if (this.#headers === undefined) {
      const len = this.#meta[this.#row + L.headersLength];
      this.#headers = len === 0 ? {} : decodeHeaders(this.#buf, this.#meta[this.#row + L.headersStart], len);
    }
    return this.#headers;
  }
  get redelivered() { return this.#meta[this.#row + L.redelivered] === 1; }
  get attempt() { return this.#meta[this.#row + L.attempt]; }
  get firstFailureTimestamp() { return firstFailureMs(this.#meta, this.#row, Number); }

  toJSON() {
    return { offset: this.offset.toString(), value: this.value, key: this.key, headers: this.headers,
             timestamp: this.timestamp, redelivered: this.redelivered, attempt: this.attempt,
             firstFailureTimestamp: this.firstFailureTimestamp };
  }
  [util.inspect.custom](depth, options, inspect) {
    return `Message ${inspect({ ...this.toJSON(), offset: this.offset }, options)}`;
  }
}

// The idempotent connect() of producer, consumer and admin (the blog calls it before every send): one attempt at a
// time, shared by concurrent callers; on success sets owner.client and calls onConnected().
function connectOnce(owner, onConnected) {
  if (owner.client) return Promise.resolve();
  if (!owner.connecting) {
    const { socket, clientId, timeout } = owner.kafka.connection();
    owner.connecting = connect(socket, clientId, timeout).then(
      (c) => {
        owner.client = c;
        owner.connecting = null;
        onConnected();
      },
      (e) => {
        owner.connecting = null;
        throw e;
      },
    );
  }
  return owner.connecting;
}

// The events kafkajs's Producer and Admin emit, under their prefix ('producer', 'admin').
function networkEvents(prefix) {
  return Object.freeze({
    CONNECT: `${prefix}.connect`,
    DISCONNECT: `${prefix}.disconnect`,
    REQUEST: `${prefix}.network.request`,
    REQUEST_TIMEOUT: `${prefix}.network.request_timeout`,
    REQUEST_QUEUE_SIZE: `${prefix}.network.request_queue_size`,
  });
}

// What the kafkajs Producer and Admin share on libmq: the daemon connection (connect() idempotent and shared by
// concurrent callers), their events, on() and logger().
class ClientBase {
  constructor(kafka, config, logName, events) {
    this.kafka = kafka;
    this.config = config;
    this.logger_ = kafka.logger().namespace(logName);
    this.client = null;
    this.connecting = null;
    this.emitter = new EventEmitter();
    this.events = events;
  }

  async connect() {
    return connectOnce(this, () => this.emitEvent(this.events.CONNECT));
  }

  emitEvent(type) {
    this.emitter.emit(type, { type, timestamp: Date.now(), payload: null });
  }

  // Closes the daemon connection (once a connect in flight has settled) and emits DISCONNECT if there was one.
  async closeClient() {
    if (this.connecting) await this.connecting.catch(() => {});
    if (this.client) {
      this.client.close();
      this.client = null;
      this.emitEvent(this.events.DISCONNECT);
    }
  }

  on(eventName, listener) {
    const names = Object.values(this.events);
    if (!names.includes(eventName)) {
      throw new KafkaJSError(`Event name should be one of ${names.join(', ')}`, { retriable: false });
    }
    // A listener that throws (or rejects) is logged, never thrown into connect() or send(), as kafkajs does.
    const guarded = (e) => {
      Promise.resolve()
        .then(() => listener(e))
        .catch((err) => this.logger_.error(`Failed to execute listener: ${err && err.message}`, { eventName, stack: err && err.stack }));
    };
    this.emitter.on(eventName, guarded);
    return () => this.emitter.off(eventName, guarded);
  }

  logger() {
    return this.logger_;
  }
}

// The member options both consumer APIs take -> {maxInFlight, maxBatch, wait}, or throws naming the bad one.
//   maxInFlight: records a member may hold unacked (taken ahead + being processed); 1 hands each record of a group
//     to whichever process is free. maxBatch: records per take, 1..63 (a take holds one run), at most maxInFlight.
//     Both default to 63; `inFlightDefault` overrides maxInFlight's default (kafkajs' eachBatch gathers takes).
//   wait: how an idle member waits. 'futex' (default: sleeps; the producer's wake reaches the event loop once;
//     while records flow it first takes again for FLOW_SPIN_MS, so a consumer that catches up with a steady
//     producer does not pay a wake-up per batch), 'spin' (the JS thread keeps taking for SPIN_MS before it parks:
//     lower latency, more CPU), or the waiter thread's own strategies 'spin_futex', 'spin_yield', 'busy_spin'.
const WAITS = ['futex', 'spin', 'spin_futex', 'spin_yield', 'busy_spin'];
const SPIN_MS = 0.05;
const FLOW_SPIN_MS = 0.01;

// A member's next batch, or null (then it parks): `member.take()` once, and while it comes back empty, again for
// SPIN_MS (wait 'spin') or, right after a take that had records, FLOW_SPIN_MS. The member keeps `spin` (its wait is
// 'spin') and `flowing` (its last take had records), which this updates.
function takeSpinning(member) {
  let batch = member.take();
  if (batch === null && (member.spin || member.flowing)) {
    const until = performance.now() + (member.spin ? SPIN_MS : FLOW_SPIN_MS);
    while (batch === null && performance.now() < until) batch = member.take();
  }
  member.flowing = batch !== null;
  return batch;
}

function memberOptions(config, inFlightDefault = native.batchLayout.maxBatch) {
  const most = native.batchLayout.maxBatch;
  const whole = (name, v, max, dflt = most) => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v < 1 || v > max) {
      throw new KafkaJSNonRetriableError(`${name} must be a whole number from 1 to ${max}, got ${v}`);
    }
    return v;
  };
  const maxInFlight = whole('maxInFlight', config.maxInFlight, 1 << 30, inFlightDefault);
  const maxBatch = Math.min(whole('maxBatch', config.maxBatch, most), maxInFlight);
  if (config.wait !== undefined && !WAITS.includes(config.wait)) {
    throw new KafkaJSNonRetriableError(`wait must be one of ${WAITS.join(', ')}, got ${config.wait}`);
  }
  return { maxInFlight, maxBatch, wait: config.wait };
}

// The consumer option `redelivery` (both APIs): the group's retry policy for records whose handling failed
// (libmq's RetryPolicy), given to the group when this member creates it (an existing group keeps its own: mqctl
// set-retry changes it) -> {maxAttempts, backoffMs, factor, maxBackoffMs, jitter} with the defaults filled in, or
// undefined when not given; throws KafkaJSNonRetriableError naming the field that is unknown or out of range.
//   maxAttempts: deliveries of a record, the first included, before it goes to the dead-letter topic (1..63,
//     default 5); backoffMs: the delay after the first failure (default 100); factor: each further failure multiplies
//     it (1..100, default 2); maxBackoffMs: the longest delay (backoffMs..1 day, default 30000); jitter: a delay is
//     shortened by a random fraction of itself up to this (0..1, default 0.1).
const RL = native.retryLimits;
const REDELIVERY = {  // field -> [least, most, whole number]
  maxAttempts: [1, RL.maxAttempts, true],
  backoffMs: [0, RL.maxBackoffMs, true],
  factor: [1, 100, false],
  maxBackoffMs: [0, RL.maxBackoffMs, true],
  jitter: [0, 1, false],
};

function redeliveryPolicy(value, name = 'redelivery') {
  if (value === undefined) return undefined;
  const fields = Object.keys(REDELIVERY).join(', ');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new KafkaJSNonRetriableError(`${name} must be an object {${fields}}, got ${value}`);
  }
  for (const key of Object.keys(value)) {
    if (!(key in REDELIVERY)) {
      throw new KafkaJSNonRetriableError(`${name}: unknown option '${key}' (options: ${fields})`);
    }
  }
  const policy = {};
  for (const [field, [least, most, whole]] of Object.entries(REDELIVERY)) {
    const v = value[field] === undefined ? RL.defaults[field] : value[field];
    if (typeof v !== 'number' || !(v >= least && v <= most) || (whole && !Number.isInteger(v))) {
      const what = `${whole ? 'a whole number' : 'a number'} from ${least} to ${most}`;
      throw new KafkaJSNonRetriableError(`${name}.${field} must be ${what}, got ${value[field]}`);
    }
    policy[field] = v;
  }
  if (policy.backoffMs > policy.maxBackoffMs) {
    throw new KafkaJSNonRetriableError(`${name}.backoffMs (${policy.backoffMs}) must not exceed ${name}.maxBackoffMs ` +
      `(${policy.maxBackoffMs}${value.maxBackoffMs === undefined ? ', the default' : ''})`);
  }
  return policy;
}

// The consumer option `ordering` (both APIs): how the group shares its records among its members, given to the
// group when this member creates it (an existing group keeps its own) -> 'none' (the default: competing consumers),
// 'key' (records with the same key go to one member at a time, in offset order; other keys in parallel) or
// 'exclusive' (one member takes, in offset order; the others stand by and take over when it leaves or dies); throws
// KafkaJSNonRetriableError naming the option and the allowed values for anything else.
const ORDERINGS = native.orderings;

function orderingOption(value) {
  if (value === undefined) return 'none';
  if (typeof value !== 'string' || !ORDERINGS.includes(value)) {
    const allowed = ORDERINGS.map((o) => `'${o}'`).join(', ');
    throw new KafkaJSNonRetriableError(`ordering must be one of ${allowed}, got ${util.inspect(value)}`);
  }
  return value;
}

// The entry of `group` in the native topic's info().groups ({name, ordering, retry, ...}), or undefined when the
// topic does not list it. A member that joined sees its group here: the ordering and retry policy the group has.
function groupInfo(topic, group) {
  return topic.info().groups.find((x) => x.name === group);
}

// Whether two retry policies are the same as libmq stores them (factor and jitter in thousandths).
function sameRetry(a, b) {
  const milli = (x) => Math.round(x * 1000);
  return a.maxAttempts === b.maxAttempts && a.backoffMs === b.backoffMs && a.maxBackoffMs === b.maxBackoffMs &&
    milli(a.factor) === milli(b.factor) && milli(a.jitter) === milli(b.jitter);
}

// Nacks the record with sequence number `seq` that `owner.member` holds (delayMs -1: the group's backoff) -> true
// when it went to the dead-letter topic, false when it waits for a retry, null when `owner.alive()` turned false
// first (the record stays held: closing hands it back to the group). Other errors are thrown; the record stays held.
// A nack that finds the group's retry table full swaps with a due retry in libmq itself; one that still gets mqCode
// 'limit' (none due yet, or libmq is still handing out a run) makes room the one way left: it takes the next retry
// that comes due (taking one frees its entry; while the table is full a take hands out
// nothing else), parking until one does, queues what it took in `owner.queued` (to be handed out after what is in
// hand: acks are cumulative, so records go on in the order they were taken), and nacks again. `owner`: {member,
// slabs, queued, park() -> Promise (resolves when a take may find something), alive() -> boolean}.
async function nackMakingRoom(owner, seq, delayMs, text) {
  for (;;) {
    try {
      return owner.member.nack(seq, delayMs, text);
    } catch (e) {
      if (e.mqCode !== 'limit' || owner.member.held >= L.maxHeld) throw e;  // (held: a take could take nothing)
    }
    const batch = owner.slabs.take(owner.member, 1, 0);  // ackSeq 0: acks nothing (the record is held until nacked)
    if (batch !== null) {
      owner.queued.push(batch);
      continue;
    }
    await owner.park();
    if (!owner.alive()) return null;
  }
}

module.exports = {
  ClientBase, memberOptions, takeSpinning, networkEvents, redeliveryPolicy, orderingOption, groupInfo, sameRetry,
  nackMakingRoom,
  DEFAULT_SOCKET, resolveSocket, connect, connectOnce, Slabs, KafkaMessage, FastMessage,
};
