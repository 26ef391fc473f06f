'use strict';
// The event loop is never blocked waiting for data, an idle consumer does not spin a core, and a process ends by
// itself once everything is disconnected.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { PKG, startDaemon, child, within, condition, signal } = require('./helpers');
const { Kafka } = require(PKG);

let d;
test.before(async () => {
  d = await startDaemon();
});
test.after(async () => {
  if (d) await d.stop();
});

test('a consumer waiting on an empty topic leaves the event loop free and the CPU idle', async () => {
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const consumer = kafka.consumer({ groupId: 'idle' });
  await consumer.connect();
  await consumer.subscribe({ topic: 'empty', fromBeginning: true });
  const got = [];
  await consumer.run({ eachMessage: async ({ message }) => got.push(message.offset) });
  // A timer every 10 ms: a loop blocked in a native wait would fire it zero times and time out below.
  const ticks = condition();
  let n = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const iv = setInterval(() => {
    n++;
    ticks.bump();
  }, 10);
  try {
    await ticks.until(() => n >= 50, 5000, '50 timer ticks while the consumer waits');
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const share = (cpu.user + cpu.system) / wallUs;
    assert.ok(share < 0.3, `an idle consumer used ${(share * 100).toFixed(1)}% of a core`);
    assert.deepStrictEqual(got, []);
  } finally {
    clearInterval(iv);
  }
  // And it still works afterwards.
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: 'empty', messages: [{ value: 'x' }] });
  const arrived = condition();
  const iv2 = setInterval(() => arrived.bump(), 5);
  try {
    await arrived.until(() => got.length === 1, 5000, 'the record');
  } finally {
    clearInterval(iv2);
  }
  await producer.disconnect();
  await consumer.disconnect();
});

test('a process exits by itself after disconnect()', async () => {
  const c = child(path.join(__dirname, 'fixtures', 'exit-after-disconnect.js'), { env: { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG } });
  const exit = await within(10000, 'the process to exit by itself', c.exited);
  assert.deepStrictEqual(exit, { code: 0, signal: null }, c.stderr());
  assert.deepStrictEqual(c.json, [{ event: 'disconnected', value: 'bye' }]);
});

test('a consumer draining a topic that never runs dry leaves timers and sockets their turn', async () => {
  const { Topic } = require(PKG);
  const net = require('net');
  const t = await Topic.open('busy', { socket: d.socket, create: { capacity: 64 << 20 } });
  const value = Buffer.alloc(32);
  const N = 100000;
  for (let i = 0; i < N; i += 1000) t.publishBatch(Array(1000).fill(value));
  // A socket echo and a timer, both counted only while the drain runs.
  const server = net.createServer((s) => {
    s.on('error', () => {});  // the client goes away at the end
    s.on('data', (b) => s.write(b));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.connect(server.address().port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  let draining = true;
  let ticks = 0;
  let echoes = 0;
  const iv = setInterval(() => { if (draining) ticks++; }, 2);
  sock.on('data', () => { if (draining) { echoes++; sock.write('p'); } });
  sock.write('p');
  const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
  const consumer = kafka.consumer({ groupId: 'drain' });
  await consumer.connect();
  await consumer.subscribe({ topic: 'busy', fromBeginning: true });
  let n = 0;
  const started = process.hrtime.bigint();
  const done = signal();
  try {
    await consumer.run({
      eachMessage: async () => {
        // ~2 us of work a record: the drain takes a few hundred ms of back-to-back microtasks
        const until = process.hrtime.bigint() + 2000n;
        while (process.hrtime.bigint() < until);
        if (++n === N) done.resolve();
      },
    });
    await within(60000, 'the drain', done.p);
    draining = false;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(ms > 100, `the drain took only ${ms.toFixed(0)} ms: too short to tell`);
    assert.ok(ticks >= 10, `a 2 ms timer fired ${ticks} times during a ${ms.toFixed(0)} ms drain`);
    assert.ok(echoes >= 10, `a socket echo came back ${echoes} times during a ${ms.toFixed(0)} ms drain`);
  } finally {
    draining = false;
    clearInterval(iv);
    sock.destroy();
    await new Promise((r) => server.close(r));
    await consumer.disconnect();
    await t.close();
  }
});

// A parked consumer is woken by each record a producer publishes while it sleeps: through io_uring where the kernel
// has FUTEX_WAIT, and through the waiter thread (forced here, or chosen by a wait strategy only it has) everywhere.
for (const [label, forced, wait] of [['default waiter', null, undefined], ['waiter thread, forced', 'thread', undefined],
  ["wait 'spin_futex': the waiter thread", null, 'spin_futex']]) {
  test(`a parked consumer wakes for every record (${label})`, async () => {
    const { Topic } = require(PKG);
    const topic = `parked-${forced || wait || 'default'}`;
    const t = await Topic.open(topic, { socket: d.socket });
    const env = { MQ_SOCKET: d.socket, LIBMQ_PKG: PKG, TOPIC: topic, COUNT: '5' };
    if (forced) env.MQ_NODE_WAITER = forced;
    if (wait) env.WAIT = wait;
    const c = child(path.join(__dirname, 'fixtures', 'parked-consumer.js'), { env });
    try {
      await c.until((lines, json) => json.some((j) => j.ready), 10000, 'the consumer to start');
      const { waiter } = c.json.find((j) => j.ready);
      if (forced || wait) assert.strictEqual(waiter, 'thread');
      else assert.ok(waiter === 'io_uring' || waiter === 'thread', waiter);
      for (let i = 0; i < 5; i++) {
        // One record at a time, each once the previous arrived: between them the consumer has nothing and parks.
        await condition().until(() => t.info().groups.length === 1, 5000, 'the group');
        t.publish(Buffer.from(`r${i}`));
        await c.until((lines, json) => json.filter((j) => j.value).length === i + 1, 10000, `record ${i}`);
      }
      const exit = await within(10000, 'the consumer to exit', c.exited);
      assert.deepStrictEqual(exit, { code: 0, signal: null }, c.stderr());
      assert.deepStrictEqual(c.json.filter((j) => j.value).map((j) => j.value), ['r0', 'r1', 'r2', 'r3', 'r4']);
    } finally {
      await c.kill('SIGKILL');
      await t.close();
    }
  });
}
