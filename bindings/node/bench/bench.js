'use strict';
// Node-side figures for libmq, each next to Node's own `net` over a Unix socket measured in the same run (64-byte
// messages by default): throughput of kafkajs send (awaited one at a time, and batched), kafkajs consume
// (eachMessage, eachBatch; of a backlog, and while a forked producer streams), the native fast path (publish, for await), and round trips (ping on one topic, pong on another,
// echoed by a forked copy of this script) with every sample kept. Prints one row per case and a Markdown table;
// --json writes the schema of bench/report.hpp (tool "node"). Starts its own mqd ($MQD, default
// build/release/daemon/mqd/mqd) on a private socket, namespace and data dir, and stops it however the run ends.
// Every wait is bounded: a case that makes no progress for STALL_MS fails with a message, and the run goes on.
const { spawn, fork } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const netBaseline = require('./net_baseline');
const { describeMachine, loadAverage, summarize, printHeader, printRow, writeResults, within } = require('./report');

const PKG = path.resolve(__dirname, '..');
const MQD = process.env.MQD || path.resolve(PKG, '..', '..', 'build', 'release', 'daemon', 'mqd', 'mqd');
const STALL_MS = 10000;  // a case fails when its progress counter does not move for this long
const START_MS = 10000;  // mqd and the child processes must be ready within this
const STOP_MS = 5000;    // then SIGKILL
const BATCH = 100;

const PROFILES = {
  full: { messages: 200000, rounds: 20000 },
  quick: { messages: 50000, rounds: 5000 },
  smoke: { messages: 300, rounds: 200 },
};

const USAGE = `usage: node bench/bench.js [--quick | --smoke] [--messages N] [--size BYTES] [--rounds N] [--json FILE]
  libmq's Node API (kafkajs send/consume, fast path publish/for await, round trips) next to Node's net over a
  Unix socket, in one run. Starts a private mqd ($MQD, default build/release/daemon/mqd/mqd).
  (default)        full run: 200000 messages per throughput case (100000 for awaited sends), 20000 round trips
  --quick          50000 messages, 5000 round trips: the whole run in well under 40 s
  --smoke          300 messages, 200 round trips: checks it all works, measures nothing (CI)
  --messages N     messages per throughput case
  --size BYTES     payload size (default 64)
  --rounds N       recorded round trips per RTT case (a tenth more first, as warm-up)
  --json FILE      also write the results as JSON (the schema of bench/report.hpp, merged by bench/report.py)
  env WAIT         consumer wait strategy for the RTT cases (futex, spin_futex, spin_yield, busy_spin)`;

// -> {profile, messages, size, rounds, json}, or exits (0 for --help, 2 for a bad option).
function parseOptions(argv) {
  const o = { profile: 'full', ...PROFILES.full, size: 64, json: null };
  const count = (name, v, max) => {
    const n = Number(v);
    if (v === undefined || !/^[0-9]+$/.test(v) || n < 1 || n > max) {
      console.error(`bench.js: ${name} wants a whole number from 1 to ${max}, got '${v === undefined ? '' : v}'`);
      process.exit(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick' || a === '--smoke') Object.assign(o, { profile: a.slice(2) }, PROFILES[a.slice(2)]);
    else if (a === '--messages') o.messages = count(a, argv[++i], 100000000);
    else if (a === '--size') o.size = count(a, argv[++i], 1 << 20);
    else if (a === '--rounds') o.rounds = count(a, argv[++i], 10000000);
    else if (a === '--json' && i + 1 < argv.length) o.json = argv[++i];
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`bench.js: unknown option or missing value: '${a}'\n${USAGE}`);
      process.exit(2);
    }
  }
  return o;
}

const now = () => process.hrtime.bigint();

// ---- child roles (this script forked with --role NAME JSON) ---------------------------------------------------
// Each says 'ready' over IPC, stops on any IPC message, and exits when the parent goes away (IPC disconnect).

async function role(name, opts) {
  process.on('disconnect', () => process.exit(0));
  const { Kafka, Topic } = require(PKG);
  if (name === 'mq-echo') {  // kafkajs API: consumes opts.ping, answers each record on opts.pong
    const kafka = new Kafka({ brokers: [`unix:${opts.socket}`], logLevel: 0 });
    const p = kafka.producer();
    const c = kafka.consumer({ groupId: 'echo', wait: opts.wait });
    await p.connect();
    await c.connect();
    await c.subscribe({ topic: opts.ping });
    await c.run({ eachMessage: async ({ message }) => { await p.send({ topic: opts.pong, messages: [{ value: message.value }] }); } });
    process.send('ready');
    process.on('message', async () => { await c.disconnect(); await p.disconnect(); process.exit(0); });
  } else if (name === 'fast-echo') {  // fast path: for await over opts.ping, publish on opts.pong
    const ping = await Topic.open(opts.ping, { socket: opts.socket });
    const pong = await Topic.open(opts.pong, { socket: opts.socket });
    const c = ping.consumer({ group: 'echo', wait: opts.wait });
    process.on('message', async () => { await ping.close(); await pong.close(); process.exit(0); });
    process.send('ready');
    for await (const m of c) pong.publish(m.value);
  } else if (name === 'mq-stream') {  // publishes opts.messages records on opts.topic when told 'go', as the net
    // server streams frames: batches of 256 prebuilt values; a full ring (the reader is behind) is retried at once,
    // as the server writes again as soon as its socket drains (a kafkajs send measured the same within the noise)
    const t = await Topic.open(opts.topic, { socket: opts.socket });
    const values = Array.from({ length: 256 }, () => Buffer.alloc(opts.size, 7));
    process.on('message', async (m) => {
      if (m !== 'go') {
        await t.close();
        process.exit(0);
      }
      for (let sent = 0; sent < opts.messages;) {
        const k = Math.min(values.length, opts.messages - sent);
        try {
          t.publishBatch(k === values.length ? values : values.slice(0, k));
          sent += k;
        } catch (e) {
          if (e.mqCode !== 'full') throw e;
          sent += e.published || 0;
          await new Promise((r) => setImmediate(r));
        }
      }
    });
    process.send('ready');
  } else if (name === 'net-server') {
    const server = netBaseline.serve(opts);
    process.on('message', () => { server.close(); process.exit(0); });
  } else {
    throw new Error(`unknown role ${name}`);
  }
}

if (process.argv[2] === '--role') {
  role(process.argv[3], JSON.parse(process.argv[4])).catch((e) => {
    console.error(`bench.js ${process.argv[3]}: ${e.stack || e}`);
    process.exit(1);
  });
  return;
}

// ---- processes this run owns: killed however it ends -----------------------------------------------------------

// runDir (a temporary folder) holds mqd's socket and data dir and the net server's socket.
const owned = { children: new Set(), daemon: null, runDir: null, cleanedUp: false };

function startChild(name, opts) {
  const c = fork(__filename, ['--role', name, JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  owned.children.add(c);
  c.once('exit', () => owned.children.delete(c));
  return within(START_MS, `${name} to be ready`, new Promise((resolve, reject) => {
    c.once('message', () => resolve(c));
    c.once('error', reject);
    c.once('exit', (code, sig) => reject(new Error(`${name} exited (${sig || code}) before it was ready`)));
  })).catch((e) => {
    c.kill('SIGKILL');
    throw e;
  });
}

async function stopChild(c) {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.removeAllListeners('message');
  try {
    c.send('stop');
    await within(STOP_MS, 'a child to stop', exited);
  } catch {
    c.kill('SIGKILL');
    await exited;
  }
}

async function startDaemon(capacity) {
  if (!fs.existsSync(MQD)) throw new Error(`mqd not found at ${MQD}: build it (cmake --preset release && cmake --build --preset release) or set MQD`);
  const dir = owned.runDir;
  const socket = path.join(dir, 'mqd.sock');
  const ns = `bench${process.pid}`;
  fs.mkdirSync(path.join(dir, 'data'));
  const proc = spawn(MQD, ['--socket', socket, '--namespace', ns, '--data-dir', path.join(dir, 'data'), '--config', '/dev/null',
    '--auto-create', 'true', '--default-capacity', String(capacity), '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  owned.daemon = { proc, dir, ns, socket };
  let exited = null;
  proc.once('exit', (code, sig) => (exited = sig || code));
  proc.once('error', (e) => (exited = e.message));
  const started = Date.now();
  for (;;) {
    if (exited !== null) throw new Error(`mqd exited (${exited}) before it listened on ${socket}`);
    const ok = await new Promise((r) => {
      const s = net.connect(socket);
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return owned.daemon;
    if (Date.now() - started > START_MS) throw new Error(`mqd did not listen on ${socket} within ${START_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));  // polling for the socket to accept: bounded above
  }
}

function removeDaemonFiles(d) {
  for (const f of fs.readdirSync('/dev/shm')) if (f.startsWith(`mq@${d.ns}@`)) fs.rmSync(path.join('/dev/shm', f), { force: true });
  fs.rmSync(path.join(d.dir, 'data'), { recursive: true, force: true });
  fs.rmSync(d.socket, { force: true });
}

async function stopDaemon() {
  const d = owned.daemon;
  if (!d) return;
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    const exited = new Promise((r) => d.proc.once('exit', r));
    d.proc.kill('SIGTERM');
    try {
      await within(STOP_MS, 'mqd to stop after SIGTERM', exited);
    } catch {
      d.proc.kill('SIGKILL');
      await exited;
    }
  }
  removeDaemonFiles(d);
  owned.daemon = null;
}

// The last resort, synchronous (process 'exit', SIGINT, SIGTERM): kill what is left, remove the daemon's files.
function cleanupNow() {
  if (owned.cleanedUp) return;
  owned.cleanedUp = true;
  for (const c of owned.children) c.kill('SIGKILL');
  if (owned.daemon) {
    owned.daemon.proc.kill('SIGTERM');
    removeDaemonFiles(owned.daemon);
  }
  if (owned.runDir) fs.rmSync(owned.runDir, { recursive: true, force: true });
}
process.on('exit', cleanupNow);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(sig, () => {
    console.error(`bench.js: ${sig}, stopping`);
    cleanupNow();
    process.exit(code);
  });
}

// ---- running a case -------------------------------------------------------------------------------------------

// Runs body(c) for one row. The body bumps c.progress as it goes (the case fails if it stays put for STALL_MS)
// and registers what it opens with c.defer(fn), run afterwards whatever happened (each bounded too). The body
// returns {count, t0[, t1]} (throughput from t0 to t1, default now) or {samples} (ns per round trip).
async function runCase(specIn, opts, body) {
  let spec = specIn;
  const row = { transport: spec.transport, mode: spec.mode, kind: spec.kind, pattern: '1p1c', api: spec.api,
    payload_bytes: opts.size, load_before: loadAverage() };
  const c = { progress: 0, cleanups: [], defer(fn) { this.cleanups.push(fn); } };
  let timer;
  const stalled = new Promise((_, reject) => {
    let seen = -1;
    timer = setInterval(() => {
      if (c.progress === seen) reject(new Error(`no progress for ${STALL_MS / 1000} s (after ${c.progress} steps)`));
      seen = c.progress;
    }, STALL_MS);
  });
  try {
    const run = body(c);
    run.catch(() => {});  // after a stall the abandoned body may still fail: that is already reported
    const r = await Promise.race([run, stalled]);
    if (r.samples) {
      row.samples = r.samples.length;
      row.ns = summarize(r.samples);
    } else if (r.idle !== undefined) {
      row.core_fraction = Math.round(r.idle * 1e6) / 1e6;
      spec = { ...spec, note: `${spec.note}: ${(r.idle * 100).toFixed(2)} % of a core` };
    } else {
      const seconds = Number((r.t1 || now()) - r.t0) / 1e9;
      row.seconds = Math.round(seconds * 1e6) / 1e6;
      row.msgs_per_s = Math.round(r.count / seconds);
      row.bytes_per_s = Math.round((r.count * opts.size) / seconds);
    }
  } catch (e) {
    row.error = e && e.message ? e.message : String(e);
  } finally {
    clearInterval(timer);
    for (const fn of c.cleanups.reverse()) {
      try {
        await within(2 * STOP_MS, `cleanup of ${spec.api}`, Promise.resolve().then(fn));
      } catch (e) {
        if (!row.error) row.error = e.message;
      }
    }
  }
  if (spec.note) row.note = spec.note;
  printRow(row);
  return row;
}

// ---- the libmq cases ------------------------------------------------------------------------------------------

const MQ = { transport: 'libmq node', mode: 'default' };

function libmqCases(opts, socket, wait) {
  const { Kafka, Topic } = require(PKG);
  const n = opts.messages;
  const single = Math.min(n, 100000);
  const value = Buffer.alloc(opts.size, 7);
  const kafka = new Kafka({ brokers: [`unix:${socket}`], logLevel: 0 });
  // Creates topic `name` with a ring of `capacity` bytes (instead of the run's large default).
  const ringOf = async (name, capacity) => {
    const t = await within(START_MS, 'Topic.open', Topic.open(name, { socket, create: { capacity } }));
    await t.close();
  };
  const connected = async (c, client) => {
    c.defer(() => client.disconnect());
    await within(START_MS, 'a kafkajs connect', client.connect());
    return client;
  };
  // Round trips with consumers that wait as `w` says (undefined: the default), on topics of their own.
  const rttCases = (w) => {
    const tag = w === 'spin' ? ' (wait spin)' : '';
    const sfx = w === 'spin' ? '-spin' : '';
    const waitNote = `consumer wait ${w || 'futex (default)'}; echo process forked; not pinned`;
    return [
    [{ ...MQ, kind: 'rtt', api: `kafkajs send + eachMessage${tag}`, note: waitNote }, async (c) => {
      const echo = await startChild('mq-echo', { socket, wait: w, ping: `ping${sfx}`, pong: `pong${sfx}` });
      c.defer(() => stopChild(echo));
      const p = await connected(c, kafka.producer());
      const pc = await connected(c, kafka.consumer({ groupId: 'pinger', wait: w }));
      await pc.subscribe({ topic: `pong${sfx}` });
      let pending = null;
      await pc.run({ eachMessage: async () => { const r = pending; pending = null; if (r) r.resolve(); } });
      const samples = [];
      const warmup = Math.ceil(opts.rounds / 10);
      for (let i = 0; i < warmup + opts.rounds; i++) {
        const t0 = now();
        await new Promise((resolve, reject) => {
          pending = { resolve };
          p.send({ topic: `ping${sfx}`, messages: [{ value }] }).catch(reject);
        });
        if (i >= warmup) samples.push(Number(now() - t0));
        c.progress++;
      }
      return { samples };
    }],
      [{ ...MQ, kind: 'rtt', api: `fast path publish + for await${tag}`, note: waitNote }, async (c) => {
      const echo = await startChild('fast-echo', { socket, wait: w, ping: `fping${sfx}`, pong: `fpong${sfx}` });
      c.defer(() => stopChild(echo));
      const ping = await within(START_MS, 'Topic.open', Topic.open(`fping${sfx}`, { socket }));
      c.defer(() => ping.close());
      const pong = await within(START_MS, 'Topic.open', Topic.open(`fpong${sfx}`, { socket }));
      c.defer(() => pong.close());
      const it = pong.consumer({ group: 'pinger', wait: w })[Symbol.asyncIterator]();
      const samples = [];
      const warmup = Math.ceil(opts.rounds / 10);
      for (let i = 0; i < warmup + opts.rounds; i++) {
        const t0 = now();
        ping.publish(value);
        const r = await it.next();  // a stalled case closes pong, which ends the iteration
        if (r.done) throw new Error(`the pong consumer ended after ${i} round trips`);
        if (i >= warmup) samples.push(Number(now() - t0));
        c.progress++;
      }
      return { samples };
    }],
    ];
  };

  // Consuming while a forked producer streams n records through a 1 MiB ring, as net's reader reads while its
  // server streams: the ring wraps, so the reader's pages are warm after the first lap (a backlog read through a
  // fresh mapping pays a first touch per 4 KiB page, which on a VM with shadow paging is microseconds).
  const streamCases = () => [
    ['kafkajs eachMessage', (consumer, c, done) => consumer.run({ eachMessage: async () => { if (++c.progress === n) done(); } })],
    ['kafkajs eachBatch', (consumer, c, done) => consumer.run({
      eachBatch: async ({ batch }) => {
        c.progress += batch.messages.length;
        if (c.progress >= n) done();
      },
    })],
  ].map(([api, run], i) => [
    { ...MQ, kind: 'throughput', api: `${api} (streamed)`, note: `a forked producer publishes ${n} records through a 1 MiB ring meanwhile` },
    async (c) => {
      const topic = `stream-${i}`;
      await ringOf(topic, 1 << 20);
      const producer = await startChild('mq-stream', { socket, topic, messages: n, size: opts.size });
      c.defer(() => stopChild(producer));
      const consumer = await connected(c, kafka.consumer({ groupId: 'stream-reader' }));
      await consumer.subscribe({ topic, fromBeginning: true });
      let done;
      const all = new Promise((r) => (done = r));
      await run(consumer, c, () => done(now()));
      const t0 = now();
      producer.send('go');
      const t1 = await all;
      return { count: n, t0, t1 };
    },
  ]);

  return [
    [{ ...MQ, kind: 'throughput', api: 'kafkajs send (awaited)', note: 'into a 1 MiB ring (mqd\'s default), which wraps' }, async (c) => {
      await ringOf('single', 1 << 20);
      const p = await connected(c, kafka.producer());
      for (let i = 0; i < Math.ceil(single / 10); i++) await p.send({ topic: 'single', messages: [{ value }] });  // warm-up
      const t0 = now();
      for (let i = 0; i < single; i++) {
        await p.send({ topic: 'single', messages: [{ value }] });
        c.progress++;
      }
      return { count: single, t0 };
    }],
    [{ ...MQ, kind: 'throughput', api: `kafkajs send (batch of ${BATCH})`, note: 'into a 1 MiB ring (mqd\'s default), which wraps' }, async (c) => {
      await ringOf('batched-send', 1 << 20);
      const p = await connected(c, kafka.producer());
      const msgs = Array.from({ length: BATCH }, () => ({ value }));
      const sendAll = async (topic, progress) => {
        for (let i = 0; i < n; i += BATCH) {
          await p.send({ topic, messages: i + BATCH <= n ? msgs : msgs.slice(0, n - i) });
          if (progress) c.progress += BATCH;
        }
      };
      const t0 = now();
      await sendAll('batched-send', true);
      const t1 = now();
      // Untimed: the backlog the kafkajs consume cases read (a ring that holds all n records).
      await sendAll('batched', false);
      return { count: n, t0, t1 };
    }],
    [{ ...MQ, kind: 'throughput', api: 'fast path publish' }, async (c) => {
      const t = await within(START_MS, 'Topic.open', Topic.open('fast', { socket }));
      c.defer(() => t.close());
      const t0 = now();
      for (let i = 0; i < n; i++) t.publish(value);  // synchronous: never waits (throws if the topic is full)
      c.progress += n;
      return { count: n, t0 };
    }],
    [{ ...MQ, kind: 'throughput', api: 'kafkajs eachMessage', note: `reads the ${n} records of the batched send` }, async (c) => {
      const consumer = await connected(c, kafka.consumer({ groupId: 'reader' }));
      await consumer.subscribe({ topic: 'batched', fromBeginning: true });
      let done;
      const all = new Promise((r) => (done = r));
      const t0 = now();
      await consumer.run({ eachMessage: async () => { if (++c.progress === n) done(); } });
      await all;
      return { count: n, t0, t1: now() };
    }],
    [{ ...MQ, kind: 'throughput', api: 'kafkajs eachBatch', note: `reads the ${n} records of the batched send` }, async (c) => {
      const consumer = await connected(c, kafka.consumer({ groupId: 'batch-reader' }));
      await consumer.subscribe({ topic: 'batched', fromBeginning: true });
      let done;
      const all = new Promise((r) => (done = r));
      const t0 = now();
      await consumer.run({
        eachBatch: async ({ batch }) => {
          c.progress += batch.messages.length;
          if (c.progress >= n) done();
        },
      });
      await all;
      return { count: n, t0, t1: now() };
    }],
    [{ ...MQ, kind: 'throughput', api: 'fast path batches()', note: `reads the ${n} records of the fast path publish` }, async (c) => {
      const t = await within(START_MS, 'Topic.open', Topic.open('fast', { socket }));
      c.defer(() => t.close());
      const fc = t.consumer({ group: 'fast-batch-reader', fromBeginning: true });
      const t0 = now();
      let t1 = null;
      for await (const batch of fc.batches()) {
        c.progress += batch.length;
        if (c.progress >= n) {
          t1 = now();
          break;
        }
      }
      if (c.progress < n) throw new Error(`the consumer ended after ${c.progress} of ${n} records`);
      return { count: n, t0, t1 };
    }],
    ...streamCases(),
    [{ ...MQ, kind: 'throughput', api: 'fast path for await', note: `reads the ${n} records of the fast path publish` }, async (c) => {
      const t = await within(START_MS, 'Topic.open', Topic.open('fast', { socket }));
      c.defer(() => t.close());
      const fc = t.consumer({ group: 'fast-reader', fromBeginning: true });
      const t0 = now();
      let t1 = null;
      for await (const m of fc) {  // a stalled case closes t, which ends this loop
        if (++c.progress === n) {
          t1 = now();  // leaving the loop closes the consumer (joins its thread): not part of the figure
          fc.ack(m);
          break;
        }
      }
      if (c.progress < n) throw new Error(`the consumer ended after ${c.progress} of ${n} records`);
      return { count: n, t0, t1 };
    }],
    ...rttCases(wait),
    ...(wait === 'spin' ? [] : rttCases('spin')),
    [{ ...MQ, kind: 'idle', api: 'kafkajs consumer, empty topic', note: 'process CPU over 1 s of waiting' }, async (c) => {
      const consumer = await connected(c, kafka.consumer({ groupId: 'idle', wait }));
      await consumer.subscribe({ topic: 'idle-topic' });
      await consumer.run({ eachMessage: async () => {} });
      await new Promise((r) => setTimeout(r, 100));  // parked by now
      const cpu0 = process.cpuUsage();
      const t0 = now();
      await new Promise((r) => setTimeout(r, 1000));  // the figure is the CPU this second costs: a duration, not a condition
      const used = process.cpuUsage(cpu0);
      const wall = Number(now() - t0) / 1e9;
      c.progress++;
      return { idle: (used.user + used.system) / 1e6 / wall };
    }],
  ];
}

// ---- the net cases --------------------------------------------------------------------------------------------

const NET = { transport: 'node net (unix socket)', mode: 'blocking' };

function netCases(opts, sockPath) {
  const n = opts.messages;
  const single = Math.min(n, 100000);
  return [
    [{ ...NET, kind: 'throughput', api: 'net write (awaited)' }, async (c) => netBaseline.awaitedSingle(sockPath, single, opts.size, c)],
    [{ ...NET, kind: 'throughput', api: `net write (batch of ${BATCH})` }, async (c) => netBaseline.batched(sockPath, n, opts.size, BATCH, c)],
    [{ ...NET, kind: 'throughput', api: 'net read (eachMessage-shaped)' }, async (c) => netBaseline.consume(sockPath, n, c)],
    [{ ...NET, kind: 'rtt', api: 'net write + echo', note: 'echo server forked; not pinned' },
      async (c) => netBaseline.pingPong(sockPath, opts.rounds, Math.ceil(opts.rounds / 10), opts.size, c)],
  ];
}

// ---- the summary table ----------------------------------------------------------------------------------------

function printTable(rows, opts) {
  const find = (transport, api) => rows.find((r) => r.transport === transport && r.api.startsWith(api));
  const mq = (api) => find(MQ.transport, api);
  const nt = (api) => find(NET.transport, api);
  const rate = (r) => (r && r.msgs_per_s ? Math.round(r.msgs_per_s).toLocaleString('en-US') : r ? 'failed' : '');
  const oneWay = (r, q) => (r && r.ns ? (r.ns[q] / 2000).toFixed(1) : r ? 'failed' : '');
  const ratio = (a, b) => (a && b && Number(a.replace(/,/g, '')) > 0 && Number(b.replace(/,/g, '')) > 0
    ? (Number(a.replace(/,/g, '')) / Number(b.replace(/,/g, ''))).toFixed(1) + 'x' : '');
  const line = (measure, a, b) => console.log(`| ${measure} | ${a} | ${b} | ${ratio(a, b)} |`);
  console.log(`\nNode ${process.version}, ${os.cpus().length} CPUs, ${opts.size}-byte messages, N=${opts.messages}, ${opts.rounds} ping-pongs` +
    (opts.profile === 'smoke' ? ' (smoke run: these numbers are not measurements)' : '') + '\n');
  console.log('| measure | libmq | net (Unix socket) | libmq / net |');
  console.log('|---|---:|---:|---:|');
  line('awaited single send (msgs/s)', rate(mq('kafkajs send (awaited)')), rate(nt('net write (awaited')));
  line(`batched send, ${BATCH}/send (msgs/s)`, rate(mq('kafkajs send (batch')), rate(nt('net write (batch')));
  line('fast path publish(), synchronous (msgs/s)', rate(mq('fast path publish')), '');
  line('consume, eachMessage (msgs/s)', rate(mq('kafkajs eachMessage')), rate(nt('net read')));
  line('consume, fast path for await (msgs/s)', rate(mq('fast path for await')), rate(nt('net read')));
  line('consume, eachBatch (msgs/s)', rate(mq('kafkajs eachBatch')), rate(nt('net read')));
  line('consume, fast path batches() (msgs/s)', rate(mq('fast path batches()')), rate(nt('net read')));
  line('consume while a producer streams, eachMessage (msgs/s)', rate(mq('kafkajs eachMessage (streamed)')), rate(nt('net read')));
  line('consume while a producer streams, eachBatch (msgs/s)', rate(mq('kafkajs eachBatch (streamed)')), rate(nt('net read')));
  const rtt = (api) => rows.find((r) => r.transport === MQ.transport && r.api === api);
  for (const [q, label] of [['p50', 'p50'], ['p99', 'p99']]) {
    line(`end-to-end ${label} one-way latency (us)`, oneWay(rtt('kafkajs send + eachMessage'), q), oneWay(nt('net write +'), q));
    line(`end-to-end ${label} one-way latency, fast path (us)`, oneWay(rtt('fast path publish + for await'), q), oneWay(nt('net write +'), q));
    line(`end-to-end ${label} one-way latency, wait spin (us)`, oneWay(rtt('kafkajs send + eachMessage (wait spin)'), q), oneWay(nt('net write +'), q));
    line(`end-to-end ${label} one-way latency, fast path, wait spin (us)`, oneWay(rtt('fast path publish + for await (wait spin)'), q), oneWay(nt('net write +'), q));
  }
  const idle = mq('kafkajs consumer, empty topic');
  console.log(`| idle consumer, default wait (share of a core) | ${idle && idle.core_fraction !== undefined ? (idle.core_fraction * 100).toFixed(2) + ' %' : 'failed'} | | |`);
}

// ---- main -----------------------------------------------------------------------------------------------------

// The ring size of every topic mqd creates: a power of two holding twice the largest case's records.
function capacityFor(opts) {
  const record = 8 * Math.ceil((40 + opts.size) / 8) + 8;
  const need = Math.max(2 * (opts.messages + Math.ceil(opts.messages / 10) + 1) * record, 8 * opts.size, 1 << 16);
  return 2 ** Math.ceil(Math.log2(need));
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const machine = describeMachine();
  printHeader(machine, `${opts.profile}: ${opts.messages} messages per throughput case, ${opts.rounds} round trips ` +
    `(+${Math.ceil(opts.rounds / 10)} warm-up), ${opts.size} B payloads`);
  const rows = [];
  owned.runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-node-bench-'));
  const d = await startDaemon(capacityFor(opts));
  try {
    for (const [spec, body] of libmqCases(opts, d.socket, process.env.WAIT)) rows.push(await runCase(spec, opts, body));
  } finally {
    await stopDaemon();
  }
  const sockPath = path.join(owned.runDir, 'net.sock');
  let server = null;
  let serverError = null;
  try {
    server = await startChild('net-server', { path: sockPath, messages: opts.messages, size: opts.size });
  } catch (e) {
    serverError = e.message;
  }
  try {
    for (const [spec, body] of netCases(opts, sockPath)) {
      rows.push(serverError
        ? await runCase(spec, opts, async () => { throw new Error(`net server: ${serverError}`); })
        : await runCase(spec, opts, body));
    }
  } finally {
    if (server) await stopChild(server);
  }
  printTable(rows, opts);
  console.log(`\nload:    ${loadAverage()} after the run`);
  if (opts.json) writeResults(opts.json, { tool: 'node', profile: opts.profile, machine, cases: rows });
  const failed = rows.filter((r) => r.error);
  if (failed.length) console.error(`bench.js: ${failed.length} case(s) failed`);
  return failed.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(`bench.js: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
