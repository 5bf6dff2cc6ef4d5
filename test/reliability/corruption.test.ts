import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../support/harness';
import { eachLimited, endpointFlow, get, integrityCheck, NodeRedProcess } from '../support/node-red-process';

const TIMEOUT = 60_000;

function databaseIn(userDir: string): string {
  return path.join(userDir, 'flow-cache', 'cache.sqlite');
}

/** Node-RED on a userDir whose cache file is `content`; checks that it starts, works and kept the bad file aside. */
async function startWithCacheFile(content: Buffer, damage: RegExp): Promise<void> {
  const userDir = tempDir('corrupt-');
  const proc = await NodeRedProcess.prepare(userDir, endpointFlow());
  const file = databaseIn(userDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, content, { mode: 0o600 });

  await proc.start();
  assert.deepEqual(await get(proc.port, '/set?k=sensor.door&v=open'), { status: 200, body: '{"k":"sensor.door","v":"open"}' });
  assert.deepEqual(await get(proc.port, '/get?k=sensor.door'), { status: 200, body: 'open' });
  assert.deepEqual(await get(proc.port, '/get?k=old-0'), { status: 404, body: 'missing' }, 'the damaged data is not read');
  assert.deepEqual(await get(proc.port, '/count?k=visits'), { status: 200, body: '1' });
  assert.deepEqual(await get(proc.port, '/gate?k=alarm'), { status: 200, body: 'passed' });
  assert.deepEqual(await get(proc.port, '/gate?k=alarm'), { status: 200, body: 'suppressed' });

  const aside = fs.readdirSync(path.dirname(file)).filter((name) => /^cache\.sqlite\.corrupt-[0-9TZ-]+$/.test(name));
  assert.equal(aside.length, 1, `one damaged file kept aside, found ${fs.readdirSync(path.dirname(file)).join(', ')}`);
  assert.ok(fs.readFileSync(path.join(path.dirname(file), aside[0])).equals(content), 'the damaged file is kept as it was');
  const errors = proc.log.split('\n').filter((line) => line.includes('[error]'));
  assert.ok(
    errors.some((line) => line.includes(file) && damage.test(line) && line.includes(aside[0])),
    `an error naming the file, the damage and where it went is logged:\n${errors.join('\n')}`,
  );

  // the fresh database is sound and keeps its data across a restart; nothing more is moved aside
  await proc.kill('SIGTERM');
  assert.equal(await integrityCheck(file), 'ok');
  await proc.start();
  assert.deepEqual(await get(proc.port, '/get?k=sensor.door'), { status: 200, body: 'open' });
  assert.deepEqual(await get(proc.port, '/count?k=visits'), { status: 200, body: '2' });
  assert.equal(fs.readdirSync(path.dirname(file)).filter((name) => name.includes('.corrupt-') && !/-(wal|shm)$/.test(name)).length, 1);
  await proc.kill();
}

/** Node-RED on a userDir whose cache file is not ours: it keeps running, each message gets a clear error, the file is untouched. */
async function startWithForeignFile(content: Buffer): Promise<void> {
  const userDir = tempDir('foreign-');
  const proc = await NodeRedProcess.prepare(userDir, endpointFlow());
  const file = databaseIn(userDir);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, content, { mode: 0o600 });
  await proc.start();
  const reply = await get(proc.port, '/set?k=sensor.door&v=open');
  assert.notEqual(reply.status, 200, 'the write is refused');
  assert.ok(
    proc.log.includes('is not a flow-cache database') || reply.body.includes('is not a flow-cache database'),
    `the error says the file is not ours:\n${reply.body}\n${proc.log.slice(-2000)}`,
  );
  assert.ok(fs.readFileSync(file).equals(content), 'the file is left exactly as it was');
  assert.deepEqual(
    fs.readdirSync(path.dirname(file)).filter((name) => name.includes('.corrupt-')),
    [],
    'nothing is moved aside',
  );
  assert.equal((await get(proc.port, '/set?k=again&v=1')).status, reply.status, 'Node-RED is still running and answers');
  await proc.kill();
}

describe('a damaged cache file at startup', () => {
  let healthy: Buffer;

  before(async () => {
    // a real database written by Node-RED: 300 entries of 2 KB, closed cleanly
    const userDir = tempDir('corrupt-source-');
    const proc = await NodeRedProcess.prepare(userDir, endpointFlow());
    await proc.start();
    const keys = Array.from({ length: 300 }, (_, i) => i);
    await eachLimited(keys, 8, async (i) => {
      const reply = await get(proc.port, `/set?k=old-${i}&v=${randomBytes(1024).toString('hex')}`);
      assert.equal(reply.status, 200, reply.body);
    });
    await proc.kill('SIGTERM');
    healthy = fs.readFileSync(databaseIn(userDir));
    assert.equal(await integrityCheck(databaseIn(userDir)), 'ok');
    assert.ok(healthy.length > 600_000, `the source database holds the data (${healthy.length} bytes)`);
  });
  after(() => NodeRedProcess.killAll());

  it('garbage bytes (nothing tells whose they are): refused, left untouched, Node-RED keeps running', { timeout: TIMEOUT }, async () => {
    await startWithForeignFile(randomBytes(64 * 1024));
  });

  it('a database truncated to half its size: moved aside, a fresh store works', { timeout: TIMEOUT }, async () => {
    await startWithCacheFile(healthy.subarray(0, Math.floor(healthy.length / 2)), /truncated/);
  });

  it('a database truncated inside its header: refused, left untouched, Node-RED keeps running', { timeout: TIMEOUT }, async () => {
    await startWithForeignFile(healthy.subarray(0, 60));
  });

  it('a database whose schema page is overwritten: moved aside, a fresh store works', { timeout: TIMEOUT }, async () => {
    const damaged = Buffer.from(healthy);
    randomBytes(4096 - 100).copy(damaged, 100);
    await startWithCacheFile(damaged, /malformed|not a database/);
  });
});
