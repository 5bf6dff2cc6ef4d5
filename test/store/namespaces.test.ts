import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheError } from '../../nodes/lib/errors';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, diskKeys, openStore, tempFile } from './fixtures';

// Pairs that SQL LIKE 'ns:%' (case-insensitive, `_` and `%` wildcards, prefix match) would mix up.
const lookalikes: [string, string][] = [
  ['Foo', 'foo'],
  ['a_b', 'axb'],
  ['flow1', 'flow1:x'],
  ['%', 'anything'],
  ['50%', '50x'],
  ['ÄÖ', 'äö'],
  ['flow1', 'flow10'],
  ['a', 'a;'],
];

for (const durability of DURABILITIES) {
  describe(`namespaces (${durability})`, () => {
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

    it('keeps keys that differ after a U+0000 apart, on disk too', async () => {
      const keys = ['a\u0000b', 'a\u0000c', '\u0000', 'a'];
      for (const [i, key] of keys.entries()) await store.set('ns', key, i);
      await store.close();
      store = await openStore(file, { durability });
      assert.deepEqual((await store.keys('ns')).sort(), [...keys].sort());
      for (const [i, key] of keys.entries()) assert.equal((await store.get('ns', key))?.value, i);
    });

    for (const [one, other] of lookalikes) {
      it(`keeps "${one}" and "${other}" apart: get, keys and clear`, async () => {
        await store.set(one, 'k', `from ${one}`);
        await store.set(one, 'only-one', 1);
        await store.set(other, 'k', `from ${other}`);
        await store.set(other, 'only-other', 2);
        assert.equal((await store.get(one, 'k'))?.value, `from ${one}`);
        assert.equal((await store.get(other, 'k'))?.value, `from ${other}`);
        assert.equal(await store.get(one, 'only-other'), undefined);
        assert.deepStrictEqual(await store.keys(one), ['k', 'only-one']);
        assert.deepStrictEqual(await store.keys(other), ['k', 'only-other']);

        await store.clear(one);
        assert.deepStrictEqual(await store.keys(one), []);
        assert.deepStrictEqual(await store.keys(other), ['k', 'only-other']);
        assert.equal((await store.get(other, 'k'))?.value, `from ${other}`);
        await store.flush();
        assert.deepStrictEqual(await diskKeys(file, other), ['k', 'only-other']);
        assert.deepStrictEqual(await diskKeys(file, one), []);

        await store.set(one, 'k', 'again');
        await store.clear(other);
        assert.deepStrictEqual(await store.keys(one), ['k']);
        assert.deepStrictEqual(await store.keys(other), []);
      });
    }

    it('keeps them apart on disk too, after a restart', async () => {
      for (const [one, other] of lookalikes) {
        await store.set(one, 'k', one);
        await store.set(other, 'k', other);
      }
      await store.close();
      store = await openStore(file, { durability });
      await store.clear('Foo');
      await store.clear('%');
      await store.clear('a_b');
      await store.clear('flow1');
      assert.equal(await store.get('Foo', 'k'), undefined);
      assert.equal((await store.get('foo', 'k'))?.value, 'foo');
      assert.equal((await store.get('axb', 'k'))?.value, 'axb');
      assert.equal((await store.get('flow1:x', 'k'))?.value, 'flow1:x');
      assert.equal((await store.get('flow10', 'k'))?.value, 'flow10');
      assert.equal((await store.get('anything', 'k'))?.value, 'anything');
      assert.equal((await store.get('50%', 'k'))?.value, '50%');
    });

    it('treats keys with separators and wildcards as plain text', async () => {
      const keys = ['a:b', '%', '_', 'a_b', 'A_B', ':', 'sensor.kitchen', 'ü'];
      for (const key of keys) await store.set('ns', key, key);
      assert.deepStrictEqual(await store.keys('ns'), [...keys].sort());
      for (const key of keys) assert.equal((await store.get('ns', key))?.value, key);
      await store.delete('ns', '%');
      assert.equal((await store.keys('ns')).length, keys.length - 1);
    });

    it('clear() removes writes still waiting to be committed, in that namespace only', async () => {
      const writes = [store.set('a', 'k1', 1), store.set('b', 'k1', 1), store.set('a', 'k2', 2)];
      await store.clear('a');
      await Promise.allSettled(writes);
      assert.deepStrictEqual(await store.keys('a'), []);
      assert.deepStrictEqual(await store.keys('b'), ['k1']);
    });

    it('a read racing a clear() never brings cleared data back', async () => {
      for (let round = 0; round < 10; round++) {
        await store.set('ns', 'k', `old ${round}`);
        await store.close();
        store = await openStore(file, { durability }); // the entry is on disk only
        const clearing = store.clear('ns');
        const racing = await store.get('ns', 'k'); // may see the entry or not: the clear has not been committed yet
        await clearing;
        assert.ok(racing === undefined || racing.value === `old ${round}`);
        assert.equal(await store.get('ns', 'k'), undefined, 'once clear() resolved the entry is gone for good');
        assert.deepStrictEqual(await store.keys('ns'), []);
      }
    });

    it('a write after clear() survives it', async () => {
      await store.set('ns', 'k', 'old');
      const clearing = store.clear('ns');
      const writing = store.set('ns', 'k', 'new');
      await Promise.all([clearing, writing]);
      assert.equal((await store.get('ns', 'k'))?.value, 'new');
      await store.close();
      store = await openStore(file, { durability });
      assert.equal((await store.get('ns', 'k'))?.value, 'new');
    });

    it('rejects an empty namespace or key', async () => {
      await assert.rejects(store.set('', 'k', 1), (e: unknown) => e instanceof CacheError && e.code === 'INVALID_NAMESPACE');
      await assert.rejects(store.set('ns', '', 1), (e: unknown) => e instanceof CacheError && e.code === 'INVALID_KEY');
      await assert.rejects(store.get('ns', 42 as unknown as string), (e: unknown) => e instanceof CacheError && e.code === 'INVALID_KEY');
      await assert.rejects(store.clear(''), (e: unknown) => e instanceof CacheError && e.code === 'INVALID_NAMESPACE');
    });
  });
}

for (const durability of DURABILITIES) {
  describe(`listing namespaces and their entries (${durability})`, () => {
    it('entries() gives every unexpired entry of one namespace with its value; namespaces() names them all', async () => {
      const file = tempFile();
      const clock = new ManualClock().install();
      const store = await openStore(file, { durability });
      try {
        await store.set('flow:a', 'k1', { n: 1 });
        await store.set('flow:a', 'k2', new Map([['x', 1]]), 10);
        await store.set('flow:a', 'gone', 1, 5);
        await store.set('flow:a:x', 'other', 2);
        await store.set('shared:b', 'k', 3);
        clock.advance(6000);
        const entries = await store.entries('flow:a');
        assert.deepStrictEqual(
          entries.map(([key, entry]) => [key, entry.value]),
          [
            ['k1', { n: 1 }],
            ['k2', new Map([['x', 1]])],
          ],
        );
        assert.deepStrictEqual(await store.namespaces(), ['flow:a', 'flow:a:x', 'shared:b']);
      } finally {
        await store.close();
        clock.uninstall();
      }
    });
  });
}
