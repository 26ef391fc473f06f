'use strict';
// libmq for Node.js: a kafkajs-compatible API (Kafka, producer, consumer, admin, the KafkaJS* errors) over
// shared-memory topics on one host, plus a native fast path (Topic). See README.md.
const { Kafka } = require('./lib/kafka');
const { Topic } = require('./lib/fast');
const { logLevel } = require('./lib/logger');
const errors = require('./lib/errors');

const { fromNative, BY_CODE, ...errorClasses } = errors;

const CompressionTypes = Object.freeze({ None: 0, GZIP: 1, Snappy: 2, LZ4: 3, ZSTD: 4 });
const CompressionCodecs = {};
const ResourceTypes = Object.freeze({ UNKNOWN: 0, ANY: 1, TOPIC: 2, GROUP: 3, CLUSTER: 4, TRANSACTIONAL_ID: 5, DELEGATION_TOKEN: 6 });
const ConfigResourceTypes = Object.freeze({ UNKNOWN: 0, TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 });
// One partition per topic: every partitioner picks 0.
const onePartition = () => () => 0;
const Partitioners = Object.freeze({
  DefaultPartitioner: onePartition,
  LegacyPartitioner: onePartition,
  JavaCompatiblePartitioner: onePartition,
});
const PartitionAssigners = Object.freeze({ roundRobin: () => ({ name: 'RoundRobinAssigner', version: 0 }) });

module.exports = {
  Kafka,
  Topic,
  logLevel,
  CompressionTypes,
  CompressionCodecs,
  ResourceTypes,
  ConfigResourceTypes,
  Partitioners,
  PartitionAssigners,
  ...errorClasses,
};
