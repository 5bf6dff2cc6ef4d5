import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { freshDir, openStore } from './fixtures';

const mode = (p: string) => fs.statSync(p).mode & 0o777;
const octal = (n: number) => `0${n.toString(8)}`;

describe('file permissions', () => {
  const clock = new ManualClock();
  let store: Store | undefined;
  let umask: number;

  beforeEach(() => {
    clock.install();
    umask = process.umask(0); // the store must not rely on a strict umask
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    process.umask(umask);
    clock.uninstall();
  });

  it('creates the database file readable and writable by its owner only (0600)', async () => {
    const file = path.join(freshDir(), 'cache.sqlite');
    store = await openStore(file);
    await store.set('ns', 'k', 'secret');
    assert.equal(octal(mode(file)), '0600');
    for (const extra of ['-wal', '-shm']) {
      if (fs.existsSync(file + extra)) assert.equal(octal(mode(file + extra)), '0600', `${extra} file`);
    }
  });

  it('creates missing directories for the owner only (0700)', async () => {
    const base = freshDir();
    const file = path.join(base, 'flow-cache', 'nested', 'cache.sqlite');
    store = await openStore(file);
    assert.equal(octal(mode(path.join(base, 'flow-cache'))), '0700');
    assert.equal(octal(mode(path.join(base, 'flow-cache', 'nested'))), '0700');
    assert.equal(octal(mode(file)), '0600');
  });

  it('leaves an existing directory as it is', async () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o755);
    store = await openStore(path.join(dir, 'cache.sqlite'));
    assert.equal(octal(mode(dir)), '0755');
  });

  it('keeps a recovered store owner-only too', async () => {
    const file = path.join(freshDir(), 'cache.sqlite');
    const first = await openStore(file);
    await Promise.all(Array.from({ length: 100 }, (_, i) => first.set('ns', `k${i}`, 'x'.repeat(1000))));
    await first.close();
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 8192), { mode: 0o600 }); // cut short: damaged, and ours
    store = await openStore(file);
    assert.ok(
      fs.readdirSync(path.dirname(file)).some((name) => name.includes('.corrupt-')),
      'the damaged file was moved aside',
    );
    assert.equal(octal(mode(file)), '0600');
    assert.equal(octal(mode(`${file}.lock`)), '0600');
  });
});

describe('page size', () => {
  it('a new file is made with 1 KiB pages (a durable write rewrites whole pages), whichever driver makes it', async () => {
    const file = path.join(freshDir(), 'cache.sqlite');
    const store = await openStore(file);
    await store.set('ns', 'k', 'v');
    await store.close();
    assert.equal(fs.readFileSync(file).readUInt16BE(16), 1024);
  });
});
