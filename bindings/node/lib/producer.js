'use strict';
// kafkajs Producer on libmq. send() writes the records into the topic's shared-memory ring synchronously (one
// copy each) and resolves at once; only a full `block` topic makes it wait, off the JS thread, for up to the
// topic's block timeout. A topic has one partition (0). acks, timeout and compression are accepted and ignored:
// a record is in the ring, visible to every consumer, when send() resolves.
const { ClientBase, networkEvents } = require('./common');
const { KafkaJSError, KafkaJSNonRetriableError, KafkaJSProtocolError, fromNative } = require('./errors');

const events = networkEvents('producer');

// One open topic of a producer: keeps records in order when a send has to wait for room.
class ProducerTopic {
  constructor(name, handle) {
    this.name = name;
    this.handle = handle;
    this.waiting = null;  // a pending sendAsync: later sends queue behind it
  }

  metadata(first, earliest) {
    return {
      topicName: this.name,
      partition: 0,
      errorCode: 0,
      baseOffset: first === null ? '-1' : String(first),
      logAppendTime: '-1',
      logStartOffset: String(earliest),
    };
  }

  send(messages) {
    if (this.waiting) return this.waiting.then(() => this.send(messages));
    // Records with a value only (the common case) cross into native code as bare values: fewer property reads.
    let bare = true;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (m.key != null || m.headers !== undefined || m.timestamp !== undefined) {
        bare = false;
        break;
      }
    }
    let items = messages;
    try {
      let first;
      if (bare && messages.length === 1) {
        first = this.handle.sendValue(messages[0].value);
      } else {
        if (bare) {
          items = new Array(messages.length);
          for (let i = 0; i < messages.length; i++) items[i] = messages[i].value;
        }
        first = this.handle.send(items);
      }
      return this.metadata(first, this.handle.earliest());
    } catch (e) {
      if (e.mqCode !== 'full') throw fromNative(e, { topic: this.name });
      // Full: the records before e.published are out; wait for room for the rest off the JS thread.
      const before = e.firstOffset;
      const p = waitForRoom(this.handle, items, e.published).then(
        ([f, low]) => this.metadata(before !== undefined ? before : f, low),
        (err) => {
          throw fromNative(err, { topic: this.name });
        },
      );
      const settled = p.then(() => {}, () => {});
      this.waiting = settled;
      settled.then(() => {
        if (this.waiting === settled) this.waiting = null;
      });
      return p;
    }
  }
}

// Sends messages[start..] through the handle's pool path, a slice of waiting at a time (src/topic.cc: sendAsync),
// until they are all out or the topic's block timeout has passed since the first try: then the last `full` error.
// -> [firstOffset of messages[start], earliest]
async function waitForRoom(handle, messages, start) {
  const deadline = Date.now() + handle.info().blockTimeoutMs;
  let first;
  for (;;) {
    try {
      const [f, low] = await handle.sendAsync(messages, start);
      return [first !== undefined ? first : f, low];
    } catch (e) {
      if (e.mqCode !== 'full' || Date.now() >= deadline) {
        if (first !== undefined && e.firstOffset === undefined) e.firstOffset = first;
        throw e;
      }
      if (first === undefined && e.firstOffset !== undefined) first = e.firstOffset;
      start += e.published;
    }
  }
}

function validateMessages(topic, messages) {
  if (typeof topic !== 'string' || topic.length === 0) throw new KafkaJSNonRetriableError(`Invalid topic ${topic}`);
  if (!Array.isArray(messages)) {
    throw new KafkaJSNonRetriableError(`Invalid messages array [${messages}] for topic "${topic}"`);
  }
  for (const m of messages) {
    if (m === null || typeof m !== 'object' || m.value === undefined) {
      throw new KafkaJSNonRetriableError(`Invalid message without value for topic "${topic}": ${JSON.stringify(m)}`);
    }
    if (m.partition != null && m.partition !== 0) {  // what a Kafka broker answers for a partition it lacks
      throw new KafkaJSProtocolError({
        message: `This server does not host this topic-partition: libmq topics have one partition (0): topic=${topic} ` +
          `partition=${m.partition}`,
        type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 3, retriable: false,
      });
    }
  }
}

class Producer extends ClientBase {
  // connect() (ClientBase) is idempotent: the blog's producer calls it before every send.
  constructor(kafka, config = {}) {
    super(kafka, config, 'Producer', events);
    this.topics = new Map();  // name -> ProducerTopic | Promise<ProducerTopic>
  }

  async disconnect() {
    if (this.connecting) await this.connecting.catch(() => {});
    const topics = [...this.topics.values()];
    this.topics.clear();
    for (const t of topics) {
      const pt = await Promise.resolve(t).catch(() => null);
      if (!pt) continue;
      if (pt.waiting) await pt.waiting.catch(() => {});
      pt.handle.close();
    }
    await this.closeClient();
  }

  async openTopic(name) {
    const allowCreate = this.config.allowAutoTopicCreation !== false;
    try {
      if (!allowCreate) await this.client.describe(name);
      return new ProducerTopic(name, await this.client.open(name));
    } catch (e) {
      throw fromNative(e, { topic: name, socket: this.client && this.client.socketPath });
    }
  }

  topic(name) {
    const t = this.topics.get(name);  // a ProducerTopic, or the promise of one being opened
    if (t) return t;
    const p = this.openTopic(name).then(
      (pt) => {
        if (this.topics.get(name) === p) this.topics.set(name, pt);
        return pt;
      },
      (e) => {
        if (this.topics.get(name) === p) this.topics.delete(name);
        throw e;
      },
    );
    this.topics.set(name, p);
    return p;
  }

  ready() {
    if (this.client) return null;
    if (this.connecting) return this.connecting;
    throw new KafkaJSError('The producer is disconnected', { retriable: true });
  }

  // -> [RecordMetadata] (one topic, partition 0): baseOffset = the first record's offset.
  async send({ topic, messages, acks, timeout, compression } = {}) {
    validateMessages(topic, messages);
    const wait = this.ready();
    if (wait) await wait;
    let t = this.topic(topic);
    if (!(t instanceof ProducerTopic)) t = await t;
    if (messages.length === 0) return [t.metadata(null, 0)];
    const sent = t.send(messages);  // RecordMetadata, or its promise when the topic is full
    return [sent instanceof Promise ? await sent : sent];
  }

  async sendBatch({ topicMessages = [], acks, timeout, compression } = {}) {
    for (const { topic, messages } of topicMessages) validateMessages(topic, messages);
    const results = [];
    for (const { topic, messages } of topicMessages) results.push(...(await this.send({ topic, messages })));
    return results;
  }

  isIdempotent() {
    return !!this.config.idempotent;
  }

  async transaction() {
    throw new KafkaJSNonRetriableError('libmq: transactions are not supported');
  }
}

module.exports = { waitForRoom, Producer, ProducerTopic, validateMessages };
