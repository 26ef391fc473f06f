'use strict';
// kafkajs Consumer on libmq.
//
// Each subscribed topic gets one native member of the consumer group (src/consumer.cc), PULLED on the JS thread:
// while records flow, one synchronous take() acks what the application finished and copies the next run of up to
// 63 records into one Buffer (no thread hop); when the topic is empty the member parks, and a native waiter thread
// calls back once when a take may find something. Records of one group are SHARED by its members across processes
// (competing consumers; the `ordering` option makes a group keep order per key, or hand every record to one member
// while the others stand by); every group sees every record. Delivery is at-least-once:
//   - eachMessage is awaited before that topic's next record is handed to the application; with autoCommit (the
//     default) what resolved is acked at the next take (kafkajs commits later still, by interval; acking at once
//     means fewer redeliveries after a crash);
//   - if eachMessage throws, the record is NACKED with the error's message (libmq's Consumer::nack): the group
//     retries it after its backoff (the group's retry policy: the `redelivery` option of the consumer that created
//     the group), to whichever member takes first, with message.attempt one higher; after its last attempt it goes
//     to the dead-letter topic `<topic>.dlq` instead. The consumer goes on with the next record: no restart. A
//     throwing eachBatch nacks its first unresolved record and hands the rest to eachBatch again. A nack that finds
//     the group's retry table full swaps with a retry that is due (libmq hands that record out at the next take);
//     when none is due yet, or libmq is still handing out a run, nackMakingRoom (common.js) takes the next retry
//     that comes due itself and handles it after the records in hand;
//   - where a nack cannot serve (`redelivery: false`, autoCommit: false -- a nack acks what came before --, an
//     overwrite topic, a dead letter that cannot be published) a throw does what kafkajs does instead: the record
//     is NOT acked, the member leaves the group (which hands the failed record and everything after it that it
//     held back to the group, to be redelivered first) and rejoins after a backoff (kafkajs' retry: 300 ms
//     doubling up to 30 s) -- as kafkajs restarts the consumer from the last committed offset; after
//     retry.retries (default 5) failures in a row the consumer crashes as kafkajs' does: CRASH, then the same
//     restart unless retry.restartOnFailure(error) resolves false, which disconnects it;
//   - a process that dies (SIGKILL included) gets its unacked records redelivered to the group by libmq/mqd.
// With autoCommit: false nothing is acked until commitOffsets(); a member holds at most `maxInFlight` records
// unacked, so it stops fetching until you commit.
// A topic that never runs dry does not starve the event loop: the runner yields to I/O (setImmediate) every
// YIELD_RECORDS records or YIELD_MS milliseconds.
const { EventEmitter } = require('events');
const native = require('./native');
const {
  connectOnce, memberOptions, takeSpinning, redeliveryPolicy, orderingOption, groupInfo, sameRetry, nackMakingRoom,
  Slabs, KafkaMessage, DEFAULT_SOCKET,
} = require('./common');
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

const YIELD_RECORDS = 1024;  // records between yields to the event loop's I/O
const YIELD_MS = 10;          // ... or milliseconds, whichever comes first
// eachBatch's default maxInFlight: a batch gathers takes while the topic has records, up to this many records (16
// runs of 63), as a kafkajs fetch hands over what the partition has. An explicit maxInFlight wins.
const BATCH_IN_FLIGHT = 16 * native.batchLayout.maxBatch;

// kafkajs' heartbeatInterval (default 3000 ms): how often HEARTBEAT fires while the consumer runs.
function heartbeatIntervalOf(config) {
  const v = config.heartbeatInterval === undefined ? 3000 : config.heartbeatInterval;
  if (!Number.isInteger(v) || v < 1) {
    throw new KafkaJSNonRetriableError(`heartbeatInterval must be a whole number of milliseconds >= 1, got ${v}`);
  }
  return v;
}
const yieldToIo = () => new Promise((resolve) => setImmediate(resolve));
// The text a nack gives for a failed handler call (the dead letter's mq.dlq.error header): the error's message,
// at most ERROR_TEXT characters (a dead letter must fit the dead-letter topic's records).
const ERROR_TEXT = 1000;
function errorText(error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > ERROR_TEXT ? `${text.slice(0, ERROR_TEXT - 3)}...` : text;
}

// Limits how many eachMessage/eachBatch calls run at once across the topics of a consumer
// (partitionsConsumedConcurrently).
class Gate {
  constructor(limit) {
    this.free = limit;
    this.waiters = [];
  }
  enter() {
    if (this.free > 0) {
      this.free -= 1;
      return null;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  leave() {
    const next = this.waiters.shift();
    if (next) next();
    else this.free += 1;
  }
}

// A retry policy as `maxAttempts=5 backoffMs=100 factor=2 maxBackoffMs=30000 jitter=0.1`.
function policyText(p) {
  return `maxAttempts=${p.maxAttempts} backoffMs=${p.backoffMs} factor=${p.factor} maxBackoffMs=${p.maxBackoffMs} ` +
    `jitter=${p.jitter}`;
}

// The mqctl command that gives `group` of `topic` the retry policy `p` (every field: set-retry keeps the ones not
// given).
function setRetryCommand(socket, topic, group, p) {
  return `mqctl${socket === DEFAULT_SOCKET ? '' : ` --socket ${socket}`} set-retry ${topic} --group ${group} ` +
    `--max-attempts ${p.maxAttempts} --backoff ${p.backoffMs} --factor ${p.factor} ` +
    `--max-backoff ${p.maxBackoffMs} --jitter ${p.jitter}`;
}

// One topic of a running consumer: its native group member and the loop that pulls from it.
class TopicRunner {
  constructor(consumer, name, topic, fromBeginning) {
    this.consumer = consumer;
    this.name = name;
    this.topic = topic;  // native Topic
    this.fromBeginning = fromBeginning;
    this.gen = 0;          // bumped by seek() and rejoin(): a batch of an older generation is abandoned
    this.paused = false;
    this.retries = 0;
    this.finished = 0;     // autoCommit: every record below this sequence number is done (acked at the next take)
    this.uncommitted = []; // autoCommit false: {seq, offset} of delivered records not yet committed, in order
    this.warnedFull = false;
    this.busy = false;     // an eachMessage/eachBatch call is in progress
    this.calls = 0;        // handler calls started: a heartbeat tick that sees `busy` and the same count skips
    this.callsAtTick = 0;
    this.member = null;
    this.slabs = new Slabs();
    this.queued = [];      // batches a nack took to make room in the retry table: handed out before the next take
    this.loop = null;
    this.wake = null;      // resolves the park (or the pause) the loop is waiting in
    this.pauseFn = () => {
      this.consumer.pause([{ topic: this.name }]);
      return () => this.consumer.resume([{ topic: this.name }]);
    };
  }

  // Joins the group (the native member), giving the group the consumer's `ordering`, and its `redelivery` policy if
  // it asked for one, when this member creates the group. An existing group keeps its own: a warning says so when
  // the consumer asked for another.
  open({ maxBatch, wait }) {
    const c = this.consumer;
    const policy = c.redelivery || undefined;
    try {
      this.member = this.topic.consumer(
        { group: c.groupId, fromBeginning: this.fromBeginning, maxBatch, wait, retry: policy, ordering: c.ordering },
        () => this.onReady(),
      );
      const { ordering, retry } = groupInfo(this.topic, c.groupId) || {};
      if (c.config.ordering !== undefined && ordering !== undefined && ordering !== c.ordering) {
        c.logger_.warn(`group ${c.groupId} of topic ${this.name} has ordering '${ordering}', not this consumer's ` +
          `'${c.ordering}': a group keeps the ordering it was created with (delete the group to change it)`,
        { topic: this.name, groupId: c.groupId, ordering, requested: c.ordering });
      }
      if (policy && retry && !sameRetry(retry, policy)) {
        c.logger_.warn(`group ${c.groupId} of topic ${this.name} has retry policy ${policyText(retry)}, not this ` +
          `consumer's redelivery ${policyText(policy)}: a group keeps its retry policy when a consumer joins it ` +
          `(to change it: ${setRetryCommand(c.kafka.connection().socket, this.name, c.groupId, policy)})`,
        { topic: this.name, groupId: c.groupId, retry, requested: policy });
      }
      // A throwing handler nacks (see the top of this file) unless a nack cannot serve here.
      this.nackable = c.redelivery !== false && c.autoCommit && this.topic.info().policy === 'block';
    } catch (e) {
      throw fromNative(e, { topic: this.name });  // run() closes the member, if it joined
    }
    this.spin = wait === 'spin';
    this.flowing = false;  // the last take had records (takeSpinning)
    this.maxBatch = maxBatch;
  }

  // Starts pulling.
  begin() {
    this.loop = this.run().catch((e) => this.consumer.logger_.error(`internal error: ${e && e.stack}`, { groupId: this.consumer.groupId }));
  }

  onReady() {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  // Waits until the member may have records (it parked) or something else calls for a look (resume, stop).
  park() {
    return new Promise((resolve) => {
      this.wake = resolve;
      if (!this.member.park()) this.onReady();  // something came in meanwhile: take again at once
    });
  }

  // autoCommit false: the member holds all it may until commitOffsets() (maxInFlight records, or maxHeld takes:
  // records that arrive one at a time come in takes of one).
  full() {
    const c = this.consumer;
    return !c.autoCommit && (this.uncommitted.length >= c.maxInFlight || this.member.held >= native.batchLayout.maxHeld);
  }

  // The next batch, or null when the member is full() or has nothing now. eachBatch gathers takes while the topic
  // has records, up to maxInFlight records: {parts: [batch, ...], count, firstSeq, lost} (sequence numbers run on
  // from one take to the next).
  take() {
    const c = this.consumer;
    if (this.queued.length > 0) {
      if (!c.eachBatch) return this.queued.shift();
      const parts = this.queued.splice(0);
      const sum = (field) => parts.reduce((n, p) => n + p[field], 0);
      return { parts, count: sum('count'), firstSeq: parts[0].firstSeq, lost: sum('lost') };
    }
    if (this.full()) return null;
    const ackSeq = c.autoCommit ? this.finished : 0;
    const room = () => c.maxInFlight - (c.autoCommit ? 0 : this.uncommitted.length);
    const first = this.slabs.take(this.member, Math.min(this.maxBatch, room()), ackSeq);
    if (first === null || !c.eachBatch) return first;
    const parts = [first];
    let { count, lost } = first;
    while (count < room()) {
      const next = this.slabs.take(this.member, Math.min(this.maxBatch, room() - count), ackSeq);
      if (next === null) break;  // the topic is empty for now, or the member holds its most takes
      parts.push(next);
      count += next.count;
      lost += next.lost;
    }
    return { parts, count, firstSeq: first.firstSeq, lost };
  }

  async run() {
    const c = this.consumer;
    let sinceYield = 0;
    let yieldAt = Date.now() + YIELD_MS;
    let errors = 0;
    while (c.running) {
      if (this.paused) {
        await new Promise((resolve) => { this.wake = resolve; });
        continue;
      }
      let batch;
      const fetchStart = c.listening(events.FETCH) ? Date.now() : 0;
      if (c.listening(events.FETCH_START)) c.emit(events.FETCH_START, {});
      try {
        batch = takeSpinning(this);
        errors = 0;
        if (fetchStart !== 0) c.emit(events.FETCH, { numberOfBatches: batch === null ? 0 : 1, duration: Date.now() - fetchStart });
      } catch (e) {
        // A corrupted record, a member table full, a stopped peer holding the group's lock: say so, then back
        // off (doubling up to 5 s) instead of logging in a tight loop.
        errors += 1;
        c.logger_.error(`consumer error on topic ${this.name}: ${e.message}`, {
          topic: this.name, groupId: c.groupId, error: fromNative(e, { topic: this.name }),
        });
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** (errors - 1), 5000)));
        continue;
      }
      if (batch === null) {
        if (this.full()) {
          if (!this.warnedFull) {
            this.warnedFull = true;
            c.logger_.warn(
              `topic ${this.name}: ${this.uncommitted.length} records delivered and not committed (autoCommit is ` +
                `false); a member holds at most maxInFlight (${c.maxInFlight}) unacked records in at most ` +
                `${native.batchLayout.maxHeld} takes, so fetching waits for commitOffsets()`,
              { topic: this.name, groupId: c.groupId },
            );
          }
          await new Promise((resolve) => { this.wake = resolve; });
        } else {
          await this.park();
        }
        continue;
      }
      if (batch.lost > 0) {
        c.logger_.warn(`records lost on topic ${this.name} (overwrite policy): ${batch.lost}`, {
          topic: this.name, groupId: c.groupId, lost: batch.lost,
        });
      }
      const gen = this.gen;
      const described = c.listening(events.START_BATCH_PROCESS) || c.listening(events.END_BATCH_PROCESS)
        ? this.describeBatch(batch) : null;
      if (described) c.emit(events.START_BATCH_PROCESS, described);
      const done = await this.process(batch, gen);
      if (described) c.emit(events.END_BATCH_PROCESS, { ...described, duration: Date.now() - described.started });
      if (this.gen !== gen) continue;  // a seek or a rejoin dropped the rest of the batch
      if (!done) continue;
      sinceYield += batch.count;
      if (sinceYield >= YIELD_RECORDS || Date.now() >= yieldAt) {
        await yieldToIo();  // timers, sockets and other callbacks run between batches of a topic that never runs dry
        sinceYield = 0;
        yieldAt = Date.now() + YIELD_MS;
      }
    }
  }

  // START_BATCH_PROCESS / END_BATCH_PROCESS payload of a batch, as kafkajs gives it (only built when listened to).
  describeBatch(batch) {
    const parts = batch.parts || [batch];
    const first = new KafkaMessage(parts[0], 0).offset;
    const lastPart = parts[parts.length - 1];
    const last = new KafkaMessage(lastPart, lastPart.count - 1).offset;
    const high = BigInt(this.topic.info().latest);
    return {
      topic: this.name, partition: 0, highWatermark: String(high), offsetLag: String(high - 1n - BigInt(last)),
      offsetLagLow: String(high - 1n - BigInt(first)), batchSize: batch.count, firstOffset: first, lastOffset: last,
      started: Date.now(),
    };
  }

  // Processes a batch; false when it was abandoned (error, seek, stop).
  async process(batch, gen) {
    const c = this.consumer;
    const manual = !c.autoCommit;
    if (c.eachMessage) {
      for (let i = 0; i < batch.count; i++) {
        if (!c.running || this.gen !== gen) return false;
        const message = new KafkaMessage(batch, i);
        if (manual) this.uncommitted.push({ seq: batch.firstSeq + i, message });
        const entered = c.gate.enter();
        if (entered) await entered;
        this.busy = true;
        this.calls += 1;
        let failed = false;
        let error;
        try {
          await c.eachMessage({ topic: this.name, partition: 0, message, heartbeat: c.heartbeatFn, pause: this.pauseFn });
        } catch (e) {
          failed = true;
          error = e;
        }
        this.busy = false;
        c.gate.leave();
        if (this.gen !== gen) return false;
        if (failed) {
          const seq = batch.firstSeq + i;
          const outcome = this.nackable ? await this.nack(seq, message, error, gen, 'eachMessage') : 'fallback';
          if (outcome === 'abandoned') return false;
          if (outcome === 'fallback') {
            await this.fail(error, 'eachMessage');
            return false;
          }
        } else {
          this.retries = 0;
        }
        this.finished = batch.firstSeq + i + 1;
        while (this.paused && c.running && this.gen === gen) await new Promise((resolve) => { this.wake = resolve; });
      }
      return true;
    }
    const messages = new Array(batch.count);
    let i = 0;
    for (const part of batch.parts) {
      for (let j = 0; j < part.count; j++, i++) {
        messages[i] = new KafkaMessage(part, j);
        if (manual) this.uncommitted.push({ seq: batch.firstSeq + i, message: messages[i] });
      }
    }
    return this.processBatch(batch, messages, gen);
  }

  // A handler call failed on the record with sequence number `seq`: nacks it with the error's text, so that the group
  // retries it after its backoff, or dead-letters it after its last attempt. -> 'done'; 'fallback' when the nack
  // failed (the caller restarts the member, as kafkajs would); 'abandoned' when a stop or seek came while the nack
  // waited for room in the group's retry table.
  async nack(seq, message, error, gen, where) {
    const c = this.consumer;
    const text = errorText(error);
    const about = () => ({
      topic: this.name, partition: 0, offset: message.offset, attempt: message.attempt, groupId: c.groupId,
      error: error && error.message, stack: error && error.stack,
    });
    let dead;
    try {
      dead = await nackMakingRoom({
        member: this.member, slabs: this.slabs, queued: this.queued, park: () => this.park(),
        alive: () => c.running && this.gen === gen,
      }, seq, -1, text);
    } catch (e) {
      c.logger_.error(`cannot nack the record (${e.message}): restarting the member instead`, about());
      return 'fallback';
    }
    if (dead === null) return 'abandoned';  // stopped or moved while it made room: the record goes back on close
    if (dead) {
      c.logger_.error(`Error when calling ${where}: that was the record's last attempt; it went to the ` +
        `dead-letter topic ${this.name}.dlq`, about());
    } else {
      c.logger_.warn(`Error when calling ${where}: the record is retried after the group's backoff`, about());
    }
    return 'done';
  }

  // Waits `ms`, or less when stop() (or anything else calling onReady) cuts it short.
  pauseFor(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // Hands everything unfinished back to the group and rejoins after a backoff.
  async fail(error, where) {
    const c = this.consumer;
    const { retry } = c;
    // kafkajs' backoff: initialRetryTime * multiplier^n, randomised by +-factor, at most maxRetryTime.
    const base = retry.initialRetryTime * Math.pow(retry.multiplier, this.retries);
    const delay = Math.min(Math.ceil(base * (1 - retry.factor + 2 * retry.factor * Math.random())), retry.maxRetryTime);
    this.retries += 1;
    c.logger_.error(`Error when calling ${where}`, {
      topic: this.name, partition: 0, groupId: c.groupId, error: error && error.message, stack: error && error.stack,
      retryInMs: delay,
    });
    this.gen += 1;
    this.uncommitted = [];
    this.queued = [];  // the rejoin hands them back with the rest
    // As kafkajs: `retry.retries` failures in a row are retried (here: redelivered after a backoff); the next one
    // crashes the consumer: CRASH, then a restart (the same rejoin) unless retry.restartOnFailure(error) says no,
    // in which case the consumer disconnects and its unfinished records go back to the group.
    if (this.retries > retry.retries) {
      this.retries = 0;
      const restart = await c.shouldRestart(error);
      c.emit(events.CRASH, { error, groupId: c.groupId, restart });
      if (!restart) {
        c.logger_.error('Crash: not restarting (retry.restartOnFailure)', { groupId: c.groupId, error: error && error.message });
        c.crashed();
        return;
      }
    }
    // Acks what finished before the failed record, then leaves (the rest goes back to the group) and rejoins.
    try {
      if (c.autoCommit && this.finished > 0) this.member.ack(this.finished);
      c.emit(events.REBALANCING, { groupId: c.groupId, memberId: c.memberId() });
      await this.member.rejoin();
      c.emitGroupJoin();
    } catch (e) {
      c.logger_.error(`rejoin failed on topic ${this.name}: ${e.message}`, { topic: this.name, groupId: c.groupId });
    }
    await this.pauseFor(delay);  // stop() cuts the backoff short
  }

  async seek(to) {
    this.gen += 1;
    this.uncommitted = [];
    this.queued = [];  // what was handed out counts as done, as the rest of the batch in hand
    this.onReady();  // a loop parked or paused looks again
    try {
      await this.member.seek(to);
      return null;
    } catch (e) {
      this.consumer.logger_.error(`seek failed on topic ${this.name}: ${e.message}`, { topic: this.name, groupId: this.consumer.groupId });
      return e.message;
    }
  }

  // Acks every delivered record whose offset is below `next` (committed = the next offset to read), as far as
  // delivery order allows (an ack covers all records this member received before it). autoCommit false only:
  // with autoCommit, what eachMessage finished is acked anyway.
  commitBelow(next) {
    let n = 0;
    while (n < this.uncommitted.length && BigInt(this.uncommitted[n].message.offset) < next) n += 1;
    if (n === 0) return false;
    const last = this.uncommitted[n - 1].seq;
    this.uncommitted.splice(0, n);
    this.member.ack(last + 1);
    if (!this.full()) this.warnedFull = false;
    this.onReady();  // a loop waiting for room looks again
    return true;
  }

  async processBatch(batch, all, gen) {
    const c = this.consumer;
    let first = 0;  // records before it are resolved and done
    for (;;) {
      const messages = first === 0 ? all : all.slice(first);
      let resolved = -1;  // index into messages of the last resolved record
      let acked = -1;
      const info = this.topic.info();
      const high = BigInt(info.latest);
      const commitResolved = () => {
        if (c.autoCommit && resolved > acked) {
          this.finished = batch.firstSeq + first + resolved + 1;
          this.member.ack(this.finished);
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
            const f = messages.length ? BigInt(messages[0].offset) : high - 1n;
            return String(high - 1n - f);
          },
        },
        resolveOffset: (offset) => {
          const o = String(offset);
          for (let i = messages.length - 1; i > resolved; i--) {
            if (messages[i].offset === o) {
              resolved = i;
              break;
            }
          }
        },
        heartbeat: c.heartbeatFn,
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
        isStale: () => this.gen !== gen,
      };
      const entered = c.gate.enter();
      if (entered) await entered;
      this.busy = true;
      this.calls += 1;
      try {
        await c.eachBatch(payload);
      } catch (e) {
        this.busy = false;
        c.gate.leave();
        if (this.gen !== gen) return false;
        commitResolved();
        // The first unresolved record is taken for the one that failed: it is nacked, and the records after it
        // are handed to eachBatch again.
        const k = resolved + 1;
        const outcome = !this.nackable ? 'fallback'
          : k >= messages.length ? 'done'
          : await this.nack(batch.firstSeq + first + k, messages[k], e, gen, 'eachBatch');
        if (outcome === 'abandoned') return false;
        if (outcome === 'fallback') {
          await this.fail(e, 'eachBatch');
          return false;
        }
        if (k < messages.length) this.finished = batch.firstSeq + first + k + 1;  // (else commitResolved did)
        first += k + 1;
        if (first >= all.length) return true;
        if (!c.running || this.gen !== gen) return false;
        continue;
      }
      this.busy = false;
      c.gate.leave();
      if (this.gen !== gen) return false;
      if (c.eachBatchAutoResolve) resolved = messages.length - 1;
      commitResolved();
      this.retries = 0;
      first += resolved + 1;
      if (first >= all.length) return true;
      // kafkajs fetches unresolved records again: here they are handed to eachBatch again, after a pause.
      if (!c.running || this.paused) return false;
      await new Promise((r) => setTimeout(r, 10));
      if (!c.running || this.gen !== gen) return false;
    }
  }

  async close() {
    const m = this.member;
    this.onReady();  // a parked or paused loop sees `running` false and ends
    if (this.loop) await this.loop;
    this.member = null;
    if (m) {
      try {
        if (this.consumer.autoCommit && this.finished > 0) m.ack(this.finished);
      } catch {
        // the consumer is going away anyway: what was not acked goes back to the group
      }
      await m.close();
    }
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
      factor: retry.factor ?? 0.2,
      retries: retry.retries ?? 5,
      restartOnFailure: retry.restartOnFailure,
    };
    if (!Number.isInteger(this.retry.retries) || this.retry.retries < 0) {
      throw new KafkaJSNonRetriableError(`retry.retries must be a whole number >= 0, got ${this.retry.retries}`);
    }
    if (typeof this.retry.factor !== 'number' || !(this.retry.factor >= 0 && this.retry.factor < 1)) {
      throw new KafkaJSNonRetriableError(`retry.factor must be a number in [0, 1), got ${this.retry.factor}`);
    }
    if (this.retry.restartOnFailure !== undefined && typeof this.retry.restartOnFailure !== 'function') {
      throw new KafkaJSNonRetriableError('retry.restartOnFailure must be a function (error) => Promise<boolean>');
    }
    // libmq options (see memberOptions in common.js). `redelivery`: the group's retry policy for records whose
    // handler threw, if this consumer creates the group (redeliveryPolicy in common.js); false turns nacks off for
    // this consumer.
    ({ maxInFlight: this.maxInFlight, maxBatch: this.maxBatch, wait: this.wait } = memberOptions(config));
    this.redelivery = config.redelivery === false ? false : redeliveryPolicy(config.redelivery);
    // `ordering`: the group's ordering if this consumer creates it (orderingOption in common.js).
    this.ordering = orderingOption(config.ordering);
    this.client = null;
    this.connecting = null;
    this.subscriptions = [];  // {topic: string|RegExp, fromBeginning}
    this.topics = new Map();  // name -> {topic: native Topic, fromBeginning}
    this.runners = new Map();  // name -> TopicRunner
    this.pausedTopics = new Set();
    this.pendingSeeks = new Map();
    this.running = false;
    this.gate = new Gate(1);
    this.emitter = new EventEmitter();
    this.events = events;
    this.heartbeatInterval = heartbeatIntervalOf(config);
    this.heartbeatTimer = null;
    this.heartbeatFn = async () => this.heartbeat();
  }

  emit(type, payload) {
    this.emitter.emit(type, { id: Date.now(), type, timestamp: Date.now(), payload });
  }

  // After retry.retries failed handler calls in a row: restart? (kafkajs: retry.restartOnFailure, default yes; a
  // callback that throws counts as yes.)
  async shouldRestart(error) {
    if (!this.retry.restartOnFailure) return true;
    try {
      return (await this.retry.restartOnFailure(error)) !== false;
    } catch (e) {
      this.logger_.error('Caught error when invoking user-provided "restartOnFailure" callback. Defaulting to restarting.', {
        error: e && e.message, cause: error && error.message, groupId: this.groupId,
      });
      return true;
    }
  }

  // A crash without restart: stop every topic's loop and disconnect, as kafkajs does (outside the failing loop,
  // which disconnect() waits for).
  crashed() {
    this.running = false;
    setImmediate(() => {
      this.disconnect().catch((e) => this.logger_.error(`disconnect after a crash failed: ${e.message}`, { groupId: this.groupId }));
    });
  }

  // Whether anyone listens to `type`: the per-batch events cost nothing unless someone does.
  listening(type) {
    return this.emitter.listenerCount(type) > 0;
  }

  memberId() {
    return `${this.kafka.clientId}-${process.pid}`;
  }

  emitGroupJoin() {
    this.emit(events.GROUP_JOIN, {
      duration: 0, groupId: this.groupId, isLeader: true, leaderId: 'libmq', groupProtocol: 'libmq',
      memberId: this.memberId(), memberAssignment: Object.fromEntries([...this.runners.keys()].map((n) => [n, [0]])),
    });
  }

  heartbeat() {
    this.emit(events.HEARTBEAT, { groupId: this.groupId, memberId: this.memberId(), groupGenerationId: 1 });
  }

  // HEARTBEAT every heartbeatInterval while running, unless a handler call has run through a whole interval (kafkajs
  // heartbeats from its fetch loop, which a long eachMessage holds up: a health check built on it sees a stuck
  // handler); a handler's own heartbeat() call emits one at once.
  startHeartbeats() {
    const interval = this.heartbeatInterval;
    this.heartbeatTimer = setInterval(() => {
      if (!this.running || !this.listening(events.HEARTBEAT)) return;
      let stuck = false;  // a handler call has run through a whole interval
      for (const r of this.runners.values()) {
        if (r.busy && r.calls === r.callsAtTick) stuck = true;
        r.callsAtTick = r.calls;
      }
      if (stuck) return;
      this.heartbeat();
    }, interval);
    this.heartbeatTimer.unref();
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
      if (this.config.allowAutoTopicCreation === false) await client.describe(name);
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
    if (!subscription.topic && !subscription.topics) {
      throw new KafkaJSNonRetriableError('Missing required argument "topics"');
    }
    if (subscription.topics != null && !Array.isArray(subscription.topics)) {
      throw new KafkaJSNonRetriableError('Argument "topics" must be an array');
    }
    const list = subscription.topics || [subscription.topic];
    if (list.length === 0) throw new KafkaJSNonRetriableError('Invalid topics array, it cannot be empty');
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
    ({ maxInFlight: this.maxInFlight, maxBatch: this.maxBatch } = memberOptions(this.config, this.eachBatch ? BATCH_IN_FLIGHT : undefined));
    this.gate = new Gate(Math.max(1, config.partitionsConsumedConcurrently || 1));
    this.running = true;
    const started = [];
    try {
      for (const [name, { topic, fromBeginning }] of this.topics) {
        const r = new TopicRunner(this, name, topic, fromBeginning);
        r.paused = this.pausedTopics.has(name);
        this.runners.set(name, r);
        started.push(r);
        r.open({ maxBatch: this.maxBatch, wait: this.wait });
      }
      for (const [name, to] of this.pendingSeeks) await this.applySeek(name, to);
      this.pendingSeeks.clear();
      for (const r of started) r.begin();
    } catch (e) {
      this.running = false;
      for (const r of started) await r.close();
      this.runners.clear();
      throw e;
    }
    this.emitGroupJoin();
    this.startHeartbeats();
  }

  // Stops fetching; waits for the eachMessage/eachBatch in progress; hands unprocessed records back to the group.
  async stop() {
    if (!this.running && this.runners.size === 0) return;
    this.running = false;
    clearInterval(this.heartbeatTimer);
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
      if (r) r.paused = true;  // its loop stops taking after the record in progress
    }
  }

  resume(topicPartitions = []) {
    for (const { topic } of topicPartitions) {
      this.pausedTopics.delete(topic);
      const r = this.runners.get(topic);
      if (r && r.paused) {
        r.paused = false;
        r.onReady();  // the loop waiting for the resume goes on
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
        memberId: this.memberId(), clientId: this.kafka.clientId, clientHost: 'localhost',
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
