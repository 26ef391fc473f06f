'use strict';
// The blog's scenario done properly (bindings/node/examples): an api that queues invitations and returns at once,
// and e-mail workers in one consumer group sharing them; a flaky mail server's refusals retried after a backoff, a
// poison invitation parked in invitations.dlq, and its replay after the fix.
const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('child_process');
const http = require('http');
const path = require('path');
const { PKG, REPO, MQD, startDaemon, child, within } = require('./helpers');

const EX = path.join(PKG, 'examples');
const MQCTL = path.join(REPO, 'build', 'release', 'daemon', 'mqctl', 'mqctl');

test('demo.js: workers share the invitations; refusals retried; the poison one dead-lettered, replayed', async () => {
  const args = ['--invites', '12', '--email-ms', '20', '--flaky', '4'];
  const demo = child(path.join(EX, 'demo.js'), { args, env: { MQD } });
  const exit = await within(60000, 'demo.js to finish', demo.exited);
  const all = demo.lines.join('\n') + demo.stderr();
  assert.deepStrictEqual(exit, { code: 0, signal: null }, all);
  const has = (re) => assert.ok(demo.lines.some((l) => re.test(l)), `${re}:\n${all}`);
  has(/each exactly once: yes; sent after a retry: 3; dead-lettered: dave\+friends@example.com;/);
  const w1 = demo.lines.filter((l) => l.startsWith('[worker 1]') && l.includes(' sent ')).length;
  const w2 = demo.lines.filter((l) => l.startsWith('[worker 2]') && l.includes(' sent ')).length;
  assert.strictEqual(w1 + w2, 12);
  assert.ok(w1 > 0 && w2 > 0, `both workers sent some (${w1}, ${w2})`);
  for (const user of [4, 8, 12]) {  // --flaky 4: the mail server turns away their first attempt
    has(new RegExp(`could not send to user${user}@example.com: 421 try again later; the group retries it later$`));
    has(new RegExp(`sent an invitation to user${user}@example.com \\(attempt 2, \\d+ ms after the first failure\\)$`));
  }
  const poison = demo.lines.filter((l) => l.includes('could not send to dave+friends@example.com'));
  assert.deepStrictEqual(poison.map((l) => /(attempt \d)|parked|retries/.exec(l.replace(/.*could not send/, ''))[0]),
    ['retries', 'attempt 2', 'attempt 3'], all);
  assert.match(poison[2], /parked in invitations\.dlq$/);
  has(new RegExp('^dead letter in invitations.dlq: \\{"id":13,"email":"dave\\+friends@example.com".*\\} ' +
    '\\(mq.dlq.error "Error: 550 invalid address <dave\\+friends@example.com>", ' +
    'mq.dlq.attempts 3, mq.dlq.offset 12\\)$'));
  // The fix and the replay, by mqctl dlq replay.
  const lines = demo.lines;
  const help = spawnSync(MQCTL, ['--help'], { encoding: 'utf8' });
  const summary = lines.find((l) => l.includes('replayed after the fix: '));
  if (/^\s+dlq\s/m.test(help.stdout)) {
    has(/^\[mqctl\] dlq replay invitations: exit 0/);
    has(/^\[worker 3\] worker \d+ ready \(with the address fix\)$/);
    has(/^\[worker 3\] 13 # worker \d+ sent an invitation to dave\+friends@example.com$/);
    assert.match(summary, /replayed after the fix: sent once$/);
  } else {  // an mqctl built before its `dlq` command
    assert.match(summary, /replayed after the fix: skipped: .*mqctl has no 'dlq' command yet \(after the fix: /);
  }
});

test('demo.js: a bad option exits 2 naming it, before anything starts', async () => {
  for (const [args, message] of [
    [['--invites', 'abc'], /--invites wants a whole number from 1 to 10000, got 'abc'/],
    [['--invites', '0'], /--invites wants a whole number from 1 to 10000, got '0'/],
    [['--email-ms'], /--email-ms wants a whole number from 0 to 60000, got ''/],
    [['--frob', '1'], /unknown option '--frob'/],
    [['--flaky', '-1'], /--flaky wants a whole number from 0 to 10000, got '-1'/],
  ]) {
    const demo = child(path.join(EX, 'demo.js'), { args, env: { MQD } });
    assert.deepStrictEqual(await within(10000, `demo.js ${args.join(' ')} to exit`, demo.exited), { code: 2, signal: null });
    assert.match(demo.stderr(), message);
  }
});

test('api.js over HTTP answers 201 at once; a worker sends the invitation', async () => {
  const d = await startDaemon();
  const env = { MQ_SOCKET: d.socket, PORT: '0', EMAIL_MS: '10' };
  const api = child(path.join(EX, 'api.js'), { env });
  const worker = child(path.join(EX, 'email-worker.js'), { env });
  try {
    await api.until((l) => l.some((x) => x.includes('listening')), 10000, 'api listening');
    await worker.until((l) => l.some((x) => x.includes('ready')), 10000, 'worker ready');
    const port = Number(/:(\d+) /.exec(api.lines.find((x) => x.includes('listening')))[1]);
    const body = JSON.stringify({ email: 'carol@example.com' });
    const res = await within(5000, 'the HTTP answer', new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/users', headers: { 'content-type': 'application/json' } }, (r) => {
        let data = '';
        r.on('data', (c) => (data += c));
        r.on('end', () => resolve({ status: r.statusCode, json: JSON.parse(data) }));
      });
      req.on('error', reject);
      req.end(body);
    }));
    assert.strictEqual(res.status, 201);
    assert.strictEqual(res.json.email, 'carol@example.com');
    assert.strictEqual(res.json.offset, '0');
    await worker.until((l) => l.some((x) => x === '0 # worker ' + worker.proc.pid + ' sent an invitation to carol@example.com'), 10000, 'the e-mail');
  } finally {
    await api.kill();
    await worker.kill();
    await d.stop();
  }
});
