'use strict';
// kafkajs Admin on libmq: topics through mqd (create, delete, list, describe), offsets from the topic header.
// A topic has one partition (0); numPartitions > 1 is refused, replicationFactor is ignored (one host).
const { ClientBase, networkEvents } = require('./common');
const {
  KafkaJSError, KafkaJSNonRetriableError, KafkaJSProtocolError, KafkaJSAggregateError, KafkaJSCreateTopicError,
  KafkaJSDeleteTopicRecordsError, KafkaJSBrokerNotFound, fromNative,
} = require('./errors');

const events = networkEvents('admin');

// configEntries -> mqd create options. Kafka names where one fits, libmq names otherwise.
function createOptions(topic, configEntries = []) {
  const o = {};
  for (const { name, value } of configEntries) {
    switch (name) {
      case 'max.message.bytes':
      case 'max_message':
        o.maxMessage = Number(value);
        break;
      case 'retention.bytes':
      case 'segment.bytes':
      case 'capacity':
        o.capacity = Number(value);
        break;
      case 'policy':
      case 'libmq.policy':
        o.policy = String(value);
        break;
      case 'block.timeout.ms':
      case 'block_timeout_ms':
        o.blockTimeoutMs = Number(value);
        break;
      case 'storage':
        o.storage = String(value);
        break;
      case 'mode':
        o.mode = parseInt(String(value), 8);
        break;
      case 'access_group':
        o.accessGroup = String(value);
        break;
      default:
        throw new KafkaJSNonRetriableError(
          `unsupported config entry "${name}" for topic ${topic} (libmq understands max.message.bytes, ` +
            'retention.bytes/segment.bytes/capacity, policy, block.timeout.ms, storage, mode, access_group)',
        );
    }
  }
  return o;
}

class Admin extends ClientBase {
  constructor(kafka, config = {}) {
    super(kafka, config, 'Admin', events);
  }

  async disconnect() {
    await this.closeClient();
  }

  async c() {
    if (this.connecting) await this.connecting;
    if (!this.client) throw new KafkaJSError('The admin client is not connected: call admin.connect() first', { retriable: true });
    return this.client;
  }

  async call(fn, topic) {
    const client = await this.c();
    try {
      return await fn(client);
    } catch (e) {
      throw fromNative(e, { topic, socket: client.socketPath });
    }
  }

  // -> true if every topic was created, false if any existed already (kafkajs semantics).
  async createTopics({ topics, validateOnly = false, waitForLeaders, timeout } = {}) {
    if (!Array.isArray(topics) || topics.length === 0) {
      throw new KafkaJSNonRetriableError(`Invalid topics array ${topics}`);
    }
    const names = new Set();
    for (const t of topics) {
      if (!t || typeof t.topic !== 'string') throw new KafkaJSNonRetriableError(`Invalid topics array, the topic names have to be a valid string`);
      if (names.has(t.topic)) throw new KafkaJSNonRetriableError('Invalid topics array, it cannot have multiple entries for the same topic');
      names.add(t.topic);
    }
    // A broker that refuses a topic's partition count answers INVALID_PARTITIONS for it; kafkajs throws that as an
    // aggregate of per-topic errors, and creates none of the topics of a refused request here.
    const refused = topics.filter((t) => t.numPartitions !== undefined && t.numPartitions !== -1 && t.numPartitions !== 1);
    if (refused.length > 0) {
      throw new KafkaJSAggregateError('Topic creation errors', refused.map((t) => new KafkaJSCreateTopicError({
        message: `libmq topics have one partition: topic=${t.topic} numPartitions=${t.numPartitions}`,
        type: 'INVALID_PARTITIONS', code: 37, retriable: false,
      }, t.topic)));
    }
    let allCreated = true;
    for (const t of topics) {
      const options = createOptions(t.topic, t.configEntries);
      if (validateOnly) continue;
      try {
        const handle = await this.call((c) => c.create(t.topic, options), t.topic);
        handle.close();
      } catch (e) {
        if (e.mqCode === 'exists') allCreated = false;
        else throw e;
      }
    }
    return allCreated;
  }

  async deleteTopics({ topics, timeout } = {}) {
    if (!Array.isArray(topics)) throw new KafkaJSNonRetriableError(`Invalid topics array ${topics}`);
    for (const t of topics) await this.call((c) => c.remove(t), t);
  }

  async listTopics() {
    return this.call((c) => c.list());
  }

  async describe(topic) {
    if (typeof topic !== 'string') throw new KafkaJSNonRetriableError(`Invalid topic ${topic}`);
    return this.call((c) => c.describe(topic), topic);
  }

  // -> [{partition: 0, offset: latest, high: latest, low: earliest}] (offsets as decimal strings).
  async fetchTopicOffsets(topic) {
    const t = await this.describe(topic);
    return [{ partition: 0, offset: t.latest, high: t.latest, low: t.earliest }];
  }

  // -> [{partition: 0, offset}]: the first record whose timestamp is at or after `timestamp` (ms since the epoch),
  // as Kafka's ListOffsets by time answers, so a group set there replays everything since then; the latest offset
  // when no record is that new, or when no timestamp is given. -1 and -2 mean latest and earliest, as in Kafka.
  async fetchTopicOffsetsByTimestamp(topic, timestamp) {
    const t = await this.describe(topic);  // not found: the same error as fetchTopicOffsets (and no auto-create)
    if (timestamp === undefined || timestamp === null || Number(timestamp) === -1) return [{ partition: 0, offset: t.latest }];
    if (Number(timestamp) === -2) return [{ partition: 0, offset: t.earliest }];
    const ms = Number(timestamp);
    if ((typeof timestamp !== 'number' && typeof timestamp !== 'string' && typeof timestamp !== 'bigint') ||
        !Number.isFinite(ms) || ms < 0) {
      throw new KafkaJSNonRetriableError(`Invalid timestamp ${timestamp} (ms since the epoch, or -1 / -2)`);
    }
    const offset = await this.call(async (c) => {
      const handle = await c.open(topic);
      try {
        return handle.offsetForTime(ms);
      } finally {
        handle.close();
      }
    }, topic);
    return [{ partition: 0, offset: String(offset) }];
  }

  // kafkajs 2: ({groupId, topics?}) -> [{topic, partitions: [{partition, offset, metadata}]}]; the 1.x form
  // ({groupId, topic}) -> [{partition, offset, metadata}]. offset = the group's committed offset, '-1' if none.
  async fetchOffsets({ groupId, topic, topics } = {}) {
    if (!groupId) throw new KafkaJSNonRetriableError(`Invalid groupId ${groupId}`);
    const one = async (name) => {
      const t = await this.describe(name);
      const g = t.groups.find((x) => x.name === groupId);
      return [{ partition: 0, offset: g ? g.committed : '-1', metadata: null }];
    };
    if (topic && !topics) return one(topic);
    const names = topics || (await this.listTopics());
    const out = [];
    for (const name of names) {
      const t = await this.describe(name);
      const g = t.groups.find((x) => x.name === groupId);
      if (!g && !topics) continue;
      out.push({ topic: name, partitions: [{ partition: 0, offset: g ? g.committed : '-1', metadata: null }] });
    }
    return out;
  }

  async resetOffsets({ groupId, topic, earliest = false } = {}) {
    await this.call((c) => c.resetOffsets(topic, groupId, earliest ? 'earliest' : 'latest'), topic);
  }

  async setOffsets({ groupId, topic, partitions = [] } = {}) {
    for (const { offset } of partitions) {
      await this.call((c) => c.resetOffsets(topic, groupId, String(offset)), topic);
    }
  }

  async fetchTopicMetadata({ topics } = {}) {
    const names = topics && topics.length ? topics : await this.listTopics();
    const out = [];
    for (const name of names) {
      await this.describe(name);
      out.push({
        name,
        partitions: [{ partitionErrorCode: 0, partitionId: 0, leader: 0, replicas: [0], isr: [0], offlineReplicas: [] }],
      });
    }
    return { topics: out };
  }

  async describeCluster() {
    const client = await this.c();
    return { brokers: [{ nodeId: 0, host: client.socketPath, port: 0 }], controller: 0, clusterId: 'libmq' };
  }

  async createPartitions() {
    throw new KafkaJSProtocolError({ message: 'libmq topics have one partition', type: 'INVALID_PARTITIONS', code: 37, retriable: false });
  }

  // A topic has one replica, on this host: there is nothing to reassign, and no reassignment is ever in progress.
  async alterPartitionReassignments({ topics } = {}) {
    if (!Array.isArray(topics)) throw new KafkaJSNonRetriableError(`Invalid topics array ${topics}`);
    throw new KafkaJSNonRetriableError('libmq cannot reassign partitions: a topic has one partition with one replica, ' +
      `the shared-memory segment on this host (topics: ${topics.map((t) => t && t.topic).join(', ')})`);
  }

  async listPartitionReassignments({ topics } = {}) {
    for (const t of topics || []) await this.describe(t.topic);  // a missing topic says so, as a broker would
    return { topics: [] };
  }

  async listGroups() {
    const groups = new Set();
    for (const name of await this.listTopics()) {
      for (const g of (await this.describe(name)).groups) groups.add(g.name);
    }
    return { groups: [...groups].map((groupId) => ({ groupId, protocolType: 'consumer' })) };
  }

  async deleteGroups(groupIds = []) {
    const results = [];
    for (const groupId of groupIds) {
      let errorCode = 69;  // GROUP_ID_NOT_FOUND
      for (const name of await this.listTopics()) {
        const t = await this.describe(name);
        if (!t.groups.some((g) => g.name === groupId)) continue;
        await this.call((c) => c.deleteGroup(name, groupId), name);
        errorCode = 0;
      }
      results.push({ groupId, errorCode });
    }
    return results;
  }

  // -> {groups: [{groupId, members, protocol, protocolType, state, errorCode, topics}]}: a group's members across
  // the topics it reads (one entry per live member slot: libmq keeps no client ids in the topic); state 'Stable' with
  // members, 'Empty' without, 'Dead' for a group no topic has. libmq adds `topics`: [{topic, ordering, activePid}],
  // the topics that have the group, each with the group's ordering there (a group is made per topic, so its
  // ordering is too) and, for an exclusive one, the process of the member that takes (absent while none does).
  async describeGroups(groupIds) {
    if (!Array.isArray(groupIds)) throw new KafkaJSNonRetriableError(`Invalid groupIds array ${groupIds}`);
    const topics = [];
    for (const name of await this.listTopics()) topics.push(await this.describe(name));
    const groups = groupIds.map((groupId) => {
      const members = [];
      const where = [];
      let found = false;
      for (const t of topics) {
        const g = t.groups.find((x) => x.name === groupId);
        if (!g) continue;
        found = true;
        where.push({ topic: t.name, ordering: g.ordering, ...(g.activePid ? { activePid: g.activePid } : {}) });
        for (let i = 0; i < Number(g.members || 0); i++) {
          members.push({ memberId: `${t.name}/${i}`, clientId: '', clientHost: 'localhost',
            memberMetadata: Buffer.alloc(0), memberAssignment: Buffer.alloc(0) });
        }
      }
      const state = !found ? 'Dead' : members.length > 0 ? 'Stable' : 'Empty';
      return {
        groupId, members, protocol: found ? 'libmq' : '', protocolType: 'consumer', state, errorCode: 0, topics: where,
      };
    });
    return { groups };
  }

  // kafkajs describeConfigs for TOPIC resources: each topic's settings under Kafka's names where one fits and
  // libmq's otherwise, all read-only (fixed when the topic was created).
  async describeConfigs({ resources, includeSynonyms } = {}) {
    checkResources(resources);
    const out = [];
    for (const r of resources) {
      if (r.configNames != null && !Array.isArray(r.configNames)) {
        throw new KafkaJSNonRetriableError(`Invalid resource configNames ${r.configNames}: ${JSON.stringify(r)}`);
      }
      const t = await this.describe(r.name);
      const wanted = r.configNames && r.configNames.length ? new Set(r.configNames) : null;
      const configEntries = topicConfigs(t)
        .filter(([configName]) => !wanted || wanted.has(configName))
        .map(([configName, configValue]) => ({
          configName, configValue, readOnly: true, isDefault: false, configSource: ConfigSource.TOPIC_CONFIG,
          isSensitive: false, configSynonyms: [],
        }));
      out.push({ errorCode: 0, errorMessage: null, resourceType: r.type, resourceName: r.name, configEntries });
    }
    return { resources: out, throttleTime: 0 };
  }

  async alterConfigs({ resources } = {}) {
    checkResources(resources);
    for (const r of resources) await this.describe(r.name);  // a missing topic says so first
    throw new KafkaJSProtocolError({
      message: `libmq topic settings are fixed when the topic is created: ${resources.map((r) => r.name).join(', ')} ` +
        '(delete and create the topic with the new configEntries)',
      type: 'INVALID_CONFIG', code: 40, retriable: false,
    });
  }

  // Kafka's DeleteRecords: the topic then starts at `offset` ('-1': the latest offset, deleting every record held);
  // groups behind it move up to it. An offset below the earliest deletes nothing (a warning, as kafkajs logs);
  // past the latest, or another partition than 0, rejects with KafkaJSDeleteTopicRecordsError naming the partition.
  async deleteTopicRecords({ topic, partitions } = {}) {
    if (!topic || typeof topic !== 'string') throw new KafkaJSNonRetriableError(`Invalid topic "${topic}"`);
    if (!Array.isArray(partitions) || partitions.length === 0) throw new KafkaJSNonRetriableError('Invalid partitions');
    const t = await this.describe(topic);
    const unknown = partitions.filter(({ partition }) => partition !== 0);
    if (unknown.length > 0) {
      throw new KafkaJSDeleteTopicRecordsError({
        topic,
        partitions: unknown.map(({ partition, offset }) => ({
          partition, offset,
          error: new KafkaJSBrokerNotFound(`Could not find the leader for the partition: topic=${topic} partition=${partition} ` +
            '(libmq topics have one partition, 0)', { retriable: false }),
        })),
      });
    }
    for (const { partition, offset } of partitions) {
      const text = String(offset);
      const before = text === '-1' ? BigInt(t.latest) : /^[0-9]{1,20}$/.test(text) ? BigInt(text) : null;
      if (before === null) {
        throw new KafkaJSNonRetriableError(`Invalid offset "${offset}" for topic ${topic} partition ${partition}`);
      }
      if (before < BigInt(t.earliest)) {
        this.logger_.warn('The requested offset is before the earliest offset maintained on the partition - no records ' +
          'will be deleted from this partition', { topic, partition, offset });
        continue;
      }
      try {
        await this.call((c) => c.deleteRecords(topic, before), topic);
      } catch (e) {
        if (e.mqCode !== 'invalid_argument') throw e;
        throw new KafkaJSDeleteTopicRecordsError({
          topic,
          partitions: [{
            partition, offset,
            error: new KafkaJSProtocolError({ message: e.message, type: 'OFFSET_OUT_OF_RANGE', code: 1, retriable: false }),
          }],
        });
      }
    }
  }

  async createAcls() {
    throw aclsUnsupported();
  }

  async describeAcls() {
    throw aclsUnsupported();
  }

  async deleteAcls() {
    throw aclsUnsupported();
  }
}

const ConfigSource = Object.freeze({
  UNKNOWN: 0, TOPIC_CONFIG: 1, DYNAMIC_BROKER_CONFIG: 2, DYNAMIC_DEFAULT_BROKER_CONFIG: 3, STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5, DYNAMIC_BROKER_LOGGER_CONFIG: 6,
});
const TOPIC_RESOURCE = 2;  // ConfigResourceTypes.TOPIC

// kafkajs' checks of a describeConfigs / alterConfigs resources array; only TOPIC resources exist here.
function checkResources(resources) {
  if (!Array.isArray(resources)) throw new KafkaJSNonRetriableError(`Invalid resources array ${resources}`);
  if (resources.length === 0) throw new KafkaJSNonRetriableError('Resources array cannot be empty');
  for (const r of resources) {
    if (!r || typeof r.name !== 'string' || !r.name) {
      throw new KafkaJSNonRetriableError(`Invalid resource name ${r && r.name}: ${JSON.stringify(r)}`);
    }
    if (r.type !== TOPIC_RESOURCE) {
      throw new KafkaJSNonRetriableError(
        `Invalid resource type ${r.type}: libmq has topics only (ConfigResourceTypes.TOPIC), no brokers: ${JSON.stringify(r)}`);
    }
  }
}

// A described topic's settings as [configName, value] (strings), the names createTopics' configEntries take.
function topicConfigs(t) {
  return [
    ['max.message.bytes', t.maxMessage], ['retention.bytes', t.capacity], ['segment.bytes', t.capacity],
    ['cleanup.policy', 'delete'], ['libmq.policy', t.policy], ['block.timeout.ms', t.blockTimeoutMs],
    ['storage', t.storage], ['mode', t.mode.toString(8).padStart(4, '0')], ['access_group', t.accessGroup || ''],
  ].filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]);
}

function aclsUnsupported() {
  return new KafkaJSNonRetriableError('ACLs are not supported by libmq: a topic is protected by its file mode and ' +
    'access group (createTopics configEntries mode / access_group, mqctl create --mode --access-group)');
}

module.exports = { Admin, ConfigSource };
