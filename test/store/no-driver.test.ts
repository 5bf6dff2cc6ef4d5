// Where no SQLite driver can load (Node.js 20, 21, 22.0–22.12 or 23.0–23.3, whose node:sqlite needs a
// flag, without the optional sqlite3 module: its build failed, or npm install --ignore-scripts), opening
// a store fails with an error that names the cause and the fix, and creates nothing. Run in a child
// process whose module loader cannot find node:sqlite, sqlite3 or @keyv/sqlite, as on such a machine.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../support/harness';

const dist = path.join(__dirname, '..', '..', 'nodes', 'lib');

/** Runs `script` in a Node.js (this one) that cannot load any SQLite driver; its stdout is JSON. */
function withoutDrivers(script: string): unknown {
  const dir = tempDir('flow-cache-no-driver-');
  const hide = path.join(dir, 'hide-drivers.js');
  fs.writeFileSync(
    hide,
    `const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'node:sqlite' || request === 'sqlite3' || request === '@keyv/sqlite') {
    const error = new Error("Cannot find module '" + request + "'");
    error.code = request === 'node:sqlite' ? 'ERR_UNKNOWN_BUILTIN_MODULE' : 'MODULE_NOT_FOUND';
    throw error;
  }
  return load.call(this, request, ...rest);
};
`,
  );
  const { FLOW_CACHE_DRIVER: _driver, ...env } = process.env;
  const run = spawnSync(process.execPath, ['-r', hide, '-e', script], { env: { ...env, DIR: dir, DIST: dist }, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

describe('no SQLite driver', () => {
  it('opening a store fails with STORE_IO naming the cause and the fix, and creates nothing', () => {
    const result = withoutDrivers(`
      const path = require('node:path');
      const fs = require('node:fs');
      const { Store } = require(path.join(process.env.DIST, 'store.js'));
      const { availableDrivers } = require(path.join(process.env.DIST, 'driver.js'));
      const file = path.join(process.env.DIR, 'data', 'cache.sqlite');
      Store.open(file).then(
        () => console.log(JSON.stringify({ opened: true })),
        (error) => console.log(JSON.stringify({ code: error.code, message: error.message, drivers: availableDrivers(), created: fs.existsSync(path.dirname(file)) })),
      );
    `) as { opened?: boolean; code: string; message: string; drivers: string[]; created: boolean };
    assert.equal(result.opened, undefined, 'the store opened without a driver');
    assert.deepEqual(result.drivers, []);
    assert.equal(result.code, 'STORE_IO');
    // the cause: which Node.js, and that neither driver loads
    assert.match(result.message, new RegExp(`no SQLite driver can be loaded: Node\\.js ${process.version.replace(/\./g, '\\.')} has no node:sqlite`));
    assert.match(result.message, /the optional sqlite3 module is not installed or did not build/);
    // the fix: a Node.js with node:sqlite, or the driver installed where it can build
    assert.match(result.message, /Run Node-RED on Node\.js 22\.13 or later/);
    assert.match(result.message, /npm install @keyv\/sqlite@4/);
    assert.equal(result.created, false, 'a directory was created for a store that cannot open');
  });

  it('the context store fails at start with the same cause', () => {
    const result = withoutDrivers(`
      const path = require('node:path');
      const context = require(path.join(process.env.DIST, '..', '..', '..', 'context.js'));
      const store = context({ dir: process.env.DIR, settings: { userDir: process.env.DIR } });
      Promise.resolve()
        .then(() => store.open())
        .then(
          () => console.log(JSON.stringify({ opened: true })),
          (error) => console.log(JSON.stringify({ message: String(error && error.message) })),
        );
    `) as { opened?: boolean; message: string };
    assert.equal(result.opened, undefined, 'the context store opened without a driver');
    assert.match(result.message, /no SQLite driver can be loaded: .* Run Node-RED on Node\.js 22\.13 or later/);
  });
});
