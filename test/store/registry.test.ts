import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheError, StoreIOError } from '../../nodes/lib/errors';
import { acquireStore, CacheNamespace, type StoreLease } from '../../nodes/lib/registry';
import { ManualClock } from '../support/harness';
import { DURABILITIES, freshDir, RecordingLogger, tempFile } from './fixtures';

const isClosed = (error: unknown) => error instanceof CacheError && error.code === 'STORE_CLOSED';

describe('registry: one shared store per file', () => {
  const clock = new ManualClock();
  const leases: StoreLease[] = [];

  async function acquire(file: string, options = {}): Promise<StoreLease> {
    const lease = await acquireStore(file, { sweepInterval: 0, ...options });
    leases.push(lease);
    return lease;
  }

  beforeEach(() => clock.install());
  afterEach(async () => {
    for (const lease of leases.splice(0)) await lease.release();
    clock.uninstall();
  });

  it('warns a second user that asks for other settings, and keeps the first settings', async () => {
    const file = tempFile();
    await acquire(file, { evictionPolicy: 'least-recently-used', sizeLimitMb: 5 });
    const logger = new RecordingLogger();
    const second = await acquire(file, { durability: 'deferred', logger });
    assert.equal(second.store.durability, 'immediate');
    assert.equal(second.store.evictionPolicy, 'least-recently-used');
    assert.equal(logger.warnings.length, 1);
    assert.match(
      logger.warnings[0],
      /already open with other settings; its size limit 5 MB, eviction policy least-recently-used, durability immediate apply until every node using the file has been stopped or redeployed/,
    );
    const quiet = new RecordingLogger();
    await acquire(file, { evictionPolicy: 'least-recently-used', sizeLimitMb: 5, logger: quiet });
    assert.equal(quiet.warnings.length, 0);
  });

  it('applies the options of the first user', async () => {
    const file = tempFile();
    const first = await acquire(file, { evictionPolicy: 'none' });
    const second = await acquire(file, { evictionPolicy: 'least-recently-used' });
    assert.equal(second.store, first.store);
    assert.equal(second.store.evictionPolicy, 'none');
  });
});

for (const durability of DURABILITIES) {
  describe(`registry: one shared store per file (${durability})`, () => {
    const clock = new ManualClock();
    const leases: StoreLease[] = [];

    async function acquire(file: string, options = {}): Promise<StoreLease> {
      const lease = await acquireStore(file, { sweepInterval: 0, durability, ...options });
      leases.push(lease);
      return lease;
    }

    beforeEach(() => clock.install());
    afterEach(async () => {
      for (const lease of leases.splice(0)) await lease.release();
      clock.uninstall();
    });

    it('gives two users of the same file the same Store', async () => {
      const file = tempFile();
      const first = await acquire(file);
      const second = await acquire(file);
      assert.equal(first.store, second.store);
      await first.store.set('ns', 'k', 1);
      assert.equal((await second.store.get('ns', 'k'))?.value, 1);
    });

    it('shares the store between users that ask at the same time, and between spellings of the path', async () => {
      const file = tempFile();
      const relative = path.relative(process.cwd(), file);
      const [a, b, c] = await Promise.all([acquire(file), acquire(relative), acquire(path.join(path.dirname(file), '.', 'cache.sqlite'))]);
      assert.equal(a.store, b.store);
      assert.equal(a.store, c.store);
    });

    it('gives different files different stores', async () => {
      const one = await acquire(tempFile());
      const other = await acquire(tempFile());
      assert.notEqual(one.store, other.store);
    });

    it('keeps the store open until the last user releases it', async () => {
      const file = tempFile();
      const first = await acquire(file);
      const second = await acquire(file);
      await first.release();
      await first.release(); // releasing twice counts once
      await second.store.set('ns', 'k', 'still open');
      assert.equal((await second.store.get('ns', 'k'))?.value, 'still open');
      await second.release();
      await assert.rejects(second.store.get('ns', 'k'), isClosed);
    });

    it('opens a new store for the file after the last release, with the data on disk', async () => {
      const file = tempFile();
      const first = await acquire(file);
      await first.store.set('ns', 'k', 'kept');
      await first.release(); // in deferred mode, flushes the pending write
      const again = await acquire(file);
      assert.notEqual(again.store, first.store);
      assert.equal((await again.store.get('ns', 'k'))?.value, 'kept');
    });

    it("opens the file again with the next user's settings once every user has released it (a redeploy that changed them)", async () => {
      const file = tempFile();
      const other = durability === 'immediate' ? 'deferred' : 'immediate';
      const first = await acquire(file, { sizeLimitMb: 1 });
      const second = await acquire(file, { sizeLimitMb: 1 });
      await first.store.set('ns', 'k', 'kept');
      await first.release();
      await second.release();
      const logger = new RecordingLogger();
      const next = await acquire(file, { sizeLimitMb: 2, evictionPolicy: 'none', durability: other, logger });
      assert.deepEqual(logger.warnings, []);
      assert.equal(next.store.sizeLimitBytes, 2 * 1024 * 1024);
      assert.equal(next.store.evictionPolicy, 'none');
      assert.equal(next.store.durability, other);
      assert.equal((await next.store.get('ns', 'k'))?.value, 'kept');
    });

    it("an open that comes while the last user's store is still closing waits for that close, and sees every deferred write", async () => {
      const file = tempFile();
      const first = await acquireStore(file, { sweepInterval: 0, durability: 'deferred', flushInterval: 3600 });
      const writes = 5_000;
      await Promise.all(Array.from({ length: writes }, (_, i) => first.store.set('ns', `k${i}`, 'x'.repeat(200))));
      let firstClosed = false;
      const releasing = first.release().then(() => {
        firstClosed = true;
      });
      const logger = new RecordingLogger();
      const next = await acquire(file, { sizeLimitMb: 50, logger });
      assert.equal(firstClosed, true, 'the new store opened before the old one had closed');
      await releasing;
      assert.notEqual(next.store, first.store);
      assert.equal(next.store.sizeLimitBytes, 50 * 1024 * 1024);
      assert.deepEqual(logger.warnings, []);
      assert.equal((await next.store.keys('ns')).length, writes);
      assert.equal((await next.store.get('ns', `k${writes - 1}`))?.value, 'x'.repeat(200));
    });

    it('a user that comes while the last one is releasing shares nothing with the closing store', async () => {
      const file = tempFile();
      const first = await acquireStore(file, { sweepInterval: 0, durability });
      const releasing = first.release();
      const [a, b] = await Promise.all([acquire(file), acquire(file)]);
      await releasing;
      assert.equal(a.store, b.store);
      assert.notEqual(a.store, first.store);
      await a.store.set('ns', 'k', 1);
      assert.equal((await b.store.get('ns', 'k'))?.value, 1);
    });

    it('does not remember a failed open: the next acquire tries again', async () => {
      const dir = freshDir();
      const blocker = path.join(dir, 'flow-cache');
      fs.writeFileSync(blocker, 'a file where the directory should be');
      const file = path.join(blocker, 'cache.sqlite');
      const results = await Promise.allSettled([acquireStore(file), acquireStore(file)]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok((r as PromiseRejectedResult).reason instanceof StoreIOError);
        assert.ok(((r as PromiseRejectedResult).reason as Error).message.includes(file));
      }
      fs.rmSync(blocker);
      const lease = await acquire(file);
      await lease.store.set('ns', 'k', 'works');
      assert.equal((await lease.store.get('ns', 'k'))?.value, 'works');
    });
  });
}

for (const durability of DURABILITIES) {
  describe(`registry: CacheNamespace (${durability})`, () => {
    const clock = new ManualClock();
    let lease: StoreLease;

    beforeEach(async () => {
      clock.install();
      lease = await acquireStore(tempFile(), { sweepInterval: 0, durability });
    });
    afterEach(async () => {
      await lease.release();
      clock.uninstall();
    });

    it('applies its default TTL to writes that give none or 0, and keeps an explicit one', async () => {
      const ns = new CacheNamespace(lease.store, 'flow', 60);
      assert.equal((await ns.set('a', 1)).expiresAt, clock.ms + 60_000);
      assert.equal((await ns.set('b', 1, 0)).expiresAt, clock.ms + 60_000);
      assert.equal((await ns.set('c', 1, 5)).expiresAt, clock.ms + 5_000);
      assert.equal((await ns.update('d', () => ({ value: 1 }))).entry?.expiresAt, clock.ms + 60_000);
      assert.equal((await ns.update('e', () => ({ value: 1, ttl: 5 }))).entry?.expiresAt, clock.ms + 5_000);
    });

    it('never expires without a default TTL', async () => {
      const ns = new CacheNamespace(lease.store, 'flow');
      assert.equal((await ns.set('a', 1)).expiresAt, null);
    });

    it('works in its own namespace only', async () => {
      const one = new CacheNamespace(lease.store, 'one');
      const other = new CacheNamespace(lease.store, 'One');
      await one.set('k', 1);
      await other.set('k', 2);
      await one.clear();
      assert.deepStrictEqual(await one.keys(), []);
      assert.deepStrictEqual(await other.keys(), ['k']);
      assert.equal(await other.delete('k'), true);
      assert.equal(await other.get('k'), undefined);
    });
  });
}
