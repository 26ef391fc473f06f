// The blog's scenario end to end: two e-mail workers (one consumer group) and an api that invites users and returns
// at once. Prints what each process prints, then a summary; exits non-zero if an invitation was lost or sent twice.
// With $MQ_SOCKET set it uses that running mqd (scripts/demo.sh starts one and creates the topic with mqctl);
// otherwise it starts a private mqd ($MQD: the binary; default: the repo's release build) and stops it at the end.
//
//   node examples/demo.js [--invites N] [--email-ms MS]
const { spawn } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const readline = require("readline");

const USAGE = "usage: node examples/demo.js [--invites N] [--email-ms MS]\n" +
  "  --invites N    invitations the api queues, 1..10000 (default 10)\n" +
  "  --email-ms MS  how long each worker takes to send one e-mail, 0..60000 (default 100)";
// -> {invites, emailMs}, or exits: 0 for --help, 2 naming a bad option.
function parseOptions(argv) {
  const o = { invites: 10, emailMs: 100 };
  const limits = { "--invites": ["invites", 1, 10000], "--email-ms": ["emailMs", 0, 60000] };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === "--help" || argv[i] === "-h") {
      console.log(USAGE);
      process.exit(0);
    }
    const limit = limits[argv[i]];
    if (!limit) {
      console.error(`demo.js: unknown option '${argv[i]}'\n${USAGE}`);
      process.exit(2);
    }
    const [key, min, max] = limit;
    const text = argv[i + 1];
    if (text === undefined || !/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
      console.error(`demo.js: ${argv[i]} wants a whole number from ${min} to ${max}, got '${text ?? ""}'`);
      process.exit(2);
    }
    o[key] = Number(text);
  }
  return o;
}
const { invites, emailMs } = parseOptions(process.argv.slice(2));
const here = __dirname;
const mqd = process.env.MQD || path.resolve(here, "..", "..", "..", "build", "release", "daemon", "mqd", "mqd");

function run(name, file, args, env) {
  const p = spawn(process.execPath, [file, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const lines = [];
  const listeners = new Set();
  readline.createInterface({ input: p.stdout }).on("line", (l) => {
    console.log(`[${name}] ${l}`);
    lines.push(l);
    for (const f of listeners) f();
  });
  const exited = new Promise((r) => p.once("exit", r));
  const until = (pred, ms, what) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (pred(lines)) {
          clearTimeout(t);
          listeners.delete(check);
          resolve();
        }
      };
      const t = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`${name}: timed out waiting for ${what}`));
      }, ms);
      listeners.add(check);
      check();
    });
  return { p, lines, until, exited, listeners };
}

// Interrupted (Ctrl-C, SIGTERM): the workers, the api and our mqd stop, and its segments and folder go.
const running = { procs: [], daemon: null, ns: null, dir: null };
function removeLeftovers() {
  if (running.ns)
    for (const f of fs.readdirSync("/dev/shm")) if (f.startsWith(`mq@${running.ns}@`)) fs.rmSync(path.join("/dev/shm", f), { force: true });
  if (running.dir) fs.rmSync(running.dir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    for (const p of running.procs) p.p.kill("SIGKILL");
    if (running.daemon) running.daemon.kill("SIGKILL");
    removeLeftovers();
    process.exit(sig === "SIGINT" ? 130 : 143);
  });
}

async function main() {
  const external = process.env.MQ_SOCKET;
  if (!external && !fs.existsSync(mqd)) throw new Error(`mqd not found at ${mqd}: build it (cmake --preset release && cmake --build --preset release) or set MQD`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "libmq-demo-"));
  const socket = external || path.join(dir, "mqd.sock");
  const ns = `demo${process.pid}`;
  const daemon = external ? null : spawn(mqd, ["--socket", socket, "--namespace", ns, "--data-dir", dir, "--log-level", "warn"], { stdio: "inherit" });
  const procs = running.procs;
  Object.assign(running, { daemon, ns: daemon ? ns : null, dir });
  try {
    for (let i = 0; ; i++) {
      const up = await new Promise((r) => {
        const s = net.connect(socket);
        s.once("connect", () => (s.destroy(), r(true)));
        s.once("error", () => r(false));
      });
      if (up) break;
      if (i > 250) throw new Error("mqd did not start");
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(`mqd listening on ${socket}`);
    const env = { MQ_SOCKET: socket, EMAIL_MS: String(emailMs) };
    const workers = [run("worker 1", path.join(here, "email-worker.js"), [], env), run("worker 2", path.join(here, "email-worker.js"), [], env)];
    procs.push(...workers);
    for (const w of workers) await w.until((l) => l.some((x) => x.includes("ready")), 10000, "ready");
    const emails = Array.from({ length: invites }, (_, i) => `user${i + 1}@example.com`);
    const api = run("api", path.join(here, "api.js"), emails, env);
    procs.push(api);
    await api.exited;
    const sent = () => workers.flatMap((w) => w.lines.filter((l) => l.includes(" sent an invitation")));
    await Promise.race(workers.map((w) => w.until(() => sent().length >= invites, 10000 + invites * emailMs, "every invitation")));
    const offsets = sent().map((l) => Number(l.split(" # ")[0])).sort((a, b) => a - b);
    const ok = offsets.length === invites && offsets.every((o, i) => o === i);
    console.log(`\n${invites} invitations queued by the api; sent: worker 1 ${workers[0].lines.filter((l) => l.includes(" sent")).length}, ` +
      `worker 2 ${workers[1].lines.filter((l) => l.includes(" sent")).length}; each exactly once: ${ok ? "yes" : "NO"}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    for (const p of procs) p.p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    if (daemon) {
      daemon.kill("SIGTERM");
      await new Promise((r) => daemon.once("exit", r));
    }
    removeLeftovers();
  }
}

main().catch((e) => {
  console.error(`demo error - ${e.message}`);
  process.exit(1);
});
