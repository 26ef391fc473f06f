'use strict';
// First pass against warm passes: one Node process reads the same backlog several times over, through net (bench.js's
// eachMessage-shaped socket read, from a forked server) and through each libmq consume shape (a new group per pass),
// and prints the ns a record and the page faults of every pass. bench.js measures first passes only; this shows how
// far a warm process (heap grown, JIT done) moves each side.
//   node bindings/node/bench/passes.js [--messages N] [--passes P]     ($MQD: the mqd to start, as bench.js)
const { spawn, fork } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const netBaseline = require('./net_baseline');
const { within } = require('./report');
const { Kafka, Topic } = require('..');

const MQD = process.env.MQD || path.resolve(__dirname, '..', '..', '..', 'build', 'release', 'daemon', 'mqd', 'mqd');
const PASS_MS = 60000;  // a pass that takes longer fails the run
const USAGE = 'usage: node bench/passes.js [--messages N] [--passes P]   (defaults: 400000 messages, 5 passes)';

function parseOptions(argv) {
  const o = { messages: 400000, passes: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '-h' || argv[i] === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    const key = { '--messages': 'messages', '--passes': 'passes' }[argv[i]];
    const value = Number(argv[i + 1]);
    if (!key || !Number.isInteger(value) || value < 1 || value > 10000000) {
      console.error(`passes.js: bad option ${argv[i]} ${argv[i + 1] ?? ''}\n${USAGE}`);
      process.exit(2);
    }
    o[key] = value;
  }
  return o;
}

const minorFaults = () => Number(fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);

async function listening(socket, proc) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`mqd exited (${proc.exitCode}) before it listened`);
    const ok = await new Promise((r) => {
      const s = net.connect(socket);
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));  // polling for the socket to accept: bounded by the deadline
  }
  throw new Error(`mqd did not listen on ${socket} within 10 s`);
}

// Each shape: (pass) -> promise of the records read in that pass. A shape reads through one group of its own,
// moved back to the topic's start before every pass after the first (a topic has room for 16 groups).
function libmqShapes(kafka, topic, n) {
  const rewound = (group, pass) => {
    if (pass > 0) topic.resetGroup(group, 'earliest');
    return group;
  };
  // handlerFor(add) -> the run() handlers; add(k) counts k records read.
  const kafkajs = (label, handlerFor) => async (pass) => {
    const consumer = kafka.consumer({ groupId: rewound(label, pass) });
    await consumer.connect();
    await consumer.subscribe({ topics: ['backlog'], fromBeginning: true });
    let read = 0;
    await new Promise((done) => consumer.run(handlerFor((k) => {
      read += k;
      if (read >= n) done();
    })));
    await consumer.disconnect();
    return read;
  };
  const fast = (perBatch) => async (pass) => {
    const c = topic.consumer({ group: rewound(perBatch ? 'fast-batches' : 'fast-await', pass), fromBeginning: true });
    let read = 0;
    if (perBatch) {
      for await (const batch of c.batches()) {
        for (const msg of batch) read += msg.value.length > 0;
        if (read >= n) break;
      }
    } else {
      for await (const msg of c) {
        read += msg.value.length > 0;
        if (read >= n) break;
      }
    }
    await c.close();
    return read;
  };
  return [
    ['libmq kafkajs eachMessage', kafkajs('each-message', (add) => ({ eachMessage: async ({ message }) => add(message.value.length > 0) }))],
    ['libmq kafkajs eachBatch', kafkajs('each-batch', (add) => ({
      eachBatch: async ({ batch }) => {
        let k = 0;
        for (const m of batch.messages) k += m.value.length > 0;
        add(k);
      },
    }))],
    ['libmq fast path batches()', fast(true)],
    ['libmq fast path for await', fast(false)],
  ];
}

// What this run owns (mqd, the net server, their files): removed however the run ends, a signal included.
const owned = { children: [], dir: null, ns: `passes${process.pid}` };
function cleanUp() {
  for (const c of owned.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  owned.children = [];
  for (const f of fs.readdirSync('/dev/shm')) if (f.startsWith(`mq@${owned.ns}@`)) fs.rmSync(path.join('/dev/shm', f), { force: true });
  if (owned.dir) fs.rmSync(owned.dir, { recursive: true, force: true });
  owned.dir = null;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanUp();
    process.exit(1);
  });
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(MQD)) throw new Error(`mqd not found at ${MQD}: build it or set MQD`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mq-passes-'));
  owned.dir = dir;
  const socket = path.join(dir, 'mqd.sock');
  const { ns, children } = owned;
  try {
    fs.mkdirSync(path.join(dir, 'data'));
    const mqd = spawn(MQD, ['--socket', socket, '--namespace', ns, '--data-dir', path.join(dir, 'data'), '--config',
      '/dev/null', '--auto-create', 'false', '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
    children.push(mqd);
    await listening(socket, mqd);
    const netSocket = path.join(dir, 'net.sock');
    const server = fork(path.join(__dirname, 'bench.js'), ['--role', 'net-server',
      JSON.stringify({ path: netSocket, messages: o.messages, size: 64 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(server);
    await within(10000, 'the net server to listen', new Promise((r) => server.once('message', r)));

    const bytes = o.messages * 128 * 2;  // a record of 64 B takes under 128 B; room to spare
    const capacity = 2 ** Math.ceil(Math.log2(bytes));
    const topic = await Topic.open('backlog', { socket, create: { capacity, maxMessage: 1024 } });
    const value = Buffer.alloc(64, 7);
    const hundred = Array.from({ length: 100 }, () => value);
    for (let i = 0; i < o.messages; i += 100) topic.publishBatch(i + 100 <= o.messages ? hundred : hundred.slice(0, o.messages - i));
    const kafka = new Kafka({ clientId: 'passes', brokers: [`unix:${socket}`], logLevel: 0 });

    const shapes = [
      ['net read (eachMessage-shaped)', async () => {
        const c = { progress: 0, defer: () => {} };
        await netBaseline.consume(netSocket, o.messages, c);
        return c.progress;
      }],
      ...libmqShapes(kafka, topic, o.messages),
    ];
    console.log(`${o.messages} records of 64 B, ${o.passes} passes each in this process: ns a record (page faults)`);
    for (const [name, pass] of shapes) {
      const cells = [];
      for (let p = 0; p < o.passes; p++) {
        const f0 = minorFaults();
        const t0 = process.hrtime.bigint();
        const read = await within(PASS_MS, `${name} pass ${p + 1}`, pass(p));
        const ns = Number(process.hrtime.bigint() - t0) / read;
        if (read < o.messages) throw new Error(`${name} pass ${p + 1} read ${read} of ${o.messages} records`);
        cells.push(`${ns.toFixed(0)} (${minorFaults() - f0})`);
      }
      console.log(`${name.padEnd(32)} ${cells.join('  ')}`);
    }
    await topic.close();
  } finally {
    cleanUp();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`passes.js: ${e.stack || e}`);
  process.exit(1);
});
