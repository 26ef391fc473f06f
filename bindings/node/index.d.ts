/// <reference types="node" />
// Type declarations of libmq for Node.js: the kafkajs 2.2.4 API subset it implements (same names and shapes, so
// code typed against kafkajs compiles against it) plus libmq's own options and the native fast path (Topic).

// ---------------------------------------------------------------------------------------------------------------
// Kafka

export interface RetryOptions {
  maxRetryTime?: number
  initialRetryTime?: number
  factor?: number
  multiplier?: number
  retries?: number
  restartOnFailure?: (err: Error) => Promise<boolean>
}

export enum logLevel {
  NOTHING = 0,
  ERROR = 1,
  WARN = 2,
  INFO = 4,
  DEBUG = 5,
}

export interface LoggerEntryContent {
  readonly timestamp: string
  readonly message: string
  [key: string]: any
}

export interface LogEntry {
  namespace: string
  level: logLevel
  label: string
  log: LoggerEntryContent
}

export type logCreator = (logLevel: logLevel) => (entry: LogEntry) => void

export type Logger = {
  info: (message: string, extra?: object) => void
  error: (message: string, extra?: object) => void
  warn: (message: string, extra?: object) => void
  debug: (message: string, extra?: object) => void
  namespace: (namespace: string) => Logger
  setLogLevel: (logLevel: logLevel) => void
}

export interface KafkaConfig {
  /** Accepted and ignored (one host, no brokers), except an entry `unix:/path`, which names mqd's socket. */
  brokers?: string[] | (() => Promise<string[]>)
  clientId?: string
  /** libmq: mqd's control socket. Default: a `unix:` broker, else $MQ_SOCKET, else /run/mq/mqd.sock. */
  socket?: string
  /** How long one request to mqd may take (ms). Default 5000. */
  requestTimeout?: number
  connectionTimeout?: number
  retry?: RetryOptions
  logLevel?: logLevel
  logCreator?: logCreator
  ssl?: any
  sasl?: any
}

export class Kafka {
  constructor(config: KafkaConfig)
  producer(config?: ProducerConfig): Producer
  consumer(config: ConsumerConfig): Consumer
  admin(config?: AdminConfig): Admin
  logger(): Logger
}

// ---------------------------------------------------------------------------------------------------------------
// Producer

export interface ProducerConfig {
  /** false: a send to a topic that does not exist fails (KafkaJSTopicNotFound) even if mqd auto-creates. */
  allowAutoTopicCreation?: boolean
  idempotent?: boolean
  retry?: RetryOptions
  metadataMaxAge?: number
  transactionalId?: string
  transactionTimeout?: number
  maxInFlightRequests?: number
  createPartitioner?: any
}

export interface IHeaders {
  [key: string]: Buffer | string | (Buffer | string)[] | undefined
}

export interface Message {
  key?: Buffer | string | null
  /** null is stored as an empty payload (libmq has no null value): consumers get an empty Buffer. */
  value: Buffer | string | null
  partition?: number
  headers?: IHeaders
  /** Milliseconds since the epoch, as a string (kafkajs) or number. Default: the time of the send. */
  timestamp?: string
}

export enum CompressionTypes {
  None = 0,
  GZIP = 1,
  Snappy = 2,
  LZ4 = 3,
  ZSTD = 4,
}

export var CompressionCodecs: { [type: number]: () => any }

export interface ProducerRecord {
  topic: string
  messages: Message[]
  /** Accepted and ignored: a record is in the shared ring, visible to consumers, when send() resolves. */
  acks?: number
  timeout?: number
  compression?: CompressionTypes
}

export type RecordMetadata = {
  topicName: string
  partition: number
  errorCode: number
  offset?: string
  timestamp?: string
  baseOffset?: string
  logAppendTime?: string
  logStartOffset?: string
}

export interface TopicMessages {
  topic: string
  messages: Message[]
}

export interface ProducerBatch {
  acks?: number
  timeout?: number
  compression?: CompressionTypes
  topicMessages?: TopicMessages[]
}

type ValueOf<T> = T[keyof T]

export interface InstrumentationEvent<T> {
  id: string | number
  type: string
  timestamp: number
  payload: T
}

export type RemoveInstrumentationEventListener<T> = () => void

export type ProducerEvents = {
  CONNECT: 'producer.connect'
  DISCONNECT: 'producer.disconnect'
  REQUEST: 'producer.network.request'
  REQUEST_TIMEOUT: 'producer.network.request_timeout'
  REQUEST_QUEUE_SIZE: 'producer.network.request_queue_size'
}

export type Producer = {
  /** Idempotent: calling it before every send (as the kafkajs examples do) costs nothing. */
  connect(): Promise<void>
  disconnect(): Promise<void>
  send(record: ProducerRecord): Promise<RecordMetadata[]>
  sendBatch(batch: ProducerBatch): Promise<RecordMetadata[]>
  isIdempotent(): boolean
  /** Not supported: rejects with KafkaJSNonRetriableError. */
  transaction(): Promise<never>
  events: ProducerEvents
  on(eventName: ValueOf<ProducerEvents>, listener: (...args: any[]) => void): RemoveInstrumentationEventListener<typeof eventName>
  logger(): Logger
}

// ---------------------------------------------------------------------------------------------------------------
// Consumer

/** How an idle consumer waits (ConsumerConfig.wait). */
export type Wait = 'futex' | 'spin' | 'spin_futex' | 'spin_yield' | 'busy_spin'

/** How a consumer group shares its records among its members (ConsumerConfig.ordering).
 *  'none': competing consumers, whichever member takes first gets the next record.
 *  'key': records with the same key go to one member at a time, in offset order; other keys in parallel (a member
 *  holds the keys of the up to maxInFlight records it took and has not finished: a small maxInFlight spreads them).
 *  'exclusive': one member takes every record, in offset order; the others stand by and take over, where it
 *  stopped, when it leaves or dies. */
export type Ordering = 'none' | 'key' | 'exclusive'

export interface ConsumerConfig {
  groupId: string
  /** false: subscribing to a topic that does not exist fails even if mqd auto-creates. */
  allowAutoTopicCreation?: boolean
  retry?: RetryOptions
  /** libmq: records one member may hold unacked (taken ahead + being processed), a whole number >= 1. Default 63;
   *  1008 with eachBatch, whose batches gather takes up to it while the topic has records. Smaller shares slow
   *  work more evenly between the processes of a group (1: one record at a time). */
  maxInFlight?: number
  /** libmq: records one take copies out of the ring (held as one run), 1..63, at most maxInFlight. Default 63. */
  maxBatch?: number
  /** libmq: how a member waits once its topic is empty. The consumer pulls on the JS thread while records flow.
   *  'futex' (default): parks; the producer's wake reaches the event loop once (io_uring FUTEX_WAIT where the
   *  kernel has it, Linux 6.7+; else a waiter thread). Idle CPU ~0.
   *  'spin': the JS thread keeps taking for 50 us before it parks: lowest latency, the loop busy meanwhile.
   *  'spin_futex' | 'spin_yield' | 'busy_spin': a waiter thread that spins ~20 us first / never sleeps. */
  wait?: Wait
  /** libmq: what a throwing eachMessage / eachBatch does. Default (undefined): the failed record is nacked and the
   *  consumer goes on; the group retries it after its backoff (message.attempt one higher) and, after its last
   *  attempt, publishes it to `<topic>.dlq` (README "Retries and dead letters"). A policy object: the group's retry
   *  policy too, given to the group when this consumer creates it; an existing group keeps its own (a warning is
   *  logged when it differs; `mqctl set-retry` changes it; Topic.info() shows it). false: no nack for this consumer,
   *  a throw restarts the member as kafkajs restarts the consumer (`retry`). Not kafkajs' `retry`, which is
   *  about restarts. */
  redelivery?: RedeliveryPolicy | false
  /** libmq: the group's ordering, given to the group when this consumer creates it; an existing group keeps the
   *  one it was created with (a warning is logged when it differs; Topic.info() shows it). Default 'none'.
   *  Anything else throws KafkaJSNonRetriableError. */
  ordering?: Ordering
  sessionTimeout?: number
  rebalanceTimeout?: number
  heartbeatInterval?: number
  metadataMaxAge?: number
  maxBytesPerPartition?: number
  minBytes?: number
  maxBytes?: number
  maxWaitTimeInMs?: number
  maxInFlightRequests?: number
  readUncommitted?: boolean
  rackId?: string
  partitionAssigners?: any[]
}

/** libmq: a consumer group's retry policy for records whose handling failed (nacked): the delay before attempt n+1
 *  is backoffMs * factor^(n-1), at most maxBackoffMs, shortened by a random fraction up to `jitter`; after
 *  maxAttempts deliveries the record goes to the dead-letter topic `<topic>.dlq`. Missing fields take the defaults. */
export interface RedeliveryPolicy {
  /** Deliveries of a record, the first included, before it is dead-lettered: 1..63. Default 5. */
  maxAttempts?: number
  /** The delay after the first failure, ms: 0..maxBackoffMs. Default 100. */
  backoffMs?: number
  /** Each further failure multiplies the delay by this: 1..100. Default 2. */
  factor?: number
  /** The longest delay, ms: backoffMs..86400000 (a day). Default 30000. */
  maxBackoffMs?: number
  /** A delay is shortened by a random fraction of itself up to this: 0..1. Default 0.1. */
  jitter?: number
}

/** Headers of a dead letter in `<topic>.dlq`, besides the record's own (decimal text but for topic, group, error). */
export type DeadLetterHeader = 'mq.dlq.topic' | 'mq.dlq.offset' | 'mq.dlq.group' | 'mq.dlq.attempts' |
  'mq.dlq.first_failure_ns' | 'mq.dlq.error'

/** Computed on first access (getters, settable), so `{...message}` and Object.keys() see no fields: use the fields,
 *  or JSON.stringify / toJSON(), which give the plain kafkajs shape. */
export type KafkaMessage = {
  key: Buffer | null
  /** A copy of the record's bytes (a view of the 64 KiB slab batches are copied into), never shared memory. */
  value: Buffer | null
  timestamp: string
  attributes: number
  offset: string
  headers?: IHeaders
  size: number
  isControlRecord?: boolean
  /** libmq: true when the record was handed out before: to a member that died or failed without acking it, or as a
   *  retry after a failure. */
  redelivered?: boolean
  /** libmq: the group's delivery of this record: 1, then one more per failed handler call (nack). */
  attempt?: number
  /** libmq: when the record first failed (ms since the epoch, a string as `timestamp`); undefined on attempt 1. */
  firstFailureTimestamp?: string
}

export type Batch = {
  topic: string
  partition: number
  highWatermark: string
  messages: KafkaMessage[]
  isEmpty(): boolean
  firstOffset(): string | null
  lastOffset(): string
  offsetLag(): string
  offsetLagLow(): string
}

export interface PartitionOffset {
  partition: number
  offset: string
}

export interface TopicOffsets {
  topic: string
  partitions: PartitionOffset[]
}

export interface Offsets {
  topics: TopicOffsets[]
}

export interface OffsetsByTopicPartition {
  topics: TopicOffsets[]
}

export interface EachMessagePayload {
  topic: string
  partition: number
  message: KafkaMessage
  heartbeat(): Promise<void>
  /** Pauses this topic; returns a function that resumes it. */
  pause(): () => void
}

export interface EachBatchPayload {
  batch: Batch
  resolveOffset(offset: string): void
  heartbeat(): Promise<void>
  pause(): () => void
  commitOffsetsIfNecessary(offsets?: Offsets): Promise<void>
  uncommittedOffsets(): OffsetsByTopicPartition
  isRunning(): boolean
  isStale(): boolean
}

export type EachMessageHandler = (payload: EachMessagePayload) => Promise<void>
export type EachBatchHandler = (payload: EachBatchPayload) => Promise<void>

export type ConsumerRunConfig = {
  /** Default true: a record is acked as soon as eachMessage resolves (never when it throws). */
  autoCommit?: boolean
  autoCommitInterval?: number | null
  autoCommitThreshold?: number | null
  eachBatchAutoResolve?: boolean
  partitionsConsumedConcurrently?: number
  eachBatch?: EachBatchHandler
  eachMessage?: EachMessageHandler
}

export type ConsumerSubscribeTopic = { topic: string | RegExp; fromBeginning?: boolean }
export type ConsumerSubscribeTopics = { topics: (string | RegExp)[]; fromBeginning?: boolean }

export type TopicPartitions = { topic: string; partitions: number[] }
export type TopicPartitionOffsetAndMetadata = {
  topic: string
  partition: number
  offset: string
  metadata?: string | null
}

export type MemberDescription = {
  clientHost: string
  clientId: string
  memberId: string
  memberAssignment: Buffer
  memberMetadata: Buffer
}

export type GroupDescription = {
  groupId: string
  members: MemberDescription[]
  protocol: string
  protocolType: string
  state: string
}

export type ConsumerEvents = {
  HEARTBEAT: 'consumer.heartbeat'
  COMMIT_OFFSETS: 'consumer.commit_offsets'
  GROUP_JOIN: 'consumer.group_join'
  FETCH_START: 'consumer.fetch_start'
  FETCH: 'consumer.fetch'
  START_BATCH_PROCESS: 'consumer.start_batch_process'
  END_BATCH_PROCESS: 'consumer.end_batch_process'
  CONNECT: 'consumer.connect'
  DISCONNECT: 'consumer.disconnect'
  STOP: 'consumer.stop'
  CRASH: 'consumer.crash'
  REBALANCING: 'consumer.rebalancing'
  RECEIVED_UNSUBSCRIBED_TOPICS: 'consumer.received_unsubscribed_topics'
  REQUEST: 'consumer.network.request'
  REQUEST_TIMEOUT: 'consumer.network.request_timeout'
  REQUEST_QUEUE_SIZE: 'consumer.network.request_queue_size'
}

export type Consumer = {
  connect(): Promise<void>
  /** Waits for the eachMessage in progress, acks what finished, hands the rest back to the group. */
  disconnect(): Promise<void>
  subscribe(subscription: ConsumerSubscribeTopics | ConsumerSubscribeTopic): Promise<void>
  stop(): Promise<void>
  run(config?: ConsumerRunConfig): Promise<void>
  /** offset = the next offset to read; acks the delivered records below it. */
  commitOffsets(topicPartitions: Array<TopicPartitionOffsetAndMetadata>): Promise<void>
  /** Moves the whole group (all its members) on that topic. */
  seek(topicPartition: { topic: string; partition: number; offset: string }): void
  describeGroup(): Promise<GroupDescription>
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void
  paused(): TopicPartitions[]
  resume(topics: Array<{ topic: string; partitions?: number[] }>): void
  on(eventName: ValueOf<ConsumerEvents>, listener: (...args: any[]) => void): RemoveInstrumentationEventListener<typeof eventName>
  logger(): Logger
  events: ConsumerEvents
}

// ---------------------------------------------------------------------------------------------------------------
// Admin

export interface AdminConfig {
  retry?: RetryOptions
}

export interface ITopicConfig {
  topic: string
  /** 1 (or -1 / unset): libmq topics have one partition. */
  numPartitions?: number
  replicationFactor?: number
  replicaAssignment?: object[]
  /** max.message.bytes, retention.bytes / segment.bytes / capacity (ring bytes, a power of two >= 64 KiB),
   *  policy (block | overwrite), block.timeout.ms, storage (shm | file), mode (octal), access_group. */
  configEntries?: { name: string; value: string }[]
}

export interface SeekEntry {
  partition: number
  offset: string
}

export interface PartitionMetadata {
  partitionErrorCode: number
  partitionId: number
  leader: number
  replicas: number[]
  isr: number[]
  offlineReplicas?: number[]
}

export interface ITopicMetadata {
  name: string
  partitions: PartitionMetadata[]
}

export type AdminEvents = {
  CONNECT: 'admin.connect'
  DISCONNECT: 'admin.disconnect'
  REQUEST: 'admin.network.request'
  REQUEST_TIMEOUT: 'admin.network.request_timeout'
  REQUEST_QUEUE_SIZE: 'admin.network.request_queue_size'
}

export type Admin = {
  connect(): Promise<void>
  disconnect(): Promise<void>
  listTopics(): Promise<string[]>
  /** true if every topic was created, false if one existed already. */
  createTopics(options: { validateOnly?: boolean; waitForLeaders?: boolean; timeout?: number; topics: ITopicConfig[] }): Promise<boolean>
  deleteTopics(options: { topics: string[]; timeout?: number }): Promise<void>
  createPartitions(options: any): Promise<never>
  fetchTopicMetadata(options?: { topics: string[] }): Promise<{ topics: Array<ITopicMetadata> }>
  fetchOffsets(options: { groupId: string; topics?: string[] }): Promise<Array<{ topic: string; partitions: Array<SeekEntry & { metadata: string | null }> }>>
  fetchOffsets(options: { groupId: string; topic: string }): Promise<Array<SeekEntry & { metadata: string | null }>>
  fetchTopicOffsets(topic: string): Promise<Array<SeekEntry & { high: string; low: string }>>
  fetchTopicOffsetsByTimestamp(topic: string, timestamp?: number): Promise<Array<SeekEntry>>
  describeCluster(): Promise<{ brokers: Array<{ nodeId: number; host: string; port: number }>; controller: number | null; clusterId: string }>
  setOffsets(options: { groupId: string; topic: string; partitions: SeekEntry[] }): Promise<void>
  resetOffsets(options: { groupId: string; topic: string; earliest: boolean }): Promise<void>
  listGroups(): Promise<{ groups: Array<{ groupId: string; protocolType: string }> }>
  deleteGroups(groupIds: string[]): Promise<Array<{ groupId: string; errorCode?: number }>>
  /** libmq adds `topics`: the topics that have the group, each with the group's ordering there (a group is made per
   *  topic) and, for an 'exclusive' one, the process of the member that takes (absent while none does). */
  describeGroups(groupIds: string[]): Promise<{ groups: Array<{ groupId: string; members: Array<{ memberId: string; clientId: string; clientHost: string; memberMetadata: Buffer; memberAssignment: Buffer }>; protocol: string; protocolType: string; state: string; errorCode: number; topics: Array<{ topic: string; ordering?: Ordering; activePid?: number }> }> }>
  describeConfigs(options: { resources: Array<{ type: ConfigResourceTypes; name: string; configNames?: string[] }>; includeSynonyms?: boolean }): Promise<{ resources: Array<{ errorCode: number; errorMessage: string | null; resourceType: ConfigResourceTypes; resourceName: string; configEntries: Array<{ configName: string; configValue: string; readOnly: boolean; isDefault: boolean; configSource: ConfigSource; isSensitive: boolean; configSynonyms: any[] }> }>; throttleTime: number }>
  /** Rejects: libmq topic settings are fixed at creation (KafkaJSProtocolError INVALID_CONFIG). */
  alterConfigs(options: { validateOnly?: boolean; resources: Array<{ type: ConfigResourceTypes; name: string; configEntries: Array<{ name: string; value: string }> }> }): Promise<never>
  /** The topic then starts at `offset` ('-1': the latest); groups behind it move up to it. */
  deleteTopicRecords(options: { topic: string; partitions: SeekEntry[] }): Promise<void>
  /** Rejects: a topic has one partition with one replica on this host. */
  alterPartitionReassignments(options: { topics: Array<{ topic: string; partitionAssignment: Array<{ partition: number; replicas: number[] }> }>; timeout?: number }): Promise<never>
  /** No reassignment is ever in progress: `{ topics: [] }`. */
  listPartitionReassignments(options: { topics?: Array<{ topic: string; partitions: number[] }>; timeout?: number }): Promise<{ topics: Array<{ topic: string; partitions: Array<{ partition: number; replicas: number[]; addingReplicas: number[]; removingReplicas: number[] }> }> }>
  /** Reject: libmq has no ACLs (file modes and access groups guard topics). */
  createAcls(options: any): Promise<never>
  describeAcls(options: any): Promise<never>
  deleteAcls(options: any): Promise<never>
  logger(): Logger
  on(eventName: ValueOf<AdminEvents>, listener: (...args: any[]) => void): RemoveInstrumentationEventListener<typeof eventName>
  events: AdminEvents
}

export const Partitioners: {
  DefaultPartitioner: () => () => number
  LegacyPartitioner: () => () => number
  JavaCompatiblePartitioner: () => () => number
}
export const PartitionAssigners: { roundRobin: any }
export enum ResourceTypes {
  UNKNOWN = 0,
  ANY = 1,
  TOPIC = 2,
  GROUP = 3,
  CLUSTER = 4,
  TRANSACTIONAL_ID = 5,
  DELEGATION_TOKEN = 6,
}
export enum ConfigResourceTypes {
  UNKNOWN = 0,
  TOPIC = 2,
  BROKER = 4,
  BROKER_LOGGER = 8,
}
export enum ConfigSource {
  UNKNOWN = 0,
  TOPIC_CONFIG = 1,
  DYNAMIC_BROKER_CONFIG = 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG = 3,
  STATIC_BROKER_CONFIG = 4,
  DEFAULT_CONFIG = 5,
  DYNAMIC_BROKER_LOGGER_CONFIG = 6,
}
/** Present for kafkajs code that imports it; encode/decode throw: libmq has no partition assignments. */
export const AssignerProtocol: {
  MemberMetadata: { encode(metadata: any): Buffer; decode(buffer: Buffer): any }
  MemberAssignment: { encode(assignment: any): Buffer; decode(buffer: Buffer): any }
}
export const AclResourceTypes: typeof ResourceTypes
export enum AclOperationTypes {
  UNKNOWN = 0,
  ANY = 1,
  ALL = 2,
  READ = 3,
  WRITE = 4,
  CREATE = 5,
  DELETE = 6,
  ALTER = 7,
  DESCRIBE = 8,
  CLUSTER_ACTION = 9,
  DESCRIBE_CONFIGS = 10,
  ALTER_CONFIGS = 11,
  IDEMPOTENT_WRITE = 12,
}
export enum AclPermissionTypes {
  UNKNOWN = 0,
  ANY = 1,
  DENY = 2,
  ALLOW = 3,
}
export enum ResourcePatternTypes {
  UNKNOWN = 0,
  ANY = 1,
  MATCH = 2,
  LITERAL = 3,
  PREFIXED = 4,
}

// ---------------------------------------------------------------------------------------------------------------
// Errors (kafkajs names; every libmq error also carries `mqCode`, the libmq error code, and usually `topic`)

export type MqCode =
  | 'full' | 'timed_out' | 'too_large' | 'lost' | 'revoked' | 'not_found' | 'exists' | 'invalid_name'
  | 'invalid_argument' | 'bad_segment' | 'version_mismatch' | 'permission_denied' | 'no_daemon' | 'io' | 'limit'
  | 'busy' | 'wrong_process'

export class KafkaJSError extends Error {
  readonly message: string
  readonly name: string
  readonly retriable: boolean
  readonly helpUrl?: string
  readonly cause?: Error | unknown
  readonly mqCode?: MqCode
  readonly topic?: string
  constructor(e: Error | string, metadata?: { retriable?: boolean; cause?: Error })
}
export class KafkaJSNonRetriableError extends KafkaJSError {
  constructor(e: Error | string, metadata?: { cause?: Error })
}
export class KafkaJSProtocolError extends KafkaJSError {
  readonly code: number
  readonly type: string
  constructor(e: Error | string | { message: string; type: string; code: number; retriable: boolean }, metadata?: { retriable?: boolean })
}
export class KafkaJSOffsetOutOfRange extends KafkaJSProtocolError {
  readonly topic: string
  readonly partition: number
  constructor(e: Error | string | object, metadata?: { topic: string; partition: number })
}
export class KafkaJSMemberIdRequired extends KafkaJSProtocolError {}
export class KafkaJSNumberOfRetriesExceeded extends KafkaJSNonRetriableError {
  readonly retryCount: number
  readonly retryTime: number
  constructor(e: Error | string, metadata?: { retryCount: number; retryTime: number; cause?: Error })
}
export class KafkaJSConnectionError extends KafkaJSError {
  /** The socket path that could not be reached. */
  readonly broker: string
  readonly code?: string
  constructor(e: Error | string, metadata?: { broker?: string; code?: string; cause?: Error })
}
export class KafkaJSConnectionClosedError extends KafkaJSConnectionError {}
export class KafkaJSRequestTimeoutError extends KafkaJSError {
  constructor(e: Error | string, metadata?: object)
}
export class KafkaJSMetadataNotLoaded extends KafkaJSError {}
export class KafkaJSTopicMetadataNotLoaded extends KafkaJSMetadataNotLoaded {
  constructor(e: Error | string, metadata?: { topic: string })
}
export class KafkaJSStaleTopicMetadataAssignment extends KafkaJSError {
  constructor(e: Error | string, metadata?: { topic: string; unknownPartitions: any[] })
}
export class KafkaJSDeleteGroupsError extends KafkaJSError {
  constructor(e: Error | string, groups?: any[])
}
export class KafkaJSServerDoesNotSupportApiKey extends KafkaJSNonRetriableError {}
export class KafkaJSBrokerNotFound extends KafkaJSError {}
export class KafkaJSPartialMessageError extends KafkaJSNonRetriableError {}
export class KafkaJSSASLAuthenticationError extends KafkaJSNonRetriableError {}
export class KafkaJSGroupCoordinatorNotFound extends KafkaJSNonRetriableError {}
export class KafkaJSNotImplemented extends KafkaJSNonRetriableError {}
export class KafkaJSTimeout extends KafkaJSNonRetriableError {}
export class KafkaJSLockTimeout extends KafkaJSTimeout {}
export class KafkaJSUnsupportedMagicByteInMessageSet extends KafkaJSNonRetriableError {}
export class KafkaJSDeleteTopicRecordsError extends KafkaJSError {}
export class KafkaJSInvariantViolation extends KafkaJSNonRetriableError {}
export class KafkaJSInvalidVarIntError extends KafkaJSNonRetriableError {}
export class KafkaJSInvalidLongError extends KafkaJSNonRetriableError {}
export class KafkaJSCreateTopicError extends KafkaJSProtocolError {
  constructor(e: Error | string | object, topicName: string)
}
export class KafkaJSAggregateError extends Error {
  readonly errors: (Error | string)[]
  constructor(message: Error | string, errors: (Error | string)[])
}
export class KafkaJSFetcherRebalanceError extends Error {}
export class KafkaJSNoBrokerAvailableError extends KafkaJSError {}
export class KafkaJSAlterPartitionReassignmentsError extends KafkaJSProtocolError {}

/** libmq: the topic does not exist and mqd's auto-create is off (type UNKNOWN_TOPIC_OR_PARTITION, code 3). */
export class KafkaJSTopicNotFound extends KafkaJSProtocolError {
  constructor(message: string, metadata?: { topic?: string })
}
/** libmq: the record is larger than the topic's max message size (type MESSAGE_TOO_LARGE, code 10). */
export class KafkaJSMessageTooLarge extends KafkaJSProtocolError {
  constructor(message: string, metadata?: { topic?: string })
}
/** libmq: a `block` topic stayed full (fast path publish: at once; send: after the block timeout). Retriable. */
export class KafkaJSTopicFull extends KafkaJSError {
  readonly published?: number
  constructor(message: string, metadata?: { topic?: string })
}

// ---------------------------------------------------------------------------------------------------------------
// Native fast path

export interface TopicCreateOptions {
  /** Ring bytes: a power of two, 64 KiB .. 1 TiB. Default: mqd's (1 MiB). */
  capacity?: number
  /** Largest record (key + headers + payload). Default: capacity / 4. */
  maxMessage?: number
  policy?: 'block' | 'overwrite'
  blockTimeoutMs?: number
  storage?: 'shm' | 'file'
  mode?: number
  accessGroup?: string
  /** Consumer groups created with the topic (they keep records from the start). */
  groups?: string[]
}

export interface TopicOpenOptions {
  socket?: string
  clientId?: string
  /** Create the topic with these options (KafkaJSProtocolError TOPIC_ALREADY_EXISTS if it exists). */
  create?: TopicCreateOptions
}

export interface GroupInfo {
  name: string
  committed: string
  next: string
  lag: string
  members: number
  unacked: number
  /** Topic.info() (from the segment): records nacked and waiting for their retry, at most 32. */
  retrying?: number
  /** Topic.info(): records back in the group waiting for a member (a dead member's; with ordering 'key', those
   *  parked behind a key another member holds, at most 23). Included in `unacked`. */
  parked?: number
  /** Topic.info(): the group's retry policy, every field filled in. */
  retry?: Required<RedeliveryPolicy>
  /** The group's ordering (absent only in the report of an mqd too old to send it). */
  ordering?: Ordering
  /** An 'exclusive' group: the process of the member that takes; absent while none does. */
  activePid?: number
}

export interface TopicInfo {
  name: string
  capacity: number
  maxMessage: number
  policy: 'block' | 'overwrite'
  storage: 'shm' | 'file'
  blockTimeoutMs: number
  mode: number
  earliest: string
  latest: string
  bytesWritten: string
  producers: number
  stalledProducers: number
  /** The process of the topic's exclusive producer (a C++ ProducerOptions::exclusive one); absent when none. */
  exclusiveProducerPid?: number
  groups: GroupInfo[]
}

/** Read-only getters, computed on first access. */
export interface FastMessage {
  offset: bigint
  /** A copy: a view of the 64 KiB slab batches are copied into (keeping a message keeps its slab). */
  value: Buffer
  key: Buffer | null
  headers: { [name: string]: Buffer | Buffer[] }
  /** Milliseconds since the epoch. */
  timestamp: number
  redelivered: boolean
  /** The group's delivery of this record: 1, then one more per nack. */
  attempt: number
  /** Milliseconds since the epoch of the record's first nack; undefined on attempt 1. */
  firstFailureTimestamp: number | undefined
}

export interface FastConsumerOptions {
  group: string
  fromBeginning?: boolean
  /** Records the member holds unacked (the batch being handed out): caps maxBatch. Default 63. */
  maxInFlight?: number
  /** Records per take, 1..63. Default 63. */
  maxBatch?: number
  /** As ConsumerConfig.wait. Default 'futex'. */
  wait?: Wait
  /** The group's retry policy for nack(), given to the group when this member creates it; an existing group keeps
   *  its own (`mqctl set-retry` changes it; FastConsumer.redelivery says the group's). Default: RedeliveryPolicy's
   *  defaults. */
  redelivery?: RedeliveryPolicy
  /** As ConsumerConfig.ordering: given to the group when this member creates it. Default 'none'. */
  ordering?: Ordering
}

export interface NackOptions {
  /** Wait this long before the retry, ms: 0..86400000. Default: the group's backoff for the record's attempt. */
  delayMs?: number
  /** Why it failed: the dead letter's mq.dlq.error header, if this was its last attempt. */
  error?: string | Error
}

export class FastConsumer implements AsyncIterableIterator<FastMessage> {
  /** Overwrite topics: records this consumer lost to lapping. */
  readonly lost: number
  /** Acks `msg` and everything received before it, now (otherwise: when the loop asks for the next record). */
  ack(msg: FastMessage): void
  /** Hands `msg` back to the group for another attempt after the delay (to whichever member takes first, before new
   *  records) and acks every record received before it; after its last attempt (redelivery.maxAttempts) it goes to
   *  `<topic>.dlq` instead ('deadLettered'). Await it before the loop asks for the next record, which acks it. Waits
   *  only while the group's retry table is full (32 records wait), taking the next retry that comes due to make
   *  room (handed out after the records in hand). Rejects, the record still held: mqCode 'invalid_argument' (an
   *  overwrite topic, a record nacked or acked already), or the dead-letter publish's error. */
  nack(msg: FastMessage, options?: NackOptions): Promise<'retry' | 'deadLettered'>
  next(): Promise<IteratorResult<FastMessage>>
  /** for await (const batch of c.batches()): arrays of up to maxBatch messages, one promise per batch; a batch is
   *  acked when the loop asks for the next one; leaving the loop closes the consumer. */
  batches(): AsyncGenerator<FastMessage[], void, undefined>
  /** The group's ordering, the one it was created with whatever this member asked for; null once closed. */
  readonly ordering: Ordering | null
  /** The group's retry policy, the one it has whatever this member asked for; null once closed. */
  readonly redelivery: Required<RedeliveryPolicy> | null
  /** 'io_uring' or 'thread': how this member parks (see ConsumerConfig.wait); null once closed. */
  readonly waiter: 'io_uring' | 'thread' | null
  return(): Promise<IteratorResult<FastMessage>>
  [Symbol.asyncIterator](): AsyncIterableIterator<FastMessage>
  /** Stops the consumer thread and leaves the group; records not acked go back to it. */
  close(): Promise<void>
}

export class Topic {
  static open(name: string, options?: TopicOpenOptions): Promise<Topic>
  readonly name: string
  /** Synchronous; never waits: KafkaJSTopicFull at once on a full `block` topic. -> the record's offset. */
  publish(value: Buffer | Uint8Array | string): bigint
  /** Synchronous; offsets in order (not necessarily consecutive when other producers publish too). */
  publishBatch(values: Array<Buffer | Uint8Array | string>): BigUint64Array
  /** Waits (off the event loop, up to the topic's block timeout) while the topic is full. */
  publishAsync(value: Buffer | Uint8Array | string): Promise<bigint>
  publishAsync(values: Array<Buffer | Uint8Array | string>): Promise<BigUint64Array>
  info(): TopicInfo
  resetGroup(group: string, to: 'earliest' | 'latest' | bigint | number | string): void
  /** Changes a group's retry policy for every member (as `mqctl set-retry`); fields not given take the defaults. */
  setRetryPolicy(group: string, policy: RedeliveryPolicy): void
  consumer(options: FastConsumerOptions): FastConsumer
  /** Closes its consumers, its producer slot and its connection to mqd. */
  close(): Promise<void>
}
