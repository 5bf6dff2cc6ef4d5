// Runs the runtime suites (dist/test/runtime/) once per Node-RED line, in-process on the Node.js running this script.
//   node scripts/test-runtime.js        every installed line whose engines accept this Node.js
//                                       (Node 20: Node-RED 4.1; Node >= 22.9: 4.1 and 5)
//   node scripts/test-runtime.js 5      only the lines named (4, 5), whatever this Node.js is
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { nodeRedPackage, satisfies, root } = require('./userdir');

const named = process.argv.slice(2);
for (const line of named) {
  if (line !== '4' && line !== '5') {
    console.error(`unknown Node-RED line "${line}" (4 or 5)`);
    process.exit(2);
  }
}
const lines = named.length > 0 ? named : ['4', '5'];
// the files themselves: Node 22 and later read a bare directory given to --test as a module to run
const dir = path.join('dist', 'test', 'runtime');
const files = fs
  .readdirSync(path.join(root, dir))
  .filter((file) => file.endsWith('.test.js'))
  .map((file) => path.join(dir, file));
let failed = false;
for (const line of lines) {
  const { version, engines } = nodeRedPackage(line);
  if (named.length === 0 && !satisfies(process.versions.node, engines)) {
    console.log(`# Node-RED ${version}: skipped, it needs Node.js ${engines} (this is ${process.versions.node})`);
    continue;
  }
  console.log(`# runtime tests: Node-RED ${version} on Node.js ${process.versions.node}`);
  const run = spawnSync(process.execPath, ['--test', ...files], {
    cwd: root,
    env: { ...process.env, NODE_RED_LINE: line },
    stdio: 'inherit',
  });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
