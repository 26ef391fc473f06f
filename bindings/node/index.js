'use strict';
// libmq for Node.js: a kafkajs-compatible API (Kafka, producer, consumer, admin, the KafkaJS* errors) over
// shared-memory topics on one host, plus a native fast path (Topic). See README.md.
const { Kafka } = require('./lib/kafka');
const { Topic } = require('./lib/fast');
const { logLevel } = require('./lib/logger');
const errors = require('./lib/errors');
const { ConfigSource } = require('./lib/admin');

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
// libmq hands a group's records to its members itself: there are no assignments to encode.
const noAssignments = () => {
  throw new errors.KafkaJSNonRetriableError('AssignerProtocol is not supported by libmq: a group shares its records ' +
    'among its members itself, without partition assignments');
};
const AssignerProtocol = Object.freeze({
  MemberMetadata: Object.freeze({ encode: noAssignments, decode: noAssignments }),
  MemberAssignment: Object.freeze({ encode: noAssignments, decode: noAssignments }),
});
// kafkajs' ACL enums (the ACL calls themselves answer that libmq has none: topics are guarded by file modes).
const AclResourceTypes = ResourceTypes;
const AclOperationTypes = Object.freeze({
  UNKNOWN: 0, ANY: 1, ALL: 2, READ: 3, WRITE: 4, CREATE: 5, DELETE: 6, ALTER: 7, DESCRIBE: 8, CLUSTER_ACTION: 9,
  DESCRIBE_CONFIGS: 10, ALTER_CONFIGS: 11, IDEMPOTENT_WRITE: 12,
});
const AclPermissionTypes = Object.freeze({ UNKNOWN: 0, ANY: 1, DENY: 2, ALLOW: 3 });
const ResourcePatternTypes = Object.freeze({ UNKNOWN: 0, ANY: 1, MATCH: 2, LITERAL: 3, PREFIXED: 4 });

module.exports = {
  Kafka,
  Topic,
  logLevel,
  CompressionTypes,
  CompressionCodecs,
  ResourceTypes,
  ConfigResourceTypes,
  ConfigSource,
  Partitioners,
  PartitionAssigners,
  AssignerProtocol,
  AclResourceTypes,
  AclOperationTypes,
  AclPermissionTypes,
  ResourcePatternTypes,
  ...errorClasses,
};
