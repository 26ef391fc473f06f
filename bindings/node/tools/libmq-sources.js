// Prints the libmq library sources that binding.gyp compiles into the addon (every .cpp under libmq/src except
// atomic16.cpp, which is built alone with -mcx16), so a source file added to libmq needs no change here.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', process.argv[2] || '../../libmq/src');
const out = [];
(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.name.endsWith('.cpp') && entry.name !== 'atomic16.cpp') out.push(full);
  }
})(root);
process.stdout.write(out.map((f) => path.relative(path.resolve(__dirname, '..'), f)).join('\n') + '\n');
