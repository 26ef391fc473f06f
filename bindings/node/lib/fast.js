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
//   await c.close(); await t.close();
//
// Copies: publish copies the bytes once, from your Buffer into the ring (a string is first encoded to UTF-8 in a
// scratch buffer). Consuming copies each record once, in the consumer thread, from the ring into a batch buffer
// that becomes a Node Buffer without another copy; msg.value/key/headers are views of that batch Buffer (keeping
// one message alive keeps its batch's memory). Shared memory itself is never exposed to JavaScript.
//
// Acks: a message is acked when the loop asks for the next one (after your loop body finished with it); leaving
// the loop (break, return, throw) or close() hands the records not yet acked back to the group.
const { ackThrough, connect, resolveSocket, decodeFastBatch } = require('./common');
const { fromNative, KafkaJSNonRetriableError } = require('./errors');

function wrap(fn, topic) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e, { topic });
  }
}

class FastConsumer {
  constructor(topic, options) {
    this.topicName = topic.name;
    this.queue = [];
    this.head = 0;
    this.last = null;  // the message handed out last: acked on the next next()
    this.waiter = null;
    this.error = null;
    this.closed = false;
    this.lost = 0;  // overwrite topics: records lost to lapping
    this.member = wrap(
      () => topic.native.consumer(
        {
          group: options.group,
          fromBeginning: !!options.fromBeginning,
          maxInFlight: options.maxInFlight,
          maxBatch: options.maxBatch,
          wait: options.wait,
        },
        (kind, gen, a, b, c, d) => this.onEvent(kind, a, b, c, d),
      ),
      topic.name,
    );
    this.ctl = this.member.ctl;
  }

  onEvent(kind, a, b, c, d) {
    if (this.closed) return;
    if (kind === 0) {
      const items = decodeFastBatch(b, c, d, a);
      for (const it of items) this.queue.push(it);
    } else if (kind === 1) {
      if (a === 'lost') {
        this.lost += c;  // mq::Error::lost(): exactly how many records the group lost
        return;
      }
      this.error = fromNative(Object.assign(new Error(b), { mqCode: a }), { topic: this.topicName });
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w();
    }
  }

  // Acks `msg` and everything received before it (without waiting for the next next()).
  ack(msg) {
    if (msg && msg.seq) ackThrough(this.ctl, this.member, msg.seq);
  }

  async next() {
    if (this.last) {
      this.ack(this.last);
      this.last = null;
    }
    for (;;) {
      if (this.head < this.queue.length) {
        const msg = this.queue[this.head++];
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        this.last = msg;
        return { value: msg, done: false };
      }
      if (this.error) {  // the iteration ends here (for await does not call return() after a throwing next())
        const e = this.error;
        this.error = null;
        await this.close();
        throw e;
      }
      if (this.closed) return { value: undefined, done: true };
      await new Promise((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  async return() {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  // Stops the consumer thread and leaves the group: unacked records go back to it.
  async close() {
    if (this.closed) return;
    this.closed = true;
    this.last = null;
    this.queue = [];
    this.head = 0;
    const m = this.member;
    this.member = null;
    this.ctl = null;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w();
    }
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
        const [first] = await this.native.sendAsync([{ value: values[i] }]).catch((err) => {
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
