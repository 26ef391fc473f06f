'use strict';
// kafkajs Consumer on libmq.
//
// Each subscribed topic gets one native member of the consumer group (src/consumer.cc): a thread that polls the
// ring and hands over copied batches. Records of one group are SHARED by its members across processes (competing
// consumers); every group sees every record. Delivery is at-least-once:
//   - eachMessage is awaited before that topic's next record is handed to the application; with autoCommit (the
//     default) the record is acked as soon as eachMessage resolves (kafkajs acks later, by interval; acking at
//     once means fewer redeliveries after a crash);
//   - if eachMessage throws, the record is NOT acked: the error is logged, the member leaves the group (which
//     hands the failed record and everything after it that it held back to the group, to be redelivered first)
//     and rejoins after a backoff (kafkajs' retry: 300 ms doubling up to 30 s) -- as kafkajs restarts the
//     consumer from the last committed offset;
//   - a process that dies (SIGKILL included) gets its unacked records redelivered to the group by libmq/mqd.
// With autoCommit: false nothing is acked until commitOffsets(); a member may hold at most `maxInFlight` (<= 32,
// libmq's per-member limit) unacked records, so it stops fetching until you commit.
const { EventEmitter } = require('events');
const native = require('./native');
const { ackThrough, connectOnce, decodeKafkaBatch } = require('./common');
const {
  KafkaJSError,
  KafkaJSNonRetriableError,
  KafkaJSOffsetOutOfRange,
  fromNative,
} = require('./errors');

const events = Object.freeze({
  HEARTBEAT: 'consumer.heartbeat',
  COMMIT_OFFSETS: 'consumer.commit_offsets',
  GROUP_JOIN: 'consumer.group_join',
  FETCH_START: 'consumer.fetch_start',
  FETCH: 'consumer.fetch',
  START_BATCH_PROCESS: 'consumer.start_batch_process',
  END_BATCH_PROCESS: 'consumer.end_batch_process',
  CONNECT: 'consumer.connect',
  DISCONNECT: 'consumer.disconnect',
  STOP: 'consumer.stop',
  CRASH: 'consumer.crash',
  REBALANCING: 'consumer.rebalancing',
  RECEIVED_UNSUBSCRIBED_TOPICS: 'consumer.received_unsubscribed_topics',
  REQUEST: 'consumer.network.request',
  REQUEST_TIMEOUT: 'consumer.network.request_timeout',
  REQUEST_QUEUE_SIZE: 'consumer.network.request_queue_size',
});

const noopHeartbeat = async () => {};

// One topic of a running consumer: its native group member and the batches it delivered.
class TopicRunner {
  constructor(consumer, name, topic, fromBeginning) {
    this.consumer = consumer;
    this.name = name;
    this.topic = topic;  // native Topic
    this.fromBeginning = fromBeginning;
    this.gen = 0;
    this.queue = [];  // {gen, items: [{seq, message}], index}
    this.paused = false;
    this.active = false;  // a batch of this topic is being processed
    this.scheduled = false;
    this.retries = 0;
    this.uncommitted = [];  // autoCommit false: delivered records not yet committed, in delivery order
    this.warnedFull = false;
    this.seekWaiters = [];
    this.member = null;
    this.pauseFn = () => {
      this.consumer.pause([{ topic: this.name }]);
      return () => this.consumer.resume([{ topic: this.name }]);
    };
  }

  start({ maxInFlight, maxBatch, wait }) {
    try {
      this.member = this.topic.consumer(
        { group: this.consumer.groupId, fromBeginning: this.fromBeginning, maxInFlight, maxBatch, wait },
        (kind, gen, a, b, c, d) => this.onEvent(kind, gen, a, b, c, d),
      );
    } catch (e) {
      throw fromNative(e, { topic: this.name });
    }
    this.ctl = this.member.ctl;
    if (this.paused) this.member.pause();
  }

  onEvent(kind, gen, a, b, c, d) {
    if (kind === 0) {
      if (gen !== this.gen) return;  // from before a seek or a rejoin: those records were handed back
      const items = decodeKafkaBatch(b, c, d, a);
      if (!this.consumer.autoCommit) {
        for (const it of items) this.uncommitted.push(it);
        if (this.uncommitted.length >= this.consumer.maxInFlight && !this.warnedFull) {
          this.warnedFull = true;
          this.consumer.logger_.warn(
            `topic ${this.name}: ${this.uncommitted.length} records delivered and not committed (autoCommit is ` +
              'false); libmq holds at most maxInFlight unacked records per member, so fetching waits for commitOffsets()',
            { topic: this.name, groupId: this.consumer.groupId },
          );
        }
      }
      this.queue.push({ gen, items, index: 0 });
      this.consumer.schedule(this);
    } else if (kind === 1) {
      const err = fromNative(Object.assign(new Error(b), { mqCode: a }), { topic: this.name });
      if (a === 'lost') {
        this.consumer.logger_.warn(`records lost on topic ${this.name} (overwrite policy): ${b}`, {
          topic: this.name, groupId: this.consumer.groupId, error: err,
        });
      } else {
        this.consumer.logger_.error(`consumer error on topic ${this.name}: ${b}`, {
          topic: this.name, groupId: this.consumer.groupId, error: err,
        });
      }
    } else if (kind === 2) {
      const waiters = this.seekWaiters.filter((w) => w.gen <= gen);
      this.seekWaiters = this.seekWaiters.filter((w) => w.gen > gen);
      if (a) {
        this.consumer.logger_.error(`seek failed on topic ${this.name}: ${b}`, { topic: this.name, groupId: this.consumer.groupId });
      }
      for (const w of waiters) w.resolve(a ? b : null);
    }
  }

  hasWork() {
    return !this.paused && this.queue.length > 0;
  }

  // Acks every record delivered up to `seq`: a store into the array shared with the consumer thread (see
  // src/consumer.cc); a call into the addon only when the thread sleeps waiting for exactly that.
  ack(seq) {
    ackThrough(this.ctl, this.member, seq);
  }

  dropQueued() {
    this.queue = [];
    this.uncommitted = [];
  }

  // Hands everything unfinished back to the group and rejoins after a backoff.
  fail(error, where) {
    const { retry } = this.consumer;
    const delay = Math.min(retry.initialRetryTime * Math.pow(retry.multiplier, this.retries), retry.maxRetryTime);
    this.retries += 1;
    this.consumer.logger_.error(`Error when calling ${where}`, {
      topic: this.name, partition: 0, groupId: this.consumer.groupId, error: error && error.message, stack: error && error.stack,
      retryInMs: delay,
    });
    this.consumer.emit(events.CRASH, { error, groupId: this.consumer.groupId, restart: true });
    this.gen += 1;
    this.dropQueued();
    if (this.member) this.member.rejoin(this.gen, delay);
  }

  seek(to) {
    this.gen += 1;
    this.dropQueued();
    const gen = this.gen;
    const done = new Promise((resolve) => this.seekWaiters.push({ gen, resolve }));
    this.member.seek(gen, to);
    return done;
  }

  // Acks every delivered record whose offset is below `next` (committed = the next offset to read), as far as
  // delivery order allows (an ack covers all records this member received before it).
  commitBelow(next) {
    let last = -1;
    if (this.consumer.autoCommit) {
      for (const batch of this.queue) {
        if (batch.gen !== this.gen) continue;
        for (const it of batch.items) {
          if (BigInt(it.message.offset) < next) last = it.seq;
          else return this.ackIf(last);
        }
      }
      return this.ackIf(last);
    }
    let n = 0;
    while (n < this.uncommitted.length && BigInt(this.uncommitted[n].message.offset) < next) {
      last = this.uncommitted[n].seq;
      n += 1;
    }
    this.uncommitted.splice(0, n);
    if (this.uncommitted.length < this.consumer.maxInFlight) this.warnedFull = false;
    return this.ackIf(last);
  }

  ackIf(seq) {
    if (seq >= 0) this.ack(seq);
    return seq >= 0;
  }

  async processNext() {
    const batch = this.queue[0];
    if (!batch) return;
    if (batch.gen !== this.gen) {
      this.queue.shift();
      return;
    }
    const c = this.consumer;
    if (c.eachMessage) {
      const { items } = batch;
      while (batch.index < items.length) {
        if (this.paused || !c.running || batch.gen !== this.gen) return;
        const it = items[batch.index];
        try {
          await c.eachMessage({
            topic: this.name,
            partition: 0,
            message: it.message,
            heartbeat: noopHeartbeat,
            pause: this.pauseFn,
          });
        } catch (e) {
          if (batch.gen === this.gen) this.fail(e, 'eachMessage');
          return;
        }
        if (batch.gen !== this.gen) return;  // seek() during eachMessage: the rest was dropped
        batch.index += 1;
        this.retries = 0;
        if (c.autoCommit) this.ack(it.seq);
      }
      if (this.queue[0] === batch) this.queue.shift();
      return;
    }
    await this.processBatch(batch);
  }

  async processBatch(batch) {
    const c = this.consumer;
    const items = batch.items.slice(batch.index);
    const messages = items.map((it) => it.message);
    let resolved = -1;  // index into items of the last resolved record
    let acked = -1;
    const info = this.topic.info();
    const high = BigInt(info.latest);
    const commitResolved = () => {
      if (c.autoCommit && resolved > acked) {
        this.ack(items[resolved].seq);
        acked = resolved;
      }
    };
    const payload = {
      batch: {
        topic: this.name,
        partition: 0,
        highWatermark: info.latest,
        messages,
        isEmpty: () => messages.length === 0,
        firstOffset: () => (messages.length ? messages[0].offset : null),
        lastOffset: () => (messages.length ? messages[messages.length - 1].offset : String(high - 1n)),
        offsetLag: () => {
          const last = messages.length ? BigInt(messages[messages.length - 1].offset) : high - 1n;
          return String(high - 1n - last);
        },
        offsetLagLow: () => {
          const first = messages.length ? BigInt(messages[0].offset) : high - 1n;
          return String(high - 1n - first);
        },
      },
      resolveOffset: (offset) => {
        const o = String(offset);
        for (let i = items.length - 1; i > resolved; i--) {
          if (messages[i].offset === o) {
            resolved = i;
            break;
          }
        }
      },
      heartbeat: noopHeartbeat,
      pause: this.pauseFn,
      commitOffsetsIfNecessary: async (offsets) => {
        if (offsets) return c.commitOffsets(flattenOffsets(offsets));
        commitResolved();
      },
      uncommittedOffsets: () => ({
        topics: [{
          topic: this.name,
          partitions: [{ partition: 0, offset: resolved >= 0 ? String(BigInt(messages[resolved].offset) + 1n) : (messages[0] ? messages[0].offset : info.latest) }],
        }],
      }),
      isRunning: () => c.running,
      isStale: () => batch.gen !== this.gen,
    };
    try {
      await c.eachBatch(payload);
    } catch (e) {
      if (batch.gen !== this.gen) return;
      commitResolved();
      this.fail(e, 'eachBatch');
      return;
    }
    if (batch.gen !== this.gen) return;
    if (c.eachBatchAutoResolve) resolved = items.length - 1;
    commitResolved();
    this.retries = 0;
    batch.index += resolved + 1;
    // kafkajs fetches unresolved records again: here they stay at the head of the queue.
    if (batch.index >= batch.items.length && this.queue[0] === batch) this.queue.shift();
    else if (resolved < 0 && c.running && !this.paused) await new Promise((r) => setTimeout(r, 10));
  }

  async close() {
    const m = this.member;
    this.member = null;
    this.ctl = null;
    this.dropQueued();
    if (m) await m.close();
    for (const w of this.seekWaiters) w.resolve('consumer stopped');
    this.seekWaiters = [];
  }
}

function flattenOffsets(offsets) {
  const out = [];
  for (const t of offsets.topics || []) {
    for (const p of t.partitions || []) out.push({ topic: t.topic, partition: p.partition, offset: p.offset });
  }
  return out;
}

class Consumer {
  constructor(kafka, config = {}) {
    if (!config || typeof config.groupId !== 'string' || config.groupId.length === 0) {
      throw new KafkaJSNonRetriableError('Consumer groupId must be a non-empty string.');
    }
    this.kafka = kafka;
    this.config = config;
    this.groupId = config.groupId;
    this.logger_ = kafka.logger().namespace('Consumer');
    const retry = { ...kafka.retry, ...(config.retry || {}) };
    this.retry = {
      initialRetryTime: retry.initialRetryTime ?? 300,
      maxRetryTime: retry.maxRetryTime ?? 30000,
      multiplier: retry.multiplier ?? 2,
    };
    // libmq options: records one member may hold unacked (prefetched + in eachMessage), and per batch.
    this.maxInFlight = config.maxInFlight ?? native.maxUnacked;
    this.maxBatch = config.maxBatch;
    // How the consumer thread waits for records: 'futex' (default), 'spin_futex', 'spin_yield', 'busy_spin'.
    this.wait = config.wait;
    this.client = null;
    this.connecting = null;
    this.subscriptions = [];  // {topic: string|RegExp, fromBeginning}
    this.topics = new Map();  // name -> {topic: native Topic, fromBeginning}
    this.runners = new Map();  // name -> TopicRunner
    this.pausedTopics = new Set();
    this.pendingSeeks = new Map();
    this.running = false;
    this.concurrency = 1;
    this.activeCount = 0;
    this.ready = [];
    this.idleWaiters = [];
    this.emitter = new EventEmitter();
    this.events = events;
  }

  emit(type, payload) {
    this.emitter.emit(type, { id: Date.now(), type, timestamp: Date.now(), payload });
  }

  async connect() {
    return connectOnce(this, () => this.emit(events.CONNECT, null));
  }

  requireClient() {
    if (!this.client) throw new KafkaJSNonRetriableError('The consumer is not connected: call consumer.connect() first');
    return this.client;
  }

  async openTopic(name, fromBeginning) {
    const client = this.requireClient();
    try {
      if (this.config.allowAutoTopicCreation === false) await client.request('describe', [['topic', name]]);
      const topic = await client.open(name);
      const prev = this.topics.get(name);
      if (prev) prev.topic.close();
      this.topics.set(name, { topic, fromBeginning });
    } catch (e) {
      throw fromNative(e, { topic: name, socket: client.socketPath });
    }
  }

  async subscribe(subscription = {}) {
    if (this.running) {
      throw new KafkaJSNonRetriableError('Cannot subscribe to topic while consumer is running');
    }
    if (this.connecting) await this.connecting;
    const client = this.requireClient();
    const list = subscription.topics || (subscription.topic !== undefined ? [subscription.topic] : null);
    if (!list || list.length === 0) {
      throw new KafkaJSNonRetriableError('Missing required argument "topics"');
    }
    const fromBeginning = !!subscription.fromBeginning;
    let existing = null;
    for (const t of list) {
      if (t instanceof RegExp) {
        if (!existing) existing = await client.list().catch((e) => { throw fromNative(e, { socket: client.socketPath }); });
        for (const name of existing) if (t.test(name)) await this.openTopic(name, fromBeginning);
      } else if (typeof t === 'string' && t.length > 0) {
        await this.openTopic(t, fromBeginning);
      } else {
        throw new KafkaJSNonRetriableError(`Invalid topic ${t} (${typeof t}), the topic name has to be a String or a RegExp`);
      }
    }
  }

  async run(config = {}) {
    if (this.connecting) await this.connecting;
    this.requireClient();
    if (this.running) {
      this.logger_.warn('consumer#run was called, but the consumer is already running', { groupId: this.groupId });
      return;
    }
    const { eachMessage, eachBatch } = config;
    if (!eachMessage && !eachBatch) throw new KafkaJSNonRetriableError('Consumer.run needs eachMessage or eachBatch');
    this.eachMessage = eachMessage;
    this.eachBatch = eachMessage ? null : eachBatch;
    this.autoCommit = config.autoCommit !== false;
    this.eachBatchAutoResolve = config.eachBatchAutoResolve !== false;
    this.concurrency = Math.max(1, config.partitionsConsumedConcurrently || 1);
    this.running = true;
    const started = [];
    try {
      for (const [name, { topic, fromBeginning }] of this.topics) {
        const r = new TopicRunner(this, name, topic, fromBeginning);
        r.paused = this.pausedTopics.has(name);
        r.start({ maxInFlight: this.maxInFlight, maxBatch: this.maxBatch, wait: this.wait });
        started.push(r);
        this.runners.set(name, r);
      }
    } catch (e) {
      this.running = false;
      for (const r of started) await r.close();
      this.runners.clear();
      throw e;
    }
    this.emit(events.GROUP_JOIN, {
      duration: 0, groupId: this.groupId, isLeader: true, leaderId: 'libmq', groupProtocol: 'libmq',
      memberId: `${this.kafka.clientId}-${process.pid}`,
      memberAssignment: Object.fromEntries([...this.runners.keys()].map((n) => [n, [0]])),
    });
    for (const [name, to] of this.pendingSeeks) this.applySeek(name, to);
    this.pendingSeeks.clear();
  }

  // Scheduling: at most `partitionsConsumedConcurrently` batches are processed at once (default 1: one
  // eachMessage at a time, as kafkajs); within a topic, strictly one record after another.
  schedule(runner) {
    if (runner.scheduled || runner.active || !runner.hasWork() || !this.running) return;
    runner.scheduled = true;
    this.ready.push(runner);
    this.pump();
  }

  pump() {
    while (this.activeCount < this.concurrency && this.ready.length > 0) {
      const r = this.ready.shift();
      r.scheduled = false;
      if (!r.hasWork() || !this.running) continue;
      r.active = true;
      this.activeCount += 1;
      r.processNext()
        .catch((e) => this.logger_.error(`internal error: ${e && e.stack}`, { groupId: this.groupId }))
        .finally(() => {
          r.active = false;
          this.activeCount -= 1;
          if (this.activeCount === 0) {
            const w = this.idleWaiters;
            this.idleWaiters = [];
            for (const f of w) f();
          }
          this.schedule(r);
          this.pump();
        });
    }
  }

  idle() {
    if (this.activeCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // Stops fetching; waits for the eachMessage/eachBatch in progress; hands unprocessed records back to the group.
  async stop() {
    if (!this.running && this.runners.size === 0) return;
    this.running = false;
    this.ready = [];
    await this.idle();
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((r) => r.close()));
    this.emit(events.STOP, null);
  }

  async disconnect() {
    if (this.connecting) await this.connecting.catch(() => {});
    await this.stop();
    for (const { topic } of this.topics.values()) topic.close();
    this.topics.clear();
    if (this.client) {
      this.client.close();
      this.client = null;
      this.emit(events.DISCONNECT, null);
    }
  }

  pause(topicPartitions = []) {
    for (const { topic } of topicPartitions) {
      if (typeof topic !== 'string') throw new KafkaJSNonRetriableError(`Invalid topic ${topic}`);
      this.pausedTopics.add(topic);
      const r = this.runners.get(topic);
      if (r && !r.paused) {
        r.paused = true;
        if (r.member) r.member.pause();
      }
    }
  }

  resume(topicPartitions = []) {
    for (const { topic } of topicPartitions) {
      this.pausedTopics.delete(topic);
      const r = this.runners.get(topic);
      if (r && r.paused) {
        r.paused = false;
        if (r.member) r.member.resume();
        this.schedule(r);
      }
    }
  }

  paused() {
    return [...this.pausedTopics].map((topic) => ({ topic, partitions: [0] }));
  }

  // Moves the GROUP (all its members, in every process) to `offset` of the topic: the next record read is the one
  // at that offset. Offsets outside [earliest, latest] are clamped to that range (Kafka resets an out-of-range
  // position). '-2' / 'earliest' and '-1' / 'latest' are accepted too.
  seek({ topic, partition = 0, offset } = {}) {
    if (typeof topic !== 'string') throw new KafkaJSNonRetriableError(`Invalid topic ${topic}`);
    if (partition !== 0) {
      throw new KafkaJSOffsetOutOfRange({ message: `libmq topics have one partition (0): topic=${topic} partition=${partition}`, type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 3, retriable: false }, { topic, partition });
    }
    let to;
    const s = String(offset);
    if (s === '-2' || s === 'earliest') to = 'earliest';
    else if (s === '-1' || s === 'latest') to = 'latest';
    else if (/^[0-9]+$/.test(s)) to = BigInt(s);
    else throw new KafkaJSNonRetriableError(`Offset must not be a negative number or a non-numeric string: topic=${topic} offset=${offset}`);
    if (!this.running) {
      this.pendingSeeks.set(topic, to);
      return;
    }
    this.applySeek(topic, to);
  }

  applySeek(topic, to) {
    const r = this.runners.get(topic);
    if (!r) {
      this.logger_.warn(`seek on topic ${topic}, which this consumer does not consume`, { topic, groupId: this.groupId });
      return;
    }
    if (typeof to === 'bigint') {
      const info = r.topic.info();
      const low = BigInt(info.earliest);
      const high = BigInt(info.latest);
      if (to < low || to > high) {
        const clamped = to < low ? low : high;
        this.logger_.warn(`seek offset ${to} of topic ${topic} is outside [${low}, ${high}]; using ${clamped}`, { topic, groupId: this.groupId });
        to = clamped;
      }
    }
    return r.seek(to);
  }

  // [{topic, partition, offset}]: offset = the next offset to read (as kafkajs). Acks the delivered records
  // below it; committing beyond what this member received moves nothing (use seek for that).
  async commitOffsets(topicPartitions = []) {
    for (const { topic, offset } of topicPartitions) {
      const r = this.runners.get(topic);
      if (!r) continue;
      r.commitBelow(BigInt(offset));
    }
    this.emit(events.COMMIT_OFFSETS, { groupId: this.groupId, topics: topicPartitions });
  }

  async describeGroup() {
    const members = [];
    let state = 'Empty';
    for (const [, { topic }] of this.topics) {
      const g = topic.info().groups.find((x) => x.name === this.groupId);
      if (g && g.members > 0) state = 'Stable';
    }
    if (this.running) {
      members.push({
        memberId: `${this.kafka.clientId}-${process.pid}`, clientId: this.kafka.clientId, clientHost: 'localhost',
        memberMetadata: Buffer.alloc(0), memberAssignment: Buffer.alloc(0),
      });
    }
    return { groupId: this.groupId, members, protocol: 'libmq', protocolType: 'consumer', state, errorCode: 0 };
  }

  on(eventName, listener) {
    if (!Object.values(events).includes(eventName)) {
      throw new KafkaJSError(`Event name should be one of ${Object.values(events).join(', ')}`, { retriable: false });
    }
    const wrapped = (e) => {
      Promise.resolve()
        .then(() => listener(e))
        .catch((err) => this.logger_.error(`Failed to execute listener: ${err.message}`, { eventName, stack: err.stack }));
    };
    this.emitter.on(eventName, wrapped);
    return () => this.emitter.off(eventName, wrapped);
  }

  logger() {
    return this.logger_;
  }
}

module.exports = { Consumer };
