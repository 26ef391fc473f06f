'use strict';
// The soak: mixed traffic for a while against a private mqd, sampling every second the resident memory (RssAnon,
// VmRSS) and open file descriptors of mqd and of every long-lived client, and the namespace's /dev/shm usage.
// Flat is the pass: over the second half of the run no figure exceeds its first-half maximum by more than a small
// tolerance, the churned topics leave no segment behind, and every stream still moves at the end.
//   Long-lived: a kafkajs producer (batches of 1..100 records of 16 B..4 KiB, some with keys and headers, some
//   awaited one at a time), two eachMessage workers of one group, an eachBatch reader of another, the fast path's
//   for-await reader, `mqctl produce` fed lines and `mqctl consume` reading them (the C++ client).
//   Churn, one step at a time: a topic created, written, read and deleted with mqctl; a kafkajs consumer that joins
//   a group, reads for a moment and leaves; `mqctl stats` and `mqctl groups`.
// Usage: node tests/soak/soak.js [--seconds N (default 600)] [--csv FILE] [--json FILE]
// Exit 0 pass, 1 a check failed (the summary says which), 2 bad options.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { PKG, startDaemon, within } = require('../node/helpers');

const REPO = path.resolve(__dirname, '..', '..');
const MQCTL = process.env.MQCTL || path.join(REPO, 'build', 'release', 'daemon', 'mqctl', 'mqctl');
// Growth allowed, second half over first half. V8 sizes its heap in steps until it settles (the producer went 40 ->
// 63 MiB between the halves of a 60 s run, and stayed at 62-66 MiB over 600 s): Node gets 32 MiB.
const TOLERANCE_KIB = { mqd: 1024, mqctl: 1024, node: 32768 };
const FD_TOLERANCE = 2;

// ---- the client roles (this file, run as a child with --role) -------------------------------------------------
async function role(name, socket) {
  const { Kafka, Topic } = require(PKG);
  const kafka = new Kafka({ clientId: `soak-${name}`, brokers: [`unix:${socket}`], logLevel: 1 });
  let moved = 0;
  setInterval(() => process.stdout.write(`${JSON.stringify({ moved })}\n`), 500);
  process.on('message', () => process.exit(0));
  if (name === 'producer') {
    const p = kafka.producer();
    await p.connect();
    let i = 0;
    const value = (n) => Buffer.alloc(16 + ((n * 2654435761) % 4080), n & 0xff);
    for (;;) {
      const n = 1 + (i % 100);
      const messages = Array.from({ length: n }, (_, k) => (
        (i + k) % 7 === 0 ? { key: `k${(i + k) % 13}`, value: value(i + k), headers: { trace: `t${i + k}` } } : { value: value(i + k) }));
      if (i % 5 === 0) for (const m of messages.slice(0, 10)) await p.send({ topic: 'soak-orders', messages: [m] });
      else await p.send({ topic: 'soak-orders', messages });
      moved += n;
      i += n;
      await new Promise((r) => setTimeout(r, 2));  // ~20-40 k records/s: traffic, not a benchmark
    }
  } else if (name === 'worker' || name === 'batcher') {
    const c = kafka.consumer({ groupId: name === 'worker' ? 'soak-workers' : 'soak-batches' });
    await c.connect();
    await c.subscribe({ topic: 'soak-orders', fromBeginning: true });
    if (name === 'worker') {
      await c.run({ eachMessage: async ({ message }) => { if (message.value.length >= 16) moved += 1; } });
    } else {
      await c.run({ eachBatch: async ({ batch }) => { moved += batch.messages.length; } });
    }
  } else if (name === 'fast') {
    const t = await Topic.open('soak-orders', { socket });
    for await (const m of t.consumer({ group: 'soak-fast', fromBeginning: true })) if (m.value.length >= 16) moved += 1;
  } else {
    throw new Error(`unknown role ${name}`);
  }
}

if (process.argv[2] === '--role') {
  role(process.argv[3], process.argv[4]).catch((e) => {
    console.error(`soak ${process.argv[3]}: ${e.stack || e}`);
    process.exit(1);
  });
  return;
}

// ---- the run ---------------------------------------------------------------------------------------------------
function parse(argv) {
  const o = { seconds: 600, csv: null, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--csv') o.csv = next();
    else if (a === '--json') o.json = next();
    else if (a === '-h' || a === '--help') {
      console.log('usage: node tests/soak/soak.js [--seconds N (default 600)] [--csv FILE] [--json FILE]');
      process.exit(0);
    } else throw new Error(`unknown option '${a}'`);
  }
  if (!Number.isInteger(o.seconds) || o.seconds < 20) throw new Error(`--seconds must be a whole number >= 20, got ${o.seconds}`);
  return o;
}

// Clients still running when this process exits (a failed run) die with it, as helpers.js does for mqd.
const children = new Set();
process.on('exit', () => {
  for (const proc of children) proc.kill('SIGKILL');
});

// A long-lived child: its pid, its latest `moved` count, its exit.
function spawnClient(kind, name, cmd, args, opts = {}) {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe', ...(opts.ipc ? ['ipc'] : [])] });
  children.add(proc);
  const c = { kind, name, proc, moved: 0, exit: null, stderr: '' };
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (opts.countLines) c.moved += 1;
      else if (line.startsWith('{')) c.moved = JSON.parse(line).moved;
    }
  });
  proc.stderr.on('data', (d) => { c.stderr = (c.stderr + d).slice(-4000); });
  proc.on('exit', (code, signal) => {
    children.delete(proc);
    c.exit = { code, signal };
  });
  return c;
}

function sample(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1]);
    return { rssAnon: kib('RssAnon'), vmRss: kib('VmRSS'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return null;  // it exited: the run's checks say so
  }
}

// The namespace's segments in /dev/shm, but for topic `skip` (the churn step's own, alive while it runs: a sample
// that catches it is no growth; one a finished step left behind is).
function shmKiB(ns, skip = null) {
  let kib = 0;
  for (const f of fs.readdirSync('/dev/shm')) {
    if (!f.startsWith(`mq@${ns}@`) || (skip !== null && f === `mq@${ns}@${skip}`)) continue;
    try {
      kib += fs.statSync(path.join('/dev/shm', f)).blocks / 2;
    } catch {
      // a churned topic deleted meanwhile
    }
  }
  return kib;
}

function mqctl(socket, args, input) {
  return new Promise((resolve, reject) => {
    const p = spawn(MQCTL, ['--socket', socket, ...args], { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`mqctl ${args.join(' ')}: exit ${code}: ${err}`))));
    if (input) p.stdin.end(input);
  });
}

async function churn(socket, kafka, topic) {
  await mqctl(socket, ['create', topic, '--capacity', '64KiB']);
  await mqctl(socket, ['produce', topic], 'a\nb\nc\n');
  const got = await mqctl(socket, ['consume', topic, '--group', 'c', '--from-beginning', '--max', '3', '--timeout', '10']);
  if (got.split('\n').filter(Boolean).length !== 3) throw new Error(`churn topic ${topic} gave back '${got}'`);
  await mqctl(socket, ['delete', topic]);
  const c = kafka.consumer({ groupId: 'soak-passers-by', maxInFlight: 8 });
  await c.connect();
  await c.subscribe({ topic: 'soak-orders' });
  let seen = 0;
  await c.run({ eachMessage: async () => { seen += 1; } });
  await new Promise((r) => setTimeout(r, 200));  // a member that stays a moment, then leaves
  await c.disconnect();
  await mqctl(socket, ['stats']);
  await mqctl(socket, ['groups', 'soak-orders']);
  return seen;
}

async function main() {
  const o = parse(process.argv.slice(2));
  const { Kafka } = require(PKG);
  const d = await startDaemon({ args: ['--default-capacity', '16MiB'] });
  const clients = [{ kind: 'mqd', name: 'mqd', proc: d.proc, moved: null, exit: null }];
  d.proc.on('exit', (code, signal) => { clients[0].exit = { code, signal }; });
  const failures = [];
  const rows = [];
  let feeder = null;
  let baseShm = null;
  try {
    await mqctl(d.socket, ['create', 'soak-orders', '--capacity', '16MiB', '--consumer-group', 'soak-workers',
      '--consumer-group', 'soak-batches', '--consumer-group', 'soak-fast']);
    await mqctl(d.socket, ['create', 'soak-lines', '--capacity', '1MiB', '--consumer-group', 'cli']);
    baseShm = shmKiB(d.ns);  // the two long-lived topics: what must be left at the end
    const node = (name) => spawnClient('node', name, process.execPath, [__filename, '--role', name.replace(/-\d$/, ''), d.socket], { ipc: true });
    clients.push(node('producer'), node('worker-1'), node('worker-2'), node('batcher'), node('fast'));
    const producer = spawnClient('mqctl', 'mqctl produce', MQCTL, ['--socket', d.socket, 'produce', 'soak-lines']);
    const consumer = spawnClient('mqctl', 'mqctl consume', MQCTL, ['--socket', d.socket, 'consume', 'soak-lines', '--group', 'cli'], { countLines: true });
    clients.push(producer, consumer);
    let line = 0;
    feeder = setInterval(() => {  // ~5 k lines/s into mqctl produce
      let chunk = '';
      for (let k = 0; k < 50; k++) chunk += `line ${line++} ${'x'.repeat(line % 200)}\n`;
      producer.proc.stdin.write(chunk);
      producer.moved = line;
    }, 10);
    const kafka = new Kafka({ clientId: 'soak-churn', brokers: [`unix:${d.socket}`], logLevel: 1 });
    const t0 = Date.now();
    const end = t0 + o.seconds * 1000;
    let step = 0;
    let nextSample = t0;
    let churnRunning = null;
    let churnTopic = null;  // the topic of the churn step running
    let nextChurn = t0;
    while (Date.now() < end) {
      if (!churnRunning && Date.now() >= nextChurn) {
        nextChurn = Date.now() + 1000;  // a step a second at most
        churnTopic = `soak-churn-${step}`;
        churnRunning = within(30000, `churn step ${step++}`, churn(d.socket, kafka, churnTopic))
          .catch((e) => failures.push(`churn: ${e.message}`))
          .finally(() => { churnRunning = null; churnTopic = null; });
      }
      if (Date.now() >= nextSample) {
        const t = (Date.now() - t0) / 1000;
        const row = { t, shmKiB: shmKiB(d.ns, churnTopic) };
        for (const c of clients) row[c.name] = { ...sample(c.proc.pid), moved: c.moved };
        rows.push(row);
        nextSample += 1000;
      }
      for (const c of clients) if (c.exit) failures.push(`${c.name} exited (${JSON.stringify(c.exit)}): ${c.stderr || ''}`);
      if (failures.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (churnRunning) await churnRunning;
    o.steps = step;
  } finally {
    if (feeder) clearInterval(feeder);
  }
  const result = check(o, rows, clients, d, failures);
  for (const c of clients.slice(1)) {
    if (c.exit) continue;
    if (c.proc.connected) c.proc.send('stop');
    else if (c.name === 'mqctl produce') c.proc.stdin.end();  // publishes what it has, then exits at end of input
    else c.proc.kill('SIGTERM');                              // mqctl consume: exits 0 on SIGTERM
  }
  await within(10000, 'the clients to exit', Promise.all(clients.slice(1).map((c) => (c.exit ? null : new Promise((r) => c.proc.once('exit', r)))))).catch((e) => {
    for (const c of clients.slice(1)) c.proc.kill('SIGKILL');
    result.failures.push(e.message);
  });
  const leftShm = shmKiB(d.ns);
  if (baseShm !== null && leftShm !== baseShm) {
    result.failures.push(`segments left behind: ${leftShm} KiB in the namespace after the run, ${baseShm} KiB for its two long-lived topics`);
  }
  await d.stop();
  if (o.csv) writeCsv(o.csv, rows, clients);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ seconds: o.seconds, rows, summary: result.summary }, null, 1));
  printSummary(result, leftShm);
  return result.failures.length ? 1 : 0;
}

// Second half against first half (after a warm-up of a tenth of the run), per process and for /dev/shm.
function check(o, rows, clients, d, failures) {
  const warm = rows.filter((r) => r.t >= o.seconds / 10);
  const half = o.seconds / 2;
  const first = warm.filter((r) => r.t < half);
  const second = warm.filter((r) => r.t >= half);
  const summary = [];
  if (first.length < 5 || second.length < 5) failures.push(`too few samples (${rows.length}) to judge`);
  const max = (rs, f) => Math.max(...rs.map(f).filter((v) => Number.isFinite(v)));
  for (const c of clients) {
    const get = (k) => (r) => (r[c.name] || {})[k];
    const s = {
      name: c.name,
      rssAnon: [max(first, get('rssAnon')), max(second, get('rssAnon'))],
      vmRss: [max(first, get('vmRss')), max(second, get('vmRss'))],
      fds: [max(first, get('fds')), max(second, get('fds'))],
      moved: c.moved,
    };
    summary.push(s);
    const tol = TOLERANCE_KIB[c.kind];
    if (s.rssAnon[1] > s.rssAnon[0] + tol) failures.push(`${c.name}: RssAnon grew ${s.rssAnon[0]} -> ${s.rssAnon[1]} KiB (tolerance ${tol})`);
    if (s.fds[1] > s.fds[0] + FD_TOLERANCE) failures.push(`${c.name}: open fds grew ${s.fds[0]} -> ${s.fds[1]}`);
    if (c.moved !== null && second.length >= 2) {
      const a = (second[0][c.name] || {}).moved;
      const b = (second[second.length - 1][c.name] || {}).moved;
      if (!(b > a)) failures.push(`${c.name}: moved nothing in the second half (${a} -> ${b} records)`);
    }
  }
  const shm = [max(first, (r) => r.shmKiB), max(second, (r) => r.shmKiB)];
  if (shm[1] > shm[0] + 128) failures.push(`/dev/shm use grew ${shm[0]} -> ${shm[1]} KiB`);
  return { failures, summary, shm, samples: rows.length, seconds: o.seconds, ns: d.ns, steps: o.steps };
}

function writeCsv(file, rows, clients) {
  const cols = ['t', 'shm_kib'];
  for (const c of clients) for (const k of ['rss_anon_kib', 'vm_rss_kib', 'fds', 'moved']) cols.push(`${c.name}:${k}`);
  const lines = [cols.join(',')];
  for (const r of rows) {
    const v = [r.t.toFixed(1), r.shmKiB];
    for (const c of clients) {
      const s = r[c.name] || {};
      v.push(s.rssAnon ?? '', s.vmRss ?? '', s.fds ?? '', s.moved ?? '');
    }
    lines.push(v.join(','));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function printSummary(r, leftShm) {
  console.log(`soak: ${r.seconds} s, ${r.samples} samples, ${r.steps} churn steps (a topic created, used and deleted, ` +
    'a member joining and leaving); maxima of the first half -> the second (after a tenth of warm-up)');
  console.log('| process | RssAnon KiB | VmRSS KiB | open fds | records moved |');
  console.log('|---|---:|---:|---:|---:|');
  for (const s of r.summary) {
    console.log(`| ${s.name} | ${s.rssAnon.join(' -> ')} | ${s.vmRss.join(' -> ')} | ${s.fds.join(' -> ')} | ${s.moved ?? ''} |`);
  }
  console.log(`| /dev/shm (namespace ${r.ns}) | ${r.shm.join(' -> ')} KiB | | | |`);
  console.log(`after the run: ${leftShm} KiB of segments in the namespace`);
  if (r.failures.length) {
    for (const f of r.failures) console.log(`soak: FAIL: ${f}`);
  } else {
    console.log('soak: PASS');
  }
}

main().then((code) => process.exit(code), (e) => {
  console.error(`soak: ${e.message}`);
  process.exit(e.message.startsWith('--') || e.message.startsWith('unknown option') ? 2 : 1);
});
