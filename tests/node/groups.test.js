'use strict';
// Consumer groups through the kafkajs API: fromBeginning, competing consumers in two processes, fan-out to two
// groups, redelivery after SIGKILL and after a throwing eachMessage (redelivery false; nacks: retry.test.js),
// restart from the committed offset, seek, pause/resume, commitOffsets with autoCommit off.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { PKG, startDaemon, child, condition, within } = require('./helpers');
const { Kafka } = require(PKG);

const WORKER = path.join(__dirname, 'fixtures', 'worker.js');

let d;
test.before(async () => {
  d = await startDaemon();
});
test.after(async () => {
  if (d) await d.stop();
});

const kafka = () => new Kafka({ clientId: 'groups-test', brokers: [`unix:${d.socket}`], logLevel: 0 });

async function publish(topic, values) {
  const p = kafka().producer();
  await p.connect();
  const offsets = [];
  for (const v of values) offsets.push((await p.send({ topic, messages: [{ value: v }] }))[0].baseOffset);
  await p.disconnect();
  return offsets;
}

// Runs a consumer collecting {offset, value}; `until(n)` waits for n records.
async function collect(groupId, topic, { fromBeginning = false, eachMessage, consumerConfig = {}, runConfig = {} } = {}) {
  const c = kafka().consumer({ groupId, ...consumerConfig });
  const got = [];
  const cond = condition();
  await c.connect();
  await c.subscribe({ topic, fromBeginning });
  await c.run({
    ...runConfig,
    eachMessage: async (payload) => {
      if (eachMessage) await eachMessage(payload, got);
      got.push({ offset: payload.message.offset, value: payload.message.value.toString(), redelivered: payload.message.redelivered });
      cond.bump();
    },
  });
  return {
    c,
    got,
    until: (n, ms = 10000) => cond.until(() => got.length >= n, ms, `${groupId}: ${n} records (have ${got.length})`),
    cond,
  };
}

const range = (a, b) => Array.from({ length: b - a }, (_, i) => String(a + i));

test('fromBeginning: true reads what was published before; false only what comes after joining', async () => {
  await publish('from-beginning', ['a', 'b', 'c']);
  const early = await collect('early', 'from-beginning', { fromBeginning: true });
  const late = await collect('late', 'from-beginning', { fromBeginning: false });
  await publish('from-beginning', ['d', 'e']);
  await early.until(5);
  await late.until(2);
  assert.deepStrictEqual(early.got.map((m) => m.offset), range(0, 5));
  assert.deepStrictEqual(early.got.map((m) => m.value), ['a', 'b', 'c', 'd', 'e']);
  assert.deepStrictEqual(late.got.map((m) => m.offset), ['3', '4']);
  await early.c.disconnect();
  await late.c.disconnect();
});

test('two groups each see every record', async () => {
  const values = range(0, 50).map((i) => `v${i}`);
  const g1 = await collect('fan-1', 'fan-out', { fromBeginning: true });
  const g2 = await collect('fan-2', 'fan-out', { fromBeginning: true });
  await publish('fan-out', values);
  await g1.until(50);
  await g2.until(50);
  assert.deepStrictEqual(g1.got.map((m) => m.value), values);
  assert.deepStrictEqual(g2.got.map((m) => m.value), values);
  await g1.c.disconnect();
  await g2.c.disconnect();
});

test('two processes in one group share the records: none lost, none doubled', async () => {
  const env = { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG, TOPIC: 'shared', GROUP: 'workers', FROM_BEGINNING: '1', DELAY_MS: '2', MAX_IN_FLIGHT: '4' };
  const a = child(WORKER, { env });
  const b = child(WORKER, { env });
  try {
    await a.until((l, j) => j.some((x) => x.event === 'ready'), 10000, 'worker a ready');
    await b.until((l, j) => j.some((x) => x.event === 'ready'), 10000, 'worker b ready');
    const n = 300;
    await publish('shared', range(0, n).map((i) => `job ${i}`));
    const done = (w) => w.json.filter((x) => x.event === 'done').map((x) => x.offset);
    const total = () => done(a).length + done(b).length;
    await within(20000, 'all records processed', Promise.race([
      a.until(() => total() >= n, 20000, 'all done'),
      b.until(() => total() >= n, 20000, 'all done'),
    ]));
    const all = [...done(a), ...done(b)].map(Number).sort((x, y) => x - y);
    assert.deepStrictEqual(all, range(0, n).map(Number), 'every offset exactly once');
    assert.ok(done(a).length > 0 && done(b).length > 0, `both shared the work (a=${done(a).length}, b=${done(b).length})`);
  } finally {
    await a.kill();
    await b.kill();
  }
});

test('a consumer killed with SIGKILL: its unacked records are redelivered to the group', async () => {
  const env = { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG, TOPIC: 'crash', GROUP: 'crash-group', FROM_BEGINNING: '1', HANG_AT: '2', MAX_IN_FLIGHT: '8' };
  await publish('crash', range(0, 6).map((i) => `r${i}`));
  const victim = child(WORKER, { env });
  // It finishes 0 and 1, hangs in eachMessage on 2 while holding 2..5 (prefetched, unacked).
  await victim.until((l, j) => j.some((x) => x.event === 'msg' && x.offset === '2'), 10000, 'the victim to hold offset 2');
  assert.deepStrictEqual(victim.json.filter((x) => x.event === 'done').map((x) => x.offset), ['0', '1']);
  await victim.kill('SIGKILL');
  const heir = child(WORKER, { env: { ...env, HANG_AT: '' } });
  try {
    // Until 2..5 are done (0 and 1 may come first again, see below: counting 4 records would stop too early).
    const doneAll = (j) => ['2', '3', '4', '5'].every((o) => j.some((x) => x.event === 'done' && x.offset === o));
    await heir.until((l, j) => doneAll(j), 15000, 'the heir to get 2..5');
    const got = heir.json.filter((x) => x.event === 'msg');
    // 0 and 1 were acked when their eachMessage resolved (the consumer thread applies an ack within
    // microseconds of it), so normally only 2..5 come back. At-least-once allows 0 or 1 again if the SIGKILL beat
    // that ack; then they must be flagged redelivered.
    const offsets = got.map((x) => x.offset);
    for (const o of ['2', '3', '4', '5']) assert.ok(offsets.includes(o), `offset ${o} redelivered (got ${offsets})`);
    for (const x of got) if (x.offset === '0' || x.offset === '1') assert.ok(x.redelivered, `offset ${x.offset} again, flagged`);
    assert.strictEqual(new Set(offsets).size, offsets.length, 'no record twice to the heir');
    assert.ok(got.find((x) => x.offset === '2').redelivered, 'offset 2 is flagged redelivered');
  } finally {
    await heir.kill();
  }
});

test('a restarted consumer resumes from the committed offset', async () => {
  await publish('resume', range(0, 10).map((i) => `m${i}`));
  const env = { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG, TOPIC: 'resume', GROUP: 'resume-group', FROM_BEGINNING: '1', STOP_AFTER: '4' };
  const first = child(WORKER, { env });
  const exit = await within(10000, 'the first consumer to stop by itself', first.exited);
  assert.deepStrictEqual(exit, { code: 0, signal: null }, first.stderr());
  assert.deepStrictEqual(first.json.filter((x) => x.event === 'done').map((x) => x.offset), range(0, 4));
  const admin = kafka().admin();
  await admin.connect();
  const [committed] = await admin.fetchOffsets({ groupId: 'resume-group', topic: 'resume' });
  assert.strictEqual(committed.offset, '4', 'committed = next offset to read');
  await admin.disconnect();
  const second = child(WORKER, { env: { ...env, STOP_AFTER: '' } });
  try {
    await second.until((l, j) => j.filter((x) => x.event === 'done').length >= 6, 10000, 'the rest');
    assert.deepStrictEqual(second.json.filter((x) => x.event === 'done').map((x) => x.offset), range(4, 10));
  } finally {
    await second.kill();
  }
});

// redelivery: false: no nack (retry.test.js has those); a throw restarts the member, as kafkajs restarts the consumer.
test('eachMessage that throws, redelivery false: the record is not acked and is delivered again first', async () => {
  let failed = false;
  const r = await collect('retry-group', 'retry', {
    fromBeginning: true,
    consumerConfig: { retry: { initialRetryTime: 20 }, redelivery: false },
    eachMessage: async ({ message }) => {
      if (message.offset === '1' && !failed) {
        failed = true;
        throw new Error('SMTP server down');
      }
    },
  });
  await publish('retry', ['a', 'b', 'c']);
  await r.until(3);
  assert.deepStrictEqual(r.got.map((m) => m.offset), ['0', '1', '2']);
  assert.ok(r.got[1].redelivered);
  await r.c.disconnect();
});

test('seek moves the group; pause and resume', async () => {
  await publish('seek', ['a', 'b', 'c', 'd']);
  const r = await collect('seek-group', 'seek', { fromBeginning: true });
  await r.until(4);
  r.c.seek({ topic: 'seek', partition: 0, offset: '1' });
  await r.until(7);
  assert.deepStrictEqual(r.got.map((m) => m.offset), ['0', '1', '2', '3', '1', '2', '3']);
  r.c.pause([{ topic: 'seek' }]);
  assert.deepStrictEqual(r.c.paused(), [{ topic: 'seek', partitions: [0] }]);
  await publish('seek', ['e']);
  // While paused nothing is handed over: an unpaused group on the same topic gets 'e' (so it is deliverable), and
  // only then is the paused consumer checked; resume delivers it.
  const witness = await collect('seek-witness', 'seek', { fromBeginning: true });
  await witness.until(5);
  assert.strictEqual(witness.got[4].value, 'e');
  await witness.c.disconnect();
  assert.strictEqual(r.got.length, 7, 'a paused consumer was handed a record');
  r.c.resume([{ topic: 'seek' }]);
  await r.until(8);
  assert.strictEqual(r.got[7].value, 'e');
  await r.c.disconnect();
});

test('autoCommit false: commitOffsets acks; uncommitted records come back after a restart', async () => {
  await publish('manual', ['a', 'b', 'c', 'd']);
  const first = await collect('manual-group', 'manual', { fromBeginning: true, runConfig: { autoCommit: false } });
  await first.until(4);
  await first.c.commitOffsets([{ topic: 'manual', partition: 0, offset: '2' }]);
  await first.c.disconnect();
  const second = await collect('manual-group', 'manual', { fromBeginning: true });
  await second.until(2);
  assert.deepStrictEqual(second.got.map((m) => m.offset).sort(), ['2', '3']);
  await second.c.disconnect();
});

test('autoCommit false, records arriving one at a time: a member holding its most takes waits for a commit, loop alive', async () => {
  const { Topic } = require(PKG);
  const t = await Topic.open('manual-runs', { socket: d.socket });
  const c = child(path.join(__dirname, 'fixtures', 'manual-commit.js'),
    { env: { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG, TOPIC: 'manual-runs', MAX_IN_FLIGHT: '1000' } });
  const offsets = (json) => json.filter((j) => j.offset !== undefined).map((j) => Number(j.offset));
  try {
    await c.until((l, json) => json.some((j) => j.ready), 10000, 'the consumer to start');
    // Each record published once the previous one arrived: every take holds one record.
    const held = require(path.join(PKG, 'lib', 'native')).batchLayout.maxHeld;
    for (let i = 0; i < held; i++) {
      t.publish(`r${i}`);
      await c.until((l, json) => offsets(json).length === i + 1, 10000, `record ${i}`);
    }
    for (let i = held; i < held + 8; i++) t.publish(`r${i}`);
    // Full: it says so, its timer keeps ticking, and nothing past the held takes is delivered.
    await c.until((l, json) => json.some((j) => j.warn && /waits for commitOffsets/.test(j.warn)), 10000, 'the warning');
    const ticks = c.json.filter((j) => j.tick).length;
    await c.until((l, json) => json.filter((j) => j.tick).length >= ticks + 10, 10000, 'ten more ticks');
    assert.deepStrictEqual(offsets(c.json), Array.from({ length: held }, (_, i) => i));
    c.proc.kill('SIGUSR2');
    await c.until((l, json) => offsets(json).length === held + 8, 10000, 'the rest after the commit');
    assert.deepStrictEqual(offsets(c.json), Array.from({ length: held + 8 }, (_, i) => i));
    assert.ok(c.json.some((j) => j.committed === String(held)), c.lines.join('\n'));
  } finally {
    await c.kill('SIGKILL');
    await t.close();
  }
});

test('eachBatch with resolveOffset', async () => {
  await publish('batches', range(0, 20));
  const c = kafka().consumer({ groupId: 'batch-group' });
  const got = [];
  const cond = condition();
  await c.connect();
  await c.subscribe({ topics: ['batches'], fromBeginning: true });
  await c.run({
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      assert.strictEqual(batch.partition, 0);
      for (const m of batch.messages) {
        got.push(m.offset);
        resolveOffset(m.offset);
        await heartbeat();
      }
      cond.bump();
    },
  });
  await cond.until(() => got.length >= 20, 10000, '20 records in batches');
  assert.deepStrictEqual(got, range(0, 20));
  await c.disconnect();
});

test('eachBatch gathers takes while the topic has records, up to maxInFlight; a partly resolved batch goes on where it stopped', async () => {
  const p = kafka().producer();
  await p.connect();
  await p.send({ topic: 'gather', messages: range(0, 300).map((v) => ({ value: v })) });
  await p.disconnect();
  const run = async (groupId, consumerConfig, eachBatch, runConfig = {}) => {
    const c = kafka().consumer({ groupId, ...consumerConfig });
    const sizes = [];
    const got = [];
    const cond = condition();
    await c.connect();
    await c.subscribe({ topic: 'gather', fromBeginning: true });
    await c.run({
      ...runConfig,
      eachBatch: async (payload) => {
        sizes.push(payload.batch.messages.length);
        await eachBatch(payload, got);
        cond.bump();
      },
    });
    try {
      await cond.until(() => got.length >= 300, 10000, `300 records in group ${groupId}`);
    } finally {
      await c.disconnect();
    }
    assert.deepStrictEqual(got, range(0, 300), `group ${groupId}`);
    return sizes;
  };
  const all = async ({ batch }, got) => { for (const m of batch.messages) got.push(m.value.toString()); };
  const gathered = await run('gather-default', {}, all);
  assert.ok(gathered[0] > 63, `the first batch of a 300-record backlog holds more than one take: ${gathered}`);
  const capped = await run('gather-capped', { maxInFlight: 10 }, all);
  assert.ok(capped.every((n) => n <= 10), `maxInFlight 10 caps each batch: ${capped}`);
  // Resolving only up to the 100th record of the first batch: the next call starts right after it.
  let calls = 0;
  await run('gather-partial', {}, async ({ batch, resolveOffset }, got) => {
    calls += 1;
    for (const m of batch.messages) {
      got.push(m.value.toString());
      resolveOffset(m.offset);
      if (calls === 1 && m.offset === '99') return;
    }
  }, { eachBatchAutoResolve: false });
});

// kafkajs admin.fetchTopicOffsetsByTimestamp answers as Kafka's ListOffsets by time: the first record whose timestamp
// is at or after T (here records carry their own times: 1000, 2000, 2000, 3000 ms), the latest offset when none is
// that new; setOffsets there replays everything since T.
test('fetchTopicOffsetsByTimestamp finds the first record at or after T; a group set there replays since T', async () => {
  const p = kafka().producer();
  await p.connect();
  await p.send({ topic: 'by-time', messages: ['1000', '2000', '2000', '3000'].map((ts, i) => ({ value: `v${i}`, timestamp: ts })) });
  await p.disconnect();
  const admin = kafka().admin();
  await admin.connect();
  try {
    const at = async (ts) => {
      const r = await admin.fetchTopicOffsetsByTimestamp('by-time', ts);
      assert.strictEqual(r.length, 1);
      assert.strictEqual(r[0].partition, 0);
      return r[0].offset;
    };
    const expected = [[0, '0'], [1000, '0'], [1000.5, '1'], [1500, '1'], [2000, '1'], [2001, '3'], [3000, '3'], [3001, '4'],
      [Date.now(), '4'], [undefined, '4'], [-1, '4'], [-2, '0'], ['2000', '1']];
    for (const [ts, offset] of expected) assert.strictEqual(await at(ts), offset, `timestamp ${ts}`);
    await assert.rejects(at('soon'), /Invalid timestamp soon/);
    await assert.rejects(at(-5), /Invalid timestamp -5/);
    await assert.rejects(admin.fetchTopicOffsetsByTimestamp('by-time-ghost', 0), (e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION');
    const since = await at(1500);
    const r = await collect('since-1500', 'by-time', { fromBeginning: false });
    await r.c.disconnect();
    await admin.setOffsets({ groupId: 'since-1500', topic: 'by-time', partitions: [{ partition: 0, offset: since }] });
    const replay = await collect('since-1500', 'by-time');
    await replay.until(3);
    assert.deepStrictEqual(replay.got.map((m) => m.value), ['v1', 'v2', 'v3']);
    await replay.c.disconnect();
  } finally {
    await admin.disconnect();
  }
});

// kafkajs instrumentation events that health checks and metrics use: fetch and batch events around each batch
// (kafkajs payloads), HEARTBEAT every heartbeatInterval while idle and on the handler's heartbeat() call.
test('consumer events: fetch, batch processing and heartbeats fire with kafkajs payloads', async () => {
  const c = kafka().consumer({ groupId: 'events', heartbeatInterval: 50 });
  const seen = { fetchStart: 0, fetch: [], start: [], end: [], heartbeat: 0 };
  const cond = condition();
  c.on(c.events.FETCH_START, () => { seen.fetchStart += 1; cond.bump(); });
  c.on(c.events.FETCH, (e) => { seen.fetch.push(e.payload); cond.bump(); });
  c.on(c.events.START_BATCH_PROCESS, (e) => { seen.start.push(e.payload); cond.bump(); });
  c.on(c.events.END_BATCH_PROCESS, (e) => { seen.end.push(e.payload); cond.bump(); });
  c.on(c.events.HEARTBEAT, (e) => {
    assert.strictEqual(e.payload.groupId, 'events');
    seen.heartbeat += 1;
    cond.bump();
  });
  await c.connect();
  await c.subscribe({ topic: 'events', fromBeginning: true });
  let handled = 0;
  let heartbeatsInHandler = 0;
  await c.run({
    eachMessage: async ({ heartbeat }) => {
      handled += 1;
      const before = seen.heartbeat;
      await heartbeat();
      await cond.until(() => seen.heartbeat > before, 5000, 'the heartbeat() call to emit HEARTBEAT');
      heartbeatsInHandler += 1;
    },
  });
  try {
    const idleBeats = seen.heartbeat;
    await cond.until(() => seen.heartbeat >= idleBeats + 2, 10000, 'two heartbeats of an idle consumer');
    await publish('events', ['a', 'b', 'c']);
    await cond.until(() => handled === 3 && seen.end.length >= 1 && seen.start.reduce((n, b) => n + b.batchSize, 0) === 3,
      10000, 'the three records processed');
    assert.strictEqual(heartbeatsInHandler, 3);
    const first = seen.start[0];
    assert.strictEqual(first.topic, 'events');
    assert.strictEqual(first.partition, 0);
    assert.strictEqual(first.firstOffset, '0');
    assert.strictEqual(typeof first.highWatermark, 'string');
    assert.strictEqual(BigInt(first.lastOffset), BigInt(first.firstOffset) + BigInt(first.batchSize) - 1n);
    assert.ok(seen.end.every((b) => typeof b.duration === 'number' && b.duration >= 0));
    assert.ok(seen.fetchStart >= seen.fetch.length && seen.fetch.length >= 1);
    assert.ok(seen.fetch.some((f) => f.numberOfBatches === 1));
  } finally {
    await c.disconnect();
  }
  await assert.throws(() => kafka().consumer({ groupId: 'bad-beat', heartbeatInterval: 0 }), /heartbeatInterval/);
});

// kafkajs' retry.retries / retry.restartOnFailure: failures in a row are retried (redelivered); the one after
// `retries` crashes the consumer (CRASH); it restarts unless restartOnFailure says no, and then disconnects with
// the failed record unacked, so the group hands it to the next member. (redelivery: false: a throw restarts the
// member instead of nacking, the kafkajs way.)
test('retry.retries, factor and restartOnFailure: backoff, a crash after the retries, restart or disconnect', async () => {
  await publish('crashing', ['poison']);
  const crashes = [];
  let calls = 0;
  const cond = condition();
  const backoffs = [];  // retryInMs of each failure's log entry: factor 0 takes the randomisation away
  const logCreator = () => ({ log }) => {
    if (log.retryInMs !== undefined) backoffs.push(log.retryInMs);
  };
  const c = new Kafka({ clientId: 'crashing', brokers: [`unix:${d.socket}`], logCreator }).consumer({
    groupId: 'crashing-group',
    redelivery: false,
    retry: { retries: 2, initialRetryTime: 10, factor: 0, restartOnFailure: async (e) => e.message !== 'give up' },
  });
  c.on(c.events.CRASH, (e) => { crashes.push(e.payload); cond.bump(); });
  let disconnected = false;
  c.on(c.events.DISCONNECT, () => { disconnected = true; cond.bump(); });
  await c.connect();
  await c.subscribe({ topic: 'crashing', fromBeginning: true });
  await c.run({
    eachMessage: async () => {
      calls += 1;
      cond.bump();
      throw new Error(calls < 6 ? 'mail server down' : 'give up');
    },
  });
  // 3 failures (retries + 1) -> a crash that restarts; 3 more -> a crash whose restartOnFailure says no.
  await cond.until(() => disconnected, 20000, 'the consumer to disconnect after the second crash');
  assert.strictEqual(calls, 6);
  assert.deepStrictEqual(crashes.map((p) => [p.restart, p.error.message, p.groupId]),
    [[true, 'mail server down', 'crashing-group'], [false, 'give up', 'crashing-group']]);
  // The poison record was never acked: the group's next member gets it.
  const next = await collect('crashing-group', 'crashing');
  await next.until(1);
  assert.strictEqual(next.got[0].value, 'poison');
  await next.c.disconnect();
  assert.deepStrictEqual(backoffs.slice(0, 3), [10, 20, 40], 'initialRetryTime * multiplier^n');
  assert.throws(() => kafka().consumer({ groupId: 'x', retry: { retries: -1 } }), /retry.retries/);
  assert.throws(() => kafka().consumer({ groupId: 'x', retry: { factor: 1.5 } }), /retry.factor/);
  assert.throws(() => kafka().consumer({ groupId: 'x', retry: { restartOnFailure: true } }), /restartOnFailure/);
});

// The kafkajs admin calls that were missing (TypeError before): describeGroups and describeConfigs answer from the
// topics; alterConfigs and the ACL calls reject with kafkajs-style errors naming why; the enums kafkajs code imports
// are exported.
test('admin describeGroups, describeConfigs; alterConfigs and ACLs refused clearly', async () => {
  const libmq = require(PKG);
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic: 'configured', configEntries: [{ name: 'max.message.bytes', value: '2048' }, { name: 'retention.bytes', value: '131072' }] }] });
    const r = await collect('described', 'configured');
    const { groups } = await admin.describeGroups(['described', 'nobody']);
    assert.deepStrictEqual(groups.map((g) => [g.groupId, g.state, g.members.length, g.protocolType]),
      [['described', 'Stable', 1, 'consumer'], ['nobody', 'Dead', 0, 'consumer']]);
    await r.c.disconnect();
    assert.strictEqual((await admin.describeGroups(['described'])).groups[0].state, 'Empty');

    const { resources } = await admin.describeConfigs({
      resources: [{ type: libmq.ConfigResourceTypes.TOPIC, name: 'configured', configNames: ['max.message.bytes', 'retention.bytes', 'no.such'] }],
      includeSynonyms: false,
    });
    assert.strictEqual(resources.length, 1);
    assert.strictEqual(resources[0].resourceName, 'configured');
    assert.deepStrictEqual(resources[0].configEntries.map((e) => [e.configName, e.configValue, e.readOnly, e.configSource]),
      [['max.message.bytes', '2048', true, libmq.ConfigSource.TOPIC_CONFIG], ['retention.bytes', '131072', true, libmq.ConfigSource.TOPIC_CONFIG]]);
    const all = await admin.describeConfigs({ resources: [{ type: libmq.ConfigResourceTypes.TOPIC, name: 'configured' }] });
    const values = Object.fromEntries(all.resources[0].configEntries.map((e) => [e.configName, e.configValue]));
    assert.strictEqual(values['libmq.policy'], 'block');
    assert.strictEqual(values.mode, '0660');  // mqd's default, written as mqctl writes it
    assert.strictEqual(values['block.timeout.ms'], '10000');
    assert.strictEqual(values.storage, 'shm');
    assert.match(values.access_group, /^\S+$/);  // the segment's group, by name
    await assert.rejects(admin.describeConfigs({ resources: [{ type: libmq.ConfigResourceTypes.BROKER, name: '0' }] }), /no brokers/);
    await assert.rejects(admin.describeConfigs({ resources: [] }), /cannot be empty/);
    await assert.rejects(admin.describeConfigs({ resources: [{ type: libmq.ConfigResourceTypes.TOPIC, name: 'configured-ghost' }] }),
      (e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION');

    await assert.rejects(admin.alterConfigs({ resources: [{ type: libmq.ConfigResourceTypes.TOPIC, name: 'configured', configEntries: [{ name: 'retention.bytes', value: '1' }] }] }),
      (e) => e.type === 'INVALID_CONFIG' && /fixed when the topic is created/.test(e.message));
    for (const call of ['createAcls', 'describeAcls', 'deleteAcls']) await assert.rejects(admin[call]({}), /ACLs are not supported/);
    assert.throws(() => libmq.AssignerProtocol.MemberAssignment.encode({}), /not supported/);
    assert.strictEqual(libmq.AclOperationTypes.READ, 3);
    assert.strictEqual(libmq.ResourcePatternTypes.LITERAL, 3);
    assert.strictEqual(libmq.AclPermissionTypes.ALLOW, 3);
    assert.strictEqual(libmq.AclResourceTypes.TOPIC, 2);
  } finally {
    await admin.disconnect();
  }
});

// deleteTopicRecords as kafkajs documents it: the topic's low watermark becomes the offset, a group behind it and a
// new group start there, '-1' deletes everything up to the high watermark; an offset below the low watermark deletes
// nothing (a warning), past the high watermark or on another partition a KafkaJSDeleteTopicRecordsError per partition.
test('admin deleteTopicRecords moves the low watermark and the groups behind it', async () => {
  const { KafkaJSDeleteTopicRecordsError, KafkaJSNonRetriableError, logLevel } = require(PKG);
  const warnings = [];
  const logCreator = () => ({ level, log }) => {
    if (level === logLevel.WARN) warnings.push(log.message);
  };
  const admin = new Kafka({ clientId: 'trim', brokers: [`unix:${d.socket}`], logCreator }).admin();
  await admin.connect();
  try {
    await publish('trimmed', range(0, 10).map((i) => `t${i}`));
    const slow = await collect('trim-slow', 'trimmed', { fromBeginning: true });
    await slow.until(10);
    await slow.c.disconnect();
    await admin.setOffsets({ groupId: 'trim-slow', topic: 'trimmed', partitions: [{ partition: 0, offset: '2' }] });

    assert.strictEqual(await admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 0, offset: '6' }] }), undefined);
    assert.deepStrictEqual(await admin.fetchTopicOffsets('trimmed'), [{ partition: 0, offset: '10', high: '10', low: '6' }]);
    assert.deepStrictEqual(await admin.fetchOffsets({ groupId: 'trim-slow', topics: ['trimmed'] }),
      [{ topic: 'trimmed', partitions: [{ partition: 0, offset: '6', metadata: null }] }]);
    const fresh = await collect('trim-new', 'trimmed', { fromBeginning: true });
    await fresh.until(4);
    assert.deepStrictEqual(fresh.got.map((m) => m.value), ['t6', 't7', 't8', 't9']);
    await fresh.c.disconnect();

    await admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 0, offset: '3' }] });
    assert.strictEqual((await admin.fetchTopicOffsets('trimmed'))[0].low, '6', 'an offset below the low watermark deletes nothing');
    assert.ok(warnings.some((m) => /before the earliest offset/.test(m)), warnings.join('; '));

    await assert.rejects(admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 0, offset: '11' }] }), (e) => {
      assert.ok(e instanceof KafkaJSDeleteTopicRecordsError, e.name);
      assert.strictEqual(e.partitions[0].partition, 0);
      assert.strictEqual(e.partitions[0].error.type, 'OFFSET_OUT_OF_RANGE');
      assert.match(e.partitions[0].error.message, /offset 11 is past the latest offset 10: topic=trimmed/);
      return true;
    });
    await assert.rejects(admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 1, offset: '7' }] }), (e) => {
      assert.ok(e instanceof KafkaJSDeleteTopicRecordsError, e.name);
      assert.strictEqual(e.partitions[0].partition, 1);
      assert.match(e.partitions[0].error.message, /one partition/);
      return true;
    });
    assert.strictEqual((await admin.fetchTopicOffsets('trimmed'))[0].low, '6', 'a refused call deletes nothing');
    await assert.rejects(admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 0, offset: 'soon' }] }),
      (e) => e instanceof KafkaJSNonRetriableError && /"soon"/.test(e.message));
    await assert.rejects(admin.deleteTopicRecords({ topic: 'trimmed', partitions: [] }), /Invalid partitions/);
    await assert.rejects(admin.deleteTopicRecords({ topic: 'trimmed-ghost', partitions: [{ partition: 0, offset: '1' }] }),
      (e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION');

    await admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 0, offset: '-1' }] });
    assert.deepStrictEqual(await admin.fetchTopicOffsets('trimmed'), [{ partition: 0, offset: '10', high: '10', low: '10' }]);
  } finally {
    await admin.disconnect();
  }
});
