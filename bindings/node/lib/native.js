'use strict';
// Loads the compiled addon (built by `node-gyp rebuild --nodedir=/usr`, the package's install script).
const path = require('path');

const candidates = ['build/Release/mq_node.node', 'build/Debug/mq_node.node'];
let addon;
let firstError;
for (const rel of candidates) {
  try {
    addon = require(path.join(__dirname, '..', rel));
    break;
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
    firstError = firstError || e;
  }
}
if (!addon) {
  const e = new Error(
    'libmq: the native addon is not built (' + candidates.join(' or ') + ' missing). ' +
      'Run `npm ci` (or `npx node-gyp rebuild --nodedir=/usr`) in the package folder.',
  );
  e.cause = firstError;
  throw e;
}
module.exports = addon;
