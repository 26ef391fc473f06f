'use strict';
// The chaos campaign for the Node addon's kafkajs API, smaller than the C++ one (tests/chaos/chaos.cpp): one
// producer and two eachMessage workers of one group on a 1 MiB block topic, a private mqd; each round SIGKILLs the
// producer or a worker (and restarts it), or stops a worker for 1.5 s (longer than every recovery timer: it must
// not be robbed), and every 5th round kills and restarts mqd. Producers log each offset send() resolved with, and
// workers each record they processed, synchronously on stdout before eachMessage returns (so before its ack).
// At the end: every offset a producer saw published was processed (no loss), every payload is intact, a record
// processed twice was first processed by a worker that died, and the group reaches the tail (no wedge).
// Usage: node tests/chaos/node_chaos.js [--rounds N (default 40)] [--seed N]. Exit 0 pass, 1 fail, 2 bad options.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { PKG, startDaemon, within } = require('../node/helpers');

const TOPIC = 'nchaos';
const GROUP = 'workers';

// value = 8-byte sequence number, then bytes derived from it: any corruption or mix-up shows.
function payload(seq, length) {
  const v = Buffer.alloc(length);
  v.writeBigUInt64LE(BigInt(seq));
  for (let i = 8; i < length; i++) v[i] = (seq + i * 7) & 0xff;
  return v;
}
function intact(v) {
  if (v.length < 8) return false;
  const seq = Number(v.readBigUInt64LE(0));
  for (let i = 8; i < v.length; i++) if (v[i] !== ((seq + i * 7) & 0xff)) return false;
  return true;
}
const say = (line) => fs.writeSync(1, `${line}\n`);  // synchronous: written before the caller goes on

// ---- roles ----------------------------------------------------------------------------------------------------
// Runs `step` until it succeeds: mqd may be restarting (the campaign restarts it) for up to 30 s.
async function whileMqdRestarts(step) {
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      return await step();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function role(name, socket, instance) {
  const { Kafka } = require(PKG);
  const kafka = new Kafka({ clientId: `nchaos-${name}`, brokers: [`unix:${socket}`], logLevel: 0 });
  if (name === 'producer') {
    const p = kafka.producer();
    await whileMqdRestarts(() => p.connect());
    let seq = instance * 1e9;  // a fresh range per producer instance
    for (;;) {
      const n = 1 + (seq % 20);
      const messages = Array.from({ length: n }, (_, k) => ({ value: payload(seq + k, 8 + ((seq + k) * 37) % 2040) }));
      let meta;
      try {
        [meta] = await p.send({ topic: TOPIC, messages });
      } catch (e) {
        say(`E ${e.message}`);  // mqd restarting, a full topic for too long: try again
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      say(`P ${meta.baseOffset} ${n}`);
      seq += n;
    }
  } else {
    const c = kafka.consumer({ groupId: GROUP, maxInFlight: 8 });
    await whileMqdRestarts(() => c.connect());
    await whileMqdRestarts(() => c.subscribe({ topic: TOPIC, fromBeginning: true }));
    await c.run({
      eachMessage: async ({ message }) => {
        say(`${intact(message.value) ? 'C' : 'BAD'} ${message.offset} ${instance}`);
      },
    });
  }
}

if (process.argv[2] === '--role') {
  role(process.argv[3], process.argv[4], Number(process.argv[5])).catch((e) => {
    fs.writeSync(2, `node chaos ${process.argv[3]} ${process.argv[5]}: ${e.stack || e}\n`);
    process.exit(3);
  });
  return;
}

// ---- the driver ------------------------------------------------------------------------------------------------
function parse(argv) {
  const o = { rounds: 40, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') o.rounds = Number(argv[++i]);
    else if (argv[i] === '--seed') o.seed = Number(argv[++i]);
    else if (argv[i] === '-h' || argv[i] === '--help') {
      console.log('usage: node tests/chaos/node_chaos.js [--rounds N (default 40)] [--seed N]');
      process.exit(0);
    } else throw new Error(`unknown option '${argv[i]}'`);
  }
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || !Number.isInteger(o.seed)) throw new Error('--rounds and --seed take whole numbers');
  return o;
}

function rng(seed) {  // mulberry32: a reproducible run (up to timing)
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function main() {
  const o = parse(process.argv.slice(2));
  const random = rng(o.seed);
  const published = new Set();   // offsets a producer saw published
  const processed = new Map();   // offset -> [worker instances, in order]
  const died = new Set();        // worker instances killed
  const failures = [];
  const counts = { 'producer killed': 0, 'worker killed': 0, 'worker stopped': 0, 'mqd restarted': 0 };
  let nextInstance = 1;
  const base = await startDaemon();  // its stop() also removes the segments and its folder
  let d = base;
  const socket = d.socket;
  const mqdArgs = d.proc.spawnargs.slice(1);
  const mqdPath = d.proc.spawnfile;
  const { Topic } = require(PKG);
  const t = await Topic.open(TOPIC, { socket, create: { capacity: 1 << 20, groups: [GROUP] } });
  await t.close();

  const live = new Set();  // killed with this process however it ends
  process.on('exit', () => {
    for (const proc of live) proc.kill('SIGKILL');
  });
  const spawnRole = (kind) => {
    const instance = nextInstance++;
    const proc = spawn(process.execPath, [__filename, '--role', kind, socket, String(instance)], { stdio: ['ignore', 'pipe', 'inherit'] });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const r = { kind, instance, proc, exited: false };
    let buf = '';
    proc.stdout.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [tag, a, b] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (tag === 'P') for (let k = 0; k < Number(b); k++) published.add(Number(a) + k);
        else if (tag === 'C') {
          const list = processed.get(Number(a)) || [];
          list.push(Number(b));
          processed.set(Number(a), list);
        } else if (tag === 'BAD') failures.push(`worker ${b} got a corrupted payload at offset ${a}`);
      }
    });
    proc.on('exit', () => { r.exited = true; });
    return r;
  };
  const kill = async (r) => {
    if (!r.exited) {
      const gone = new Promise((res) => r.proc.once('exit', res));
      r.proc.kill('SIGCONT');
      r.proc.kill('SIGKILL');
      await gone;
    }
  };
  let producer = spawnRole('producer');
  const workers = [spawnRole('worker'), spawnRole('worker')];
  const t0 = Date.now();
  try {
    for (let round = 0; round < o.rounds; round++) {
      await new Promise((r) => setTimeout(r, 50 + random() * 250));  // a random moment of the load
      const dice = random();
      if (round % 5 === 4) {
        d.proc.kill('SIGKILL');
        await new Promise((r) => d.proc.once('exit', r));
        d = await restartDaemon(mqdPath, mqdArgs, socket);
        counts['mqd restarted'] += 1;
      } else if (dice < 0.3) {
        died.add(producer.instance);
        await kill(producer);
        producer = spawnRole('producer');
        counts['producer killed'] += 1;
      } else if (dice < 0.75) {
        const i = Math.floor(random() * workers.length);
        died.add(workers[i].instance);
        await kill(workers[i]);
        workers[i] = spawnRole('worker');
        counts['worker killed'] += 1;
      } else {
        const w = workers[Math.floor(random() * workers.length)];
        w.proc.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 1500));  // longer than every recovery timer
        w.proc.kill('SIGCONT');
        counts['worker stopped'] += 1;
      }
      for (const w of [producer, ...workers]) {
        if (w.exited && !died.has(w.instance) && !w.reported) {
          w.reported = true;
          failures.push(`${w.kind} ${w.instance} exited by itself (its stderr above says why)`);
        }
      }
    }
    // Wind down: the producer stops; the group must process everything it saw published.
    await kill(producer);
    const want = [...published];
    const drained = () => want.every((off) => processed.has(off));
    await within(60000, 'the group to process every published record', (async () => {
      while (!drained()) await new Promise((r) => setTimeout(r, 50));
    })()).catch((e) => failures.push(`${e.message}: ${want.filter((off) => !processed.has(off)).length} of ${want.length} never processed (wedged or lost)`));
  } finally {
    for (const w of workers) await kill(w);
    await kill(producer);
    if (d !== base) await d.stop();
    await base.stop();
  }
  let duplicates = 0;
  for (const [off, who] of processed) {
    if (who.length < 2) continue;
    duplicates += 1;
    if (!died.has(who[0])) failures.push(`offset ${off} processed by workers ${who.join(', ')}, and the first did not die (robbed while stopped?)`);
  }
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`node chaos: seed ${o.seed}, ${o.rounds} rounds in ${seconds} s; ${published.size} records published, ` +
    `${processed.size} processed, ${duplicates} duplicates (from workers that died); ` +
    Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', '));
  if (published.size === 0) failures.push('nothing was published');
  for (const f of failures.slice(0, 10)) console.log(`node chaos: FAIL: ${f}`);
  console.log(failures.length ? `node chaos: FAILED (${failures.length} failures)` : 'node chaos: PASS');
  return failures.length ? 1 : 0;
}

// mqd again with the same arguments (same socket, namespace, data dir): it adopts the topic.
async function restartDaemon(file, args, socket) {
  const proc = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const { Kafka } = require(PKG);
  await within(20000, 'mqd to come back', (async () => {
    for (;;) {
      const admin = new Kafka({ brokers: [`unix:${socket}`], logLevel: 0 }).admin();
      try {
        await admin.connect();
        await admin.disconnect();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })());
  return {
    proc,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
    },
  };
}

main().then((code) => process.exit(code), (e) => {
  console.error(`node chaos: ${e.message}`);
  process.exit(e.message.startsWith('unknown option') || e.message.startsWith('--') ? 2 : 1);
});
