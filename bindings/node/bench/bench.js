'use strict';
// Node-side figures for libmq, each next to Node's own `net` over a Unix socket measured in the same run:
//   awaited single send (msgs/s), batched send (msgs/s), consume (msgs/s), end-to-end p50/p99 latency (us,
//   half a ping-pong round trip between two processes).
// Usage: node bench/bench.js [--messages N] [--size BYTES] [--rounds N]   ($MQD: the mqd binary)
// Starts its own mqd on a temporary socket and namespace; prints a Markdown table.
const { spawn, fork } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('messages', 200000);
const SIZE = arg('size', 64);
const ROUNDS = arg('rounds', 20000);
const PKG = path.resolve(__dirname, '..');
const MQD = process.env.MQD || path.resolve(PKG, '..', '..', 'build', 'release', 'daemon', 'mqd', 'mqd');

const now = () => process.hrtime.bigint();
const rate = (n, t0) => n / (Number(now() - t0) / 1e9);

// ---- child roles ---------------------------------------------------------------------------------------------
async function role(name, opts) {
  const { Kafka } = require(PKG);
  if (name === 'mq-echo') {  // consumes `ping`, answers on `pong`
    const kafka = new Kafka({ brokers: [`unix:${opts.socket}`], logLevel: 0 });
    const p = kafka.producer();
    const c = kafka.consumer({ groupId: 'echo', wait: opts.wait });
    await p.connect();
    await c.connect();
    await c.subscribe({ topic: 'ping' });
    await c.run({ eachMessage: async ({ message }) => { await p.send({ topic: 'pong', messages: [{ value: message.value }] }); } });
    process.send('ready');
    process.on('message', async () => { await c.disconnect(); await p.disconnect(); process.exit(0); });
  } else if (name === 'net-server') {  // acks each frame (mode 'ack'), or each batch ('batch'), echoes ('echo'),
    // or streams N frames to a client ('stream')
    const server = net.createServer((sock) => {
      sock.on('error', () => {});  // clients hang up when done
      let buf = Buffer.alloc(0);
      sock.once('data', function first(d) {
        const mode = d.subarray(0, 6).toString().trim();
        const rest = d.subarray(6);
        if (mode === 'stream') {
          const frame = Buffer.alloc(4 + SIZE);
          frame.writeUInt32LE(SIZE, 0);
          let sent = 0;
          const pump = () => {
            while (sent < N) {
              const chunk = Buffer.concat(Array(Math.min(256, N - sent)).fill(frame));
              sent += Math.min(256, N - sent);
              if (!sock.write(chunk)) return sock.once('drain', pump);
            }
            sock.end();
          };
          return pump();
        }
        const onData = (chunk) => {
          buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
          let at = 0;
          let frames = 0;
          let last = null;
          while (buf.length - at >= 4) {
            const len = buf.readUInt32LE(at);
            if (buf.length - at < 4 + len) break;
            last = buf.subarray(at, at + 4 + len);
            at += 4 + len;
            frames++;
          }
          buf = buf.subarray(at);
          if (mode === 'ack') for (let i = 0; i < frames; i++) sock.write('k');
          else if (mode === 'batch' && frames) sock.write(Buffer.from([frames & 255, frames >> 8]));
          else if (mode === 'echo' && last) sock.write(last);
        };
        if (rest.length) onData(rest);
        sock.on('data', onData);
      });
    });
    server.listen(opts.path, () => process.send('ready'));
    process.on('message', () => { server.close(); process.exit(0); });
  }
}

if (process.argv[2] === '--role') {
  role(process.argv[3], JSON.parse(process.argv[4]));
  return;
}

function startChild(name, opts) {
  const c = fork(__filename, ['--role', name, JSON.stringify(opts)], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} did not start`)), 10000);
    c.once('message', () => { clearTimeout(t); resolve(c); });
    c.once('exit', (code) => reject(new Error(`${name} exited ${code}`)));
  });
}
const stopChild = (c) => new Promise((r) => { c.removeAllListeners('exit'); c.once('exit', r); c.send('stop'); });

async function startDaemon(dir) {
  const socket = path.join(dir, 'mqd.sock');
  const proc = spawn(MQD, ['--socket', socket, '--namespace', `bench${process.pid}`, '--data-dir', dir,
    '--default-capacity', String(64 << 20), '--log-level', 'warn'], { stdio: 'inherit' });
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise((r) => { const s = net.connect(socket); s.once('connect', () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
    if (ok) return { socket, proc };
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('mqd did not start');
}

// ---- net client helpers --------------------------------------------------------------------------------------
function netConnect(p, mode) {
  return new Promise((resolve, reject) => {
    const s = net.connect(p, () => { s.write(mode.padEnd(6)); resolve(s); });
    s.once('error', reject);
  });
}
function frame(payload) {
  const f = Buffer.alloc(4 + payload.length);
  f.writeUInt32LE(payload.length, 0);
  payload.copy(f, 4);
  return f;
}

async function netAwaitedSingle(p, n) {
  const s = await netConnect(p, 'ack');
  s.setNoDelay && s.setNoDelay(true);
  const f = frame(Buffer.alloc(SIZE, 7));
  let resolveAck;
  s.on('data', (d) => { for (let i = 0; i < d.length; i++) resolveAck(); });
  const t0 = now();
  for (let i = 0; i < n; i++) {
    await new Promise((r) => { resolveAck = r; s.write(f); });
  }
  const r = rate(n, t0);
  s.destroy();
  return r;
}

async function netBatched(p, n, batch) {
  const s = await netConnect(p, 'batch');
  // Like send({messages}): each message object is framed into one write per batch.
  const msgs = Array.from({ length: batch }, () => ({ value: Buffer.alloc(SIZE, 7) }));
  const encode = () => {
    let len = 0;
    for (const m of msgs) len += 4 + m.value.length;
    const out = Buffer.allocUnsafe(len);
    let at = 0;
    for (const m of msgs) {
      out.writeUInt32LE(m.value.length, at);
      m.value.copy(out, at + 4);
      at += 4 + m.value.length;
    }
    return out;
  };
  let pending = 0;
  let resolveAck;
  s.on('data', (d) => {
    for (let i = 0; i + 1 < d.length; i += 2) pending -= d[i] | (d[i + 1] << 8);
    if (pending <= 0 && resolveAck) resolveAck();
  });
  const t0 = now();
  for (let i = 0; i < n; i += batch) {
    pending += batch;
    await new Promise((r) => { resolveAck = r; s.write(encode()); });
  }
  const r = rate(n, t0);
  s.destroy();
  return r;
}

async function netConsume(p, n) {
  const s = await netConnect(p, 'stream');
  let buf = Buffer.alloc(0);
  let got = 0;
  const eachMessage = async ({ message }) => { got++; };
  const t0 = now();
  await new Promise((resolve) => {
    // Like consumer.run({eachMessage}): each frame becomes a message object and the async handler is awaited
    // before the next one; the socket is paused meanwhile.
    let busy = false;
    const drain = async () => {
      if (busy) return;
      busy = true;
      s.pause();
      let at = 0;
      let offset = got;
      while (buf.length - at >= 4) {
        const len = buf.readUInt32LE(at);
        if (buf.length - at < 4 + len) break;
        const value = buf.subarray(at + 4, at + 4 + len);
        at += 4 + len;
        await eachMessage({ topic: 't', partition: 0, message: { offset: String(offset++), value, key: null, headers: {} } });
      }
      buf = buf.subarray(at);
      busy = false;
      if (got >= n) return resolve();
      s.resume();
    };
    s.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      drain();
    });
  });
  const r = rate(n, t0);
  s.destroy();
  return r;
}

async function netPingPong(p, rounds) {
  const s = await netConnect(p, 'echo');
  const f = frame(Buffer.alloc(SIZE, 7));
  let resolveEcho;
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    if (buf.length >= f.length) { buf = buf.subarray(f.length); resolveEcho(); }
  });
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = now();
    await new Promise((r) => { resolveEcho = r; s.write(f); });
    lat.push(Number(now() - t0) / 2000);  // one way, us
  }
  s.destroy();
  return lat;
}

const pct = (a, q) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

async function main() {
  const { Kafka, Topic } = require(PKG);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-node-bench-'));
  const d = await startDaemon(dir);
  const results = [];
  const value = Buffer.alloc(SIZE, 7);
  try {
    const kafka = new Kafka({ brokers: [`unix:${d.socket}`], logLevel: 0 });
    const producer = kafka.producer();
    await producer.connect();

    // Awaited single send.
    const single = Math.min(N, 100000);
    let t0 = now();
    for (let i = 0; i < single; i++) await producer.send({ topic: 'single', messages: [{ value }] });
    const mqSingle = rate(single, t0);

    // Batched send: 100 messages per send.
    const batch = 100;
    const msgs = Array.from({ length: batch }, () => ({ value }));
    t0 = now();
    for (let i = 0; i < N; i += batch) await producer.send({ topic: 'batched', messages: msgs });
    const mqBatched = rate(N, t0);

    // Fast path: synchronous publish.
    const t = await Topic.open('fast', { socket: d.socket });
    t0 = now();
    for (let i = 0; i < N; i++) t.publish(value);
    const mqFastPublish = rate(N, t0);

    // Consume: a group reading the N records the batched send wrote (eachMessage), and the fast path (for await).
    const consumer = kafka.consumer({ groupId: 'reader' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'batched', fromBeginning: true });
    let got = 0;
    let done;
    const all = new Promise((r) => (done = r));
    t0 = now();
    await consumer.run({ eachMessage: async () => { if (++got === N) done(); } });
    await all;
    const mqConsume = rate(N, t0);
    await consumer.disconnect();

    const fc = t.consumer({ group: 'fast-reader', fromBeginning: true });
    let fgot = 0;
    t0 = now();
    for await (const m of fc) { if (++fgot === N) break; }
    const mqFastConsume = rate(N, t0);
    await t.close();

    // End-to-end latency: ping-pong with an echo process (kafkajs API both sides).
    const echo = await startChild('mq-echo', { socket: d.socket, wait: process.env.WAIT });
    const pc = kafka.consumer({ groupId: 'pinger', wait: process.env.WAIT });
    await pc.connect();
    await pc.subscribe({ topic: 'pong' });
    let resolvePong;
    await pc.run({ eachMessage: async () => resolvePong() });
    const lat = [];
    for (let i = 0; i < ROUNDS; i++) {
      const s = now();
      await new Promise((r) => { resolvePong = r; producer.send({ topic: 'ping', messages: [{ value }] }); });
      lat.push(Number(now() - s) / 2000);
    }
    await pc.disconnect();
    await stopChild(echo);
    await producer.disconnect();

    // Node's net over a Unix socket, same shapes.
    const sockPath = path.join(dir, 'net.sock');
    const server = await startChild('net-server', { path: sockPath });
    const netSingle = await netAwaitedSingle(sockPath, single);
    const netBatch = await netBatched(sockPath, N, batch);
    const netCons = await netConsume(sockPath, N);
    const netLat = await netPingPong(sockPath, ROUNDS);
    await stopChild(server);

    const f = (x) => Math.round(x).toLocaleString('en-US');
    results.push(['awaited single send (msgs/s)', f(mqSingle), f(netSingle), (mqSingle / netSingle).toFixed(1) + 'x']);
    results.push([`batched send, ${batch}/send (msgs/s)`, f(mqBatched), f(netBatch), (mqBatched / netBatch).toFixed(1) + 'x']);
    results.push(['fast path publish(), synchronous (msgs/s)', f(mqFastPublish), '', '']);
    results.push(['consume, eachMessage (msgs/s)', f(mqConsume), f(netCons), (mqConsume / netCons).toFixed(1) + 'x']);
    results.push(['consume, fast path for await (msgs/s)', f(mqFastConsume), '', '']);
    results.push(['end-to-end p50 one-way latency (us)', pct(lat, 0.5).toFixed(1), pct(netLat, 0.5).toFixed(1), (pct(lat, 0.5) / pct(netLat, 0.5)).toFixed(1) + 'x']);
    results.push(['end-to-end p99 one-way latency (us)', pct(lat, 0.99).toFixed(1), pct(netLat, 0.99).toFixed(1), (pct(lat, 0.99) / pct(netLat, 0.99)).toFixed(1) + 'x']);
    console.log(`\nNode ${process.version}, ${os.cpus().length} CPUs, ${SIZE}-byte messages, N=${N}, ${ROUNDS} ping-pongs\n`);
    console.log('| measure | libmq | net (Unix socket) | libmq / net |');
    console.log('|---|---:|---:|---:|');
    for (const r of results) console.log(`| ${r.join(' | ')} |`);
  } finally {
    d.proc.kill('SIGTERM');
    await new Promise((r) => d.proc.once('exit', r));
    for (const f of fs.readdirSync('/dev/shm')) if (f.startsWith(`mq@bench${process.pid}@`)) fs.rmSync(path.join('/dev/shm', f), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
