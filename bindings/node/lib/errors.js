'use strict';
// kafkajs-compatible error classes (same names, `retriable`, and for protocol errors Kafka's `type` and `code`),
// plus the mapping from libmq's error codes (`err.mqCode`, the mq::Errc name) to them. Every error keeps the
// libmq message, which names the topic and the problem ("record too large: topic=orders max=1024 size=2048").

class KafkaJSError extends Error {
  constructor(e, { retriable = true, cause } = {}) {
    super(typeof e === 'string' ? e : e && e.message, cause === undefined ? undefined : { cause });
    if (Error.captureStackTrace) Error.captureStackTrace(this, this.constructor);
    this.message = (e && e.message) || e;
    this.name = this.constructor.name;
    this.retriable = retriable;
    this.helpUrl = undefined;
    if (cause !== undefined) this.cause = cause;
    if (e && typeof e === 'object') {
      if (e.mqCode !== undefined) this.mqCode = e.mqCode;
      if (e.topic !== undefined) this.topic = e.topic;
    }
  }
}

class KafkaJSNonRetriableError extends KafkaJSError {
  constructor(e, { cause } = {}) {
    super(e, { retriable: false, cause });
  }
}

// `e` is {message, type, code, retriable} as kafkajs' protocol error table gives them.
class KafkaJSProtocolError extends KafkaJSError {
  constructor(e, { retriable = e.retriable } = {}) {
    super(e, { retriable });
    this.type = e.type;
    this.code = e.code;
  }
}

class KafkaJSOffsetOutOfRange extends KafkaJSProtocolError {
  constructor(e, { topic, partition } = {}) {
    super(e);
    this.topic = topic;
    this.partition = partition;
  }
}

class KafkaJSMemberIdRequired extends KafkaJSProtocolError {}

class KafkaJSNumberOfRetriesExceeded extends KafkaJSNonRetriableError {
  constructor(e, { retryCount, retryTime, cause } = {}) {
    super(e, { cause });
    this.retryCount = retryCount;
    this.retryTime = retryTime;
  }
}

class KafkaJSConnectionError extends KafkaJSError {
  constructor(e, { broker, code, cause } = {}) {
    super(e, { cause });
    this.broker = broker;
    this.code = code;
  }
}

class KafkaJSConnectionClosedError extends KafkaJSConnectionError {}

class KafkaJSRequestTimeoutError extends KafkaJSError {
  constructor(e, meta = {}) {
    super(e);
    Object.assign(this, meta);
  }
}

class KafkaJSMetadataNotLoaded extends KafkaJSError {}
class KafkaJSTopicMetadataNotLoaded extends KafkaJSMetadataNotLoaded {
  constructor(e, { topic } = {}) {
    super(e);
    this.topic = topic;
  }
}
class KafkaJSStaleTopicMetadataAssignment extends KafkaJSError {
  constructor(e, { topic, unknownPartitions } = {}) {
    super(e);
    this.topic = topic;
    this.unknownPartitions = unknownPartitions;
  }
}
class KafkaJSDeleteGroupsError extends KafkaJSError {
  constructor(e, groups = []) {
    super(e);
    this.groups = groups;
  }
}
class KafkaJSServerDoesNotSupportApiKey extends KafkaJSNonRetriableError {}
class KafkaJSBrokerNotFound extends KafkaJSError {}
class KafkaJSPartialMessageError extends KafkaJSNonRetriableError {}
class KafkaJSSASLAuthenticationError extends KafkaJSNonRetriableError {}
class KafkaJSGroupCoordinatorNotFound extends KafkaJSNonRetriableError {}
class KafkaJSNotImplemented extends KafkaJSNonRetriableError {}
class KafkaJSTimeout extends KafkaJSNonRetriableError {}
class KafkaJSLockTimeout extends KafkaJSTimeout {}
class KafkaJSUnsupportedMagicByteInMessageSet extends KafkaJSNonRetriableError {}
// kafkajs' shape: `partitions` = [{partition, offset, error}], retriable only if every error is.
class KafkaJSDeleteTopicRecordsError extends KafkaJSError {
  constructor({ topic, partitions }) {
    const retriable = partitions.filter(({ error }) => error != null).every(({ error }) => error.retriable === true);
    super('Error while deleting records', { retriable });
    this.topic = topic;
    this.partitions = partitions;
  }
}
class KafkaJSInvariantViolation extends KafkaJSNonRetriableError {}
class KafkaJSInvalidVarIntError extends KafkaJSNonRetriableError {}
class KafkaJSInvalidLongError extends KafkaJSNonRetriableError {}
class KafkaJSCreateTopicError extends KafkaJSProtocolError {
  constructor(e, topicName) {
    super(e);
    this.topic = topicName;
  }
}
class KafkaJSAggregateError extends Error {
  constructor(message, errors) {
    super(message);
    this.errors = errors;
    this.name = 'KafkaJSAggregateError';
  }
}
class KafkaJSFetcherRebalanceError extends Error {}
class KafkaJSNoBrokerAvailableError extends KafkaJSError {}
class KafkaJSAlterPartitionReassignmentsError extends KafkaJSProtocolError {}

// libmq-specific refinements (still instances of the kafkajs classes above).
// The topic does not exist and the daemon's auto-create is off (Kafka: UNKNOWN_TOPIC_OR_PARTITION).
class KafkaJSTopicNotFound extends KafkaJSProtocolError {
  constructor(message, { topic } = {}) {
    super({ message, type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 3, retriable: true });
    this.topic = topic;
  }
}
// The record is larger than the topic's max message size (Kafka: MESSAGE_TOO_LARGE).
class KafkaJSMessageTooLarge extends KafkaJSProtocolError {
  constructor(message, { topic } = {}) {
    super({ message, type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false });
    this.topic = topic;
  }
}
// A `block` topic stayed full for its whole block timeout: nothing was written; retry later.
class KafkaJSTopicFull extends KafkaJSError {
  constructor(message, { topic } = {}) {
    super(message, { retriable: true });
    this.topic = topic;
  }
}

const PROTOCOL = {
  permission_denied: { type: 'TOPIC_AUTHORIZATION_FAILED', code: 29, retriable: false },
  invalid_name: { type: 'INVALID_TOPIC_EXCEPTION', code: 17, retriable: false },
  exists: { type: 'TOPIC_ALREADY_EXISTS', code: 36, retriable: false },
};

function decorate(err, native, topic) {
  if (native && native.mqCode) err.mqCode = native.mqCode;
  if (topic !== undefined && err.topic === undefined) err.topic = topic;
  if (native && native.published !== undefined) err.published = native.published;
  if (native && native.stack && err.stack) err.stack = err.stack + '\nCaused by native: ' + native.message;
  return err;
}

// The kafkajs-style error for each libmq error code (native.errorCodes, the mq::Errc table: a test checks that this
// table has exactly those codes): (message, {topic, socket}) -> error.
const retriable = (message) => new KafkaJSError(message, { retriable: true });
const nonRetriable = (message) => new KafkaJSNonRetriableError(message);
const protocol = (message, { code }) => new KafkaJSProtocolError({ message, ...PROTOCOL[code] });
const BY_CODE = {
  no_daemon: (message, { socket }) => new KafkaJSConnectionError(
    message.replace('ClientOptions::socket', "new Kafka({brokers: ['unix:/path/to/mqd.sock']}) or the socket option"),
    { broker: socket, code: 'no_daemon' }),
  // mqd's own text says when its auto-create is off (an open); the Node way to create is added there.
  not_found: (message, { topic }) => new KafkaJSTopicNotFound(
    message.replace(/(create it first, e\.g\. `mqctl create [^`]*`)/, '$1 or admin.createTopics()'), { topic }),
  too_large: (message, { topic }) => new KafkaJSMessageTooLarge(message, { topic }),
  full: (message, { topic }) => new KafkaJSTopicFull(message, { topic }),
  permission_denied: protocol,
  invalid_name: protocol,
  exists: protocol,
  limit: retriable,
  busy: retriable,
  timed_out: retriable,
  io: retriable,
  lost: retriable,
  invalid_argument: nonRetriable,
  bad_segment: nonRetriable,
  version_mismatch: nonRetriable,
  revoked: nonRetriable,
  wrong_process: nonRetriable,
};

// Turns an error of the native addon (with `mqCode`) into the matching kafkajs-style error. Errors that are
// already KafkaJSError (or unrelated JS errors such as TypeError) pass through.
function fromNative(e, { topic, socket } = {}) {
  if (!e || e instanceof KafkaJSError || !e.mqCode) return e;
  const make = BY_CODE[e.mqCode] || nonRetriable;
  return decorate(make(e.message, { topic, socket, code: e.mqCode }), e, topic);
}

module.exports = {
  BY_CODE,
  KafkaJSError,
  KafkaJSNonRetriableError,
  KafkaJSProtocolError,
  KafkaJSOffsetOutOfRange,
  KafkaJSMemberIdRequired,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSConnectionError,
  KafkaJSConnectionClosedError,
  KafkaJSRequestTimeoutError,
  KafkaJSMetadataNotLoaded,
  KafkaJSTopicMetadataNotLoaded,
  KafkaJSStaleTopicMetadataAssignment,
  KafkaJSDeleteGroupsError,
  KafkaJSServerDoesNotSupportApiKey,
  KafkaJSBrokerNotFound,
  KafkaJSPartialMessageError,
  KafkaJSSASLAuthenticationError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNotImplemented,
  KafkaJSTimeout,
  KafkaJSLockTimeout,
  KafkaJSUnsupportedMagicByteInMessageSet,
  KafkaJSDeleteTopicRecordsError,
  KafkaJSInvariantViolation,
  KafkaJSInvalidVarIntError,
  KafkaJSInvalidLongError,
  KafkaJSCreateTopicError,
  KafkaJSAggregateError,
  KafkaJSFetcherRebalanceError,
  KafkaJSNoBrokerAvailableError,
  KafkaJSAlterPartitionReassignmentsError,
  KafkaJSTopicNotFound,
  KafkaJSMessageTooLarge,
  KafkaJSTopicFull,
  fromNative,
};
