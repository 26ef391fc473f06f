'use strict';
// Test helpers: a private mqd per test (own socket, namespace and data dir), child processes that print JSON
// lines, and bounded waits (every wait has a deadline that fails the test; nothing sleeps in place of a condition).
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const readline = require('readline');

const REPO = path.resolve(__dirname, '..', '..');
const PKG = path.join(REPO, 'bindings', 'node');
const MQD = process.env.MQD || path.join(REPO, 'build', 'release', 'daemon', 'mqd', 'mqd');

let counter = 0;

// `what`: a string, or a function giving one when the time is up (so it can report what happened meanwhile).
function deadline(ms, what) {
  let timer;
  const p = new Promise((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`));
    }, ms);
  });
  return { p, clear: () => clearTimeout(timer) };
}

// Resolves with fn()'s result, or rejects after `ms`.
async function within(ms, what, promise) {
  const d = deadline(ms, what);
  try {
    return await Promise.race([promise, d.p]);
  } finally {
    d.clear();
  }
}

function canConnect(socket) {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// Daemons still running when this process exits (a test that threw before stop(), a runner timeout) die with it.
const live = new Set();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

// Starts mqd; resolves once its socket accepts connections (at most 10 s).
async function startDaemon({ autoCreate = true, args = [] } = {}) {
  if (!fs.existsSync(MQD)) {
    throw new Error(`mqd not found at ${MQD}: build it (cmake --preset release && cmake --build --preset release) or set MQD`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-node-'));
  const socket = path.join(dir, 'mqd.sock');
  const ns = `node${process.pid}x${counter++}`;
  fs.mkdirSync(path.join(dir, 'data'));
  const proc = spawn(MQD, ['--socket', socket, '--namespace', ns, '--data-dir', path.join(dir, 'data'),
    '--auto-create', autoCreate ? 'true' : 'false', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  let exited = null;
  live.add(proc);
  const exitP = new Promise((resolve) => proc.once('exit', (code, signal) => {
    live.delete(proc);
    exited = { code, signal };
    resolve(exited);
  }));
  const started = Date.now();
  for (;;) {
    if (exited) throw new Error(`mqd exited early (${JSON.stringify(exited)}): ${log}`);
    if (await canConnect(socket)) break;
    if (Date.now() - started > 10000) {
      proc.kill('SIGKILL');
      throw new Error(`mqd did not listen on ${socket} within 10 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    socket,
    dir,
    ns,
    proc,
    log: () => log,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const d = deadline(5000, 'mqd to stop');
        try {
          await Promise.race([exitP, d.p]);
        } catch {
          proc.kill('SIGKILL');
          await exitP;
        } finally {
          d.clear();
        }
      }
      for (const f of fs.readdirSync('/dev/shm')) {
        if (f.startsWith(`mq@${ns}@`)) fs.rmSync(path.join('/dev/shm', f), { force: true });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A child process whose stdout lines are collected (JSON lines parsed when they parse). `until(pred, ms)` resolves
// when pred(lines) is true, re-checked at each new line and at exit.
function child(file, { env = {}, cwd, args = [] } = {}) {
  const proc = spawn(process.execPath, [file, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const json = [];
  let stderr = '';
  const waiters = new Set();
  let exit = null;
  const check = () => {
    for (const w of [...waiters]) {
      let ok = false;
      try {
        ok = w.pred(lines, json);
      } catch (e) {
        w.reject(e);
        waiters.delete(w);
        continue;
      }
      if (ok) {
        w.resolve();
        waiters.delete(w);
      } else if (exit) {
        w.reject(new Error(`${path.basename(file)} exited (${JSON.stringify(exit)}) before ${w.what}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`));
        waiters.delete(w);
      }
    }
  };
  readline.createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l);
    try {
      json.push(JSON.parse(l));
    } catch {
      /* not JSON */
    }
    check();
  });
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    exit = { code, signal };
    setImmediate(check);
    resolve(exit);
  }));
  return {
    proc,
    lines,
    json,
    stderr: () => stderr,
    exited,
    until(pred, ms, what = 'a condition') {
      return within(ms, () => `${path.basename(file)}: ${what}\nstdout so far:\n${lines.join('\n')}\nstderr: ${stderr}`,
        new Promise((resolve, reject) => {
          waiters.add({ pred, resolve, reject, what });
          check();
        }));
    },
    async kill(signal = 'SIGTERM', ms = 5000) {
      if (exit) return exit;
      proc.kill(signal);
      return within(ms, `${path.basename(file)} to exit after ${signal}`, exited);
    },
  };
}

// A promise plus its resolve, for collecting callbacks.
function signal() {
  let resolve;
  const p = new Promise((r) => (resolve = r));
  return { p, resolve };
}

// Resolves when pred() becomes true, re-checked whenever `bump()` is called; rejects after ms.
function condition() {
  const waiters = new Set();
  return {
    bump() {
      for (const w of [...waiters]) {
        if (w.pred()) {
          waiters.delete(w);
          w.resolve();
        }
      }
    },
    until(pred, ms, what) {
      if (pred()) return Promise.resolve();
      return within(ms, what, new Promise((resolve) => waiters.add({ pred, resolve })));
    },
  };
}

module.exports = { REPO, PKG, MQD, startDaemon, child, within, signal, condition, canConnect };
