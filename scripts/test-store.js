// Runs the store tests once for every SQLite driver this Node.js can load (node:sqlite, sqlite3).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'dist', 'test', 'store');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).map((f) => path.join(dir, f));
const { availableDrivers } = require('../dist/nodes/lib/driver.js');
const drivers = availableDrivers();
if (drivers.length === 0) {
  console.error(`no SQLite driver can be loaded on Node.js ${process.version}`);
  process.exit(1);
}
let failed = false;
for (const driver of drivers) {
  console.log(`# store tests on Node.js ${process.version} with ${driver}`);
  const run = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit', env: { ...process.env, FLOW_CACHE_DRIVER: driver } });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
