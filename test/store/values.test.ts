import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { UnstorableValueError } from '../../nodes/lib/errors';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, diskKeys, openStore, tempFile } from './fixtures';

const NS = 'values';

/** luxon DateTimes compare by instant, zone and ISO text; everything else by deepStrictEqual. */
function comparable(value: unknown): unknown {
  if (DateTime.isDateTime(value)) return { luxon: value.toISO(), zone: value.zoneName, ms: value.toMillis() };
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [comparable(k), comparable(v)]));
  if (value instanceof Set) return new Set([...value].map(comparable));
  if (Array.isArray(value)) return value.map(comparable);
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, { value: comparable((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

function assertSame(actual: unknown, expected: unknown, label: string): void {
  assert.deepStrictEqual(comparable(actual), comparable(expected), label);
}

const withProto = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "ok": 1}');

const samples: Record<string, () => unknown> = {
  null: () => null,
  true: () => true,
  false: () => false,
  zero: () => 0,
  'negative zero': () => -0,
  'negative zero in an array': () => [0, -0],
  integer: () => 42,
  'max safe integer': () => Number.MAX_SAFE_INTEGER,
  float: () => 0.1 + 0.2,
  tiny: () => 5e-324,
  huge: () => 1.7976931348623157e308,
  NaN: () => Number.NaN,
  Infinity: () => Number.POSITIVE_INFINITY,
  '-Infinity': () => Number.NEGATIVE_INFINITY,
  'empty string': () => '',
  'unicode string': () => 'Küche 🌡️ \u0000 \u2028 "quoted" \\ back',
  'lone surrogate': () => 'a\ud800b',
  'empty array': () => [],
  'empty object': () => ({}),
  'JSON object': () => ({ a: 1, b: 'two', c: [true, null, { d: 4.5 }] }),
  Date: () => new Date('2026-03-29T01:30:00.123Z'),
  'Date before 1970': () => new Date('1901-12-13T20:45:52.001Z'),
  'DateTime in a named zone': () => DateTime.fromISO('2026-03-29T02:30:00.456', { zone: 'Europe/Berlin' }),
  'DateTime in UTC': () => DateTime.fromISO('2026-06-01T10:00:00Z', { zone: 'utc' }),
  'DateTime in a fixed offset': () => DateTime.fromISO('2026-06-01T10:00:00+05:45', { setZone: true }),
  'DateTime in another hemisphere': () => DateTime.fromObject({ year: 2026, month: 1, day: 15, hour: 23, minute: 59 }, { zone: 'Australia/Adelaide' }),
  Buffer: () => Buffer.from([0, 1, 2, 254, 255]),
  'empty Buffer': () => Buffer.alloc(0),
  Map: () =>
    new Map<unknown, unknown>([
      ['a', 1],
      [2, 'two'],
    ]),
  'Map with object keys': () =>
    new Map<unknown, unknown>([
      [{ id: 1 }, new Set([1])],
      [new Date(0), 'epoch'],
    ]),
  Set: () => new Set([1, 'one', null]),
  BigInt: () => 12345678901234567890123456789n,
  'negative BigInt': () => -42n,
  'zero BigInt': () => 0n,
  'object with a "$t" key': () => ({ $t: 'D', v: '2026-01-01T00:00:00.000Z' }),
  'object that looks like a tagged Buffer': () => ({ $t: 'B', v: 'AAEC' }),
  'object with "$t" and "v" nested': () => ({ outer: { $t: 'O', v: { $t: 'N', v: 'NaN' } } }),
  'object with "__proto__" and "constructor" keys': () => withProto,
  'object with "v" and "s" keys': () => ({ v: 1, s: 2, e: 3 }),
  'nested combination': () => ({
    when: new Date('2026-06-01T10:00:00Z'),
    local: DateTime.fromISO('2026-06-01T12:00:00', { zone: 'America/New_York' }),
    blobs: [Buffer.from('hello'), Buffer.from('')],
    index: new Map<unknown, unknown>([
      ['users', new Set(['ann', 'bob'])],
      [7n, { deep: [new Map([[1, [-0, Number.NaN, Number.NEGATIVE_INFINITY]]])] }],
    ]),
    tags: new Set([new Date(1), 3n, { $t: 'S', v: [] }]),
    counts: { total: 12345678901234567890n, ratio: -0 },
  }),
};

for (const durability of DURABILITIES) {
  describe(`values: every supported type round-trips (${durability})`, () => {
    const clock = new ManualClock();
    let file: string;
    let store: Store | undefined;

    beforeEach(() => {
      clock.install();
      file = tempFile();
    });
    afterEach(async () => {
      await store?.close();
      store = undefined;
      clock.uninstall();
    });

    for (const [name, make] of Object.entries(samples)) {
      it(`${name}: read back equal, before and after the store is reopened`, async () => {
        store = await openStore(file, { durability });
        const entry = await store.set(NS, 'k', make());
        assertSame(entry.value, make(), 'the entry set() returns');
        assertSame((await store.get(NS, 'k'))?.value, make(), 'read from the same store');
        await store.close();
        store = await openStore(file, { durability });
        assertSame((await store.get(NS, 'k'))?.value, make(), 'read from disk after reopening');
      });
    }

    it('keeps a DateTime zone and instant exactly, not just an equal ISO text', async () => {
      store = await openStore(file, { durability });
      const berlin = DateTime.fromISO('2026-10-25T02:30:00.789+01:00', { zone: 'Europe/Berlin' }); // the repeated hour at the DST end
      await store.set(NS, 'dt', berlin);
      await store.close();
      store = await openStore(file, { durability });
      const back = (await store.get(NS, 'dt'))?.value as DateTime;
      assert.ok(DateTime.isDateTime(back), 'a luxon DateTime comes back');
      assert.equal(back.zoneName, 'Europe/Berlin');
      assert.equal(back.offset, 60);
      assert.equal(back.toMillis(), berlin.toMillis());
      assert.ok(back.equals(berlin));
    });

    it('returns objects with "__proto__" as data and pollutes no prototype', async () => {
      store = await openStore(file, { durability });
      await store.set(NS, 'p', withProto);
      await store.close();
      store = await openStore(file, { durability });
      const back = (await store.get(NS, 'p'))?.value as Record<string, unknown>;
      assert.ok(Object.hasOwn(back, '__proto__'), '__proto__ is an own key');
      assert.equal(Object.getPrototypeOf(back), Object.prototype);
      assert.deepStrictEqual(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, { polluted: true });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
    });

    it('hands out a fresh copy: changing a read value does not change the stored one', async () => {
      store = await openStore(file, { durability });
      const original = { list: [1, 2], when: new Date(0), buf: Buffer.from('ab') };
      await store.set(NS, 'c', original);
      original.list.push(3);
      const first = (await store.get(NS, 'c'))?.value as typeof original;
      first.list.push(99);
      first.when.setTime(5);
      first.buf[0] = 0;
      const second = (await store.get(NS, 'c'))?.value;
      assert.deepStrictEqual(second, { list: [1, 2], when: new Date(0), buf: Buffer.from('ab') });
    });

    it('drops object properties that are undefined, as JSON does', async () => {
      store = await openStore(file, { durability });
      await store.set(NS, 'u', { a: 1, gone: undefined });
      assert.deepStrictEqual((await store.get(NS, 'u'))?.value, { a: 1 });
    });

    it('allows the same object twice when it is not a cycle', async () => {
      store = await openStore(file, { durability });
      const shared = { n: 1 };
      await store.set(NS, 'dag', { a: shared, b: [shared, shared] });
      assert.deepStrictEqual((await store.get(NS, 'dag'))?.value, { a: { n: 1 }, b: [{ n: 1 }, { n: 1 }] });
    });
  });
}

class Thermostat {
  target = 21;
}

function circular(): unknown {
  const room: Record<string, unknown> = { name: 'kitchen', sensors: [{ id: 1 }] };
  (room.sensors as Record<string, unknown>[])[0].room = room;
  return { rooms: [room] };
}

const unstorable: { name: string; value: () => unknown; path: string; what: RegExp }[] = [
  { name: 'undefined', value: () => undefined, path: 'value', what: /undefined/ },
  { name: 'undefined in an array', value: () => [1, undefined], path: 'value[1]', what: /undefined/ },
  { name: 'a function', value: () => () => 1, path: 'value', what: /function/ },
  { name: 'a nested function', value: () => ({ handlers: { onChange: () => 1 } }), path: 'value.handlers.onChange', what: /function/ },
  { name: 'a symbol', value: () => Symbol('s'), path: 'value', what: /symbol/ },
  { name: 'a symbol in an array', value: () => ({ list: ['a', Symbol('s')] }), path: 'value.list[1]', what: /symbol/ },
  { name: 'a circular reference', value: circular, path: 'value.rooms[0].sensors[0].room', what: /circular/ },
  { name: 'a class instance', value: () => new Thermostat(), path: 'value', what: /class Thermostat/ },
  { name: 'a class instance inside a Map', value: () => new Map([['t', new Thermostat()]]), path: 'value<value 0>', what: /class Thermostat/ },
  { name: 'a class instance inside a Set', value: () => ({ s: new Set([1, new Thermostat()]) }), path: 'value.s<item 1>', what: /class Thermostat/ },
  { name: 'a RegExp', value: () => ({ pattern: /x/ }), path: 'value.pattern', what: /class RegExp/ },
  { name: 'an invalid Date', value: () => ({ at: new Date('nope') }), path: 'value.at', what: /invalid Date/ },
  { name: 'an invalid DateTime', value: () => ({ at: DateTime.fromISO('nope') }), path: 'value.at', what: /invalid luxon DateTime/ },
];

for (const durability of DURABILITIES) {
  describe(`values: what cannot be stored is rejected and nothing is written (${durability})`, () => {
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

    for (const bad of unstorable) {
      it(`${bad.name}: set() rejects naming ${bad.path}; the key stays absent`, async () => {
        await assert.rejects(store.set(NS, 'fresh', bad.value()), (error: unknown) => {
          assert.ok(error instanceof UnstorableValueError, `an UnstorableValueError, got ${String(error)}`);
          assert.equal(error.code, 'UNSTORABLE_VALUE');
          assert.equal(error.path, bad.path);
          assert.ok(error.message.includes(bad.path), `the message names the path: ${error.message}`);
          assert.match(error.message, bad.what);
          return true;
        });
        assert.equal(await store.get(NS, 'fresh'), undefined);
        assert.deepStrictEqual(await store.keys(NS), []);
        await store.flush();
        assert.deepStrictEqual(await diskKeys(store.file, NS), [], 'nothing reached the file');
      });

      it(`${bad.name}: set() and update() over an existing key keep its old value`, async () => {
        await store.set(NS, 'kept', { version: 1 });
        await assert.rejects(store.set(NS, 'kept', bad.value()), UnstorableValueError);
        await assert.rejects(
          store.update(NS, 'kept', () => ({ value: bad.value() })),
          UnstorableValueError,
        );
        assert.deepStrictEqual((await store.get(NS, 'kept'))?.value, { version: 1 });
        await store.close();
        store = await openStore(store.file, { durability });
        assert.deepStrictEqual((await store.get(NS, 'kept'))?.value, { version: 1 }, 'the old value is what is on disk');
      });
    }
  });
}
