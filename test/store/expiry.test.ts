import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { CacheError } from '../../nodes/lib/errors';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, diskKeys, onDisk, openStore, tempFile } from './fixtures';

const NS = 'expiry';

for (const durability of DURABILITIES) {
  describe(`expiry (${durability})`, () => {
    const clock = new ManualClock();
    let file: string;
    let store: Store;

    beforeEach(async () => {
      clock.install();
      file = tempFile();
      store = await openStore(file, { durability });
    });
    afterEach(async () => {
      await store.close();
      clock.uninstall();
    });

    it('stamps storedAt and expiresAt from the clock and the TTL in seconds', async () => {
      const entry = await store.set(NS, 'k', 'v', 90);
      assert.equal(entry.storedAt, clock.ms);
      assert.equal(entry.expiresAt, clock.ms + 90_000);
      const fraction = await store.set(NS, 'f', 'v', 1.5);
      assert.equal(fraction.expiresAt, clock.ms + 1_500);
      const forever = await store.set(NS, 'p', 'v', 0);
      assert.equal(forever.expiresAt, null);
      const noTtl = await store.set(NS, 'q', 'v');
      assert.equal(noTtl.expiresAt, null);
    });

    it('reads an entry until the last millisecond of its TTL and as absent from then on', async () => {
      await store.set(NS, 'k', 'v', 60);
      clock.advance(59_999);
      assert.equal((await store.get(NS, 'k'))?.value, 'v');
      clock.advance(1);
      assert.equal(await store.get(NS, 'k'), undefined);
      assert.deepStrictEqual(await store.keys(NS), []);
    });

    it('removes an expired entry from disk when it is read (lazy expiry)', async () => {
      await store.set(NS, 'k', 'v', 10);
      await store.set(NS, 'other', 'v', 10);
      clock.advance(10_000);
      await store.flush();
      assert.deepStrictEqual(await diskKeys(file, NS), ['k', 'other'], 'nothing removes rows until they are read or swept');
      assert.equal(await store.get(NS, 'k'), undefined);
      await store.flush();
      assert.deepStrictEqual(await diskKeys(file, NS), ['other'], 'the row read as expired is gone from disk');
    });

    it('expires entries read from disk after a restart as well', async () => {
      await store.set(NS, 'short', 'v', 5);
      await store.set(NS, 'long', 'v', 3600);
      await store.close();
      clock.advance(5_000);
      store = await openStore(file, { durability });
      assert.equal(await store.get(NS, 'short'), undefined);
      assert.equal((await store.get(NS, 'long'))?.value, 'v');
    });

    it('keeps entries without a TTL forever', async () => {
      await store.set(NS, 'k', 'v');
      await store.flush();
      clock.advance(10 * 365 * 24 * 3600 * 1000);
      assert.equal((await store.get(NS, 'k'))?.value, 'v');
      assert.equal(await store.sweep(), 0);
    });

    it('lets a new write replace the TTL: a rewrite without TTL never expires', async () => {
      await store.set(NS, 'k', 'first', 10);
      await store.set(NS, 'k', 'second');
      clock.advance(60_000);
      assert.equal((await store.get(NS, 'k'))?.value, 'second');
    });

    it('shows update() an expired entry as absent', async () => {
      await store.set(NS, 'count', 41, 10);
      clock.advance(10_000);
      const seen: unknown[] = [];
      const result = await store.update(NS, 'count', (current) => {
        seen.push(current);
        return { value: ((current?.value as number | undefined) ?? 0) + 1 };
      });
      assert.deepStrictEqual(seen, [undefined]);
      assert.equal(result.previous, undefined);
      assert.equal(result.entry?.value, 1);
    });

    it('rejects a negative or non-numeric TTL and writes nothing', async () => {
      for (const ttl of [-1, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
        await assert.rejects(store.set(NS, 'k', 'v', ttl), (error: unknown) => error instanceof CacheError && error.code === 'INVALID_TTL');
      }
      assert.equal(await store.get(NS, 'k'), undefined);
      await store.flush();
      assert.deepStrictEqual(await diskKeys(file, NS), []);
    });

    it('sweep() deletes every expired row from disk, in every namespace, and returns the count', async () => {
      await store.set(NS, 'a', 1, 10);
      await store.set(NS, 'b', 2, 20);
      await store.set('elsewhere', 'c', 3, 10);
      await store.set(NS, 'later', 4, 3600);
      await store.set(NS, 'forever', 5);
      clock.advance(20_000);
      await store.flush(); // the sweep works on the file; deferred writes reach it at the next flush
      assert.equal(await store.sweep(), 3);
      await store.flush();
      assert.deepStrictEqual(await diskKeys(file, NS), ['forever', 'later']);
      assert.deepStrictEqual(await diskKeys(file, 'elsewhere'), []);
      assert.equal(await onDisk(file, (db) => db.rowCount()), 2);
      assert.deepStrictEqual(await store.keys(NS), ['forever', 'later']);
      assert.equal(await store.sweep(), 0, 'a second sweep finds nothing');
    });

    it('sweep() leaves nothing behind in memory: a swept key reads as absent', async () => {
      await store.set(NS, 'a', 1, 10);
      assert.equal((await store.get(NS, 'a'))?.value, 1); // now in the read cache
      clock.advance(10_000);
      await store.flush();
      assert.equal(await store.sweep(), 1);
      clock.set('2026-01-01T00:00:00Z'); // even with the clock turned back, the swept entry is gone
      assert.equal(await store.get(NS, 'a'), undefined);
    });

    it('sweep() does not remove a write made after the entry expired', async () => {
      await store.set(NS, 'a', 'old', 10);
      await store.flush(); // the old entry is in the file
      clock.advance(10_000);
      await store.set(NS, 'a', 'new', 10); // deferred: the new one is not yet
      const removed = await store.sweep();
      if (durability === 'immediate') assert.equal(removed, 0, 'the row in the file is the new one');
      assert.equal((await store.get(NS, 'a'))?.value, 'new');
      await store.close();
      store = await openStore(file, { durability });
      assert.equal((await store.get(NS, 'a'))?.value, 'new', 'the new write is what the file holds');
    });
  });
}

for (const durability of DURABILITIES) {
  describe(`expiry: the active sweep runs on its interval (${durability})`, () => {
    const clock = new ManualClock();

    beforeEach(() => {
      clock.install();
      mock.timers.enable({ apis: ['setInterval'] });
    });
    afterEach(() => {
      mock.timers.reset();
      clock.uninstall();
    });

    it('removes expired rows from disk every sweepInterval seconds without any read', async () => {
      const file = tempFile();
      const store = await openStore(file, { durability, sweepInterval: 60 });
      try {
        await store.set(NS, 'a', 1, 30);
        await store.set(NS, 'b', 2);
        clock.advance(30_000);
        mock.timers.tick(59_999);
        await store.flush();
        assert.deepStrictEqual(await diskKeys(file, NS), ['a', 'b'], 'no sweep before the interval is up');
        mock.timers.tick(1);
        await new Promise((resolve) => setImmediate(resolve)); // let the timer's task queue its work
        await store.flush();
        assert.deepStrictEqual(await diskKeys(file, NS), ['b']);
      } finally {
        await store.close();
      }
    });
  });
}
