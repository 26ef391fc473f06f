'use strict';
// The event loop is never blocked waiting for data, an idle consumer does not spin a core, and a process ends by
// itself once everything is disconnected.
const test = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { PKG, startDaemon, child, within, condition } = require('./helpers');
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
