'use strict';
// bindings/node/bench/bench.js in its smoke profile: it runs to the end against its own mqd ($MQD), writes the JSON
// of bench/report.hpp with every row present and positive, and rejects a bad option with exit status 2. Measures
// nothing: no timing is asserted.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { PKG, MQD, child, within } = require('./helpers');

const BENCH = path.join(PKG, 'bench', 'bench.js');

const EXPECTED = [
  ['libmq node', 'default', 'throughput', 'kafkajs send (awaited)'],
  ['libmq node', 'default', 'throughput', 'kafkajs send (batch of 100)'],
  ['libmq node', 'default', 'throughput', 'fast path publish'],
  ['libmq node', 'default', 'throughput', 'kafkajs eachMessage'],
  ['libmq node', 'default', 'throughput', 'kafkajs eachBatch'],
  ['libmq node', 'default', 'throughput', 'fast path batches()'],
  ['libmq node', 'default', 'throughput', 'kafkajs eachMessage (streamed)'],
  ['libmq node', 'default', 'throughput', 'kafkajs eachBatch (streamed)'],
  ['libmq node', 'default', 'throughput', 'fast path for await'],
  ['libmq node', 'default', 'rtt', 'kafkajs send + eachMessage'],
  ['libmq node', 'default', 'rtt', 'fast path publish + for await'],
  ['libmq node', 'default', 'rtt', 'kafkajs send + eachMessage (wait spin)'],
  ['libmq node', 'default', 'rtt', 'fast path publish + for await (wait spin)'],
  ['libmq node', 'default', 'idle', 'kafkajs consumer, empty topic'],
  ['node net (unix socket)', 'blocking', 'throughput', 'net write (awaited)'],
  ['node net (unix socket)', 'blocking', 'throughput', 'net write (batch of 100)'],
  ['node net (unix socket)', 'blocking', 'throughput', 'net read (eachMessage-shaped)'],
  ['node net (unix socket)', 'blocking', 'rtt', 'net write + echo'],
];

test('bench.js --smoke --json: every row, positive numbers, exit 0', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-bench-smoke-'));
  const out = path.join(dir, 'node.json');
  const run = child(BENCH, { args: ['--smoke', '--json', out], env: { MQD } });
  try {
    const exit = await within(120000, 'bench.js --smoke to finish', run.exited);
    const log = `stdout:\n${run.lines.join('\n')}\nstderr:\n${run.stderr()}`;
    assert.deepStrictEqual(exit, { code: 0, signal: null }, log);
    assert.ok(run.lines.some((l) => l.startsWith('| awaited single send (msgs/s) |')), log);

    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.strictEqual(report.tool, 'node');
    assert.strictEqual(report.profile, 'smoke');
    for (const k of ['cpu', 'kernel', 'clocksource', 'compiler']) assert.ok(report.machine[k], `machine.${k}`);
    assert.ok(report.machine.online_cores > 0 && report.machine.usable_cores > 0);
    assert.deepStrictEqual(report.cases.map((c) => [c.transport, c.mode, c.kind, c.api]), EXPECTED);
    for (const c of report.cases) {
      const what = JSON.stringify(c);
      assert.strictEqual(c.error, undefined, what);
      assert.strictEqual(c.pattern, '1p1c', what);
      assert.strictEqual(c.payload_bytes, 64, what);
      assert.match(c.load_before, /^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/, what);
      if (c.kind === 'rtt') {
        assert.strictEqual(c.samples, 200, what);
        const q = ['min', 'p50', 'p90', 'p99', 'p99.9', 'p99.99', 'max'].map((k) => c.ns[k]);
        assert.ok(q[0] > 0 && c.ns.mean > 0, what);
        for (let i = 1; i < q.length; i++) assert.ok(q[i - 1] <= q[i], `percentiles in order: ${what}`);
      } else if (c.kind === 'idle') {
        assert.ok(c.core_fraction >= 0 && c.core_fraction < 1, what);
      } else {
        assert.ok(c.seconds > 0 && c.msgs_per_s > 0 && c.bytes_per_s > 0, what);
      }
    }
  } finally {
    // SIGTERM first: bench.js then stops its mqd and children itself.
    await run.kill('SIGTERM').catch(() => run.kill('SIGKILL'));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bench.js: a bad option exits 2 naming it; --help exits 0', async () => {
  const bad = child(BENCH, { args: ['--no-such-option'], env: { MQD } });
  assert.deepStrictEqual(await within(10000, 'bench.js to reject the option', bad.exited), { code: 2, signal: null });
  assert.match(bad.stderr(), /unknown option or missing value: '--no-such-option'/);
  const help = child(BENCH, { args: ['--help'], env: { MQD } });
  assert.deepStrictEqual(await within(10000, 'bench.js --help', help.exited), { code: 0, signal: null });
  assert.ok(help.lines.some((l) => l.includes('--smoke')), help.lines.join('\n'));
});

test('bench/passes.js: a small run prints every shape with one figure per pass; a bad option exits 2', async () => {
  const PASSES = path.join(PKG, 'bench', 'passes.js');
  const run = child(PASSES, { args: ['--messages', '500', '--passes', '2'], env: { MQD } });
  try {
    const exit = await within(120000, 'passes.js to finish', run.exited);
    const log = `stdout:\n${run.lines.join('\n')}\nstderr:\n${run.stderr()}`;
    assert.deepStrictEqual(exit, { code: 0, signal: null }, log);
    const rows = run.lines.filter((l) => /^(net|libmq) /.test(l));
    assert.deepStrictEqual(rows.map((l) => l.replace(/\s+\d.*$/, '')), [
      'net read (eachMessage-shaped)', 'libmq kafkajs eachMessage', 'libmq kafkajs eachBatch',
      'libmq fast path batches()', 'libmq fast path for await',
    ], log);
    for (const l of rows) assert.match(l, /\s\d+ \(\d+\)\s+\d+ \(\d+\)$/, log);
  } finally {
    await run.kill('SIGTERM').catch(() => run.kill('SIGKILL'));
  }
  const bad = child(PASSES, { args: ['--passes', 'many'], env: { MQD } });
  assert.deepStrictEqual(await within(10000, 'passes.js to reject the option', bad.exited), { code: 2, signal: null });
  assert.match(bad.stderr(), /bad option --passes many/);
});
