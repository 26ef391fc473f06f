'use strict';
// The kafkajs compatibility table of bindings/node/README.md, checked against kafkajs 2.2.4's own types/index.d.ts
// (the kafkajs devDependency of bindings/node), so neither can drift: every member of the kafkajs types the table
// covers has exactly one row entry (yes / mapped / not applicable), yes and mapped members exist on libmq's objects
// and payloads, not-applicable options are accepted, and not-applicable calls reject naming why.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { PKG, startDaemon, condition } = require('./helpers');
const libmq = require(PKG);

const KAFKAJS = path.dirname(require.resolve('kafkajs/package.json', { paths: [PKG] }));
const TYPES = fs.readFileSync(path.join(KAFKAJS, 'types', 'index.d.ts'), 'utf8')
  .replace(/\/\*[\s\S]*?\*\//g, '')
  .replace(/\/\/.*$/gm, '');

// The kafkajs types the table covers (a kafkajs program calls, passes or receives these); KafkaMessage is a union
// whose record-batch side is what kafkajs 2.x delivers.
const COVERED = {
  Kafka: 'Kafka', KafkaConfig: 'KafkaConfig', ProducerConfig: 'ProducerConfig', ConsumerConfig: 'ConsumerConfig',
  AdminConfig: 'AdminConfig', RetryOptions: 'RetryOptions', Message: 'Message', ProducerRecord: 'ProducerRecord',
  ProducerBatch: 'ProducerBatch', TopicMessages: 'TopicMessages', Sender: 'Sender', Producer: 'Producer',
  Transaction: 'Transaction', RecordMetadata: 'RecordMetadata', Consumer: 'Consumer',
  ConsumerSubscribeTopic: 'ConsumerSubscribeTopic', ConsumerSubscribeTopics: 'ConsumerSubscribeTopics',
  ConsumerRunConfig: 'ConsumerRunConfig', EachMessagePayload: 'EachMessagePayload', EachBatchPayload: 'EachBatchPayload',
  Batch: 'Batch', KafkaMessage: 'RecordBatchEntry', ConsumerEvents: 'ConsumerEvents', ProducerEvents: 'ProducerEvents',
  AdminEvents: 'AdminEvents', Admin: 'Admin', ITopicConfig: 'ITopicConfig', Logger: 'Logger',
};

// The member names of `interface|type|class name { ... }` in the kafkajs types (overloads counted once; the
// constructor is not a member a program calls by name).
function declaredMembers(name) {
  const m = new RegExp(`(?:export )?(?:declare )?(?:interface|type|class) ${name}\\b[^{=]*(?:=[^{]*)?\\{`).exec(TYPES);
  assert.ok(m, `kafkajs' index.d.ts declares ${name}`);
  const names = new Set();
  let depth = 1;
  let atStart = true;
  for (let i = m.index + m[0].length; i < TYPES.length && depth > 0; i++) {
    const c = TYPES[i];
    if ('{([<'.includes(c)) depth++;
    else if ('})]'.includes(c) || (c === '>' && TYPES[i - 1] !== '=')) depth--;
    if (depth !== 1) continue;
    if (c === '\n' || c === ';' || c === ',') {
      atStart = true;
    } else if (atStart && /\S/.test(c)) {
      const member = /^(?:readonly\s+|static\s+)?([A-Za-z_$][\w$]*)\s*\??\s*[:(<]/.exec(TYPES.slice(i, i + 200));
      if (member && member[1] !== 'constructor') names.add(member[1]);
      atStart = false;
    }
  }
  return names;
}

// README rows: `Type` | yes | mapped | not applicable; in each cell the backticked names outside brackets.
function tableRows() {
  const readme = fs.readFileSync(path.join(PKG, 'README.md'), 'utf8');
  const start = readme.indexOf('### Compatibility with kafkajs 2.2.4');
  assert.ok(start >= 0, 'the README has the compatibility section');
  const rows = new Map();
  for (const line of readme.slice(start).split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    if (cells.length !== 4 || !/^`\w+`$/.test(cells[0])) continue;
    const type = cells[0].slice(1, -1);
    assert.ok(!rows.has(type), `${type} has one row`);
    const [yes, mapped, na] = cells.slice(1).map((cell) => {
      let outside = '';
      let depth = 0;
      for (const ch of cell) {
        if (ch === '(') depth++;
        else if (ch === ')') depth--;
        else if (depth === 0) outside += ch;
      }
      return [...outside.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((x) => x[1]);
    });
    rows.set(type, { yes, mapped, na });
  }
  return rows;
}

const ROWS = tableRows();
const supported = (type) => [...ROWS.get(type).yes, ...ROWS.get(type).mapped];

test('kafkajs 2.2.4 is the version the table is checked against', () => {
  assert.strictEqual(JSON.parse(fs.readFileSync(path.join(KAFKAJS, 'package.json'), 'utf8')).version, '2.2.4');
});

test('every member of the covered kafkajs types is in the table once, and the table lists nothing else', () => {
  assert.deepStrictEqual([...ROWS.keys()].sort(), Object.keys(COVERED).sort(), 'one row per covered kafkajs type');
  for (const [row, declared] of Object.entries(COVERED)) {
    const { yes, mapped, na } = ROWS.get(row);
    const listed = [...yes, ...mapped, ...na];
    const twice = listed.filter((n, i) => listed.indexOf(n) !== i);
    assert.deepStrictEqual(twice, [], `${row}: listed twice`);
    assert.deepStrictEqual(listed.slice().sort(), [...declaredMembers(declared)].sort(), `${row}: members of kafkajs' ${declared}`);
  }
});

test('every top-level export of kafkajs exists here', () => {
  const exported = [...TYPES.matchAll(/^export (?:declare )?(?:class|enum|const|function) (\w+)/gm)].map((m) => m[1]);
  assert.ok(exported.length > 30, `found ${exported.length} exports`);
  assert.deepStrictEqual(exported.filter((name) => !(name in libmq)), []);
  // The runtime module too (index.js exports a few the types do not declare).
  assert.deepStrictEqual(Object.keys(require(KAFKAJS)).filter((name) => !(name in libmq)), []);
});

// Sample values for the not-applicable options, of the types kafkajs documents.
const SAMPLE = {
  ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'p' }, connectionTimeout: 1000,
  authenticationTimeout: 1000, reauthenticationThreshold: 10000, enforceRequestTimeout: true,
  socketFactory: () => { throw new Error('kafkajs socketFactory called'); }, createPartitioner: () => () => 0,
  retry: { retries: 1 }, metadataMaxAge: 1000, transactionalId: 'tx', transactionTimeout: 1000, maxInFlightRequests: 1,
  partitionAssigners: [() => ({ name: 'x', version: 1 })], sessionTimeout: 30000, rebalanceTimeout: 60000,
  maxBytesPerPartition: 1048576, minBytes: 1, maxBytes: 10485760, maxWaitTimeInMs: 100, readUncommitted: true,
  rackId: 'rack-1', autoCommitInterval: 1000, autoCommitThreshold: 10, acks: -1, timeout: 1000, compression: 0,
  replicationFactor: 3, replicaAssignment: [{ partition: 0, replicas: [1, 2, 3] }],
};
const naOptions = (row) => Object.fromEntries(ROWS.get(row).na.map((name) => {
  assert.ok(name in SAMPLE, `a sample value for ${row}.${name}`);
  return [name, SAMPLE[name]];
}));

let d;
test.before(async () => {
  d = await startDaemon();
});
test.after(async () => {
  if (d) await d.stop();
});

test('yes and mapped members exist; not-applicable options are accepted; not-applicable calls reject naming why', async () => {
  const kafka = new libmq.Kafka({ clientId: 'compat', brokers: [`unix:${d.socket}`], logLevel: 0, ...naOptions('KafkaConfig') });
  for (const name of supported('Kafka')) assert.strictEqual(typeof kafka[name], 'function', `Kafka.${name}`);
  for (const name of supported('Logger')) assert.strictEqual(typeof kafka.logger()[name], 'function', `Logger.${name}`);

  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: true, ...naOptions('ProducerConfig') });
  const consumer = kafka.consumer({ groupId: 'compat', ...naOptions('ConsumerConfig') });
  const admin = kafka.admin(naOptions('AdminConfig'));
  for (const [row, object] of [['Sender', producer], ['Producer', producer], ['Consumer', consumer], ['Admin', admin]]) {
    for (const name of [...supported(row), ...ROWS.get(row).na]) {
      assert.notStrictEqual(object[name], undefined, `${row}.${name}`);
    }
  }
  for (const [row, object] of [['ConsumerEvents', consumer], ['ProducerEvents', producer], ['AdminEvents', admin]]) {
    // kafkajs code names every event, firing or not: each must be there, with kafkajs' value.
    for (const name of [...supported(row), ...ROWS.get(row).na]) {
      assert.match(String(object.events[name]), /^(consumer|producer|admin)\./, `${row}.${name}`);
    }
  }

  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic: 'compat', configEntries: [] }] });
    // createTopics with the not-applicable ITopicConfig members: accepted (one copy on this host).
    await admin.createTopics({ topics: [{ topic: 'compat-replicated', numPartitions: 1, ...naOptions('ITopicConfig') }] });
    assert.ok((await admin.listTopics()).includes('compat-replicated'));
    const calls = {
      createPartitions: () => admin.createPartitions({ topicPartitions: [{ topic: 'compat', count: 2 }] }),
      alterConfigs: () => admin.alterConfigs({
        resources: [{ type: libmq.ConfigResourceTypes.TOPIC, name: 'compat', configEntries: [{ name: 'retention.bytes', value: '1' }] }],
      }),
      createAcls: () => admin.createAcls({ acl: [] }),
      describeAcls: () => admin.describeAcls({}),
      deleteAcls: () => admin.deleteAcls({ filters: [] }),
      alterPartitionReassignments: () => admin.alterPartitionReassignments({
        topics: [{ topic: 'compat', partitionAssignment: [{ partition: 0, replicas: [1] }] }],
      }),
    };
    assert.deepStrictEqual(Object.keys(calls).sort(), ROWS.get('Admin').na.slice().sort(), 'every not-applicable Admin call is tried');
    for (const [name, call] of Object.entries(calls)) {
      await assert.rejects(call(), (e) => /^KafkaJS/.test(e.name) && /libmq/.test(e.message), `Admin.${name}`);
    }
    assert.deepStrictEqual(await admin.listPartitionReassignments({ topics: [{ topic: 'compat', partitions: [0] }] }), { topics: [] });
    assert.deepStrictEqual(ROWS.get('Producer').na, ['transaction']);
    await assert.rejects(producer.transaction(), (e) => /^KafkaJS/.test(e.name) && /transactions are not supported/.test(e.message));
  } finally {
    await admin.disconnect();
  }

  // Payloads: what send resolves with and what eachMessage / eachBatch receive carry every yes and mapped member.
  await producer.connect();
  const metadata = await producer.send({
    topic: 'compat', ...naOptions('ProducerRecord'),
    messages: [{ key: 'k', value: 'v', headers: { h: '1' }, timestamp: String(Date.now()), partition: 0 }],
  });
  for (const name of supported('RecordMetadata')) assert.ok(name in metadata[0], `RecordMetadata.${name}`);
  await producer.sendBatch({ topicMessages: [{ topic: 'compat', messages: [{ value: 'w' }] }], ...naOptions('ProducerBatch') });
  await producer.disconnect();

  const seen = {};
  const got = condition();
  await consumer.connect();
  await consumer.subscribe({ topics: ['compat'], fromBeginning: true });
  await consumer.run({
    autoCommit: true, ...naOptions('ConsumerRunConfig'),
    eachMessage: async (payload) => {
      seen.payload = payload;
      seen.message = payload.message;
      got.bump();
    },
  });
  await got.until(() => seen.message !== undefined, 10000, 'a record through eachMessage');
  await consumer.disconnect();
  for (const name of supported('EachMessagePayload')) assert.ok(name in seen.payload, `EachMessagePayload.${name}`);
  for (const name of supported('KafkaMessage')) assert.ok(name in seen.message, `KafkaMessage.${name}`);

  const batchConsumer = kafka.consumer({ groupId: 'compat-batch' });
  await batchConsumer.connect();
  await batchConsumer.subscribe({ topic: 'compat', fromBeginning: true });
  await batchConsumer.run({
    eachBatchAutoResolve: true,
    eachBatch: async (payload) => {
      seen.batchPayload = payload;
      got.bump();
    },
  });
  await got.until(() => seen.batchPayload !== undefined, 10000, 'a batch through eachBatch');
  await batchConsumer.disconnect();
  for (const name of supported('EachBatchPayload')) assert.ok(name in seen.batchPayload, `EachBatchPayload.${name}`);
  for (const name of supported('Batch')) assert.ok(name in seen.batchPayload.batch, `Batch.${name}`);
});
