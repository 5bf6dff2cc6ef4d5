import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { diskKeys, onDisk, openStore, tempFile } from './fixtures';

const NS = 'durability';

describe('durability', () => {
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

  describe('immediate (the default)', () => {
    it('is the default', async () => {
      store = await openStore(file);
      assert.equal(store.durability, 'immediate');
    });

    it('has a write on disk as soon as set() resolved', async () => {
      store = await openStore(file);
      await store.set(NS, 'k', { n: 1 });
      assert.deepStrictEqual(await diskKeys(file, NS), ['k']);
    });

    it('has every write of a burst on disk once each set() resolved', async () => {
      store = await openStore(file);
      const keys = Array.from({ length: 250 }, (_, i) => `k${String(i).padStart(3, '0')}`);
      await Promise.all(keys.map((key, i) => store.set(NS, key, i)));
      assert.deepStrictEqual(await diskKeys(file, NS), keys);
    });

    it('has update(), delete() and clear() on disk once they resolved', async () => {
      store = await openStore(file);
      await store.update(NS, 'u', () => ({ value: 1 }));
      await store.set(NS, 'd', 1);
      assert.deepStrictEqual(await diskKeys(file, NS), ['d', 'u']);
      await store.delete(NS, 'd');
      assert.deepStrictEqual(await diskKeys(file, NS), ['u']);
      await store.clear(NS);
      assert.deepStrictEqual(await diskKeys(file, NS), []);
    });
  });

  describe('commitNow: a write committed before it returns (node:sqlite)', () => {
    it('commits on node:sqlite, and refuses (nothing done) on sqlite3, in deferred mode, or behind a queued write or clear of the key', async () => {
      store = await openStore(file);
      if (store.driver !== 'node:sqlite') {
        assert.equal(store.commitNow(NS, 'k', 1), false, 'sqlite3 is asynchronous: nothing can be committed before returning');
        assert.deepStrictEqual(await diskKeys(file, NS), []);
        return;
      }
      assert.equal(store.commitNow(NS, 'k', { n: 1 }), true);
      // on disk now: read by another connection before this one did anything asynchronous
      assert.deepStrictEqual(await diskKeys(file, NS), ['k']);
      assert.deepStrictEqual((await store.get(NS, 'k'))?.value, { n: 1 });
      assert.equal(store.commitNow(NS, 'k', undefined), true, 'undefined deletes');
      assert.deepStrictEqual(await diskKeys(file, NS), []);
      // an older write of the key still queued would land after it: refused, the queued write stays the last
      const queued = store.set(NS, 'q', 'queued');
      assert.equal(store.commitNow(NS, 'q', 'now'), false);
      await queued;
      assert.equal((await store.get(NS, 'q'))?.value, 'queued');
      // a clear queued would remove it afterwards: refused until the clear is done
      const cleared = store.clear(NS);
      assert.equal(store.commitNow(NS, 'other', 1), false);
      await cleared;
      assert.equal(store.commitNow(NS, 'other', 1), true);
      assert.deepStrictEqual(await diskKeys(file, NS), ['other']);
      await store.close();
      store = await openStore(file, { durability: 'deferred' });
      assert.equal(store.commitNow(NS, 'deferred', 1), false, 'deferred mode promises nothing per write');
    });
  });

  describe('deferred', () => {
    it('keeps writes in memory until flush(), and serves them from there', async () => {
      store = await openStore(file, { durability: 'deferred' });
      await store.set(NS, 'a', 1);
      await store.update(NS, 'b', () => ({ value: 2 }));
      assert.deepStrictEqual(await diskKeys(file, NS), [], 'nothing on disk yet');
      assert.equal((await store.get(NS, 'a'))?.value, 1);
      assert.equal((await store.get(NS, 'b'))?.value, 2);
      await store.flush();
      assert.deepStrictEqual(await diskKeys(file, NS), ['a', 'b']);
    });

    it('writes everything pending on close()', async () => {
      store = await openStore(file, { durability: 'deferred' });
      await store.set(NS, 'a', 1);
      await store.set(NS, 'b', 2);
      await store.delete(NS, 'a');
      assert.deepStrictEqual(await diskKeys(file, NS), []);
      await store.close();
      assert.deepStrictEqual(await diskKeys(file, NS), ['b']);
      store = await openStore(file, { durability: 'deferred' });
      assert.equal((await store.get(NS, 'b'))?.value, 2);
    });

    it('flushes on its interval without being asked', async () => {
      mock.timers.enable({ apis: ['setInterval'] });
      try {
        store = await openStore(file, { durability: 'deferred', flushInterval: 30 });
        await store.set(NS, 'a', 1);
        mock.timers.tick(29_999);
        assert.deepStrictEqual(await diskKeys(file, NS), []);
        mock.timers.tick(1);
        await new Promise((resolve) => setImmediate(resolve)); // let the timer's task queue its work
        await store.keys(NS); // waits for work already queued on the database
        assert.deepStrictEqual(await diskKeys(file, NS), ['a']);
      } finally {
        mock.timers.reset();
      }
    });

    it('commits a clear() at once, so cleared data cannot come back after a crash', async () => {
      store = await openStore(file, { durability: 'deferred' });
      await store.set(NS, 'a', 1);
      await store.flush();
      await store.clear(NS);
      assert.deepStrictEqual(await diskKeys(file, NS), []);
    });

    it('keeps a flushed value when a later deferred write is lost', async () => {
      store = await openStore(file, { durability: 'deferred' });
      await store.set(NS, 'a', 'flushed');
      await store.flush();
      await store.set(NS, 'a', 'pending');
      assert.equal((await store.get(NS, 'a'))?.value, 'pending');
      // the file (what a restart after a crash would find) holds only what was flushed
      const rows = await onDisk(file, (db) => db.all<{ value: string }>('SELECT value FROM keyv'));
      assert.deepStrictEqual(
        rows.map((r) => JSON.parse(r.value).v),
        ['flushed'],
      );
    });
  });
});
