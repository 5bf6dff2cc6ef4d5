import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, onDisk, openStore, tempFile } from './fixtures';

const NS = 'atomic';

function increment(store: Store, key: string, by = 1) {
  return store.update(NS, key, (current) => ({ value: ((current?.value as number | undefined) ?? 0) + by }));
}

for (const durability of DURABILITIES) {
  describe(`atomic update (${durability})`, () => {
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

    it('1,000 concurrent increments of one key add exactly 1,000', async () => {
      await store.set(NS, 'n', 5);
      const results = await Promise.all(Array.from({ length: 1000 }, () => increment(store, 'n')));
      assert.equal((await store.get(NS, 'n'))?.value, 1005);
      const seen = results.map((r) => r.entry?.value as number).sort((a, b) => a - b);
      assert.deepStrictEqual(
        seen,
        Array.from({ length: 1000 }, (_, i) => 6 + i),
        'every caller saw its own step',
      );
      await store.close();
      store = await openStore(file, { durability });
      assert.equal((await store.get(NS, 'n'))?.value, 1005, 'the total is what was written to disk');
    });

    it('1,000 concurrent increments spread over five keys add exactly 200 to each', async () => {
      const keys = ['a', 'b', 'c', 'd', 'e'];
      await Promise.all(Array.from({ length: 1000 }, (_, i) => increment(store, keys[i % keys.length])));
      await store.close();
      store = await openStore(file, { durability });
      for (const key of keys) assert.equal((await store.get(NS, key))?.value, 200, key);
    });

    it('mixes increments with deletes and plain sets without losing any of them', async () => {
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) ops.push(increment(store, 'm'));
      ops.push(store.set(NS, 'm', 1000));
      for (let i = 0; i < 200; i++) ops.push(increment(store, 'm'));
      ops.push(store.delete(NS, 'm'));
      for (let i = 0; i < 100; i++) ops.push(increment(store, 'm', 2));
      await Promise.all(ops);
      assert.equal((await store.get(NS, 'm'))?.value, 200, 'operations apply in call order: delete, then 100 steps of 2');
    });

    it('a change that throws writes nothing and does not block later updates', async () => {
      await store.set(NS, 'k', 1);
      const failing = store.update(NS, 'k', () => {
        throw new Error('no');
      });
      const next = increment(store, 'k');
      await assert.rejects(failing, /no/);
      assert.equal((await next).entry?.value, 2);
      assert.equal((await store.get(NS, 'k'))?.value, 2);
    });

    it('returning undefined changes nothing; {delete: true} removes the key', async () => {
      await store.set(NS, 'k', 'v');
      const untouched = await store.update(NS, 'k', () => undefined);
      assert.equal(untouched.previous?.value, 'v');
      assert.equal(untouched.entry?.value, 'v');
      const removed = await store.update(NS, 'k', () => ({ delete: true }));
      assert.equal(removed.previous?.value, 'v');
      assert.equal(removed.entry, undefined);
      assert.equal(await store.get(NS, 'k'), undefined);
      await store.flush();
      assert.equal(await onDisk(file, (db) => db.rowCount()), 0);
    });

    it('update() with a TTL stamps the new entry', async () => {
      const result = await store.update(NS, 'k', () => ({ value: 1, ttl: 30 }));
      assert.equal(result.entry?.expiresAt, clock.ms + 30_000);
    });
  });
}

for (const durability of DURABILITIES) {
  describe(`atomic update near the size limit (eviction policy none, ${durability})`, () => {
    const clock = new ManualClock();
    let store: Store;

    beforeEach(async () => {
      clock.install();
      // a one-entry read cache, so the counted key is read from disk at the start of each round
      store = await openStore(tempFile(), { durability, evictionPolicy: 'none', sizeLimitMb: 0.01, readCacheEntries: 1 });
    });
    afterEach(async () => {
      await store.close();
      clock.uninstall();
    });

    it('concurrent increments that need an exact recount of the bytes still add up', async () => {
      // fill the 10 KB to about 150 bytes short: the running estimate counts every rewrite in full,
      // so after a few rounds writes must re-read the real byte count before they are let through
      for (let i = 0; i < 8; i++) await store.set(NS, `filler${i}`, 'x'.repeat(1000));
      await store.set(NS, 'n', 0);
      const padRowOverhead = 40; // {"s":<ms>,"e":null,"v":"..."} around the padding
      await store.set(NS, 'pad', 'x'.repeat(store.sizeLimitBytes - (await store.bytesUsed()) - padRowOverhead - 150));
      const left = store.sizeLimitBytes - (await store.bytesUsed());
      assert.ok(left > 50 && left < 250, `about 150 bytes left under the limit (${left})`);
      let expected = 0;
      for (let round = 0; round < 10; round++) {
        await store.set(NS, 'other', round); // a rewrite: the estimate grows, the real size does not
        await Promise.all(Array.from({ length: 5 }, () => increment(store, 'n')));
        expected += 5;
        await store.get(NS, 'other'); // pushes "n" out of the one-entry read cache
        assert.equal((await store.get(NS, 'n'))?.value, expected, `after round ${round + 1}`);
        await store.get(NS, 'other');
      }
    });
  });
}
