'use strict';
// What bench.js shares with the C++ bench binaries (bench/report.hpp): the machine header, one printed row per case,
// exact nearest-rank percentiles of every recorded sample, and the JSON file bench/report.py merges:
//   {"tool", "profile", "machine": {cpu, online_cores, usable_cores, kernel, clocksource, compiler},
//    "cases": [{transport, mode, kind, pattern, api, payload_bytes, load_before,
//               samples + ns{min, mean, p50, p90, p99, p99.9, p99.99, max}     (kind "rtt": ns per round trip)
//             | seconds + msgs_per_s + bytes_per_s                             (kind "throughput")
//             | skipped | error, [note]}]}
const fs = require('fs');
const os = require('os');

function readFirstLine(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[0].trim();
  } catch {
    return 'unknown';
  }
}

// The machine, as bench/machine.hpp describes it; the "compiler" of a Node run is the Node version.
function describeMachine() {
  const cpus = os.cpus();
  return {
    cpu: cpus.length ? cpus[0].model : 'unknown',
    online_cores: cpus.length,
    usable_cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    kernel: `${os.type()} ${os.release()} ${os.version()} ${os.machine ? os.machine() : os.arch()}`,
    clocksource: readFirstLine('/sys/devices/system/clocksource/clocksource0/current_clocksource'),
    compiler: `node ${process.version} (V8 ${process.versions.v8})`,
  };
}

// The 1, 5 and 15 minute load averages, "a b c": other work on the machine shows in the tails.
const loadAverage = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// Nearest-rank percentile of sorted samples; q in (0, 1] (bench/percentiles.hpp).
function percentile(sorted, q) {
  if (!sorted.length) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

// Round-trip samples (ns, numbers) -> the "ns" object of a case. Sorts `samples` in place.
function summarize(samples) {
  samples.sort((a, b) => a - b);
  let sum = 0;
  for (const v of samples) sum += v;
  return {
    min: samples[0],
    mean: Math.round((sum / samples.length) * 10) / 10,
    p50: percentile(samples, 0.5),
    p90: percentile(samples, 0.9),
    p99: percentile(samples, 0.99),
    'p99.9': percentile(samples, 0.999),
    'p99.99': percentile(samples, 0.9999),
    max: samples[samples.length - 1],
  };
}

const caseName = (r) => `${r.transport} ${r.mode} ${r.kind} ${r.pattern} ${r.payload_bytes}B${r.api ? ' ' + r.api : ''}`;

const NAME_WIDTH = 84;

function printHeader(machine, run) {
  console.log(`machine: ${machine.cpu}; ${machine.online_cores} cores online, ${machine.usable_cores} usable; not pinned`);
  console.log(`kernel:  ${machine.kernel}; clock ${machine.clocksource}; ${machine.compiler}`);
  console.log(`run:     ${run}; load ${loadAverage()}`);
  console.log('');
  const h = ['p50 ns', 'p90', 'p99', 'p99.9', 'max', 'msgs/s'];
  console.log(`${'case'.padEnd(NAME_WIDTH)} ${h.slice(0, 5).map((x) => x.padStart(9)).join(' ')} ${h[5].padStart(10)}`);
}

function printRow(r) {
  const name = caseName(r).padEnd(NAME_WIDTH);
  const n = (x) => String(Math.round(x)).padStart(9);
  if (r.skipped) console.log(`${name} skipped: ${r.skipped}`);
  else if (r.error) console.log(`${name} FAILED: ${r.error}`);
  else if (r.ns) console.log(`${name} ${n(r.ns.p50)} ${n(r.ns.p90)} ${n(r.ns.p99)} ${n(r.ns['p99.9'])} ${n(r.ns.max)}`);
  else if (r.core_fraction !== undefined) console.log(`${name} ${(r.core_fraction * 100).toFixed(3)} % of a core`);
  else console.log(`${name} ${''.padStart(9 * 5 + 4)} ${String(Math.round(r.msgs_per_s)).padStart(10)}`);
}

// Writes the JSON file; throws (with the path in the message) if it cannot be written.
function writeResults(file, { tool, profile, machine, cases }) {
  try {
    fs.writeFileSync(file, JSON.stringify({ tool, profile, machine, cases }, null, 2) + '\n');
  } catch (e) {
    throw new Error(`cannot write ${file}: ${e.message}`);
  }
}

// The bounded wait of bench.js and passes.js: resolves with `promise`, or rejects after `ms` naming `what`.
async function within(ms, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { describeMachine, loadAverage, summarize, caseName, printHeader, printRow, writeResults, within };
