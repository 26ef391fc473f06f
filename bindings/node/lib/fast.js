'use strict';
// The native fast path, without the kafkajs shape:
//
//   const { Topic } = require('libmq');
//   const t = await Topic.open('orders', { socket });   // through mqd (auto-created if the daemon allows)
//   const off = t.publish(Buffer.from('x'));            // bigint offset; synchronous; never waits
//   const offs = t.publishBatch([a, b, c]);             // BigUint64Array of offsets
//   await t.publishAsync(buf);                          // waits (off the JS thread) while the topic is full
//   const c = t.consumer({ group: 'billing', fromBeginning: true });
//   for await (const msg of c) { ... }                  // msg: {offset: bigint, value: Buffer, key, headers, timestamp}
//   for await (const batch of c.batches()) { ... }      // or arrays of them: one promise per batch, not per record
//   await c.close(); await t.close();
//
// Copies: publish copies the bytes once, from your Buffer into the ring (a string is first encoded to UTF-8 in a
// scratch buffer). Consuming copies each record once, on the JS thread, from the ring into a 64 KiB slab that
// batches fill one after the other (Slabs in common.js); msg.value/key/headers are views of it, so keeping one
// message alive keeps its slab alive. Shared memory itself is never exposed to JavaScript.
//
// Acks: a message is acked when the loop asks for the next one (after your loop body finished with it); leaving
// the loop (break, return, throw) or close() hands the records not yet acked back to the group. c.nack(msg) hands
// one back for a retry after the group's backoff instead (or to `<topic>.dlq` after its last attempt).
const {
  connect, resolveSocket, memberOptions, redeliveryPolicy, orderingOption, groupInfo, nackMakingRoom, takeSpinning,
  Slabs, FastMessage,
} = require('./common');
const { fromNative, KafkaJSNonRetriableError } = require('./errors');
const { waitForRoom } = require('./producer');
const { retryLimits } = require('./native');


function wrap(fn, topic) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e, { topic });
  }
}

// A consumer group member pulled on the JS thread (see src/consumer.cc): while records flow, each take() acks what
// was handed out before and copies the next run of records into one Buffer; when the topic is empty it parks and
// the native waiter wakes the loop once.
class FastConsumer {
  constructor(topic, options) {
    this.topicName = topic.name;
    this.batch = null;
    this.index = 0;
    this.done = 0;  // every record below this sequence number was handed out, and is acked at the next take
    this.closed = false;
    this.lost = 0;  // overwrite topics: records lost to lapping
    this.wake = null;
    this.slabs = new Slabs();
    this.queued = [];  // batches a nack took to make room in the group's retry table: handed out next
    // What this member holds unacked is the batch being handed out (the take after it acks it): maxInFlight caps
    // maxBatch.
    const { maxBatch, wait } = memberOptions(options);
    // The group's retry policy for nack() if this member creates the group (an existing group keeps its own: see
    // `redelivery`).
    const retry = redeliveryPolicy(options.redelivery);
    // The group's ordering if this member creates the group (an existing group keeps its own: see `ordering`).
    const ordering = orderingOption(options.ordering);
    this.topic = topic;
    this.group = options.group;
    this.spin = wait === 'spin';
    this.flowing = false;  // the last take had records (takeSpinning)
    this.maxBatch = maxBatch;
    this.member = wrap(
      () => topic.native.consumer(
        {
          group: options.group,
          fromBeginning: !!options.fromBeginning,
          maxBatch,
          wait,
          retry,
          ordering,
        },
        () => this.onReady(),
      ),
      topic.name,
    );
  }

  onReady() {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  // The group's ordering: 'none', 'key' or 'exclusive' (the one it was created with, whatever this member asked
  // for); null once closed.
  get ordering() {
    return this.closed ? null : this.#groupInfo()?.ordering ?? null;
  }

  // The group's retry policy for nack(), {maxAttempts, backoffMs, factor, maxBackoffMs, jitter} (the one it has,
  // whatever this member asked for: mqctl set-retry changes it); null once closed.
  get redelivery() {
    return this.closed ? null : this.#groupInfo()?.retry ?? null;
  }

  // This member's group in the topic's info(), or undefined when the topic does not list it.
  #groupInfo() {
    return wrap(() => groupInfo(this.topic.native, this.group), this.topicName);
  }

  // 'io_uring' or 'thread': how this member parks when its topic is empty.
  get waiter() {
    return this.member ? this.member.waiter : null;
  }

  // Acks `msg` and everything received before it now (instead of at the next take).
  ack(msg) {
    if (msg && msg.seq && this.member) wrap(() => this.member.ack(msg.seq + 1), this.topicName);
  }

  // Hands `msg` back to the group for another attempt, and acks every record received before it (as ack does):
  // the group gives it to whichever member takes first once `delayMs` has passed (default: the group's backoff for
  // its attempt), before new records, with msg.attempt one higher. When this was its last attempt (the group's
  // `redelivery.maxAttempts`) it goes to the dead-letter topic `<topic>.dlq` instead, with `error` in its
  // mq.dlq.error header. -> Promise<'retry' | 'deadLettered'>, at once unless the group's retry table is full (32
  // records wait): then it waits for the next retry to come due and takes it (handed out after the records in hand)
  // to make room. Nack a message before the loop asks for the next record (or batch), which acks it. Rejects (the
  // record stays held) with mqCode 'invalid_argument' for an overwrite topic or a record not held any more, or the
  // dead-letter publish's error.
  async nack(msg, { delayMs, error = '' } = {}) {
    if (!(msg instanceof FastMessage) || !msg.from(this)) {
      throw new KafkaJSNonRetriableError('nack(msg): msg must be a message this consumer handed out');
    }
    const most = retryLimits.maxBackoffMs;
    if (delayMs !== undefined && !(Number.isInteger(delayMs) && delayMs >= 0 && delayMs <= most)) {
      throw new KafkaJSNonRetriableError(`nack: delayMs must be a whole number from 0 to ${most}, got ${delayMs}`);
    }
    const text = error instanceof Error ? error.message : error;
    if (typeof text !== 'string') throw new KafkaJSNonRetriableError('nack: error must be a string or an Error');
    if (this.closed) throw new KafkaJSNonRetriableError(`nack: the consumer is closed: topic=${this.topicName}`);
    let dead;
    try {
      dead = await nackMakingRoom(this, msg.seq, delayMs === undefined ? -1 : delayMs, text);
    } catch (e) {
      throw fromNative(e, { topic: this.topicName });
    }
    if (dead === null) {
      throw new KafkaJSNonRetriableError(`nack: the consumer was closed meanwhile: topic=${this.topicName}`);
    }
    return dead ? 'deadLettered' : 'retry';
  }

  // Resolves once a take may find something (the member parked), or at close.
  park() {
    return new Promise((resolve) => {
      this.wake = resolve;
      if (!this.member.park()) this.onReady();  // something came in meanwhile: take again at once
    });
  }

  alive() {
    return !this.closed;
  }

  // The next batch from the member (acking what was handed out), or null when it has nothing now.
  take() {
    const batch = wrap(() => this.slabs.take(this.member, this.maxBatch, this.done), this.topicName);
    if (batch !== null) this.lost += batch.lost;
    return batch;
  }

  // Waits for a batch; null once closed.
  async nextBatch() {
    for (;;) {
      if (this.closed) return null;
      if (this.queued.length > 0) return this.queued.shift();
      let batch;
      try {
        batch = takeSpinning(this);
      } catch (e) {  // the iteration ends here (for await does not call return() after a throwing next())
        await this.close();
        throw e;
      }
      if (batch !== null) return batch;
      await this.park();
    }
  }

  async next() {
    const b = this.batch;
    if (b !== null && this.index < b.count) {
      const i = this.index++;
      const msg = new FastMessage(b, i, b.firstSeq + i, this);
      this.done = msg.seq + 1;
      return { value: msg, done: false };
    }
    this.batch = await this.nextBatch();
    this.index = 0;
    if (this.batch === null) return { value: undefined, done: true };
    return this.next();
  }

  // for await (const batch of consumer.batches()): arrays of messages, one promise per batch instead of per
  // record. A batch is acked when the loop asks for the next one.
  async *batches() {
    try {
      for (;;) {
        const b = await this.nextBatch();
        if (b === null) return;
        const out = new Array(b.count);
        for (let i = 0; i < b.count; i++) out[i] = new FastMessage(b, i, b.firstSeq + i, this);
        this.done = b.firstSeq + b.count;
        yield out;
      }
    } finally {
      await this.close();
    }
  }

  async return() {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  // Leaves the group: what was handed out and finished is acked (the last record handed out counts as finished
  // only once the loop asked for the next one); the rest goes back to the group.
  async close() {
    if (this.closed) return;
    this.closed = true;
    this.batch = null;
    const m = this.member;
    this.member = null;
    this.onReady();
    if (m) await m.close();
  }
}

class Topic {
  constructor(client, handle, name) {
    this.client = client;
    this.native = handle;
    this.name = name;
    this.consumers = new Set();
  }

  // options: {socket, clientId, create: {capacity, maxMessage, policy, blockTimeoutMs, storage, mode, groups}}
  static async open(name, options = {}) {
    const socket = resolveSocket(options);
    const client = await connect(socket, options.clientId);
    try {
      const handle = options.create ? await client.create(name, options.create) : await client.open(name);
      return new Topic(client, handle, name);
    } catch (e) {
      client.close();
      throw fromNative(e, { topic: name, socket });
    }
  }

  publish(value) {
    return wrap(() => this.native.publish(value), this.name);
  }

  publishBatch(values) {
    return wrap(() => this.native.publishBatch(values), this.name);
  }

  // Waits for room (up to the topic's block timeout) instead of throwing KafkaJSTopicFull. -> bigint offset, or
  // BigUint64Array for an array.
  async publishAsync(value) {
    const values = Array.isArray(value) ? value : [value];
    const out = new BigUint64Array(values.length);
    let i = 0;
    while (i < values.length) {
      try {
        out[i] = this.native.publish(values[i]);
        i += 1;
      } catch (e) {
        if (e.mqCode !== 'full') throw fromNative(e, { topic: this.name });
        const [first] = await waitForRoom(this.native, [{ value: values[i] }], 0).catch((err) => {
          throw fromNative(err, { topic: this.name });
        });
        out[i] = BigInt(first);
        i += 1;
      }
    }
    return Array.isArray(value) ? out : out[0];
  }

  info() {
    return wrap(() => this.native.info(), this.name);
  }

  resetGroup(group, to) {
    return wrap(() => this.native.resetGroup(group, to), this.name);
  }

  // Changes the retry policy of `group` on purpose, for every member at once (as `mqctl set-retry` and libmq's
  // Topic::set_retry_policy; a member joining never changes it). `policy`: as the consumer option `redelivery`, the
  // fields not given taking the defaults. Records already waiting keep their delay. Throws KafkaJSNonRetriableError
  // naming a bad field, or the group when the topic has none of that name.
  setRetryPolicy(group, policy) {
    const p = redeliveryPolicy(policy, 'policy');
    if (p === undefined) throw new KafkaJSNonRetriableError('setRetryPolicy(group, policy) needs a policy');
    try {
      this.native.setRetryPolicy(group, p);
    } catch (e) {
      if (e.mqCode === 'not_found') throw new KafkaJSNonRetriableError(e.message);  // the group, not the topic
      throw fromNative(e, { topic: this.name });
    }
  }

  consumer(options = {}) {
    if (typeof options.group !== 'string') throw new KafkaJSNonRetriableError('consumer({group}) needs a group name');
    const c = new FastConsumer(this, options);
    this.consumers.add(c);
    return c;
  }

  // Closes the consumers made from this topic too, then the producer and the daemon connection.
  async close() {
    await Promise.all([...this.consumers].map((c) => c.close()));
    this.consumers.clear();
    this.native.close();
    this.client.close();
  }
}

module.exports = { Topic, FastConsumer };
