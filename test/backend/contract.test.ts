// One suite, every backend: what a node may rely on from its namespace (CacheSpace), run against the
// SQLite store and a real Redis server alike.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { CacheError, UnstorableValueError } from '../../nodes/lib/errors';
import type { CacheSpace, FlightOptions } from '../../nodes/lib/space';
import type { Entry } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { type BackendFixture, RedisServer, redisFixture, sqliteFixture } from './backends';

/** luxon DateTimes compare by instant, zone and ISO text; everything else by deepStrictEqual. */
function comparable(value: unknown): unknown {
  if (DateTime.isDateTime(value)) return { luxon: value.toISO(), zone: value.zoneName };
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [comparable(k), comparable(v)]));
  if (value instanceof Set) return new Set([...value].map(comparable));
  if (Array.isArray(value)) return value.map(comparable);
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]));
  }
  return value;
}

const samples: Record<string, unknown> = {
  null: null,
  boolean: true,
  integer: 42,
  'negative zero': -0,
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  text: 'Küche 🌡️ \u0000 "quoted"',
  'empty text': '',
  'JSON object': { a: 1, b: 'two', c: [true, null, { d: 4.5 }] },
  'object with a $t key': { $t: 'D', v: 'not a date' },
  Date: new Date('2026-03-29T01:30:00.123Z'),
  'DateTime in a named zone': DateTime.fromISO('2026-03-29T03:30:00.456', { zone: 'Europe/Berlin' }),
  Buffer: Buffer.from([0, 1, 2, 254, 255]),
  Map: new Map<unknown, unknown>([
    ['a', 1],
    [2, new Date(0)],
  ]),
  Set: new Set([1, 'two', 3n]),
  BigInt: 12345678901234567890n,
  nested: { when: new Date(86_400_000), raw: Buffer.from('hi'), big: [1n, -2n], zone: DateTime.fromMillis(0, { zone: 'America/New_York' }) },
};

function increment(space: CacheSpace, key: string) {
  return space.update(key, (current) => ({ value: ((current?.value as number | undefined) ?? 0) + 1 }));
}

function flightOptions(key: string, waitMs = 5000): FlightOptions {
  return { key, holdMs: 5000, waitMs, timeout: () => new Error('waited too long') };
}

/** Starts a flight in `space` whose work never ends (its process died in it); resolves once it holds the lock. */
function holding(space: CacheSpace, flightKey: string, holdMs: number): Promise<void> {
  return new Promise((started) => {
    space.singleFlight(flightKey, () => new Promise<Entry>(() => started()), { ...flightOptions('answer'), holdMs }).catch(() => undefined); // ends when its client is closed
  });
}

const clock = new ManualClock();
let server: RedisServer;
let prefixes = 0;

before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.stop();
});

const backends: Record<string, () => Promise<BackendFixture>> = {
  sqlite: () => sqliteFixture(clock),
  redis: () => redisFixture(server, `contract${++prefixes}:`),
};

for (const [kind, make] of Object.entries(backends)) {
  describe(`namespace contract (${kind})`, () => {
    let fx: BackendFixture;
    beforeEach(async () => {
      clock.install();
      fx = await make();
    });
    afterEach(async () => {
      await fx.close();
      clock.uninstall();
    });

    it('values keep their types, through set and through update', async () => {
      const space = fx.space('values');
      for (const [label, value] of Object.entries(samples)) {
        await space.set(`set ${label}`, value);
        await space.update(`update ${label}`, () => ({ value }));
      }
      for (const [label, value] of Object.entries(samples)) {
        assert.deepStrictEqual(comparable((await space.get(`set ${label}`))?.value), comparable(value), `set ${label}`);
        assert.deepStrictEqual(comparable((await space.get(`update ${label}`))?.value), comparable(value), `update ${label}`);
      }
      const zoned = (await space.get('set DateTime in a named zone'))?.value as DateTime;
      assert.equal(zoned.zoneName, 'Europe/Berlin');
      assert.equal(typeof (await space.get('set BigInt'))?.value, 'bigint');
      assert.ok(Object.is((await space.get('set negative zero'))?.value, -0));
    });

    it('a value that cannot be stored is refused with its path, and the stored one stays', async () => {
      const space = fx.space('values');
      await space.set('k', 'before');
      await assert.rejects(space.set('k', { a: [1, () => 2] }), (error: unknown) => error instanceof UnstorableValueError && error.path === 'value.a[1]');
      await assert.rejects(
        space.update('k', () => ({ value: Symbol('s') })),
        UnstorableValueError,
      );
      assert.equal((await space.get('k'))?.value, 'before');
    });

    it('keys must be non-empty, well-formed text', async () => {
      const space = fx.space('keys');
      for (const key of ['', 'a\ud800']) {
        await assert.rejects(space.set(key, 1), (error: unknown) => error instanceof CacheError && error.code === 'INVALID_KEY', JSON.stringify(key));
      }
      await assert.rejects(space.set('k', 1, -1), (error: unknown) => error instanceof CacheError && error.code === 'INVALID_TTL');
      assert.equal(await space.get('k'), undefined);
    });

    it('an entry lives for its TTL, and is gone after it', async () => {
      const space = fx.space('ttl');
      const ttl = fx.shortTtl;
      const written = await space.set('short', 'soon gone', ttl);
      assert.equal(written.expiresAt, written.storedAt + Math.round(ttl * 1000));
      await space.set('kept', 'stays');
      const read = await space.get('short');
      assert.equal(read?.value, 'soon gone');
      assert.equal(read?.expiresAt, written.expiresAt);
      assert.equal((await space.get('kept'))?.expiresAt, null);
      await fx.elapse(Math.round(ttl * 1000));
      assert.equal(await space.get('short'), undefined);
      assert.deepStrictEqual(await space.keys(), ['kept']);
    });

    it("the namespace's default TTL applies to writes without one; withoutDefaultTtl keeps them", async () => {
      const space = fx.space('default-ttl', fx.shortTtl);
      const defaulted = await space.set('cache', 1);
      const own = await space.set('own', 1, fx.shortTtl * 100);
      const state = await space.withoutDefaultTtl().update('state', () => ({ value: 1 }));
      assert.equal(defaulted.expiresAt, defaulted.storedAt + Math.round(fx.shortTtl * 1000));
      assert.equal(own.expiresAt, own.storedAt + Math.round(fx.shortTtl * 100 * 1000));
      assert.equal(state.entry?.expiresAt, null);
      await fx.elapse(Math.round(fx.shortTtl * 1000));
      assert.deepStrictEqual(await space.keys(), ['own', 'state']);
    });

    it('namespaces never mix, whatever their names', async () => {
      const names = ['flow1', 'flow1:x', 'FLOW1', 'flow_', 'flow%', 'fl*', 'ns[1]', 'a\\b', 'Küche', 'shared:house', 'flow1#flight'];
      for (const name of names) await fx.space(name).set('k', name);
      for (const name of names) {
        const space = fx.space(name);
        assert.equal((await space.get('k'))?.value, name, name);
        assert.deepStrictEqual(await space.keys(), ['k'], name);
        assert.deepStrictEqual(
          (await space.entries()).map(([key, entry]) => [key, entry.value]),
          [['k', name]],
          name,
        );
      }
    });

    it('clear removes one namespace and nothing else', async () => {
      const a = fx.space('flow1');
      const b = fx.space('flow1:x');
      const c = fx.space('flow');
      for (let i = 0; i < 1500; i++) await a.set(`k${i}`, i);
      await b.set('k0', 'b');
      await c.set('k0', 'c');
      await a.clear();
      assert.deepStrictEqual(await a.keys(), []);
      assert.equal(await a.get('k0'), undefined);
      assert.equal((await b.get('k0'))?.value, 'b');
      assert.equal((await c.get('k0'))?.value, 'c');
      await a.set('again', 1);
      assert.deepStrictEqual(await a.keys(), ['again']);
    });

    it('keys and entries list the unexpired keys of the namespace, sorted', async () => {
      const space = fx.space('list');
      await space.set('b', 2);
      await space.set('a', new Date(5));
      await space.set('gone', 0, fx.shortTtl);
      await fx.elapse(Math.round(fx.shortTtl * 1000));
      assert.deepStrictEqual(await space.keys(), ['a', 'b']);
      const entries = await space.entries();
      assert.deepStrictEqual(
        entries.map(([key]) => key),
        ['a', 'b'],
      );
      assert.ok(entries[0][1].value instanceof Date);
    });

    it('delete says whether there was an entry; update can delete or leave a key as it is', async () => {
      const space = fx.space('delete');
      assert.equal(await space.delete('k'), false);
      await space.set('k', 1);
      const same = await space.update('k', () => undefined);
      assert.equal(same.previous?.value, 1);
      assert.equal(same.entry?.value, 1);
      assert.equal(await space.delete('k'), true);
      assert.equal(await space.get('k'), undefined);
      await space.set('k', 2);
      const removed = await space.update('k', () => ({ delete: true }));
      assert.equal(removed.previous?.value, 2);
      assert.equal(removed.entry, undefined);
      assert.equal(await space.get('k'), undefined);
    });

    it('a change that throws writes nothing and does not block later updates', async () => {
      const space = fx.space('throws');
      await space.set('k', 1);
      await assert.rejects(
        space.update('k', () => {
          throw new Error('no');
        }),
        /no/,
      );
      assert.equal((await space.get('k'))?.value, 1);
      await increment(space, 'k');
      assert.equal((await space.get('k'))?.value, 2);
    });

    it('1,000 concurrent increments of one key add exactly 1,000, each caller seeing its own step', async () => {
      const space = fx.space('atomic');
      await space.set('n', 5);
      const results = await Promise.all(Array.from({ length: 1000 }, () => increment(space, 'n')));
      assert.equal((await space.get('n'))?.value, 1005);
      const seen = results.map((r) => r.entry?.value as number).sort((x, y) => x - y);
      assert.deepStrictEqual(
        seen,
        Array.from({ length: 1000 }, (_, i) => 6 + i),
      );
    });

    it('writes and updates of one key apply in call order', async () => {
      const space = fx.space('order');
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) ops.push(increment(space, 'm'));
      ops.push(space.set('m', 1000));
      for (let i = 0; i < 50; i++) ops.push(increment(space, 'm'));
      ops.push(space.delete('m'));
      for (let i = 0; i < 10; i++) ops.push(increment(space, 'm'));
      await Promise.all(ops);
      assert.equal((await space.get('m'))?.value, 10);
    });

    it('a single flight runs the work and gives its entry; its error reaches the caller', async () => {
      const space = fx.space('flight');
      const entry = await space.singleFlight('GET x', () => space.set('x', 'answer'), flightOptions('x'));
      assert.equal(entry.value, 'answer');
      await assert.rejects(
        space.singleFlight(
          'GET y',
          async () => {
            throw new Error('upstream down');
          },
          flightOptions('y'),
        ),
        /upstream down/,
      );
      assert.deepStrictEqual(await space.keys(), ['x'], 'a flight leaves nothing in the namespace but its entry');
    });

    if (kind !== 'redis') return;

    describe('two processes on one server', () => {
      it('1,000 concurrent increments split across both add exactly 1,000', async () => {
        const mine = fx.space('shared');
        const theirs = fx.otherProcess('shared') as CacheSpace;
        const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => increment(i % 2 === 0 ? mine : theirs, 'n')));
        assert.equal((await mine.get('n'))?.value, 1000);
        const seen = results.map((r) => r.entry?.value as number).sort((x, y) => x - y);
        assert.deepStrictEqual(
          seen,
          Array.from({ length: 1000 }, (_, i) => i + 1),
          'no two callers saw the same count',
        );
      });

      it('a burst for one key: exactly one check-and-arm wins', async () => {
        const mine = fx.space('gate');
        const theirs = fx.otherProcess('gate') as CacheSpace;
        let passed = 0;
        await Promise.all(
          Array.from({ length: 100 }, (_, i) => {
            let armed = false;
            return (i % 2 === 0 ? mine : theirs)
              .update('cooldown:door', (current) => {
                armed = current === undefined;
                return armed ? { value: Date.now(), ttl: 60 } : undefined;
              })
              .then(() => {
                if (armed) passed++;
              });
          }),
        );
        assert.equal(passed, 1);
      });

      it('concurrent flights in both processes run the work once; every caller gets the entry', async () => {
        const mine = fx.space('flight');
        const theirs = fx.otherProcess('flight') as CacheSpace;
        let runs = 0;
        const work = (space: CacheSpace) => async (): Promise<Entry> => {
          runs++;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return space.set('answer', { fetched: runs });
        };
        const entries = await Promise.all(
          Array.from({ length: 20 }, (_, i) => {
            const space = i % 2 === 0 ? mine : theirs;
            return space.singleFlight('GET /answer', work(space), flightOptions('answer'));
          }),
        );
        assert.equal(runs, 1);
        for (const entry of entries) assert.deepStrictEqual(entry.value, { fetched: 1 });
      });

      it("the holder's error reaches the other process's waiters, rebuilt by the caller", async () => {
        const mine = fx.space('flight');
        const theirs = fx.otherProcess('flight') as CacheSpace;
        class Upstream extends Error {
          constructor(
            message: string,
            readonly status: number,
          ) {
            super(message);
          }
        }
        const options: FlightOptions = {
          ...flightOptions('answer'),
          encodeError: (error) => ({ message: (error as Upstream).message, status: (error as Upstream).status }),
          decodeError: (data) => new Upstream((data as { message: string }).message, (data as { status: number }).status),
        };
        let runs = 0;
        const failing = async (): Promise<Entry> => {
          runs++;
          await new Promise((resolve) => setTimeout(resolve, 50));
          throw new Upstream('503 from upstream', 503);
        };
        const outcomes = await Promise.allSettled([mine.singleFlight('k', failing, options), theirs.singleFlight('k', failing, options)]);
        assert.equal(runs, 1);
        for (const outcome of outcomes) {
          assert.equal(outcome.status, 'rejected');
          const reason = (outcome as PromiseRejectedResult).reason;
          assert.ok(reason instanceof Upstream, String(reason));
          assert.equal(reason.status, 503);
        }
      });

      it('a holder that died lets go when its hold expires; the next caller runs the work', async () => {
        const mine = fx.space('flight');
        const theirs = fx.otherProcess('flight') as CacheSpace;
        // the other process takes the flight and dies in it: its work never ends, its lock expires after 300 ms
        await holding(theirs, 'k', 300);
        let runs = 0;
        const entry = await mine.singleFlight(
          'k',
          () => {
            runs++;
            return mine.set('answer', 'from the survivor');
          },
          flightOptions('answer'),
        );
        assert.equal(runs, 1);
        assert.equal(entry.value, 'from the survivor');
      });

      it("a waiter gives up after its wait with the caller's timeout error", async () => {
        const mine = fx.space('flight');
        const theirs = fx.otherProcess('flight') as CacheSpace;
        await holding(theirs, 'slow', 10_000);
        let ran = false;
        await assert.rejects(
          mine.singleFlight(
            'slow',
            async () => {
              ran = true;
              return mine.set('answer', 1);
            },
            { ...flightOptions('answer', 200), timeout: () => new Error('timed out waiting') },
          ),
          /timed out waiting/,
        );
        assert.equal(ran, false);
      });
    });
  });
}
