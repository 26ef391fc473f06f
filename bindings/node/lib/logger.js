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
      // A logCreator that throws must not take the process down with it (a log is called from callbacks and
      // loops with no caller to catch): the failure goes to stderr, once per call.
      try {
        sink({ namespace, level: lvl, label: names[lvl], log: { timestamp: new Date().toISOString(), message, ...extra } });
      } catch (e) {
        try {
          process.stderr.write(`libmq: the logCreator threw (${e && e.message}) while logging: ${message}\n`);
        } catch {
          // nowhere left to report it
        }
      }
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
