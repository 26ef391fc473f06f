'use strict';
// Error paths: kafkajs-style classes (KafkaJSError and friends, with `retriable`), messages naming the topic and
// the problem, and no hang when mqd is not there.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { PKG, startDaemon, within, signal } = require('./helpers');
const libmq = require(PKG);
const {
  Kafka, Topic, KafkaJSError, KafkaJSNonRetriableError, KafkaJSProtocolError, KafkaJSConnectionError,
  KafkaJSTopicNotFound, KafkaJSMessageTooLarge, KafkaJSTopicFull,
} = libmq;

test('the kafkajs error classes are exported at the top level', () => {
  for (const name of ['KafkaJSError', 'KafkaJSNonRetriableError', 'KafkaJSProtocolError', 'KafkaJSConnectionError',
    'KafkaJSOffsetOutOfRange', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSRequestTimeoutError', 'KafkaJSTimeout']) {
    assert.strictEqual(typeof libmq[name], 'function', name);
  }
  const e = new KafkaJSNonRetriableError('x');
  assert.ok(e instanceof KafkaJSError && e instanceof Error);
  assert.strictEqual(e.retriable, false);
  assert.strictEqual(e.name, 'KafkaJSNonRetriableError');
  assert.strictEqual(new KafkaJSError('y').retriable, true);
});

test('every libmq error code (the addon\'s mq::Errc table) maps to a kafkajs error, and nothing else does', () => {
  const native = require(path.join(PKG, 'lib', 'native'));
  const { BY_CODE, fromNative } = require(path.join(PKG, 'lib', 'errors'));
  const names = native.errorCodes.map((c) => c.name);
  assert.ok(names.includes('timed_out') && names.includes('wrong_process'), names.join(' '));
  assert.deepStrictEqual(Object.keys(BY_CODE).sort(), [...names].sort());
  // The TypeScript declaration's union of codes is the same list.
  const dts = fs.readFileSync(path.join(PKG, 'index.d.ts'), 'utf8');
  const union = /export type MqCode =([^]*?)\n\n/.exec(dts);
  assert.ok(union, 'index.d.ts declares MqCode');
  assert.deepStrictEqual([...union[1].matchAll(/'([a-z_]+)'/g)].map((m) => m[1]).sort(), [...names].sort());
  for (const { name, text } of native.errorCodes) {
    assert.ok(text.length > 0, name);
    const e = fromNative(Object.assign(new Error(`${text}: topic=t`), { mqCode: name }), { topic: 't' });
    assert.ok(e instanceof KafkaJSError, `${name}: ${e && e.name}`);
    assert.strictEqual(e.mqCode, name);
  }
});

test('daemon not running: KafkaJSConnectionError naming the socket, at once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-nodaemon-'));
  try {
    // No socket file at all, and a stale socket file nobody listens on.
    const missing = path.join(dir, 'missing.sock');
    const stale = path.join(dir, 'stale.sock');
    const srv = net.createServer();
    await new Promise((r) => srv.listen(stale, r));
    await new Promise((r) => srv.close(r));  // leaves nothing listening
    fs.writeFileSync(stale + '.x', '');
    for (const socket of [missing, stale]) {
      for (const make of [(k) => k.producer(), (k) => k.consumer({ groupId: 'g' }), (k) => k.admin()]) {
        const client = make(new Kafka({ clientId: 'x', brokers: [`unix:${socket}`] }));
        const err = await within(3000, 'connect() to fail', client.connect().then(() => null, (e) => e));
        assert.ok(err instanceof KafkaJSConnectionError, `got ${err && err.name}: ${err && err.message}`);
        assert.ok(err instanceof KafkaJSError);
        assert.strictEqual(err.retriable, true);
        assert.ok(err.message.includes(socket), err.message);
        assert.match(err.message, /mqd/);
      }
    }
    // The fast path too, and MQ_SOCKET is honoured.
    const saved = process.env.MQ_SOCKET;
    process.env.MQ_SOCKET = missing;
    try {
      await assert.rejects(Topic.open('t'), (e) => e instanceof KafkaJSConnectionError && e.message.includes(missing));
      await assert.rejects(new Kafka({ brokers: ['localhost:9092'] }).producer().connect(),
        (e) => e instanceof KafkaJSConnectionError && e.message.includes(missing));
    } finally {
      if (saved === undefined) delete process.env.MQ_SOCKET;
      else process.env.MQ_SOCKET = saved;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing topic with auto-create on: KafkaJSTopicNotFound without a word about auto-create', async () => {
  const d = await startDaemon();
  const admin = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 }).admin();
  try {
    await admin.connect();
    const check = (e) => e instanceof KafkaJSTopicNotFound && /no such topic: topic=nowhere/.test(e.message) &&
      !/auto-create|create it first/.test(e.message);
    await assert.rejects(admin.deleteTopics({ topics: ['nowhere'] }), check);
    await assert.rejects(admin.fetchTopicOffsets('nowhere'), check);
  } finally {
    await admin.disconnect();
    await d.stop();
  }
});

test('unknown topic with auto-create off: KafkaJSTopicNotFound naming the topic', async () => {
  const d = await startDaemon({ autoCreate: false });
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: 'g' });
  const admin = kafka.admin();
  try {
    await producer.connect();
    await consumer.connect();
    await admin.connect();
    const check = (e) => {
      assert.ok(e instanceof KafkaJSTopicNotFound, `${e.name}: ${e.message}`);
      assert.ok(e instanceof KafkaJSProtocolError && e instanceof KafkaJSError);
      assert.strictEqual(e.type, 'UNKNOWN_TOPIC_OR_PARTITION');
      assert.strictEqual(e.code, 3);
      assert.strictEqual(e.topic, 'ghost');
      assert.match(e.message, /ghost/);
      return true;
    };
    // Opening says why the topic was not made and how to make it.
    const opening = (e) => check(e) && /auto-create is off: create it first, e\.g\. `mqctl create ghost` or admin\.createTopics\(\)/.test(e.message);
    await assert.rejects(producer.send({ topic: 'ghost', messages: [{ value: 'x' }] }), opening);
    await assert.rejects(consumer.subscribe({ topic: 'ghost' }), opening);
    await assert.rejects(admin.fetchTopicOffsets('ghost'), check);
    // Deleting it is no reason to create it.
    await assert.rejects(admin.deleteTopics({ topics: ['ghost'] }), (e) => check(e) && !/create it first/.test(e.message));
    // Created explicitly, it works; createTopics says true, then false (it exists), as kafkajs.
    assert.strictEqual(await admin.createTopics({ topics: [{ topic: 'ghost' }] }), true);
    assert.strictEqual(await admin.createTopics({ topics: [{ topic: 'ghost' }] }), false);
    const [r] = await producer.send({ topic: 'ghost', messages: [{ value: 'x' }] });
    assert.strictEqual(r.baseOffset, '0');
    assert.deepStrictEqual(await admin.listTopics(), ['ghost']);
    assert.deepStrictEqual(await admin.fetchTopicOffsets('ghost'), [{ partition: 0, offset: '1', high: '1', low: '0' }]);
  } finally {
    await producer.disconnect();
    await consumer.disconnect();
    await admin.disconnect();
    await d.stop();
  }
});

test('bad input: invalid topic name, oversized message, message without value, not connected', async () => {
  const d = await startDaemon();
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const producer = kafka.producer();
  const admin = kafka.admin();
  try {
    await assert.rejects(producer.send({ topic: 't', messages: [{ value: 'x' }] }),
      (e) => e instanceof KafkaJSError && /disconnected/.test(e.message));
    await producer.connect();
    await admin.connect();
    await assert.rejects(producer.send({ topic: 'bad/name', messages: [{ value: 'x' }] }), (e) => {
      assert.ok(e instanceof KafkaJSProtocolError, e.name);
      assert.strictEqual(e.type, 'INVALID_TOPIC_EXCEPTION');
      assert.strictEqual(e.retriable, false);
      assert.match(e.message, /bad\/name/);
      return true;
    });
    // A 64 KiB topic holds messages of at most 16 KiB (capacity / 4).
    assert.strictEqual(await admin.createTopics({ topics: [{ topic: 'small', configEntries: [{ name: 'capacity', value: '65536' }] }] }), true);
    await assert.rejects(producer.send({ topic: 'small', messages: [{ value: Buffer.alloc(20000) }] }), (e) => {
      assert.ok(e instanceof KafkaJSMessageTooLarge, `${e.name}: ${e.message}`);
      assert.ok(e instanceof KafkaJSProtocolError);
      assert.strictEqual(e.type, 'MESSAGE_TOO_LARGE');
      assert.strictEqual(e.retriable, false);
      assert.match(e.message, /topic=small/);
      assert.match(e.message, /max=16384/);
      assert.match(e.message, /size=20000/);
      return true;
    });
    // Nothing was written: the next record gets offset 0.
    const [r] = await producer.send({ topic: 'small', messages: [{ value: 'fits' }] });
    assert.strictEqual(r.baseOffset, '0');
    await assert.rejects(producer.send({ topic: 'small', messages: [{ key: 'k' }] }),
      (e) => e instanceof KafkaJSNonRetriableError && /without value/.test(e.message));
    await assert.rejects(producer.send({ topic: 'small', messages: 'nope' }), KafkaJSNonRetriableError);
    // One partition per topic: partition 0 (or none) is fine; any other is what a broker says of a partition it lacks.
    const [p0] = await producer.send({ topic: 'small', messages: [{ value: 'p0', partition: 0 }] });
    assert.strictEqual(p0.baseOffset, '1');
    await assert.rejects(producer.send({ topic: 'small', messages: [{ value: 'p1', partition: 1 }] }), (e) => {
      assert.ok(e instanceof KafkaJSProtocolError, e.name);
      assert.strictEqual(e.type, 'UNKNOWN_TOPIC_OR_PARTITION');
      assert.match(e.message, /one partition \(0\): topic=small partition=1/);
      return true;
    });
    // As a broker refusing the partition count: an aggregate of one KafkaJSCreateTopicError per refused topic, and
    // no topic of the request created.
    await assert.rejects(admin.createTopics({ topics: [{ topic: 'single' }, { topic: 'multi', numPartitions: 3 }] }), (e) => {
      assert.strictEqual(e.name, 'KafkaJSAggregateError');
      assert.ok(e instanceof libmq.KafkaJSAggregateError);
      assert.strictEqual(e.errors.length, 1);
      assert.ok(e.errors[0] instanceof libmq.KafkaJSCreateTopicError, e.errors[0].name);
      assert.deepStrictEqual([e.errors[0].topic, e.errors[0].type, e.errors[0].code, e.errors[0].retriable],
        ['multi', 'INVALID_PARTITIONS', 37, false]);
      assert.match(e.errors[0].message, /one partition: topic=multi numPartitions=3/);
      return true;
    });
    assert.ok(!(await admin.listTopics()).includes('single'), 'a refused createTopics creates none of its topics');
    assert.throws(() => kafka.consumer({}), KafkaJSNonRetriableError);
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await d.stop();
  }
});

test('a full block topic: publish throws KafkaJSTopicFull at once; send waits off the event loop', async () => {
  const d = await startDaemon();
  const t = await Topic.open('full', { socket: d.socket, create: { capacity: 65536, blockTimeoutMs: 300, groups: ['slow'] } });
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const producer = kafka.producer();
  try {
    const chunk = Buffer.alloc(4000, 1);
    let n = 0;
    let err;
    for (; n < 1000; n++) {
      try {
        t.publish(chunk);
      } catch (e) {
        err = e;
        break;
      }
    }
    assert.ok(err instanceof KafkaJSTopicFull, `${err && err.name}: ${err && err.message}`);
    assert.strictEqual(err.retriable, true);
    assert.match(err.message, /topic=full/);
    assert.ok(n > 5 && n < 20, `${n} records of 4000 B fit in 64 KiB`);
    // The kafkajs send waits for room up to the block timeout (300 ms) in the thread pool, not on the loop.
    await producer.connect();
    let ticks = 0;
    const iv = setInterval(() => ticks++, 5);
    const started = Date.now();
    await assert.rejects(producer.send({ topic: 'full', messages: [{ value: chunk }] }), KafkaJSTopicFull);
    clearInterval(iv);
    assert.ok(Date.now() - started >= 250, 'waited for the block timeout');
    assert.ok(ticks >= 1, `the event loop kept running while send waited (${ticks} ticks)`);
    // Room comes back when the group consumes: a waiting send then completes.
    const pending = producer.send({ topic: 'full', messages: [{ value: 'after' }] });
    const c = t.consumer({ group: 'slow' });
    let read = 0;
    for await (const m of c) {
      read++;
      if (m.value.toString() === 'after') break;
    }
    const [meta] = await pending;
    assert.strictEqual(meta.baseOffset, String(n));
    assert.strictEqual(read, n + 1);
  } finally {
    await producer.disconnect();
    await t.close();
    await d.stop();
  }
});

test('subscribe({ topics }) with a string is refused as kafkajs refuses it, and subscribes to nothing', async () => {
  const d = await startDaemon();
  try {
    const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
    const consumer = kafka.consumer({ groupId: 'g' });
    await consumer.connect();
    await assert.rejects(consumer.subscribe({ topics: 'orders' }), (e) =>
      e instanceof KafkaJSNonRetriableError && e.message === 'Argument "topics" must be an array');
    await assert.rejects(consumer.subscribe({ topics: [] }), /cannot be empty/);
    const admin = kafka.admin();
    await admin.connect();
    assert.deepStrictEqual(await admin.listTopics(), [], 'no topic o, r, d, e, s was auto-created');
    await admin.disconnect();
    await consumer.disconnect();
  } finally {
    await d.stop();
  }
});

test('consumer options: a bad maxInFlight, maxBatch or wait is refused by name; maxInFlight caps what a fast member holds', async () => {
  const d = await startDaemon();
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const t = await libmq.Topic.open('opts', { socket: d.socket });
  try {
    const bad = [
      [{ maxInFlight: 0 }, /maxInFlight must be a whole number from 1 to \d+, got 0/],
      [{ maxInFlight: 2.5 }, /maxInFlight must be a whole number/],
      [{ maxBatch: 64 }, /maxBatch must be a whole number from 1 to 63, got 64/],
      [{ maxBatch: '8' }, /maxBatch must be a whole number from 1 to 63, got 8/],
      [{ wait: 'nap' }, /wait must be one of futex, spin, spin_futex, spin_yield, busy_spin, got nap/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => kafka.consumer({ groupId: 'g', ...options }),
        (e) => e instanceof KafkaJSNonRetriableError && message.test(e.message), JSON.stringify(options));
      assert.throws(() => t.consumer({ group: 'g', ...options }),
        (e) => e instanceof KafkaJSNonRetriableError && message.test(e.message), JSON.stringify(options));
    }
    t.publishBatch(Array.from({ length: 10 }, (_, i) => `r${i}`));
    const c = t.consumer({ group: 'capped', fromBeginning: true, maxInFlight: 3 });
    for await (const m of c) {
      assert.strictEqual(m.offset, 0n);
      break;  // handed back: the member took 3 and held 3
    }
    const held = [];
    const c2 = t.consumer({ group: 'capped', maxInFlight: 3 });
    for await (const m of c2) {
      held.push(t.info().groups.find((g) => g.name === 'capped').unacked);
      if (m.offset === 9n) {
        c2.ack(m);
        break;
      }
    }
    assert.ok(held.every((n) => n <= 3), `unacked records stayed within maxInFlight: ${held}`);
    assert.strictEqual(t.info().groups.find((g) => g.name === 'capped').committed, '10');
  } finally {
    await t.close();
    await d.stop();
  }
});

test('a logCreator that throws and an event listener that throws neither crash the process nor fail the call', async () => {
  const d = await startDaemon();
  try {
    let calls = 0;
    const logCreator = () => () => {
      calls++;
      throw new Error('the log sink is broken');
    };
    const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logCreator });
    const producer = kafka.producer();
    producer.on(producer.events.CONNECT, () => { throw new Error('a listener that throws'); });
    await producer.connect();  // resolves: the listener's throw is logged (through the broken logCreator)
    await producer.send({ topic: 'flaky', messages: [{ value: 'a' }, { value: 'b' }] });
    const consumer = kafka.consumer({ groupId: 'g' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'flaky', fromBeginning: true });
    const seen = [];
    const twice = signal();
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString());
        if (seen.length === 1) throw new Error('fail once');  // logged through the broken logCreator, nacked
        if (seen.length === 3) twice.resolve();
      },
    });
    await within(20000, 'the next record and the retried one', twice.p);
    assert.deepStrictEqual(seen, ['a', 'b', 'a']);  // the retry comes after the group's backoff (100 ms)
    assert.ok(calls >= 2, `the logCreator was called ${calls} times`);
    await consumer.disconnect();
    await producer.disconnect();
  } finally {
    await d.stop();
  }
});
