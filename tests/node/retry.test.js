'use strict';
// Nack, retry with backoff and dead letters through both Node APIs: a throwing eachMessage (or eachBatch) nacks its
// record, which comes back after the group's backoff with its attempt number while the consumer goes on; the last
// attempt sends it to `<topic>.dlq` with the mq.dlq.* headers; the fast path's explicit nack; bad options by name;
// the group's policy: given by the consumer that creates the group, kept when another joins (with a warning), changed
// on purpose by mqctl set-retry.
const test = require('node:test');
const assert = require('node:assert');
const { execFile } = require('child_process');
const fs = require('fs');
const path = require('path');
const util = require('util');
const { PKG, REPO, startDaemon, condition, within } = require('./helpers');
const { Kafka, Topic, logLevel } = require(PKG);

const MQCTL = process.env.MQCTL || path.join(REPO, 'build', 'release', 'daemon', 'mqctl', 'mqctl');

let d;
test.before(async () => {
  d = await startDaemon();
});
test.after(async () => {
  if (d) await d.stop();
});

const kafka = () => new Kafka({ clientId: 'retry-test', brokers: [`unix:${d.socket}`], logLevel: 0 });

async function publish(topic, messages) {
  const p = kafka().producer();
  await p.connect();
  await p.send({ topic, messages });
  await p.disconnect();
}

// The records of `topic` from the beginning for a fresh group, read through the fast path until `n` came.
async function readAll(topic, n, group = 'replay') {
  const t = await Topic.open(topic, { socket: d.socket });
  const out = [];
  try {
    const c = t.consumer({ group, fromBeginning: true });
    await within(10000, `${n} records of ${topic} (have ${out.length})`, (async () => {
      for await (const m of c) {
        out.push({ value: m.value.toString(), key: m.key && m.key.toString(), headers: textHeaders(m.headers) });
        if (out.length >= n) break;
      }
    })());
  } finally {
    await t.close();
  }
  return out;
}

const textHeaders = (h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.toString()]));

// Runs a kafkajs consumer whose eachMessage calls `handle` (a throw fails the record) and records every delivery.
async function run(groupId, topic, handle, { consumerConfig = {}, runConfig = {} } = {}) {
  const c = kafka().consumer({ groupId, ...consumerConfig });
  const seen = [];
  const cond = condition();
  const restarts = [];
  c.on(c.events.REBALANCING, (e) => { restarts.push(e); cond.bump(); });
  c.on(c.events.CRASH, (e) => { restarts.push(e); cond.bump(); });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  await c.run({
    ...runConfig,
    eachMessage: async ({ message }) => {
      const at = { offset: message.offset, value: message.value.toString(), attempt: message.attempt,
        firstFailure: message.firstFailureTimestamp, redelivered: message.redelivered, ms: performance.now(),
        wall: Date.now() };
      seen.push(at);
      cond.bump();
      try {
        await handle(message, at);
      } finally {
        at.endMs = performance.now();
      }
    },
  });
  return { c, seen, restarts, until: (pred, ms, what) => cond.until(() => pred(seen), ms, what) };
}

test('eachMessage throws: the record comes back with attempt 2 after the backoff; the next go on meanwhile', async (t) => {
  // Both ways a parked consumer waits: io_uring (where the kernel has it) and the waiter thread ('spin_futex').
  for (const wait of [undefined, 'spin_futex']) {
    await t.test(`wait: ${wait || 'default'}`, async () => {
      const topic = `flaky-${wait || 'default'}`;
      const BACKOFF = 300;
      await publish(topic, [{ value: 'a' }, { value: 'b' }, { value: 'c' }]);
      let committedWhileWaiting = null;
      const r = await run('mailer', topic, async (message, at) => {
        if (message.value.toString() === 'b' && message.attempt === 1) throw new Error('421 mail server busy');
        if (message.value.toString() === 'c') {
          // The group's committed offset stays below the record waiting for its retry.
          const info = await Topic.open(topic, { socket: d.socket });
          committedWhileWaiting = info.info().groups.find((g) => g.name === 'mailer');
          await info.close();
        }
        at.ok = true;
      }, { consumerConfig: { wait, redelivery: { backoffMs: BACKOFF, jitter: 0 } } });
      await r.until((s) => s.length >= 4, 10000, 'the retried record');
      await r.c.disconnect();
      assert.deepStrictEqual(r.seen.map((m) => [m.offset, m.attempt, m.redelivered, m.firstFailure === undefined]),
        [['0', 1, false, true], ['1', 1, false, true], ['2', 1, false, true], ['1', 2, true, false]]);
      const [, failed, , retried] = r.seen;
      const waited = retried.ms - failed.endMs;  // from the throw (the nack comes after it) to the redelivery
      assert.ok(waited >= BACKOFF - 1, `the retry came ${waited.toFixed(1)} ms after the failure, before the backoff`);
      assert.ok(waited < BACKOFF + 5000, `the retry came ${waited.toFixed(1)} ms after the failure`);
      const firstFailure = Number(retried.firstFailure);
      assert.ok(firstFailure >= failed.wall && firstFailure <= retried.wall,
        `firstFailureTimestamp ${firstFailure} between the failure (${failed.wall}) and the retry (${retried.wall})`);
      assert.strictEqual(committedWhileWaiting.committed, '1');
      assert.strictEqual(committedWhileWaiting.retrying, 1);
      assert.deepStrictEqual(r.restarts, [], 'no rebalance, no crash: the consumer went on');
      const after = await Topic.open(topic, { socket: d.socket });
      const g = after.info().groups.find((x) => x.name === 'mailer');
      await after.close();
      assert.deepStrictEqual([g.committed, g.retrying], ['3', 0], 'every record acked, the retried one included');
    });
  }
});

test('a record that fails every attempt goes to <topic>.dlq after maxAttempts, with the mq.dlq headers', async () => {
  const topic = 'invites';
  const poisonous = { key: 'u2', value: 'poison', headers: { type: 'invite' } };
  await publish(topic, [{ value: 'ok-1' }, poisonous, { value: 'ok-2' }]);
  const r = await run('sender', topic, async (message) => {
    if (message.value.toString() === 'poison') throw new TypeError('cannot render the template');
  }, { consumerConfig: { redelivery: { maxAttempts: 3, backoffMs: 20, factor: 2, jitter: 0 } } });
  await r.until((s) => s.filter((m) => m.value === 'poison').length >= 3, 10000, 'three attempts');
  const [dead] = await readAll(`${topic}.dlq`, 1);
  await r.c.disconnect();
  const poison = r.seen.filter((m) => m.value === 'poison');
  assert.deepStrictEqual(poison.map((m) => m.attempt), [1, 2, 3]);
  assert.strictEqual(poison[1].firstFailure, poison[2].firstFailure, 'the first failure stays the first');
  assert.ok(poison[2].ms - poison[1].endMs >= 40 - 1, 'the third attempt waited backoff * factor');
  assert.strictEqual(dead.value, 'poison');
  assert.strictEqual(dead.key, 'u2');
  const ns = BigInt(dead.headers['mq.dlq.first_failure_ns']);
  assert.strictEqual(ns / 1000000n, BigInt(poison[1].firstFailure));
  delete dead.headers['mq.dlq.first_failure_ns'];
  assert.deepStrictEqual(dead.headers, {
    type: 'invite', 'mq.dlq.topic': topic, 'mq.dlq.offset': '1', 'mq.dlq.group': 'sender', 'mq.dlq.attempts': '3',
    'mq.dlq.error': 'TypeError: cannot render the template',
  });
  const t = await Topic.open(topic, { socket: d.socket });
  const g = t.info().groups.find((x) => x.name === 'sender');
  await t.close();
  assert.strictEqual(g.committed, '3', 'the dead letter is acked in its source');
  assert.deepStrictEqual(r.restarts, []);
  // A dead letter no later attempt can follow: poison is delivered three times, never a fourth.
  assert.strictEqual(poison.length, 3);
});

test('forty records failing at once (the retry table holds 32) are each retried, then dead-lettered', async () => {
  const topic = 'outage';
  const values = Array.from({ length: 40 }, (_, i) => `m${i}`);
  await publish(topic, values.map((value) => ({ value })));
  const r = await run('outage-group', topic, async () => {
    throw new Error('mail server down');
  }, { consumerConfig: { redelivery: { maxAttempts: 2, backoffMs: 200, jitter: 0 } } });
  await r.until((s) => s.length >= 80, 20000, 'two attempts of each record');
  const dead = await readAll(`${topic}.dlq`, 40);
  await r.c.disconnect();
  const attempts = new Map();
  for (const m of r.seen) attempts.set(m.value, [...(attempts.get(m.value) || []), m.attempt]);
  assert.deepStrictEqual([...attempts.keys()].sort(), [...values].sort());
  for (const [v, a] of attempts) assert.deepStrictEqual(a, [1, 2], `attempts of ${v}`);
  assert.deepStrictEqual(dead.map((m) => m.value).sort(), [...values].sort());
  assert.deepStrictEqual(r.restarts, []);
});

test('eachBatch that throws: the first unresolved record is nacked, the rest handed to eachBatch again', async () => {
  const topic = 'batchy';
  await publish(topic, ['a', 'b', 'c', 'd'].map((value) => ({ value })));
  const c = kafka().consumer({ groupId: 'batcher', redelivery: { backoffMs: 100, jitter: 0 } });
  const calls = [];
  const cond = condition();
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  await c.run({
    eachBatch: async ({ batch, resolveOffset }) => {
      calls.push(batch.messages.map((m) => `${m.value}${m.attempt}`));
      cond.bump();
      for (const m of batch.messages) {
        if (m.value.toString() === 'b' && m.attempt === 1) throw new Error('b failed');
        resolveOffset(m.offset);
      }
    },
  });
  await cond.until(() => calls.flat().includes('b2'), 10000, 'b again');
  await c.disconnect();
  assert.deepStrictEqual(calls, [['a1', 'b1', 'c1', 'd1'], ['c1', 'd1'], ['b2']]);
});

test('where a nack cannot serve (autoCommit false, redelivery false) a throw restarts the member', async () => {
  for (const [name, consumerConfig, runConfig] of [
    ['manual', {}, { autoCommit: false }],
    ['off', { redelivery: false }, {}],
  ]) {
    const topic = `restart-${name}`;
    await publish(topic, [{ value: 'x' }]);
    let failed = false;
    const r = await run(`restart-${name}`, topic, async () => {
      if (!failed) {
        failed = true;
        throw new Error('once');
      }
    }, { consumerConfig: { retry: { initialRetryTime: 10 }, ...consumerConfig }, runConfig });
    await r.until((s) => s.length >= 2, 10000, `${name}: the redelivery`);
    await r.c.disconnect();
    assert.deepStrictEqual(r.seen.map((m) => [m.attempt, m.redelivered]), [[1, false], [1, true]], name);
    assert.strictEqual(r.restarts.length, 1, `${name}: one rebalance`);
  }
});

test('fast path: nack with a delay, attempt and firstFailureTimestamp, then a dead letter at maxAttempts', async () => {
  const t = await Topic.open('fast-retry', { socket: d.socket });
  try {
    t.publishBatch([Buffer.from('x'), Buffer.from('y')]);
    const c = t.consumer({ group: 'fast', fromBeginning: true, redelivery: { maxAttempts: 2 } });
    const seen = [];
    let nackedAt = 0;
    const DELAY = 250;
    const outcomes = [];
    await within(10000, 'x retried and dead-lettered', (async () => {
      for await (const m of c) {
        seen.push([m.value.toString(), m.attempt, m.firstFailureTimestamp, performance.now()]);
        if (m.value.toString() !== 'x') continue;
        if (m.attempt === 1) {
          nackedAt = performance.now();
          outcomes.push(await c.nack(m, { delayMs: DELAY, error: 'later' }));
          await assert.rejects(c.nack(m), (e) => e.mqCode === 'invalid_argument', 'a nacked record is not held');
        } else {
          outcomes.push(await c.nack(m, { error: new Error('later again') }));
          break;
        }
      }
    })());
    assert.deepStrictEqual(seen.map(([v, a]) => [v, a]), [['x', 1], ['y', 1], ['x', 2]]);
    assert.deepStrictEqual(outcomes, ['retry', 'deadLettered']);
    const waited = seen[2][3] - nackedAt;
    assert.ok(waited >= DELAY - 1, `x came back ${waited.toFixed(1)} ms after its nack`);
    assert.strictEqual(seen[0][2], undefined);
    assert.strictEqual(typeof seen[2][2], 'number');
    const [dead] = await readAll('fast-retry.dlq', 1);
    assert.deepStrictEqual([dead.value, dead.headers['mq.dlq.attempts'], dead.headers['mq.dlq.error']],
      ['x', '2', 'later again']);
  } finally {
    await t.close();
  }
});

test('fast path: nack refuses a message of another consumer and a bad delay; the record stays held', async () => {
  const t = await Topic.open('fast-bad', { socket: d.socket });
  try {
    t.publish(Buffer.from('z'));
    const a = t.consumer({ group: 'a', fromBeginning: true });
    const b = t.consumer({ group: 'b', fromBeginning: true });
    const { value: ma } = await a.next();
    const { value: mb } = await b.next();
    await assert.rejects(a.nack(mb), /a message this consumer handed out/);
    await assert.rejects(a.nack(ma, { delayMs: -5 }), /delayMs must be a whole number from 0 to 86400000, got -5/);
    await assert.rejects(a.nack(ma, { delayMs: 1.5 }), /delayMs/);
    assert.strictEqual(await a.nack(ma, { delayMs: 0 }), 'retry', 'still held: the refused nacks left it');
  } finally {
    await t.close();
  }
});

test('a bad redelivery option is refused by name', async () => {
  const k = kafka();
  const refused = [
    [{ maxAttempts: 0 }, /redelivery\.maxAttempts must be a whole number from 1 to 63, got 0/],
    [{ maxAttempts: 64 }, /redelivery\.maxAttempts must be a whole number from 1 to 63, got 64/],
    [{ maxAttempts: 2.5 }, /redelivery\.maxAttempts/],
    [{ backoffMs: -1 }, /redelivery\.backoffMs must be a whole number from 0 to 86400000, got -1/],
    [{ factor: 0.5 }, /redelivery\.factor must be a number from 1 to 100, got 0\.5/],
    [{ jitter: 2 }, /redelivery\.jitter must be a number from 0 to 1, got 2/],
    [{ maxBackoffMs: '1000' }, /redelivery\.maxBackoffMs must be a whole number/],
    [{ backoffMs: 6e4 }, /redelivery\.backoffMs \(60000\) must not exceed redelivery\.maxBackoffMs \(30000, the default/],
    [{ maxAttempt: 3 }, /redelivery: unknown option 'maxAttempt' \(options: maxAttempts, backoffMs, factor, maxBack/],
    ['yes', /redelivery must be an object/],
  ];
  for (const [redelivery, message] of refused) {
    assert.throws(() => k.consumer({ groupId: 'g', redelivery }), message, JSON.stringify(redelivery));
  }
  const t = await Topic.open('refused-policies', { socket: d.socket });
  try {
    assert.throws(() => t.consumer({ group: 'g', redelivery: { jitter: -0.1 } }), /redelivery\.jitter/);
    assert.throws(() => t.consumer({ group: 'g', redelivery: false }), /redelivery must be an object/);
  } finally {
    await t.close();
  }
});

const DEFAULTS = { maxAttempts: 5, backoffMs: 100, factor: 2, maxBackoffMs: 30000, jitter: 0.1 };

// The retry policy of `group` on `topic`, read from the topic's segment.
async function groupPolicy(topic, group) {
  const t = await Topic.open(topic, { socket: d.socket });
  try {
    return t.info().groups.find((g) => g.name === group).retry;
  } finally {
    await t.close();
  }
}

// Runs a kafkajs consumer of `topic` in `groupId` until it joined, then disconnects it -> the WARN logs it wrote.
async function joinOnce(groupId, topic, config) {
  const warnings = [];
  const logCreator = () => ({ level, log }) => {
    if (level === logLevel.WARN) warnings.push(log);
  };
  const k = new Kafka({ clientId: 'retry-test', brokers: [`unix:${d.socket}`], logCreator });
  const c = k.consumer({ groupId, ...config });
  await c.connect();
  await c.subscribe({ topic });
  await c.run({ eachMessage: async () => {} });
  await c.disconnect();
  return warnings;
}

test("a group gets its creator's redelivery; a consumer that joins keeps the group's, with a warning", async () => {
  const created = { maxAttempts: 2, backoffMs: 40, factor: 3, maxBackoffMs: 5000, jitter: 0 };
  assert.deepStrictEqual(await joinOnce('billing', 'policies', { redelivery: created }), [], 'no warning');
  assert.deepStrictEqual(await groupPolicy('policies', 'billing'), created, 'the creator gave its policy');

  const asked = { maxAttempts: 7, backoffMs: 50, factor: 1.5, jitter: 0.25 };
  const warnings = await joinOnce('billing', 'policies', { redelivery: asked });
  assert.deepStrictEqual(await groupPolicy('policies', 'billing'), created, 'the group kept its policy');
  assert.strictEqual(warnings.length, 1, JSON.stringify(warnings));
  const [w] = warnings;
  const requested = { ...asked, maxBackoffMs: 30000 };
  assert.deepStrictEqual([w.topic, w.groupId, w.retry, w.requested], ['policies', 'billing', created, requested]);
  assert.strictEqual(w.message, 'group billing of topic policies has retry policy maxAttempts=2 backoffMs=40 ' +
    'factor=3 maxBackoffMs=5000 jitter=0, not this consumer\'s redelivery maxAttempts=7 backoffMs=50 factor=1.5 ' +
    'maxBackoffMs=30000 jitter=0.25: a group keeps its retry policy when a consumer joins it (to change it: ' +
    `mqctl --socket ${d.socket} set-retry policies --group billing --max-attempts 7 --backoff 50 --factor 1.5 ` +
    '--max-backoff 30000 --jitter 0.25)');

  // Nothing to say: the group's own policy (factor and jitter compared as libmq keeps them, in thousandths), no
  // redelivery, or redelivery false (no nacks for this consumer; the group's policy untouched).
  for (const config of [{ redelivery: { ...created, factor: 3.0004 } }, {}, { redelivery: false }]) {
    assert.deepStrictEqual(await joinOnce('billing', 'policies', config), [], JSON.stringify(config));
    assert.deepStrictEqual(await groupPolicy('policies', 'billing'), created, JSON.stringify(config));
  }
  // A consumer without redelivery that creates a group gives it the defaults.
  await joinOnce('plain', 'policies', {});
  assert.deepStrictEqual(await groupPolicy('policies', 'plain'), DEFAULTS);
});

const noMqctl = !fs.existsSync(MQCTL) && `mqctl not found at ${MQCTL}`;
test("the warning's mqctl command gives the group the policy the consumer asked for", { skip: noMqctl }, async () => {
  await joinOnce('changed', 'policies', { redelivery: { maxAttempts: 3 } });
  const asked = { redelivery: { maxAttempts: 9, backoffMs: 70, factor: 2.5 } };
  const [w] = await joinOnce('changed', 'policies', asked);
  const command = w.message.match(/\(to change it: mqctl (.*)\)$/)[1].split(' ');
  await util.promisify(execFile)(MQCTL, command);
  assert.deepStrictEqual(await groupPolicy('policies', 'changed'),
    { maxAttempts: 9, backoffMs: 70, factor: 2.5, maxBackoffMs: 30000, jitter: 0.1 });
  assert.deepStrictEqual(await joinOnce('changed', 'policies', asked), [], 'the group has the policy asked for now');
});

test("fast path: a group gets the redelivery of the member that creates it; one that joins keeps it", async () => {
  const t = await Topic.open('fast-policies', { socket: d.socket });
  try {
    const group = () => t.info().groups.find((g) => g.name === 'shared').retry;
    const created = { maxAttempts: 4, backoffMs: 30, factor: 1.25, maxBackoffMs: 2000, jitter: 0.5 };
    const first = t.consumer({ group: 'shared', redelivery: created });
    assert.deepStrictEqual(group(), created, 'the creator gave its policy');
    assert.deepStrictEqual(first.redelivery, created);
    const second = t.consumer({ group: 'shared', redelivery: { maxAttempts: 7, backoffMs: 50, factor: 3, jitter: 0 } });
    assert.deepStrictEqual(group(), created, 'the group kept its policy');
    assert.deepStrictEqual(second.redelivery, created, "c.redelivery is the group's, not the one asked for");
    const third = t.consumer({ group: 'shared' });
    assert.deepStrictEqual(third.redelivery, created);
    const plain = t.consumer({ group: 'plain' });
    assert.deepStrictEqual(plain.redelivery, DEFAULTS, 'a group created without redelivery has the defaults');
    for (const c of [first, second, third, plain]) await c.close();
    assert.strictEqual(first.redelivery, null, 'closed');
    assert.deepStrictEqual(group(), created, 'the group keeps its policy after its members leave');
    // Changed on purpose: for the group, whoever joins next.
    t.setRetryPolicy('shared', { maxAttempts: 9, backoffMs: 10 });
    const changed = { ...DEFAULTS, maxAttempts: 9, backoffMs: 10 };
    assert.deepStrictEqual(group(), changed);
    const fourth = t.consumer({ group: 'shared', redelivery: created });
    assert.deepStrictEqual(fourth.redelivery, changed);
    await fourth.close();
    assert.throws(() => t.setRetryPolicy('shared', { maxAttempts: 0 }), /policy\.maxAttempts must be a whole number/);
    assert.throws(() => t.setRetryPolicy('nosuch', { maxAttempts: 2 }),
      (e) => e.name === 'KafkaJSNonRetriableError' && /nosuch/.test(e.message));
    assert.deepStrictEqual(group(), changed, 'a refused change changed nothing');
  } finally {
    await t.close();
  }
});
