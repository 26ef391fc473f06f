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

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const invites = arg("invites", 10);
const emailMs = arg("email-ms", 100);
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

async function main() {
  const external = process.env.MQ_SOCKET;
  if (!external && !fs.existsSync(mqd)) throw new Error(`mqd not found at ${mqd}: build it (cmake --preset release && cmake --build --preset release) or set MQD`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "libmq-demo-"));
  const socket = external || path.join(dir, "mqd.sock");
  const ns = `demo${process.pid}`;
  const daemon = external ? null : spawn(mqd, ["--socket", socket, "--namespace", ns, "--data-dir", dir, "--log-level", "warn"], { stdio: "inherit" });
  const procs = [];
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
      for (const f of fs.readdirSync("/dev/shm")) if (f.startsWith(`mq@${ns}@`)) fs.rmSync(path.join("/dev/shm", f), { force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`demo error - ${e.message}`);
  process.exit(1);
});
