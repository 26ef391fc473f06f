'use strict';
// kafkajs-style logging: logLevel, logCreator, namespaces; the default writes one JSON line per entry.

const logLevel = Object.freeze({ NOTHING: 0, ERROR: 1, WARN: 2, INFO: 4, DEBUG: 5 });
const names = { 1: 'ERROR', 2: 'WARN', 4: 'INFO', 5: 'DEBUG' };

function defaultLogCreator() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log;
    const line = JSON.stringify({
      level: label,
      timestamp: log.timestamp,
      logger: 'libmq',
      message: namespace ? `[${namespace}] ${message}` : message,
      ...extra,
    }, (k, v) => (v instanceof Error ? v.message : typeof v === 'bigint' ? v.toString() : v));
    (level <= logLevel.WARN ? console.error : console.log)(line);
  };
}

function createLogger({ level = logLevel.INFO, logCreator = defaultLogCreator } = {}) {
  const sink = logCreator(level);
  const make = (namespace) => {
    const at = (lvl) => (message, extra = {}) => {
      if (lvl > level || level === logLevel.NOTHING) return;
      sink({ namespace, level: lvl, label: names[lvl], log: { timestamp: new Date().toISOString(), message, ...extra } });
    };
    return {
      info: at(logLevel.INFO),
      error: at(logLevel.ERROR),
      warn: at(logLevel.WARN),
      debug: at(logLevel.DEBUG),
      namespace: (ns) => make(ns),
      setLogLevel: (l) => { level = l; },
    };
  };
  return make('');
}

module.exports = { logLevel, createLogger };
