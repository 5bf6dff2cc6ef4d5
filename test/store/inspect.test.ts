// What the admin API reads from a store: pages of keys filtered and sorted in the database, counts per
// namespace, one entry as it is on disk. Every key must be listed once, in order, and no other
// namespace's keys may appear, whatever characters keys and filters hold.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type KeyListOptions, MAX_KEY_PAGE, type Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, openStore, tempFile } from './fixtures';

/** Every key of a listing, page after page. */
async function allPages(store: Store, namespace: string, options: KeyListOptions): Promise<string[]> {
  const keys: string[] = [];
  let after: KeyListOptions['after'];
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.listKeys(namespace, { ...options, after });
    keys.push(...page.keys.map((k) => k.key));
    if (!page.next) return keys;
    after = page.next;
  }
  throw new Error('the listing never ended');
}

for (const durability of DURABILITIES) {
  describe(`inspection (${durability})`, () => {
    const clock = new ManualClock();
    let store: Store;

    beforeEach(async () => {
      clock.install();
      store = await openStore(tempFile(), { durability });
    });
    afterEach(async () => {
      await store.close();
      clock.uninstall();
    });

    it('lists every key of a namespace once, in key order, page by page, and none of a look-alike namespace', async () => {
      const keys = Array.from({ length: 23 }, (_, i) => `k${String(i).padStart(2, '0')}`);
      for (const key of keys) await store.set('flow:a', key, 1);
      for (const key of ['k00', 'zz']) await store.set('flow:ab', key, 2);
      await store.set('flow:a;', 'k99', 3);
      const listed = await allPages(store, 'flow:a', { limit: 5 });
      assert.deepEqual(listed, keys);
      const first = await store.listKeys('flow:a', { limit: 5 });
      assert.equal(first.total, 23);
      assert.equal(first.keys.length, 5);
    });

    it('filters by prefix and by substring in the database, with SQL wildcards and U+0000 taken literally', async () => {
      const keys = ['counter:door', 'counter:Door', 'cooldown:door', 'a%b', 'axb', 'a_b', 'a\u0000b', 'über:1', 'Über:2', 'x:door:y'];
      for (const key of keys) await store.set('ns', key, 1);
      await store.set('other', 'counter:door', 1);
      const prefix = async (filter: string) => (await allPages(store, 'ns', { filter, match: 'prefix', limit: 3 })).sort();
      const contains = async (filter: string) => (await allPages(store, 'ns', { filter, match: 'substring', limit: 3 })).sort();
      assert.deepEqual(await prefix('counter:'), ['counter:Door', 'counter:door']);
      assert.deepEqual(await prefix('a%'), ['a%b']);
      assert.deepEqual(await prefix('a_'), ['a_b']);
      assert.deepEqual(await prefix('a\u0000'), ['a\u0000b']);
      assert.deepEqual(await prefix('über'), ['über:1']);
      assert.deepEqual(await contains('door'), ['cooldown:door', 'counter:Door', 'counter:door', 'x:door:y']);
      assert.deepEqual(await contains('DOOR'), ['cooldown:door', 'counter:Door', 'counter:door', 'x:door:y']);
      assert.deepEqual(await contains('%'), ['a%b']);
      assert.deepEqual(await contains('_'), ['a_b']);
      assert.deepEqual(await contains('\u0000'), ['a\u0000b']);
      const total = await store.listKeys('ns', { filter: 'door', match: 'substring', limit: 0 });
      assert.equal(total.total, 4);
      assert.deepEqual(total.keys, []);
    });

    it('sorts by last write, newest first, paging through writes made in the same millisecond', async () => {
      for (let i = 0; i < 12; i++) {
        if (i % 3 === 0) clock.advance(1000);
        await store.set('ns', `key${i}`, i);
      }
      const listed = await allPages(store, 'ns', { sort: 'stored', limit: 4 });
      // newest second first; within a second, by key
      assert.deepEqual(listed, ['key10', 'key11', 'key9', 'key6', 'key7', 'key8', 'key3', 'key4', 'key5', 'key0', 'key1', 'key2']);
    });

    it('leaves expired entries out of listings and counts them apart until they are purged', async () => {
      await store.set('ns', 'short', 1, 10);
      await store.set('ns', 'long', 2, 1000);
      await store.set('ns', 'forever', 3);
      clock.advance(11_000);
      const page = await store.listKeys('ns', {});
      assert.deepEqual(
        page.keys.map((k) => k.key),
        ['forever', 'long'],
      );
      assert.equal(page.keys[1].expiresAt, page.keys[1].storedAt + 1_000_000);
      assert.deepEqual(
        (await store.namespaceStats()).map((s) => [s.namespace, s.entries, s.expired]),
        [['ns', 3, 1]],
      );
      assert.equal(await store.inspect('ns', 'short'), undefined);
      assert.equal(await store.sweep(), 1);
      assert.deepEqual(
        (await store.namespaceStats('ns')).map((s) => [s.entries, s.expired]),
        [[2, 0]],
      );
    });

    it('shows an entry with its size and whether eviction may remove it, without changing it', async () => {
      await store.set('ns', 'cache', { a: [1, 2] }, 60);
      await store.set('ns', 'counter:x', { count: 3, periodStart: null }, undefined, { evictable: false });
      const cache = await store.inspect('ns', 'cache');
      assert.ok(cache);
      assert.deepEqual(cache.value, { a: [1, 2] });
      assert.equal(cache.evictable, true);
      assert.ok(cache.size > 0);
      assert.equal(cache.expiresAt, cache.storedAt + 60_000);
      const counter = await store.inspect('ns', 'counter:x');
      assert.equal(counter?.evictable, false);
      assert.equal(await store.inspect('ns', 'missing'), undefined);
      assert.deepEqual((await store.get('ns', 'cache'))?.value, { a: [1, 2] });
    });

    it('refuses a page size out of range', async () => {
      await assert.rejects(store.listKeys('ns', { limit: MAX_KEY_PAGE + 1 }), { code: 'INVALID_INPUT' });
      await assert.rejects(store.listKeys('ns', { limit: 1.5 }), { code: 'INVALID_INPUT' });
    });
  });
}
