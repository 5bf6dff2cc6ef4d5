import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import fc from 'fast-check';
import { CacheError, StoreFullError } from '../../nodes/lib/errors';
import type { EvictionPolicy } from '../../nodes/lib/options';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, diskKeys, EVICTION_POLICIES, onDisk, openStore, settled, tempFile } from './fixtures';

const NS = 'eviction';
// 0.01 MB = 10,486 bytes; each entry below takes a little over 3,000, so three fit and a fourth does not.
const LIMIT_MB = 0.01;
const LIMIT_BYTES = Math.round(LIMIT_MB * 1024 * 1024);
const big = (tag: string) => `${tag}:${'x'.repeat(3000)}`;

async function diskBytes(file: string): Promise<number> {
  const rows = await onDisk(file, (db) => db.all<{ n: number }>('SELECT COALESCE(SUM(size), 0) AS n FROM keyv'));
  return rows[0].n;
}

/**
 * What each policy promises when a full store (a, b, c written in that order, then a read) takes a
 * fourth entry d: the keys left, or that the write is refused.
 */
const PROMISE: Record<EvictionPolicy, { keeps: string[]; refuses: boolean; why: string }> = {
  'least-recently-stored': { keeps: ['b', 'c', 'd'], refuses: false, why: 'the entry stored longest ago goes, though it was read last' },
  'least-recently-used': { keeps: ['a', 'c', 'd'], refuses: false, why: 'the entry unused longest goes; the read kept a' },
  none: { keeps: ['a', 'b', 'c'], refuses: true, why: 'nothing is removed: the write that does not fit fails with STORE_FULL' },
};

const isFull = (error: unknown) => error instanceof StoreFullError && error.code === 'STORE_FULL';

for (const durability of DURABILITIES) {
  describe(`eviction at the size cap (${durability})`, () => {
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

    function open(evictionPolicy?: EvictionPolicy): Promise<Store> {
      return openStore(file, { durability, sizeLimitMb: LIMIT_MB, ...(evictionPolicy ? { evictionPolicy } : {}) });
    }

    /** Waits for eviction: deferred writes reach the file, and eviction runs, at the next flush; immediate ones before set() resolves. */
    async function settle(): Promise<void> {
      if (durability === 'deferred') await settled(store);
    }

    /** The keys in the file once every accepted write has reached it. */
    async function keysOnDisk(namespace = NS): Promise<string[]> {
      await settled(store);
      return diskKeys(file, namespace);
    }

    /** Writes a, b, c one second apart. */
    async function fill(): Promise<void> {
      for (const key of ['a', 'b', 'c']) {
        await store.set(NS, key, big(key));
        clock.advance(1000);
      }
      assert.deepStrictEqual(await store.keys(NS), ['a', 'b', 'c'], 'three entries fit under the cap');
    }

    /** Writes d into the full store: the keys it leaves, or that it was refused with STORE_FULL. */
    async function addFourth(): Promise<{ keys: string[]; refused: boolean }> {
      let refused = false;
      await store.set(NS, 'd', big('d')).catch((error: unknown) => {
        assert.ok(isFull(error), String(error));
        refused = true;
      });
      await settle();
      return { keys: await store.keys(NS), refused };
    }

    it('uses least-recently-stored by default', async () => {
      store = await open();
      assert.equal(store.evictionPolicy, 'least-recently-stored');
    });

    for (const evictionPolicy of EVICTION_POLICIES) {
      const promise = PROMISE[evictionPolicy];
      describe(evictionPolicy, () => {
        it('counts stored bytes as the cap does', async () => {
          store = await open(evictionPolicy);
          await fill();
          await store.flush();
          const used = await store.bytesUsed();
          assert.equal(used, await diskBytes(file));
          assert.ok(used > 9000 && used <= LIMIT_BYTES, `three entries use ${used} bytes`);
          await store.delete(NS, 'b');
          await store.flush();
          assert.equal(await store.bytesUsed(), await diskBytes(file));
          assert.ok((await store.bytesUsed()) < used);
        });

        it(`takes a fourth entry into a full store as it promises: ${promise.why}`, async () => {
          store = await open(evictionPolicy);
          await fill();
          assert.equal((await store.get(NS, 'a'))?.value, big('a'));
          clock.advance(1000);
          const { keys, refused } = await addFourth();
          assert.equal(refused, promise.refuses);
          assert.deepStrictEqual(keys, promise.keeps);
          assert.deepStrictEqual(await keysOnDisk(), promise.keeps);
          for (const key of ['a', 'b', 'c', 'd'].filter((k) => !promise.keeps.includes(k))) {
            assert.equal(await store.get(NS, key), undefined, `${key} is gone from memory too`);
          }
          assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
        });

        it('keeps its order over a restart (it is on disk)', async () => {
          store = await open(evictionPolicy);
          await fill();
          await store.close();
          store = await open(evictionPolicy);
          assert.equal((await store.get(NS, 'a'))?.value, big('a')); // a read of an entry loaded from disk
          clock.advance(1000);
          const { keys, refused } = await addFourth();
          assert.equal(refused, promise.refuses);
          assert.deepStrictEqual(keys, promise.keeps);
          assert.deepStrictEqual(await keysOnDisk(), promise.keeps);
        });

        it('never goes over the cap with writes that arrive together', async () => {
          store = await open(evictionPolicy);
          const results = await Promise.allSettled(['a', 'b', 'c', 'd', 'e'].map((key) => store.set(NS, key, big(key))));
          const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
          assert.equal(rejected.length, promise.refuses ? 2 : 0, promise.refuses ? 'two of five writes do not fit' : 'older entries make room for every write');
          for (const r of rejected) assert.ok(isFull(r.reason), String(r.reason));
          await settle();
          assert.equal((await store.keys(NS)).length, 3);
          assert.equal((await keysOnDisk()).length, 3);
          assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
          assert.ok((await diskBytes(file)) <= LIMIT_BYTES);
        });

        it('evicts nothing while the store is under its cap', async () => {
          store = await open(evictionPolicy);
          await fill();
          await store.delete(NS, 'b');
          clock.advance(1000);
          await store.set(NS, 'd', big('d'));
          assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
          assert.deepStrictEqual(await keysOnDisk(), ['a', 'c', 'd']);
        });
      });
    }

    describe('least-recently-stored', () => {
      it('counts a rewrite as a new store: the rewritten entry outlives older ones', async () => {
        store = await open();
        await fill();
        await store.set(NS, 'a', big('A'));
        clock.advance(1000);
        await store.set(NS, 'd', big('d'));
        await settle();
        assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
        assert.equal((await store.get(NS, 'a'))?.value, big('A'));
        assert.deepStrictEqual(await keysOnDisk(), ['a', 'c', 'd']);
      });

      it('evicts across namespaces, oldest first, and as many entries as needed', async () => {
        store = await open();
        await store.set('first', 'a', big('a'));
        clock.advance(1000);
        await store.set('second', 'b', big('b'));
        clock.advance(1000);
        await store.set('first', 'c', big('c'));
        clock.advance(1000);
        await store.set('second', 'huge', `${'y'.repeat(6000)}`);
        await settle();
        assert.deepStrictEqual(await store.keys('first'), ['c']);
        assert.deepStrictEqual(await store.keys('second'), ['huge']);
        assert.deepStrictEqual(await keysOnDisk('first'), ['c']);
        assert.deepStrictEqual(await keysOnDisk('second'), ['huge']);
        assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
      });
    });

    describe('least-recently-used', () => {
      it('counts every read of an entry loaded from disk after a restart', async () => {
        store = await open('least-recently-used');
        await fill();
        await store.close();
        store = await open('least-recently-used');
        assert.equal((await store.get(NS, 'b'))?.value, big('b'));
        assert.equal((await store.get(NS, 'a'))?.value, big('a'));
        clock.advance(1000);
        await store.set(NS, 'd', big('d'));
        await settle();
        assert.deepStrictEqual(await store.keys(NS), ['a', 'b', 'd']);
        assert.deepStrictEqual(await keysOnDisk(), ['a', 'b', 'd']);
      });

      it('counts update() as a use', async () => {
        store = await open('least-recently-used');
        await fill();
        await store.update(NS, 'a', () => undefined); // read only, writes nothing
        clock.advance(1000);
        await store.set(NS, 'd', big('d'));
        await settle();
        assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
      });

      it('remembers reads over a restart', async () => {
        store = await open('least-recently-used');
        await fill();
        assert.equal((await store.get(NS, 'a'))?.value, big('a'));
        clock.advance(1000);
        await store.close();
        store = await open('least-recently-used');
        await store.set(NS, 'd', big('d'));
        await settle();
        assert.deepStrictEqual(await store.keys(NS), ['a', 'c', 'd']);
      });
    });

    describe('none', () => {
      it('rejects a write over the cap with StoreFullError naming the policy, and writes nothing', async () => {
        store = await open('none');
        await fill();
        await assert.rejects(store.set(NS, 'd', big('d')), (error: unknown) => {
          assert.ok(error instanceof StoreFullError);
          assert.ok(error instanceof CacheError);
          assert.equal(error.code, 'STORE_FULL');
          assert.match(error.message, /eviction policy is "none"/);
          return true;
        });
        assert.equal(await store.get(NS, 'd'), undefined);
        assert.deepStrictEqual(await keysOnDisk(), ['a', 'b', 'c']);
      });

      it('rejects an update() over the cap and keeps the old value', async () => {
        store = await open('none');
        await fill();
        await assert.rejects(
          store.update(NS, 'a', () => ({ value: big('a') + 'z'.repeat(2000) })),
          StoreFullError,
        );
        assert.equal((await store.get(NS, 'a'))?.value, big('a'));
        await store.close();
        store = await open('none');
        assert.equal((await store.get(NS, 'a'))?.value, big('a'), 'the old value is what is on disk');
      });

      // deferred mode too: the delete is not in the file yet, but the room it frees counts at once
      it('accepts writes again once deletes make room', async () => {
        store = await open('none');
        await fill();
        await assert.rejects(store.set(NS, 'd', big('d')), StoreFullError);
        assert.equal(await store.delete(NS, 'a'), true);
        await store.set(NS, 'd', big('d'));
        assert.deepStrictEqual(await store.keys(NS), ['b', 'c', 'd']);
        assert.deepStrictEqual(await keysOnDisk(), ['b', 'c', 'd']);
      });

      it('lets an entry be rewritten at the same size when the store is full', async () => {
        store = await open('none');
        await fill();
        await store.set(NS, 'a', big('A'));
        assert.equal((await store.get(NS, 'a'))?.value, big('A'));
      });

      it('lets an entry be rewritten at the same size when the store is full, after a restart', async () => {
        store = await open('none');
        await fill();
        await store.close();
        store = await open('none');
        await store.set(NS, 'a', big('A'));
        assert.equal((await store.get(NS, 'a'))?.value, big('A'));
        assert.ok((await store.bytesUsed()) <= LIMIT_BYTES);
      });
    });
  });
}

describe('policy none: deferred mode refuses exactly what immediate mode refuses', () => {
  const clock = new ManualClock();
  beforeEach(() => clock.install());
  afterEach(() => clock.uninstall());

  type Op = { kind: 'set'; key: string; size: number } | { kind: 'delete'; key: string } | { kind: 'flush' };
  const key = fc.constantFrom('a', 'b', 'c', 'd', 'e');
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), key, size: fc.constantFrom(200, 1500, 3000, 4500, 9000) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  );

  /** Runs `ops` on a store of `durability`: what each answered, then the keys and bytes in the file. */
  async function play(durability: 'immediate' | 'deferred', ops: Op[]): Promise<{ answers: string[]; keys: string[]; bytes: number }> {
    const file = tempFile();
    const store = await openStore(file, { durability, sizeLimitMb: LIMIT_MB, evictionPolicy: 'none', flushInterval: 3600 });
    const answers: string[] = [];
    try {
      for (const o of ops) {
        if (o.kind === 'flush') await store.flush();
        else if (o.kind === 'delete') answers.push(`delete ${o.key}: ${await store.delete(NS, o.key)}`);
        else {
          const answer = await store.set(NS, o.key, 'x'.repeat(o.size)).then(
            () => 'stored',
            (error: unknown) => {
              assert.ok(isFull(error), String(error));
              return 'full';
            },
          );
          answers.push(`set ${o.key} ${o.size}: ${answer}`);
        }
      }
      await settled(store);
      return { answers, keys: await diskKeys(file, NS), bytes: await diskBytes(file) };
    } finally {
      await store.close();
    }
  }

  it('for any mix of writes, rewrites and deletes near the cap, and never over it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        const immediate = await play('immediate', ops);
        const deferred = await play('deferred', ops);
        assert.deepStrictEqual(deferred.answers, immediate.answers);
        assert.deepStrictEqual(deferred.keys, immediate.keys);
        assert.ok(deferred.bytes <= LIMIT_BYTES, `${deferred.bytes} bytes in the file`);
        assert.equal(deferred.bytes, immediate.bytes);
      }),
      { numRuns: 60 },
    );
  });
});
