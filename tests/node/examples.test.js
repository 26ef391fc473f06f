'use strict';
// The blog's scenario done properly (bindings/node/examples): an api that queues invitations and returns at once,
// and e-mail workers in one consumer group sharing them.
const test = require('node:test');
const assert = require('node:assert');
const http = require('http');
const path = require('path');
const { PKG, MQD, startDaemon, child, within } = require('./helpers');

const EX = path.join(PKG, 'examples');

test('demo.js: two e-mail workers share the invitations, each sent exactly once', async () => {
  const demo = child(path.join(EX, 'demo.js'), { args: ['--invites', '12', '--email-ms', '20'], env: { MQD } });
  const exit = await within(60000, 'demo.js to finish', demo.exited);
  assert.deepStrictEqual(exit, { code: 0, signal: null }, demo.lines.join('\n') + demo.stderr());
  assert.ok(demo.lines.some((l) => /each exactly once: yes/.test(l)), demo.lines.join('\n'));
  const w1 = demo.lines.filter((l) => l.startsWith('[worker 1]') && l.includes(' sent ')).length;
  const w2 = demo.lines.filter((l) => l.startsWith('[worker 2]') && l.includes(' sent ')).length;
  assert.strictEqual(w1 + w2, 12);
  assert.ok(w1 > 0 && w2 > 0, `both workers sent some (${w1}, ${w2})`);
});

test('demo.js: a bad option exits 2 naming it, before anything starts', async () => {
  for (const [args, message] of [
    [['--invites', 'abc'], /--invites wants a whole number from 1 to 10000, got 'abc'/],
    [['--invites', '0'], /--invites wants a whole number from 1 to 10000, got '0'/],
    [['--email-ms'], /--email-ms wants a whole number from 0 to 60000, got ''/],
    [['--frob', '1'], /unknown option '--frob'/],
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
