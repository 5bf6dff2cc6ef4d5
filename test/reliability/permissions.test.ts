import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../support/harness';
import { chownTree, endpointFlow, get, NodeRedProcess, type Reply } from '../support/node-red-process';

const TIMEOUT = 90_000;
// root ignores file modes, so as root Node-RED runs as 'nobody'; any other user is blocked by chmod itself
const asRoot = process.getuid?.() === 0;
const uid = asRoot ? 65534 : (process.getuid?.() ?? 0);
const gid = asRoot ? 65534 : (process.getgid?.() ?? 0);

/** Whether the Node-RED user can create a file in `dir` (checked by a process running as that user). */
function canCreateIn(dir: string): boolean {
  const probe = path.join(dir, 'probe.tmp');
  const result = spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(probe)}, 'x')`], { uid, gid });
  if (result.status === 0) fs.rmSync(probe, { force: true });
  return result.status === 0;
}

function assertError(reply: Reply, what: string, pattern: RegExp): void {
  assert.equal(reply.status, 500, `${what}: expected the error to reach the Catch node, got ${reply.status} ${reply.body}`);
  assert.match(reply.body, pattern, what);
}

describe('a database directory the Node-RED user cannot write', () => {
  after(() => NodeRedProcess.killAll());

  it('errors reach Catch nodes, Node-RED keeps running, and writes resume once the directory is writable', { timeout: TIMEOUT }, async () => {
    const userDir = tempDir('perm-');
    const data = path.join(userDir, 'data');
    const file = path.join(data, 'cache.sqlite');
    const storeNode = { id: 'store1', type: 'cache-store', name: 'data store', path: 'data/cache.sqlite', scope: 'flow' };
    const proc = await NodeRedProcess.prepare(userDir, endpointFlow({ store: 'store1', extra: [storeNode] }), { uid, gid });
    fs.mkdirSync(data);
    chownTree(userDir, uid, gid);
    fs.chmodSync(data, 0o555);
    assert.equal(canCreateIn(data), false, 'the directory really is read-only for the Node-RED user');

    await proc.start();
    const cannot = new RegExp(`cannot (create|open|lock) cache database ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
    assertError(await get(proc.port, '/set?k=sensor.door&v=open'), 'cache-set', cannot);
    assertError(await get(proc.port, '/get?k=sensor.door'), 'cache-get (a store that cannot open is not a miss)', cannot);
    assertError(await get(proc.port, '/count?k=visits'), 'counter', cannot);
    assertError(await get(proc.port, '/gate?k=alarm'), 'cooldown-gate with failOpen off', cannot);
    assert.deepEqual(await get(proc.port, '/gate-fail-open?k=alarm'), { status: 200, body: 'passed' }, 'cooldown-gate with failOpen on passes');
    assert.match(proc.log, /\[warn\].*cache store failed, message for alarm passed/);
    assert.equal(proc.alive, true);
    assert.equal((await get(proc.port, '/ready')).status, 200);
    assert.equal(fs.existsSync(file), false);

    // fixing the permission is enough: the next message opens the store
    fs.chmodSync(data, 0o755);
    assert.deepEqual(await get(proc.port, '/set?k=sensor.door&v=open'), { status: 200, body: '{"k":"sensor.door","v":"open"}' });
    assert.deepEqual(await get(proc.port, '/get?k=sensor.door'), { status: 200, body: 'open' });
    assert.deepEqual(await get(proc.port, '/count?k=visits'), { status: 200, body: '1' });
    assert.deepEqual(await get(proc.port, '/gate?k=alarm'), { status: 200, body: 'passed' });
    assert.equal(fs.statSync(file).uid, uid, 'the database belongs to the Node-RED user');

    // a restart on a database that is read-only, in a read-only directory
    await proc.kill('SIGTERM');
    fs.chmodSync(file, 0o444);
    fs.chmodSync(data, 0o555);
    await proc.start();
    const write = await get(proc.port, '/set?k=sensor.window&v=closed');
    assertError(write, 'cache-set on a read-only database', /cache database/);
    const read = await get(proc.port, '/get?k=sensor.door');
    assert.ok(
      read.status === 200 ? read.body === 'open' : read.status === 500,
      `a read gives the stored value or an error, never a miss: ${read.status} ${read.body}`,
    );
    assertError(await get(proc.port, '/count?k=visits'), 'counter on a read-only database', /cache database/);
    assert.equal(proc.alive, true);

    fs.chmodSync(data, 0o755);
    fs.chmodSync(file, 0o644);
    assert.deepEqual(await get(proc.port, '/set?k=sensor.window&v=closed'), { status: 200, body: '{"k":"sensor.window","v":"closed"}' });
    assert.deepEqual(await get(proc.port, '/get?k=sensor.window'), { status: 200, body: 'closed' });
    assert.deepEqual(await get(proc.port, '/get?k=sensor.door'), { status: 200, body: 'open' });
    assert.deepEqual(await get(proc.port, '/count?k=visits'), { status: 200, body: '2' });
    assert.doesNotMatch(proc.log, /Uncaught|unhandled/i);
    await proc.kill();
  });
});
