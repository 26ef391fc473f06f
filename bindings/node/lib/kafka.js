'use strict';
// new Kafka({clientId, brokers, socket?, logLevel?, logCreator?, requestTimeout?, retry?}).
// `brokers` is accepted for kafkajs compatibility and ignored, except an entry `unix:/path`, which names mqd's
// socket. The socket: option `socket`, else a `unix:` broker, else $MQ_SOCKET, else /run/mq/mqd.sock.
const { resolveSocket } = require('./common');
const { createLogger, logLevel } = require('./logger');
const { Producer } = require('./producer');
const { Consumer } = require('./consumer');
const { Admin } = require('./admin');

class Kafka {
  constructor(config = {}) {
    this.config = config;
    this.clientId = config.clientId || 'libmq';
    this.socket = resolveSocket(config);
    this.requestTimeout = config.requestTimeout || 5000;
    this.retry = config.retry || {};
    this.logger_ = createLogger({ level: config.logLevel ?? logLevel.INFO, logCreator: config.logCreator });
  }

  connection() {
    return { socket: this.socket, clientId: this.clientId, timeout: this.requestTimeout };
  }

  producer(config = {}) {
    return new Producer(this, config);
  }

  consumer(config = {}) {
    return new Consumer(this, config);
  }

  admin(config = {}) {
    return new Admin(this, config);
  }

  logger() {
    return this.logger_;
  }
}

module.exports = { Kafka };
