import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheError, StoreFullError } from '../../nodes/lib/errors';
import type { EvictionRound, Store, StoreHealth } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, diskKeys, onDisk, openStore, RecordingLogger, settled, tempFile } from './fixtures';

const NS = 'faults';
const ONE_MB = 1;
const kb = (n: number, tag = 'x') => `${tag}:${'x'.repeat(n * 1024)}`;
const YEAR_MS = 365 * 24 * 3600 * 1000;

for (const durability of DURABILITIES) {
  describe(`the size limit keeps state and refuses what cannot fit (${durability})`, () => {
    const clock = new ManualClock();
    let store: Store;
    let file: string;
    let logger: RecordingLogger;

    beforeEach(() => {
      clock.install();
      file = tempFile();
      logger = new RecordingLogger();
    });
    afterEach(async () => {
      await store.close();
      clock.uninstall();
    });

    for (const evictionPolicy of ['least-recently-stored', 'least-recently-used'] as const) {
      it(`never evicts counter or cooldown state, however much cache is written (${evictionPolicy})`, async () => {
        store = await openStore(file, { durability, sizeLimitMb: ONE_MB, evictionPolicy, logger });
        await store.update(NS, 'counter:kitchen', () => ({ value: { count: 12_345 }, evictable: false }));
        await store.update(NS, 'cooldown:leak', () => ({ value: { passedAt: clock.ms }, ttl: 4 * 3600, evictable: false }));
        clock.advance(1000);
        for (let i = 0; i < 15; i++) {
          await store.set(NS, `value${i}`, kb(100));
          clock.advance(1000);
        }
        await settled(store);
        assert.deepStrictEqual((await store.get(NS, 'counter:kitchen'))?.value, { count: 12_345 });
        assert.ok(await store.get(NS, 'cooldown:leak'), 'the cooldown is still armed');
        const onDiskKeys = await diskKeys(file, NS);
        assert.ok(onDiskKeys.includes('counter:kitchen') && onDiskKeys.includes('cooldown:leak'), onDiskKeys.join(','));
        assert.ok(!onDiskKeys.includes('value0'), 'the oldest cache entry went instead');
        assert.ok((await store.bytesUsed()) <= 1024 * 1024, 'the store is back under its limit');
      });
    }

    it('refuses a single value larger than the limit with STORE_FULL and removes nothing', async () => {
      store = await openStore(file, { durability, sizeLimitMb: ONE_MB, logger });
      await store.set(NS, 'small', 'kept');
      await store.update(NS, 'counter:c', () => ({ value: 7, evictable: false }));
      await assert.rejects(store.set(NS, 'huge', kb(1500)), (error: unknown) => {
        assert.ok(error instanceof StoreFullError);
        assert.equal(error.code, 'STORE_FULL');
        return true;
      });
      await settled(store);
      assert.equal(await store.get(NS, 'huge'), undefined, 'the refused value was never stored');
      assert.deepStrictEqual(await diskKeys(file, NS), ['counter:c', 'small']);
    });

    it('refuses a value that fits the limit but not beside the state that may not be evicted', async () => {
      store = await openStore(file, { durability, sizeLimitMb: ONE_MB, logger });
      await store.update(NS, 'counter:big', () => ({ value: kb(700), evictable: false }));
      await store.set(NS, 'cached', 'kept');
      await assert.rejects(
        store.set(NS, 'answer', kb(400)),
        (error: unknown) => error instanceof CacheError && error.code === 'STORE_FULL' && /never evicted/.test(error.message),
      );
      await settled(store);
      assert.deepStrictEqual(await diskKeys(file, NS), ['cached', 'counter:big']);
    });

    it('logs an eviction round with its count and bytes, at most once a minute, and tells its listeners', async () => {
      store = await openStore(file, { durability, sizeLimitMb: ONE_MB, logger });
      const rounds: EvictionRound[] = [];
      store.on('evicted', (round: EvictionRound) => rounds.push(round));
      for (let i = 0; i < 12; i++) await store.set(NS, `v${i}`, kb(100));
      await settled(store);
      assert.ok(rounds.length >= 1, 'listeners heard of the eviction');
      assert.ok(rounds.every((r) => r.entries > 0 && r.bytes > 100 * 1024));
      assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'));
      assert.match(logger.warnings[0], /evicted \d+ cache entries \(\d+(\.\d)? KB\)/);
      for (let i = 12; i < 16; i++) await store.set(NS, `v${i}`, kb(100));
      await settled(store);
      assert.equal(logger.warnings.length, 1, 'a second round within the minute is not logged again');
      clock.advance(61_000);
      await store.set(NS, 'v99', kb(100));
      await settled(store);
      assert.equal(logger.warnings.length, 2, 'after a minute the next round is logged with the totals since');
      assert.deepStrictEqual(store.lastEviction, rounds.at(-1));
    });

    it('upgrades a file written before entries were marked: counters and cooldowns there are kept too', async () => {
      store = await openStore(file, { durability, sizeLimitMb: ONE_MB });
      await store.set(NS, 'counter:old', 41);
      await store.set(NS, 'cooldown:old', { passedAt: 1 });
      await store.close();
      // the file as an earlier version left it: no evictable column
      await onDisk(file, async (db) => {
        await db.run('DROP TRIGGER keyv_bytes_insert');
        await db.run('DROP TRIGGER keyv_bytes_update');
        await db.run('DROP TRIGGER keyv_bytes_delete');
        await db.run('ALTER TABLE keyv DROP COLUMN evictable');
        await db.run("DELETE FROM flow_cache_meta WHERE name = 'pinned_bytes'");
      });
      store = await openStore(file, { durability, sizeLimitMb: ONE_MB });
      for (let i = 0; i < 15; i++) {
        clock.advance(1000);
        await store.set(NS, `value${i}`, kb(100));
      }
      await settled(store);
      assert.equal((await store.get(NS, 'counter:old'))?.value, 41);
      assert.ok(await store.get(NS, 'cooldown:old'));
    });
  });
}

describe('a deferred store whose writes fail (a full disk)', () => {
  const clock = new ManualClock();
  let store: Store;
  let file: string;
  let logger: RecordingLogger;

  beforeEach(() => {
    clock.install();
    file = tempFile();
    logger = new RecordingLogger();
  });
  afterEach(async () => {
    await store.close();
    clock.uninstall();
  });

  /** Makes every write to the table fail the way a full disk does for the store: the statement aborts. */
  const fillDisk = () =>
    onDisk(file, (db) => db.run(`CREATE TRIGGER full_disk BEFORE INSERT ON keyv BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`));
  const freeDisk = () => onDisk(file, (db) => db.run('DROP TRIGGER full_disk'));
  const increment = () => store.update(NS, 'count', (current) => ({ value: ((current?.value as number) ?? 0) + 1, evictable: false }));

  it('keeps acknowledged writes, never goes backwards, says why, and writes them once space is free', async () => {
    store = await openStore(file, { durability: 'deferred', logger });
    const health: StoreHealth[] = [];
    store.on('health', (h: StoreHealth) => health.push(h));
    for (let i = 0; i < 1000; i++) await increment();
    await store.flush();
    await fillDisk();
    for (let i = 0; i < 20; i++) await increment();
    await assert.rejects(store.flush(), (error: unknown) => error instanceof CacheError && error.code === 'STORE_IO');
    assert.equal((await store.get(NS, 'count'))?.value, 1020, 'the running count does not go back to what is on disk');
    assert.equal(store.healthy, false);
    assert.equal(health.length, 1);
    assert.equal(health[0].ok, false);
    assert.ok(
      logger.errors.some((line) => line.includes('database or disk is full') && /writes kept in memory, retrying/.test(line)),
      logger.errors.join('\n'),
    );
    await increment();
    assert.equal((await store.get(NS, 'count'))?.value, 1021);
    await freeDisk();
    await store.flush();
    assert.equal(store.healthy, true);
    assert.deepStrictEqual(health.at(-1), { ok: true });
    const rows = await onDisk(file, (db) => db.all<{ value: string }>('SELECT value FROM keyv'));
    assert.deepStrictEqual(
      rows.map((r) => JSON.parse(r.value).v),
      [1021],
    );
  });

  it('retries by itself with a growing delay', async () => {
    store = await openStore(file, { durability: 'deferred', logger });
    await store.set(NS, 'a', 1);
    await store.flush();
    await fillDisk();
    await store.set(NS, 'a', 2);
    await assert.rejects(store.flush());
    assert.match(logger.errors.at(-1) ?? '', /retrying in 1 s/);
    await freeDisk();
    // the retry timer is real (and does not hold the process open): wait for it by listening, not by a fixed sleep
    const keepAlive = setInterval(() => undefined, 1000);
    await new Promise<void>((resolve) => store.once('health', () => resolve()));
    clearInterval(keepAlive);
    const rows = await onDisk(file, (db) => db.all<{ value: string }>('SELECT value FROM keyv'));
    assert.equal(JSON.parse(rows[0].value).v, 2);
  });
});

for (const durability of DURABILITIES) {
  describe(`clock jumps (${durability})`, () => {
    const clock = new ManualClock();
    let store: Store;
    let file: string;

    beforeEach(() => {
      clock.install();
      file = tempFile();
    });
    afterEach(async () => {
      await store.close();
      clock.uninstall();
    });

    it('an entry written while the clock ran a year ahead lives its TTL from when the jump is noticed, not a year', async () => {
      store = await openStore(file, { durability });
      const start = clock.ms;
      clock.set(new Date(start + YEAR_MS).toISOString());
      await store.set(NS, 'k', 'v', 60);
      clock.set(new Date(start).toISOString()); // NTP corrects the clock
      assert.equal((await store.get(NS, 'k'))?.value, 'v', 'still there within its TTL');
      clock.advance(61_000);
      assert.equal(await store.get(NS, 'k'), undefined, 'gone once its TTL has passed since the jump');
    });

    // in deferred mode the writes are not in the file yet when the sweep runs: it restamps them in memory
    it('the sweep restamps entries from the future on disk, so they expire by their TTL after a restart too', async () => {
      store = await openStore(file, { durability });
      const start = clock.ms;
      clock.set(new Date(start + YEAR_MS).toISOString());
      await store.set(NS, 'k', 'v', 60);
      await store.set(NS, 'forever', 'v');
      clock.set(new Date(start).toISOString());
      await store.sweep();
      await store.close();
      const rows = await onDisk(file, (db) =>
        db.all<{ key: string; stored_at: number; expires_at: number | null; value: string }>('SELECT key, stored_at, expires_at, value FROM keyv ORDER BY key'),
      );
      for (const row of rows) {
        assert.equal(row.stored_at, start);
        assert.equal(JSON.parse(row.value).s, start);
      }
      assert.equal(rows.find((r) => r.key.endsWith(':k'))?.expires_at, start + 60_000);
      assert.equal(rows.find((r) => r.key.endsWith(':forever'))?.expires_at, null);
      store = await openStore(file, { durability });
      clock.advance(61_000);
      assert.equal(await store.get(NS, 'k'), undefined);
      assert.equal((await store.get(NS, 'forever'))?.value, 'v');
      assert.equal(
        await store.bytesUsed(),
        (await onDisk(file, (db) => db.all<{ n: number }>('SELECT SUM(size) AS n FROM keyv')))[0].n,
        'byte count matches the restamped rows',
      );
    });
  });
}

describe('one process per database file', () => {
  it('a second store on a file that is open is refused with an error naming the holder', async () => {
    const file = tempFile();
    const first = await openStore(file);
    try {
      await assert.rejects(openStore(file), (error: unknown) => {
        assert.ok(error instanceof CacheError);
        assert.equal(error.code, 'STORE_LOCKED');
        assert.ok(error.message.includes(file), error.message);
        assert.ok(error.message.includes(`process ${process.pid}`), error.message);
        return true;
      });
      await first.set(NS, 'still', 'works');
    } finally {
      await first.close();
    }
    const again = await openStore(file);
    assert.equal((await again.get(NS, 'still'))?.value, 'works', 'once closed, the file opens again');
    await again.close();
  });
});
