'use strict';
// Shared helpers: where mqd listens, connecting, and decoding the consumer thread's batches.
const native = require('./native');
const { EventEmitter } = require('events');
const { KafkaJSError, fromNative } = require('./errors');

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

// Parses a daemon reply ([[key, value], ...]) of a `describe` request into a topic section.
function parseTopicSection(fields) {
  const t = { groups: [] };
  let g = null;
  for (const [k, v] of fields) {
    if (k === 'group') {
      g = { name: v };
      t.groups.push(g);
    } else if (k.startsWith('group_') && g) {
      g[k.slice('group_'.length)] = v;
    } else {
      t[k] = v;
    }
  }
  return t;
}

const STRIDE = 10;  // see src/consumer.cc: offHi, offLo, tsMs, vStart, vLen, kStart, kLen, hStart, hLen, redelivered

function offsetString(hi, lo) {
  return hi === 0 ? String(lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}
function offsetBigInt(hi, lo) {
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

// Header bytes as the consumer thread writes them: (u32 nameLen, name, u32 valueLen, value)*. Repeated names
// become an array of Buffers, as kafkajs 2 gives them.
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

// A batch from the consumer thread -> [{seq, message}] with kafkajs KafkaMessage fields. `value`, `key` and header
// values are views (subarray) of the batch's one Buffer, which holds the copy made off the ring.
function decodeKafkaBatch(data, meta, count, firstSeq) {
  const out = new Array(count);
  for (let i = 0; i < count; i++) {
    const b = i * STRIDE;
    const vs = meta[b + 3];
    const vl = meta[b + 4];
    const kl = meta[b + 6];
    const hl = meta[b + 8];
    out[i] = {
      seq: firstSeq + i,
      message: {
        key: kl < 0 ? null : data.subarray(meta[b + 5], meta[b + 5] + kl),
        value: data.subarray(vs, vs + vl),
        timestamp: String(meta[b + 2]),
        attributes: 0,
        offset: offsetString(meta[b], meta[b + 1]),
        headers: hl === 0 ? {} : decodeHeaders(data, meta[b + 7], hl),
        size: vl,
        isControlRecord: false,
        redelivered: meta[b + 9] === 1,
      },
    };
  }
  return out;
}

// The same batch for the native fast path: offset a bigint, timestamp a number (ms).
function decodeFastBatch(data, meta, count, firstSeq) {
  const out = new Array(count);
  for (let i = 0; i < count; i++) {
    const b = i * STRIDE;
    const vs = meta[b + 3];
    const kl = meta[b + 6];
    const hl = meta[b + 8];
    out[i] = {
      seq: firstSeq + i,
      offset: offsetBigInt(meta[b], meta[b + 1]),
      value: data.subarray(vs, vs + meta[b + 4]),
      key: kl < 0 ? null : data.subarray(meta[b + 5], meta[b + 5] + kl),
      headers: hl === 0 ? {} : decodeHeaders(data, meta[b + 7], hl),
      timestamp: meta[b + 2],
      redelivered: meta[b + 9] === 1,
    };
  }
  return out;
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

// Acks every record a native consumer delivered up to `seq`: a store into the array shared with its consumer thread
// (src/consumer.cc: ctl[0] = acked through, ctl[1] = the sequence it sleeps waiting for), and a call into the addon
// only when that thread sleeps waiting for exactly this ack.
function ackThrough(ctl, member, seq) {
  if (!ctl || seq + 1 <= ctl[0]) return;
  ctl[0] = seq + 1;
  if (ctl[1] !== 0 && seq + 1 >= ctl[1]) member.wake();
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
    this.emitter.on(eventName, listener);
    return () => this.emitter.off(eventName, listener);
  }

  logger() {
    return this.logger_;
  }
}

module.exports = {
  ackThrough, ClientBase, networkEvents,
  DEFAULT_SOCKET, resolveSocket, connect, connectOnce, parseTopicSection, decodeKafkaBatch, decodeFastBatch,
};
