'use strict';
// A consumer group's ordering through both Node APIs (the `ordering` option): a bad value is refused by name before
// the member joins; the ordering reaches a new group and an existing group keeps its own; 'exclusive' hands every
// record to one member while the other stands by, and the standby takes over where it stopped, in offset order,
// when the taking member disconnects or is killed; 'key' never has one key's records in two handlers at once and
// keeps each key in offset order.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { PKG, startDaemon, child, condition, within } = require('./helpers');
const { Kafka, Topic, KafkaJSNonRetriableError, logLevel } = require(PKG);

const WORKER = path.join(__dirname, 'fixtures', 'worker.js');

let d;
test.before(async () => {
  d = await startDaemon();
});
test.after(async () => {
  if (d) await d.stop();
});

const kafka = (logCreator) => new Kafka({
  clientId: 'ordering-test', brokers: [`unix:${d.socket}`], ...(logCreator ? { logCreator } : { logLevel: 0 }),
});

// One send per record, or (`together`) one send of them all.
async function publish(topic, messages, { together = false } = {}) {
  const p = kafka().producer();
  await p.connect();
  if (together) await p.send({ topic, messages });
  else for (const m of messages) await p.send({ topic, messages: [m] });
  await p.disconnect();
}

const range = (a, b) => Array.from({ length: b - a }, (_, i) => String(a + i));

// The group as the topic's segment shows it.
async function groupInfo(topic, group) {
  const t = await Topic.open(topic, { socket: d.socket });
  try {
    return t.info().groups.find((g) => g.name === group);
  } finally {
    await t.close();
  }
}

// A running kafkajs consumer of `topic` from the beginning that records each delivery ({offset, key, redelivered})
// in `got` and calls `handle(payload)` (awaited) first; `cond` is bumped after each record.
async function member(groupId, topic, ordering, cond, handle = async () => {}, config = {}) {
  const c = kafka().consumer({ groupId, ordering, ...config });
  const got = [];
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  await c.run({
    eachMessage: async (payload) => {
      const { message } = payload;
      got.push({ offset: message.offset, key: message.key && message.key.toString(), redelivered: message.redelivered });
      await handle(payload);
      cond.bump();
    },
  });
  return { c, got, offsets: () => got.map((m) => m.offset) };
}

test('a bad ordering is refused by name, listing the allowed values, before the member joins', async () => {
  const message = (got) => new RegExp(`^ordering must be one of 'none', 'key', 'exclusive', got ${got}$`);
  for (const [bad, shown] of [['keyed', "'keyed'"], ['Exclusive', "'Exclusive'"], ['', "''"], [1, '1'], [null, 'null']]) {
    assert.throws(() => kafka().consumer({ groupId: 'refused', ordering: bad }),
      (e) => e instanceof KafkaJSNonRetriableError && message(shown).test(e.message), `kafkajs consumer, ${shown}`);
  }
  const t = await Topic.open('refusing', { socket: d.socket });
  try {
    assert.throws(() => t.consumer({ group: 'refused', ordering: 'fifo' }),
      (e) => e instanceof KafkaJSNonRetriableError && message("'fifo'").test(e.message), 'fast path');
    // The addon's own check, under both APIs' (a message naming the topic and group, libmq's invalid_argument).
    assert.throws(() => t.native.consumer({ group: 'refused', ordering: 'fifo' }, () => {}),
      (e) => e.mqCode === 'invalid_argument' &&
        e.message.includes("ordering must be 'none', 'key' or 'exclusive', not 'fifo'") &&
        e.message.includes('topic=refusing group=refused'), 'native');
    assert.strictEqual(t.info().groups.find((g) => g.name === 'refused'), undefined, 'no group was made');
  } finally {
    await t.close();
  }
});

test("the ordering reaches a new group (default 'none'); an existing group keeps its own, with a warning", async () => {
  const t = await Topic.open('ordered', { socket: d.socket });
  try {
    const plain = t.consumer({ group: 'plain' });
    const fast = t.consumer({ group: 'fast-exclusive', ordering: 'exclusive' });
    assert.strictEqual(plain.ordering, 'none');
    assert.strictEqual(fast.ordering, 'exclusive');
    const later = t.consumer({ group: 'fast-exclusive', ordering: 'key' });
    assert.strictEqual(later.ordering, 'exclusive', 'the group keeps the ordering it was created with');
    const groups = Object.fromEntries(t.info().groups.map((g) => [g.name, g]));
    assert.strictEqual(groups.plain.ordering, 'none');
    assert.strictEqual(groups.plain.activePid, undefined);
    assert.strictEqual(groups['fast-exclusive'].ordering, 'exclusive');
    assert.strictEqual(groups['fast-exclusive'].activePid, process.pid, 'the first member takes');
    await later.close();
    await fast.close();
    await plain.close();
    assert.strictEqual(plain.ordering, null, 'closed');

    const warnings = [];
    const logCreator = () => ({ level, log }) => {
      if (level === logLevel.WARN) warnings.push(log);
    };
    const c = kafka(logCreator).consumer({ groupId: 'fast-exclusive', ordering: 'none' });
    await c.connect();
    await c.subscribe({ topic: 'ordered' });
    await c.run({ eachMessage: async () => {} });
    await c.disconnect();
    assert.ok(warnings.some((w) => w.message.includes("group fast-exclusive of topic ordered has ordering 'exclusive', " +
      "not this consumer's 'none'") && w.ordering === 'exclusive' && w.requested === 'none'),
    JSON.stringify(warnings));

    const admin = kafka().admin();
    await admin.connect();
    try {
      const { groups: described } = await admin.describeGroups(['fast-exclusive', 'plain', 'nobody']);
      assert.deepStrictEqual(described.map((g) => [g.groupId, g.topics]), [
        ['fast-exclusive', [{ topic: 'ordered', ordering: 'exclusive' }]],  // no member: no activePid
        ['plain', [{ topic: 'ordered', ordering: 'none' }]],
        ['nobody', []],
      ]);
    } finally {
      await admin.disconnect();
    }
  } finally {
    await t.close();
  }
});

// Two members of one exclusive group in this process: whichever takes gets every record, in order, the other none;
// the taking member disconnects in the middle of a run (while it holds records it took ahead), and the standby goes
// on from the first record it did not finish, in offset order: every record exactly once.
test('exclusive: one member takes, in order; when it disconnects the standby takes over where it stopped', async () => {
  const topic = 'exclusive-handover';
  const FIRST = 100;  // records published while both members run
  const N = 300;
  const STOP_AT = '180';  // the taking member disconnects after handling this offset
  const cond = condition();
  const members = [];
  let leaving = null;
  const handle = (self) => async ({ message, pause }) => {
    if (message.offset !== STOP_AT) return;
    pause();  // nothing more for this member; it disconnects once this handler returned
    leaving = new Promise((resolve) => setImmediate(() => resolve(members[self].c.disconnect())));
  };
  members.push(await member('ledger', topic, 'exclusive', cond, handle(0)));
  members.push(await member('ledger', topic, 'exclusive', cond, handle(1)));
  const total = () => members[0].got.length + members[1].got.length;
  try {
    await publish(topic, range(0, FIRST).map((i) => ({ value: `r${i}` })));
    await cond.until(() => total() >= FIRST, 15000, `${FIRST} records (have ${members.map((m) => m.got.length)})`);
    const active = members.findIndex((m) => m.got.length > 0);
    const standby = members[1 - active];
    assert.deepStrictEqual(members[active].offsets(), range(0, FIRST), 'the taking member has every record, in order');
    assert.deepStrictEqual(standby.got, [], 'the standby has none');
    assert.strictEqual((await groupInfo(topic, 'ledger')).activePid, process.pid);

    // In one send, so that the taking member takes ahead (runs of up to 63) of the record it stops after.
    await publish(topic, range(FIRST, N).map((i) => ({ value: `r${i}` })), { together: true });
    await cond.until(() => total() >= N, 20000, `${N} records (have ${members.map((m) => m.got.length)})`);
    await within(10000, 'the taking member to disconnect', leaving);
    const stop = Number(STOP_AT) + 1;
    assert.deepStrictEqual(members[active].offsets(), range(0, stop), 'the taking member stopped after STOP_AT');
    assert.deepStrictEqual(standby.offsets(), range(stop, N), 'the standby took over there, in offset order');
    assert.ok(standby.got[0].redelivered, 'its first record was one the member that left had taken ahead');
    const g = await groupInfo(topic, 'ledger');
    assert.deepStrictEqual([g.ordering, g.committed, g.members], ['exclusive', String(N), 1]);
  } finally {
    for (const m of members) await m.c.disconnect();
  }
});

// The taking member's process dies (SIGKILL) in the middle of a record: once mqd and libmq confirm the death, the
// standby (another process) goes on from the records the dead one held unacked, in offset order.
test('exclusive: when the taking process is killed, the standby process takes over in offset order', async () => {
  const topic = 'exclusive-crash';
  const N = 20;
  const HANG_AT = 5;
  const env = { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG, TOPIC: topic, GROUP: 'journal', FROM_BEGINNING: '1', ORDERING: 'exclusive' };
  const first = child(WORKER, { env: { ...env, HANG_AT: String(HANG_AT) } });
  let second = null;
  try {
    await first.until((l, j) => j.some((x) => x.event === 'ready'), 10000, 'the first member ready');
    second = child(WORKER, { env: { ...env, HANG_AT: '' } });  // joins second: stands by
    await second.until((l, j) => j.some((x) => x.event === 'ready'), 10000, 'the second member ready');
    const g = await groupInfo(topic, 'journal');
    assert.deepStrictEqual([g.ordering, g.members, g.activePid], ['exclusive', 2, first.proc.pid], 'the first joiner takes');
    await publish(topic, range(0, N).map((i) => ({ value: `j${i}` })));
    await first.until((l, j) => j.some((x) => x.event === 'msg' && x.offset === String(HANG_AT)), 10000,
      `the first member to hang at offset ${HANG_AT}`);
    const msgs = (w) => w.json.filter((x) => x.event === 'msg');
    assert.deepStrictEqual(msgs(first).map((x) => x.offset), range(0, HANG_AT + 1), 'in order, up to the hang');
    assert.deepStrictEqual(msgs(second), [], 'the standby has none');
    await first.kill('SIGKILL');
    const done = (j) => j.filter((x) => x.event === 'done').map((x) => x.offset);
    await second.until((l, j) => range(HANG_AT, N).every((o) => done(j).includes(o)), 15000,
      `the standby to handle ${HANG_AT}..${N - 1}`);
    const got = msgs(second);
    const offsets = got.map((x) => Number(x.offset));
    // At-least-once: a record the dead member finished but had not acked yet comes again (flagged); nothing is
    // skipped, and the standby goes in offset order from there.
    assert.ok(offsets[0] <= HANG_AT, `the standby began at ${offsets[0]}`);
    assert.deepStrictEqual(offsets, range(offsets[0], N).map(Number), 'in offset order, none lost');
    for (const x of got) if (Number(x.offset) <= HANG_AT) assert.ok(x.redelivered, `offset ${x.offset} flagged redelivered`);
    assert.strictEqual((await groupInfo(topic, 'journal')).activePid, second.proc.pid, 'the standby takes now');
  } finally {
    await first.kill('SIGKILL');
    if (second) await second.kill();
  }
});

// Two members of one 'key' group in this process, records of four keys interleaved, each handler awaiting 0-5 ms:
// one key's records are never in two handlers at once, each key goes in offset order (in each member and across
// both), and every record comes exactly once. A member holds at most maxInFlight records (and so keys): with the
// default 63 (or 4) one member holds every key and takes everything; with 1 or 2 keys change hands and both work.
test('key: one key at a time, in offset order per key; other keys in parallel; every record once', async (t) => {
  for (const maxInFlight of [1, 2]) {
    await t.test(`maxInFlight ${maxInFlight}`, async () => {
      const topic = `keyed-${maxInFlight}`;
      const N = 400;
      const KEYS = 4;
      const cond = condition();
      const inFlight = new Map();  // key -> handlers running for it
      const overlaps = [];
      const started = new Map();  // key -> offsets in the order their handlers started (both members)
      const handle = (name) => async ({ message }) => {
        const key = message.key.toString();
        const n = (inFlight.get(key) || 0) + 1;
        inFlight.set(key, n);
        if (n > 1) overlaps.push(`${name} took offset ${message.offset} of ${key} while ${n - 1} other(s) of it ran`);
        if (!started.has(key)) started.set(key, []);
        started.get(key).push(Number(message.offset));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 6)));  // the work: 0-5 ms
        inFlight.set(key, inFlight.get(key) - 1);
      };
      const config = { maxInFlight };
      const a = await member('keyed-group', topic, 'key', cond, handle('a'), config);
      const b = await member('keyed-group', topic, 'key', cond, handle('b'), config);
      try {
        assert.strictEqual((await groupInfo(topic, 'keyed-group')).ordering, 'key');
        await publish(topic, range(0, N).map((i) => ({ key: `k${i % KEYS}`, value: `v${i}` })));
        await cond.until(() => a.got.length + b.got.length >= N, 60000,
          `${N} records (have a=${a.got.length} b=${b.got.length})`);
        assert.deepStrictEqual(overlaps, [], 'no key in two handlers at once');
        for (const [name, m] of [['a', a], ['b', b]]) {
          for (let k = 0; k < KEYS; k++) {
            const mine = m.got.filter((x) => x.key === `k${k}`).map((x) => Number(x.offset));
            for (let i = 1; i < mine.length; i++) {
              assert.ok(mine[i] > mine[i - 1], `member ${name}, key k${k}: offset ${mine[i]} after ${mine[i - 1]}`);
            }
          }
        }
        for (const [key, offsets] of started) {
          assert.deepStrictEqual(offsets, [...offsets].sort((x, y) => x - y), `key ${key} in offset order across members`);
        }
        const all = [...a.offsets(), ...b.offsets()].map(Number).sort((x, y) => x - y);
        assert.deepStrictEqual(all, range(0, N).map(Number), 'every record exactly once');
      } finally {
        await a.c.disconnect();
        await b.c.disconnect();
      }
    });
  }
});
