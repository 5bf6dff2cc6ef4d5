import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheError, StoreFullError } from '../../nodes/lib/errors';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { diskKeys, onDisk, openStore, tempFile } from './fixtures';

const NS = 'eviction';
// 0.01 MB = 10,486 bytes; each entry below takes a little over 3,000, so three fit and a fourth does not.
const LIMIT_MB = 0.01;
const LIMIT_BYTES = Math.round(LIMIT_MB * 1024 * 1024);
const big = (tag: string) => `${tag}:${'x'.repeat(3000)}`;

async function diskBytes(file: string): Promise<number> {
  const rows = await onDisk(file, (db) => db.all<{ n: number }>('SELECT COALESCE(SUM(size), 0) AS n FROM keyv'));
  return rows[0].n;
}

describe('eviction at the size cap', () => {
  const clock = new ManualClock();
  let file: string;
  let store: Store;

  beforeEach(() => {
    clock.install();
    file = tempFile();
  });
  afterEach(async () => {
    await store.close();
    clock.uninstall();
  });

  /** Writes a, b, c one second apart. */
  async function fill(): Promise<void> {
    for (const key of ['a', 'b', 'c']) {
      await store.set(NS, key, big(key));
      clock.advance(1000);
    }
    assert.deepStrictEqual(await store.keys(NS), ['a', 'b', 'c'], 'three entries fit under the cap');
  }

  it('counts stored bytes as the cap does', async () => {
    store = await openStore(file, { sizeLimitMb: LIMIT_MB });
    await fill();
    const used = await store.bytesUsed();
    assert.equal(used, await diskBytes(file));
    assert.ok(used > 9000 && used <= LIMIT_BYTES, `three entries use ${used} bytes`);
    await store.delete(NS, 'b');
    assert.equal(await store.bytesUsed(), await diskBytes(file));
    assert.ok((await store.bytesUsed()) < used);
  });

  describe('least-recently-stored', () => {
    it('is the default policy', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB });
      assert.equal(store.evictionPolicy, 'least-recently-stored');
    });

    it('removes the entry stored longest ago, even if it was read recently', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB });
      await fill();
      assert.equal((await store.get(NS, 'a'))?.value, big('a'));
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['b', 'c', 'd']);
      assert.deepStrictEqual(await diskKeys(file, NS), ['b', 'c', 'd']);
      assert.equal(await store.get(NS, 'a'), undefined, 'the evicted entry is gone from memory too');
      assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
    });

    it('counts a rewrite as a new store: the rewritten entry outlives older ones', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB });
      await fill();
      await store.set(NS, 'a', big('A'));
      clock.advance(1000);
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
      assert.equal((await store.get(NS, 'a'))?.value, big('A'));
    });

    it('evicts across namespaces, oldest first, and as many entries as needed', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB });
      await store.set('first', 'a', big('a'));
      clock.advance(1000);
      await store.set('second', 'b', big('b'));
      clock.advance(1000);
      await store.set('first', 'c', big('c'));
      clock.advance(1000);
      await store.set('second', 'huge', `${'y'.repeat(6000)}`);
      assert.deepStrictEqual(await store.keys('first'), ['c']);
      assert.deepStrictEqual(await store.keys('second'), ['huge']);
      assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
    });

    it('keeps the order after a restart (it is on disk)', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB });
      await fill();
      await store.close();
      store = await openStore(file, { sizeLimitMb: LIMIT_MB });
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['b', 'c', 'd']);
    });
  });

  describe('least-recently-used', () => {
    it('keeps an old entry that was read recently and removes the one unused longest', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'least-recently-used' });
      await fill();
      assert.equal((await store.get(NS, 'a'))?.value, big('a'));
      clock.advance(1000);
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
      assert.deepStrictEqual(await diskKeys(file, NS), ['a', 'c', 'd']);
      assert.equal(await store.get(NS, 'b'), undefined, 'the evicted entry is gone from memory too');
    });

    it('counts a read of an entry loaded from disk after a restart', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'least-recently-used' });
      await fill();
      await store.close();
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'least-recently-used' });
      assert.equal((await store.get(NS, 'b'))?.value, big('b'));
      assert.equal((await store.get(NS, 'a'))?.value, big('a'));
      clock.advance(1000);
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['a', 'b', 'd']);
    });

    it('counts update() as a use', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'least-recently-used' });
      await fill();
      await store.update(NS, 'a', () => undefined); // read only, writes nothing
      clock.advance(1000);
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
    });
  });

  describe('none', () => {
    it('rejects a write over the cap with StoreFullError and writes nothing', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      await fill();
      await assert.rejects(store.set(NS, 'd', big('d')), (error: unknown) => {
        assert.ok(error instanceof StoreFullError);
        assert.ok(error instanceof CacheError);
        assert.equal(error.code, 'STORE_FULL');
        assert.match(error.message, /eviction policy is "none"/);
        return true;
      });
      assert.equal(await store.get(NS, 'd'), undefined);
      assert.deepStrictEqual(await store.keys(NS), ['a', 'b', 'c']);
      assert.deepStrictEqual(await diskKeys(file, NS), ['a', 'b', 'c']);
    });

    it('rejects an update() over the cap and keeps the old value', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      await fill();
      await assert.rejects(
        store.update(NS, 'a', () => ({ value: big('a') + 'z'.repeat(2000) })),
        StoreFullError,
      );
      assert.equal((await store.get(NS, 'a'))?.value, big('a'));
    });

    it('accepts writes again once deletes make room', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      await fill();
      await assert.rejects(store.set(NS, 'd', big('d')), StoreFullError);
      assert.equal(await store.delete(NS, 'a'), true);
      await store.set(NS, 'd', big('d'));
      assert.deepStrictEqual(await store.keys(NS), ['b', 'c', 'd']);
    });

    it('lets an entry be rewritten at the same size when the store is full', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      await fill();
      await store.set(NS, 'a', big('A'));
      assert.equal((await store.get(NS, 'a'))?.value, big('A'));
    });

    it('lets an entry be rewritten at the same size when the store is full, after a restart', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      await fill();
      await store.close();
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      await store.set(NS, 'a', big('A'));
      assert.equal((await store.get(NS, 'a'))?.value, big('A'));
      assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
    });

    it('never goes over the cap with writes that arrive together', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none' });
      const results = await Promise.allSettled(['a', 'b', 'c', 'd', 'e'].map((key) => store.set(NS, key, big(key))));
      const rejected = results.filter((r) => r.status === 'rejected');
      assert.equal(rejected.length, 2, 'two of five writes do not fit');
      for (const r of rejected) assert.ok((r as PromiseRejectedResult).reason instanceof StoreFullError);
      assert.equal((await store.keys(NS)).length, 3);
      assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
    });

    it('never goes over the cap in deferred mode, where writes wait in memory', async () => {
      store = await openStore(file, { sizeLimitMb: LIMIT_MB, evictionPolicy: 'none', durability: 'deferred' });
      await store.set(NS, 'a', big('a'));
      await store.set(NS, 'b', big('b'));
      await store.set(NS, 'c', big('c'));
      await assert.rejects(store.set(NS, 'd', big('d')), StoreFullError);
      await store.flush();
      assert.deepStrictEqual(await diskKeys(file, NS), ['a', 'b', 'c']);
    });
  });
});
