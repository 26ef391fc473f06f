'use strict';
// The native fast path: Topic.open, publish (bigint offsets), publishBatch, for await over a consumer; records
// are copies (never views of the shared ring); headers, keys and timestamps round-trip with the kafkajs API.
const test = require('node:test');
const assert = require('node:assert');
const { PKG, startDaemon } = require('./helpers');
const { Kafka, Topic } = require(PKG);

let d;
test.before(async () => {
  d = await startDaemon();
});
test.after(async () => {
  if (d) await d.stop();
});

test('publish / publishBatch / for await', async () => {
  const t = await Topic.open('fast', { socket: d.socket });
  try {
    assert.strictEqual(t.publish(Buffer.from('a')), 0n);
    assert.strictEqual(t.publish('b'), 1n);
    assert.deepStrictEqual([...t.publishBatch([Buffer.from('c'), 'd', new Uint8Array([101])])], [2n, 3n, 4n]);
    assert.strictEqual(await t.publishAsync('f'), 5n);
    const info = t.info();
    assert.strictEqual(info.latest, '6');
    assert.strictEqual(info.earliest, '0');
    const c = t.consumer({ group: 'fast-g', fromBeginning: true });
    const seen = [];
    for await (const m of c) {
      assert.strictEqual(typeof m.offset, 'bigint');
      assert.ok(Buffer.isBuffer(m.value));
      assert.strictEqual(m.key, null);
      assert.deepStrictEqual(m.headers, {});
      assert.strictEqual(typeof m.timestamp, 'number');
      seen.push(`${m.offset}:${m.value}`);
      if (m.offset === 5n) {
        c.ack(m);  // done with it: leaving the loop would otherwise hand it back
        break;
      }
    }
    assert.deepStrictEqual(seen, ['0:a', '1:b', '2:c', '3:d', '4:e', '5:f']);
    const g = t.info().groups.find((x) => x.name === 'fast-g');
    assert.strictEqual(g.committed, '6');
    assert.strictEqual(g.members, 0);
  } finally {
    await t.close();
  }
});

// Reads `n` records of group `group` from the start of what it has not acked, acking the last.
async function readAll(t, group, n) {
  const c = t.consumer({ group });
  const got = [];
  for await (const m of c) {
    got.push(m);
    if (got.length === n) {
      c.ack(m);
      break;
    }
  }
  return got;
}

test('a batch larger than one claim goes out whole and in order; a record too large stops it at its index', async () => {
  // 1 MiB ring: one claim takes at most 1024 records and 512 KiB. The group, created with the topic, keeps it all.
  const t = await Topic.open('chunks', { socket: d.socket, create: { capacity: 1 << 20, groups: ['chunks-g'] } });
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const producer = kafka.producer();
  try {
    const n = 2500;
    const values = Array.from({ length: n }, (_, i) => `${i}:`.padEnd(150, '.'));  // 256 ring bytes each: 640 KiB
    const offsets = t.publishBatch(values);
    assert.deepStrictEqual([...offsets], values.map((_, i) => BigInt(i)));
    assert.deepStrictEqual((await readAll(t, 'chunks-g', n)).map((m) => `${m.offset}/${m.value}`),
      values.map((v, i) => `${i}/${v}`));

    await producer.connect();
    const messages = values.map((v, i) => ({ key: `k${i}`, value: v, headers: { i: String(i) } }));
    const [sent] = await producer.send({ topic: 'chunks', messages });
    assert.strictEqual(sent.baseOffset, String(n));
    const back = await readAll(t, 'chunks-g', n);
    assert.deepStrictEqual(back.map((m) => `${m.offset}/${m.key}/${m.headers.i}/${m.value}`),
      values.map((v, i) => `${n + i}/k${i}/${i}/${v}`));

    // max_message is a quarter of the ring: the third record cannot go; the two before it did, the one after did not.
    assert.throws(() => t.publishBatch(['a', 'b', Buffer.alloc(300000), 'c']), (e) => {
      assert.match(e.message, /too large/);
      assert.match(e.message, /size=300000/);
      assert.strictEqual(e.published, 2);
      return true;
    });
    assert.strictEqual(t.info().latest, String(2 * n + 2));
  } finally {
    await producer.disconnect();
    await t.close();
  }
});

test('leaving the loop hands the unacked record back to the group', async () => {
  const t = await Topic.open('handback', { socket: d.socket });
  try {
    t.publishBatch(['x', 'y']);
    const c1 = t.consumer({ group: 'hb', fromBeginning: true });
    for await (const m of c1) {
      assert.strictEqual(m.offset, 0n);
      break;  // not acked
    }
    const c2 = t.consumer({ group: 'hb' });
    const got = [];
    for await (const m of c2) {
      got.push([m.offset, m.redelivered]);
      if (got.length === 2) break;
    }
    // c1 had taken both (prefetch) and acked neither: both come back, flagged.
    assert.deepStrictEqual(got, [[0n, true], [1n, true]]);
  } finally {
    await t.close();
  }
});

test('consumed values are copies: they survive the ring being overwritten', async () => {
  // 64 KiB ring with the overwrite policy: old records are overwritten by new ones whatever the groups do.
  const t = await Topic.open('copies', { socket: d.socket, create: { capacity: 65536, policy: 'overwrite' } });
  try {
    for (let i = 0; i < 8; i++) t.publish(Buffer.alloc(1000, 65 + i));
    const c = t.consumer({ group: 'copies-g', fromBeginning: true });
    const kept = [];
    for await (const m of c) {
      kept.push(m.value);
      c.ack(m);
      if (kept.length === 8) break;
    }
    for (let i = 0; i < 500; i++) t.publish(Buffer.alloc(1000, 0));  // laps the ring several times
    kept.forEach((v, i) => assert.ok(v.equals(Buffer.alloc(1000, 65 + i)), `record ${i} unchanged`));
  } finally {
    await t.close();
  }
});

test('key, headers (repeated too) and timestamp round-trip', async () => {
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: 'shape',
    messages: [
      { key: 'user-1', value: 'v1', headers: { type: 'invite', trace: [Buffer.from('a'), 'b'] }, timestamp: '1700000000123' },
      { key: Buffer.alloc(0), value: null },
      { key: 'k', value: null, headers: { h: 'v' } },  // empty payload with a key and headers
    ],
  });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: 'shape-g' });
  await consumer.connect();
  await consumer.subscribe({ topic: 'shape', fromBeginning: true });
  const got = [];
  let done;
  const all = new Promise((r) => (done = r));
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      got.push({ topic, partition, message });
      if (got.length === 3) done();
    },
  });
  await all;
  await consumer.disconnect();
  const [a, b] = got;
  assert.strictEqual(a.topic, 'shape');
  assert.strictEqual(a.partition, 0);
  assert.strictEqual(a.message.offset, '0');
  assert.strictEqual(a.message.key.toString(), 'user-1');
  assert.strictEqual(a.message.value.toString(), 'v1');
  assert.strictEqual(a.message.timestamp, '1700000000123');
  assert.strictEqual(a.message.attributes, 0);
  assert.strictEqual(a.message.headers.type.toString(), 'invite');
  assert.deepStrictEqual(a.message.headers.trace.map(String), ['a', 'b']);
  // An empty key is not a null key; a null value is stored as an empty payload.
  assert.ok(Buffer.isBuffer(b.message.key) && b.message.key.length === 0);
  assert.ok(Buffer.isBuffer(b.message.value) && b.message.value.length === 0);
  const c = got[2].message;
  assert.strictEqual(c.key.toString(), 'k');
  assert.strictEqual(c.value.length, 0);
  assert.strictEqual(c.headers.h.toString(), 'v');
});

test('kafkajs send: baseOffset and logStartOffset follow the ring once it wraps, one record or many per send', async () => {
  const t = await Topic.open('wraps', { socket: d.socket, create: { capacity: 65536 } });
  const producer = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 }).producer();
  await producer.connect();
  try {
    const value = Buffer.alloc(200, 3);
    let next = 0;
    // No group holds records back, so the ring overwrites its oldest once it is full (several laps here).
    for (let i = 0; i < 400; i++) {
      const [one] = await producer.send({ topic: 'wraps', messages: [{ value }] });
      assert.strictEqual(one.baseOffset, String(next++));
      const [many] = await producer.send({ topic: 'wraps', messages: [{ value }, { value: 'x' }, { key: 'k', value }] });
      assert.strictEqual(many.baseOffset, String(next));
      next += 3;
      assert.strictEqual(many.logStartOffset, t.info().earliest);
    }
    const [last] = await producer.send({ topic: 'wraps', messages: [{ value }] });
    assert.strictEqual(last.logStartOffset, t.info().earliest);
    assert.ok(Number(last.logStartOffset) > 1000, `the ring wrapped: logStartOffset ${last.logStartOffset}`);
    assert.strictEqual(t.info().latest, String(next + 1));
  } finally {
    await producer.disconnect();
    await t.close();
  }
});
