'use strict';
// What the JavaScript of a consumer costs with no transport at all: records already in memory, handed to an
// awaited async handler one by one, in the shape net's consume case gives them (bench/net_baseline.js: a framed
// Buffer, a 4-field message object), in the shape libmq's kafkajs eachMessage gives them (lib/consumer.js: a
// KafkaMessage over a batch, a 5-field payload) and in the fast path's (lib/fast.js: for await, batches()). No
// consumer of one of these shapes can go faster than this on this machine, whatever moves the bytes: it is the
// ceiling the consume rows of bench.js are read against.
//   node bindings/node/bench/js_floor.js [--messages N] [--rounds R]
const native = require('../lib/native');
const { KafkaMessage, FastMessage } = require('../lib/common');

const USAGE = 'usage: node bench/js_floor.js [--messages N] [--rounds R]   (defaults: 2000000 messages, 5 rounds)';

function parseOptions(argv) {
  const o = { messages: 2_000_000, rounds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    const key = { '--messages': 'messages', '--rounds': 'rounds' }[a];
    const value = Number(argv[i + 1]);
    if (!key || !Number.isInteger(value) || value < 1) {
      console.error(`js_floor: bad option ${a} ${argv[i + 1] ?? ''}\n${USAGE}`);
      process.exit(2);
    }
    o[key] = value;
    i++;
  }
  return o;
}

const SIZE = 64;
const BATCH = native.batchLayout.maxBatch;

// net's shape: [u32 length][payload] frames in one Buffer, a subarray and a message object per frame.
async function netShape(n) {
  const frame = Buffer.alloc(4 + SIZE);
  frame.writeUInt32LE(SIZE, 0);
  const buf = Buffer.concat(Array.from({ length: 1024 }, () => frame));
  let progress = 0;
  let offset = 0;
  const eachMessage = async () => {
    progress++;
  };
  const t0 = process.hrtime.bigint();
  while (progress < n) {
    for (let at = 0; at < buf.length && progress < n;) {
      const len = buf.readUInt32LE(at);
      const value = buf.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      await eachMessage({ topic: 't', partition: 0, message: { offset: String(offset++), value, key: null, headers: {} } });
    }
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

// One batch of BATCH records as the addon's take() lays it out (batchLayout), SIZE-byte values.
function inMemoryBatch() {
  const L = native.batchLayout;
  const meta = new Float64Array(L.header + BATCH * L.stride);
  const buf = Buffer.alloc(meta.byteLength + BATCH * SIZE);
  meta[L.count] = BATCH;
  for (let i = 0; i < BATCH; i++) {
    const row = L.header + i * L.stride;
    meta[row + L.offsetLow] = i;
    meta[row + L.timestampMs] = Date.now();
    meta[row + L.valueStart] = meta.byteLength + i * SIZE;
    meta[row + L.valueLength] = SIZE;
    meta[row + L.keyLength] = -1;
  }
  return { buf, meta, count: BATCH, firstSeq: 0 };
}

// libmq's kafkajs shape: a KafkaMessage per record, the eachMessage payload; `readValue`: the handler reads
// message.value (a lazy field).
async function libmqShape(n, readValue) {
  const batch = inMemoryBatch();
  let progress = 0;
  let bytes = 0;
  const eachMessage = readValue
    ? async ({ message }) => { progress++; bytes += message.value.length; }
    : async () => { progress++; };
  const heartbeat = async () => {};
  const pause = () => {};
  const t0 = process.hrtime.bigint();
  while (progress < n) {
    for (let i = 0; i < BATCH && progress < n; i++) {
      const message = new KafkaMessage(batch, i);
      await eachMessage({ topic: 't', partition: 0, message, heartbeat, pause });
    }
  }
  if (readValue && bytes !== n * SIZE) throw new Error('the handler read the wrong values');
  return Number(process.hrtime.bigint() - t0) / n;
}

// The fast path's shapes (lib/fast.js), the loop body reading msg.value: `for await (const msg of consumer)` (an
// async iterator whose next() hands out a FastMessage: a promise per record), or `for await (const batch of
// consumer.batches())` (an async generator yielding arrays of them: a promise per batch).
async function fastShape(n, perBatch) {
  const batch = inMemoryBatch();
  let bytes = 0;
  let handed = 0;
  const iterator = {
    index: 0,
    async next() {
      if (handed === n) return { value: undefined, done: true };
      if (this.index === BATCH) this.index = 0;
      const i = this.index++;
      return { value: new FastMessage(batch, i, handed++), done: false };
    },
    [Symbol.asyncIterator]() { return this; },
  };
  async function* batches() {
    while (handed < n) {
      const count = Math.min(BATCH, n - handed);
      const out = new Array(count);
      for (let i = 0; i < count; i++) out[i] = new FastMessage(batch, i, handed++);
      yield out;
    }
  }
  const t0 = process.hrtime.bigint();
  if (perBatch) {
    for await (const b of batches()) for (const msg of b) bytes += msg.value.length;
  } else {
    for await (const msg of iterator) bytes += msg.value.length;
  }
  if (bytes !== n * SIZE) throw new Error('the loop read the wrong values');
  return Number(process.hrtime.bigint() - t0) / n;
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  const cases = [
    ['net shape (framed Buffer, 4-field message)', () => netShape(o.messages)],
    ['libmq kafkajs eachMessage shape', () => libmqShape(o.messages, false)],
    ['libmq kafkajs eachMessage shape, handler reads value', () => libmqShape(o.messages, true)],
    ['libmq fast path for await shape, reads value', () => fastShape(o.messages, false)],
    ['libmq fast path batches() shape, reads value', () => fastShape(o.messages, true)],
  ];
  console.log(`JavaScript alone, no transport: ${o.messages} records of ${SIZE} B per round, best of ${o.rounds} rounds`);
  for (const [name, run] of cases) {
    let best = Infinity;
    for (let r = 0; r < o.rounds; r++) best = Math.min(best, await run());
    console.log(`${name.padEnd(56)} ${best.toFixed(1).padStart(7)} ns/msg  (at most ${(1e3 / best).toFixed(2)} M msgs/s)`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
