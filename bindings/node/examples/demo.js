// The blog's scenario end to end: two e-mail workers (one consumer group) and an api that invites users and returns
// at once. The mail server is flaky (one invitation in --flaky is turned away once and retried by the group after a
// backoff), and one invitation is poison (an address the workers' check wrongly refuses): after its last attempt it
// is parked in the dead-letter topic invitations.dlq. Then the fix: the workers restart with it, and
// `mqctl dlq replay invitations` puts the invitation back (skipped, saying so, where mqctl has no `dlq` command yet).
// Prints what each process prints, then a summary; exits non-zero if an invitation was lost or sent twice, or the
// poison one did not reach the dead-letter topic.
// With $MQ_SOCKET set it uses that running mqd (scripts/demo.sh starts one and creates the topic with mqctl);
// otherwise it starts a private mqd ($MQD: the binary; default: the repo's release build) and stops it at the end.
// $MQCTL: the mqctl for the replay (default: the repo's release build).
//
//   node examples/demo.js [--invites N] [--email-ms MS] [--flaky N]
const { spawn, spawnSync } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const readline = require("readline");

const USAGE = "usage: node examples/demo.js [--invites N] [--email-ms MS] [--flaky N]\n" +
  "  --invites N    invitations the api queues, 1..10000 (default 10), and one poison invitation\n" +
  "  --email-ms MS  how long each worker takes to send one e-mail, 0..60000 (default 100)\n" +
  "  --flaky N      the mail server turns away the first attempt of one invitation in N, 0..10000\n" +
  "                 (0: never; default 4)";
// -> {invites, emailMs, flaky}, or exits: 0 for --help, 2 naming a bad option.
function parseOptions(argv) {
  const o = { invites: 10, emailMs: 100, flaky: 4 };
  const limits = {
    "--invites": ["invites", 1, 10000], "--email-ms": ["emailMs", 0, 60000], "--flaky": ["flaky", 0, 10000],
  };
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
const { invites, emailMs, flaky } = parseOptions(process.argv.slice(2));
const here = __dirname;
const mqd = process.env.MQD || path.resolve(here, "..", "..", "..", "build", "release", "daemon", "mqd", "mqd");
const mqctl = process.env.MQCTL || path.resolve(here, "..", "..", "..", "build", "release", "daemon", "mqctl", "mqctl");
const POISON = "dave+friends@example.com";  // the address the workers' check refuses until the fix

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

// Whether this mqctl has the `dlq` command (list, show, replay).
function hasDlqCommand() {
  const r = spawnSync(mqctl, ["--help"], { encoding: "utf8" });
  return r.status === 0 && /^\s+dlq\s/m.test(r.stdout);
}

// The dead letter's value and mq.dlq headers, read as the group "replay" that keeps them (the fast path). Leaving
// the loop without acking hands the record back to that group, so mqctl dlq replay still finds it. The worker says
// "parked" just before its consumer nacks: the topic may take a moment to appear (opening it sooner would create
// it, as a plain topic).
async function peekDeadLetter(socket) {
  const { Kafka, Topic } = require("libmq");
  const admin = new Kafka({ brokers: [`unix:${socket}`], logLevel: 0 }).admin();
  await admin.connect();
  try {
    for (let tries = 0; ; tries++) {
      const found = await admin.fetchTopicMetadata({ topics: ["invitations.dlq"] }).then(() => true, () => false);
      if (found) break;
      if (tries === 500) return "NONE (no topic invitations.dlq after 10 s)";
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await admin.disconnect();
  }
  const t = await Topic.open("invitations.dlq", { socket });
  try {
    const c = t.consumer({ group: "replay", fromBeginning: true });
    const timer = setTimeout(() => c.close(), 10000);
    for await (const m of c) {
      clearTimeout(timer);
      const h = (name) => String(m.headers[name]);
      return `${m.value} (mq.dlq.error "${h("mq.dlq.error")}", mq.dlq.attempts ${h("mq.dlq.attempts")}, ` +
        `mq.dlq.offset ${h("mq.dlq.offset")})`;
    }
    return "NONE (none within 10 s)";
  } finally {
    await t.close();
  }
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
    const env = { MQ_SOCKET: socket, EMAIL_MS: String(emailMs), MAIL_FLAKY: String(flaky) };
    const worker = (name, extra = {}) => run(name, path.join(here, "email-worker.js"), [], { ...env, ...extra });
    const workers = [worker("worker 1"), worker("worker 2")];
    procs.push(...workers);
    for (const w of workers) await w.until((l) => l.some((x) => x.includes("ready")), 10000, "ready");
    const emails = Array.from({ length: invites }, (_, i) => `user${i + 1}@example.com`);
    const api = run("api", path.join(here, "api.js"), [...emails, POISON], env);
    procs.push(api);
    await api.exited;
    const lines = () => procs.flatMap((p) => p.lines);
    const sentTo = (email) => lines().filter((l) => {
      const to = ` sent an invitation to ${email}`;
      return l.endsWith(to) || l.includes(`${to} (`);
    });
    const parked = () =>
      lines().some((l) => l.includes(`could not send to ${POISON}`) && l.endsWith("parked in invitations.dlq"));
    const allDone = () => emails.every((e) => sentTo(e).length > 0) && parked();
    const what = "every invitation, and the poison one dead-lettered";
    await Promise.race(workers.map((w) => w.until(allDone, 15000 + invites * emailMs, what)));
    const deadLetter = await peekDeadLetter(socket);
    console.log(`dead letter in invitations.dlq: ${deadLetter}`);
    const sentOnce = emails.every((e) => sentTo(e).length === 1);
    const retried = lines().filter((l) => / sent an invitation to .* \(attempt [2-9]/.test(l)).length;

    // The fix, then the replay of what the dead-letter topic kept.
    let replay;
    if (!hasDlqCommand()) {
      replay = `skipped: ${mqctl} has no 'dlq' command yet (after the fix: mqctl dlq replay invitations)`;
    } else {
      for (const w of workers) w.p.kill("SIGTERM");
      await Promise.all(workers.map((w) => w.exited));
      const fixedWorker = worker("worker 3", { EMAIL_FIX: "1" });
      procs.push(fixedWorker);
      await fixedWorker.until((l) => l.some((x) => x.includes("ready")), 10000, "ready");
      const r = spawnSync(mqctl, ["--socket", socket, "dlq", "replay", "invitations"], { encoding: "utf8" });
      console.log(`[mqctl] dlq replay invitations: exit ${r.status} ${(r.stdout + r.stderr).trim()}`);
      if (r.status === 0) await fixedWorker.until(() => sentTo(POISON).length > 0, 10000, "the replayed invitation");
      const n = sentTo(POISON).length;
      replay = r.status !== 0 ? `mqctl failed (exit ${r.status})` : `sent ${n === 1 ? "once" : `${n} times`}`;
    }
    const replayOk = !replay.startsWith("mqctl failed") && !/ times$/.test(replay);
    const ok = sentOnce && parked() && sentTo(POISON).length <= 1 && replayOk;
    const count = (w) => w.lines.filter((l) => l.includes(" sent an invitation")).length;
    console.log(`\n${invites} invitations queued by the api, and ${POISON}; sent: worker 1 ${count(workers[0])}, ` +
      `worker 2 ${count(workers[1])}; each exactly once: ${sentOnce ? "yes" : "NO"}; sent after a retry: ${retried}; ` +
      `dead-lettered: ${parked() ? POISON : "NONE"}; replayed after the fix: ${replay}`);
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
