// Runs the store tests once for every SQLite driver the store supports on this Node.js:
//   node:sqlite  on Node.js >= 22.13 (earlier lines have it only behind a flag, or not at all)
//   sqlite3      through the optional @keyv/sqlite, which npm install puts in node_modules
// A driver that should load here and does not is a failure, not a driver quietly left out of the run.
//   FLOW_CACHE_DRIVERS=node:sqlite   runs only the drivers named (comma-separated); each must load
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { satisfies } = require('./userdir');

const dir = path.join(__dirname, '..', 'dist', 'test', 'store');
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => path.join(dir, f));
const { availableDrivers, DRIVER_CHOICES } = require('../dist/nodes/lib/driver.js');

const supported = DRIVER_CHOICES.filter((choice) => choice !== 'auto');
const named = (process.env.FLOW_CACHE_DRIVERS ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);
for (const name of named) {
  if (!supported.includes(name)) {
    console.error(`FLOW_CACHE_DRIVERS: unknown driver "${name}" (${supported.join(', ')})`);
    process.exit(2);
  }
}
const expected = named.length > 0 ? named : supported.filter((name) => name !== 'node:sqlite' || satisfies(process.versions.node, '>=22.13.0'));
const available = availableDrivers();
const missing = expected.filter((name) => !available.includes(name));
if (missing.length > 0) {
  for (const name of missing) {
    console.error(
      name === 'node:sqlite'
        ? `driver node:sqlite cannot be loaded on Node.js ${process.version}`
        : 'driver sqlite3 cannot be loaded: @keyv/sqlite or its native sqlite3 module is missing or did not build (npm install builds it)',
    );
  }
  console.error(
    `the store tests would not cover ${missing.join(' and ')}; to run without it, name the drivers to run: FLOW_CACHE_DRIVERS=${expected.filter((name) => !missing.includes(name)).join(',') || '...'}`,
  );
  process.exit(1);
}

let failed = false;
for (const driver of expected) {
  console.log(`# store tests on Node.js ${process.version} with ${driver}`);
  const run = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit', env: { ...process.env, FLOW_CACHE_DRIVER: driver } });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
