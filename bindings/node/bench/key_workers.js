'use strict';
// Two workers of one group, each record taking `--work` ms (the blog's e-mail worker): how long a backlog of
// `--records` records over `--keys` keys takes, and how the records split between the workers, with the group's
// ordering 'none' (any worker takes any record: the parallel baseline) and then 'key' (a key's records one at a
// time, in order), in the same run. Each worker is its own process (kafkajs consumer, eachMessage); the records are
// published first, then both workers start.
//   node bindings/node/bench/key_workers.js [--records N] [--keys K] [--work MS]     ($MQD: the mqd to start)
const { spawn, fork } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Kafka } = require('..');

const MQD = process.env.MQD || path.resolve(__dirname, '..', '..', '..', 'build', 'release', 'daemon', 'mqd', 'mqd');
const RUN_MS = 120000;  // a case that takes longer fails the run
const USAGE = 'usage: node bench/key_workers.js [--records N] [--keys K] [--work MS]   (defaults: 320, 16, 5)';

function parseOptions(argv) {
  const o = { records: 320, keys: 16, work: 5 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '-h' || argv[i] === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    const key = { '--records': 'records', '--keys': 'keys', '--work': 'work' }[argv[i]];
    const value = Number(argv[i + 1]);
    if (!key || !Number.isInteger(value) || value < 1 || value > 1000000) {
      console.error(`key_workers.js: bad option ${argv[i]} ${argv[i + 1] ?? ''}\n${USAGE}`);
      process.exit(2);
    }
    o[key] = value;
  }
  return o;
}

// A worker: joins `group` of `topic` with `ordering`, works `work` ms on each record and reports its count to the
// parent after each; disconnects when told to stop.
function worker([socket, topic, group, ordering, work]) {
  const kafka = new Kafka({ clientId: 'key-workers', brokers: [`unix:${socket}`], logLevel: 0 });
  const consumer = kafka.consumer({ groupId: group, ordering });
  let done = 0;
  process.on('message', async () => {
    await consumer.disconnect();
    process.exit(0);
  });
  (async () => {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    process.send({ ready: true });
    await consumer.run({
      eachMessage: async () => {
        await new Promise((resolve) => setTimeout(resolve, Number(work)));
        done += 1;
        process.send({ done });
      },
    });
  })().catch((e) => {
    console.error(`worker: ${e.message}`);
    process.exit(1);
  });
}

async function startDaemon() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-key-workers-'));
  const socket = path.join(dir, 'mqd.sock');
  const proc = spawn(MQD, ['--socket', socket, '--namespace', `keyworkers${process.pid}`, '--data-dir', dir,
    '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 10000;
  while (!fs.existsSync(socket)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`mqd (${MQD}) did not start`);
    await new Promise((resolve) => setTimeout(resolve, 20));  // polling for the socket with a deadline
  }
  return {
    socket,
    stop: async () => {
      proc.kill('SIGTERM');
      if (proc.exitCode === null) await new Promise((resolve) => proc.once('exit', resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// One case: publishes the backlog, starts two workers, waits for every record -> {ms, split: [a, b]}.
async function runCase(kafka, socket, o, ordering) {
  const topic = `work-${ordering}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = 0; i < o.records; i++) messages.push({ key: `k${i % o.keys}`, value: `invitation ${i}` });
  await producer.send({ topic, messages });
  await producer.disconnect();
  const workers = [0, 1].map(() => fork(__filename, ['--worker', socket, topic, 'mailers', ordering, o.work]));
  const counts = [0, 0];
  try {
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
    const start = process.hrtime.bigint();
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${ordering}: not every record came in ${RUN_MS} ms`)), RUN_MS);
      workers.forEach((w, i) => {
        w.on('message', (m) => {
          counts[i] = m.done;
          if (counts[0] + counts[1] >= o.records) {
            clearTimeout(timer);
            resolve();
          }
        });
        w.once('exit', (code) => code && reject(new Error(`${ordering}: a worker exited with ${code}`)));
      });
    });
    return { ms: Number(process.hrtime.bigint() - start) / 1e6, split: counts };
  } finally {
    for (const w of workers) {
      w.send('stop');
      if (w.exitCode === null) await new Promise((resolve) => w.once('exit', resolve));
    }
  }
}

async function main() {
  const o = parseOptions(process.argv.slice(2));
  const d = await startDaemon();
  try {
    const kafka = new Kafka({ clientId: 'key-workers', brokers: [`unix:${d.socket}`], logLevel: 0 });
    const ideal = (o.records * o.work) / 2;
    console.log(`${o.records} records over ${o.keys} keys, ${o.work} ms of work each, 2 workers ` +
      `(ideal: ${ideal} ms; one worker alone: ${o.records * o.work} ms)`);
    const none = await runCase(kafka, d.socket, o, 'none');
    const key = await runCase(kafka, d.socket, o, 'key');
    for (const [name, r] of [['none', none], ['key', key]]) {
      console.log(`  ordering ${name.padEnd(4)} ${r.ms.toFixed(0).padStart(7)} ms  split ${r.split[0]} / ` +
        `${r.split[1]}  (x${(r.ms / none.ms).toFixed(2)} of none)`);
    }
  } finally {
    await d.stop();
  }
}

if (process.argv[2] === '--worker') worker(process.argv.slice(3));
else main().catch((e) => {
  console.error(`key_workers.js: ${e.message}`);
  process.exit(1);
});
