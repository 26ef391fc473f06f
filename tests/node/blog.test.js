'use strict';
// The blog post's producer.js and consumer.js (shared/seed/message-queues.md), run against libmq with only
// require("kafkajs") changed to require("libmq"), from a folder where "libmq" is installed as npm installs a
// local folder (a symlink in node_modules).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { PKG, REPO, startDaemon, child } = require('./helpers');

const BLOG = path.join(REPO, '..', 'shared', 'seed', 'message-queues.md');

// The post's two scripts: from the post itself when shared/ is beside the repo, else from examples/ (which the
// first test checks are the same code).
function blogScripts() {
  const examples = {
    producer: fs.readFileSync(path.join(PKG, 'examples', 'producer.js'), 'utf8'),
    consumer: fs.readFileSync(path.join(PKG, 'examples', 'consumer.js'), 'utf8'),
  };
  if (!fs.existsSync(BLOG)) return { ...examples, fromBlog: false, examples };
  const blocks = [...fs.readFileSync(BLOG, 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const producer = blocks.find((b) => b.includes('producer.send('));
  const consumer = blocks.find((b) => b.includes('consumer.run('));
  assert.ok(producer && consumer, 'the blog post has a producer and a consumer code block');
  const swap = (s) => s.replace('require("kafkajs")', 'require("libmq")');
  return { producer: swap(producer), consumer: swap(consumer), fromBlog: true, examples };
}

const stripLeadingComments = (s) => s.replace(/^(\/\/.*\n)+/, '');

test('examples/producer.js and consumer.js are the blog code with only the require changed', (t) => {
  const s = blogScripts();
  if (!s.fromBlog) {
    t.skip(`blog post not found at ${BLOG}`);
    return;
  }
  assert.strictEqual(stripLeadingComments(s.examples.producer), s.producer);
  assert.strictEqual(stripLeadingComments(s.examples.consumer), s.consumer);
  assert.ok(s.producer.includes('require("libmq")') && !s.producer.includes('kafkajs"'));
});

test('blog producer.js and consumer.js: baseOffset 0,1,2 and "offset # value" lines in order', async () => {
  const d = await startDaemon();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libmq-blog-'));
  let producer;
  let consumer;
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'libmq'), 'dir');
    const s = blogScripts();
    fs.writeFileSync(path.join(dir, 'producer.js'), s.producer);
    fs.writeFileSync(path.join(dir, 'consumer.js'), s.consumer);
    // As in the post: run both scripts. brokers ["localhost:9092"] is ignored; MQ_SOCKET names the daemon.
    const env = { MQ_SOCKET: d.socket };
    consumer = child(path.join(dir, 'consumer.js'), { env, cwd: dir });
    producer = child(path.join(dir, 'producer.js'), { env, cwd: dir });
    // The producer prints res[0] (util.inspect of the RecordMetadata) every 2 s.
    await producer.until((l) => l.filter((x) => x.includes('baseOffset')).length >= 3, 15000, 'three send results');
    const text = producer.lines.join('\n');
    const offsets = [...text.matchAll(/baseOffset: '(\d+)'/g)].map((m) => m[1]);
    assert.deepStrictEqual(offsets.slice(0, 3), ['0', '1', '2']);
    assert.match(text, /topicName: 'kafka-node'/);
    assert.match(text, /partition: 0/);
    assert.match(text, /errorCode: 0/);
    assert.match(text, /logAppendTime: '-1'/);
    assert.match(text, /logStartOffset: '0'/);
    await consumer.until((l) => l.length >= 3, 10000, 'three consumed lines');
    assert.deepStrictEqual(consumer.lines.slice(0, 3), [
      '0 # Hello consumer from producer: 1',
      '1 # Hello consumer from producer: 2',
      '2 # Hello consumer from producer: 3',
    ]);
    assert.strictEqual(producer.stderr(), '');
    assert.strictEqual(consumer.stderr(), '');
  } finally {
    if (producer) await producer.kill('SIGKILL');
    if (consumer) await consumer.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    await d.stop();
  }
});

test('the blog consumer started after the producer reads from the beginning (fromBeginning: true)', async () => {
  const d = await startDaemon();
  const { Kafka } = require(PKG);
  const kafka = new Kafka({ clientId: 'my-app', brokers: [`unix:${d.socket}`] });
  const producer = kafka.producer();
  let consumer;
  try {
    for (let i = 1; i <= 3; i++) {
      await producer.connect();
      const [r] = await producer.send({ topic: 'kafka-node', messages: [{ value: `Hello consumer from producer: ${i}` }] });
      assert.strictEqual(r.baseOffset, String(i - 1));
    }
    consumer = child(path.join(PKG, 'examples', 'consumer.js'), { env: { MQ_SOCKET: d.socket } });
    await consumer.until((l) => l.length >= 3, 10000, 'three consumed lines');
    assert.deepStrictEqual(consumer.lines, [
      '0 # Hello consumer from producer: 1',
      '1 # Hello consumer from producer: 2',
      '2 # Hello consumer from producer: 3',
    ]);
  } finally {
    await producer.disconnect();
    if (consumer) await consumer.kill('SIGKILL');
    await d.stop();
  }
});
