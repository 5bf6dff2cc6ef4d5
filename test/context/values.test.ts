// What context values may be: JSON, plus Date, Map, Set, Buffer, BigInt and luxon DateTime as the store keeps
// them; what cannot be stored is refused with an error that names where, and changes nothing.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import vm from 'node:vm';
import { DateTime } from 'luxon';
import type { FlowCacheContext } from '../../nodes/context/context-store';
import { contextStore, defaultFile, freshDir, getAsync, onDiskContext, Recorded, setAsync } from './fixtures';

describe('context values', () => {
  let userDir: string;
  let context: FlowCacheContext;
  let logger: Recorded;

  beforeEach(async () => {
    userDir = freshDir();
    logger = new Recorded();
    context = contextStore(userDir, {}, logger);
    await context.open();
  });
  afterEach(async () => {
    await context.close();
  });

  async function reopen(): Promise<void> {
    await context.close();
    context = contextStore(userDir);
    await context.open();
  }

  it('keeps Date, Map, Set, Buffer, BigInt, luxon DateTime, NaN, Infinity and -0 exactly, also after a restart', async () => {
    const values: Record<string, unknown> = {
      date: new Date('2026-03-29T01:30:00.000Z'),
      map: new Map<unknown, unknown>([
        ['kitchen', 21.5],
        [2, { nested: new Date(0) }],
      ]),
      set: new Set(['a', 1, null]),
      buffer: Buffer.from([0, 1, 2, 255]),
      bigint: 2n ** 70n,
      luxon: DateTime.fromISO('2026-10-25T02:30:00', { zone: 'Europe/Berlin' }),
      special: [Number.NaN, Number.POSITIVE_INFINITY, -0],
      deep: { when: new Date(1), tags: new Set(['x']), raw: Buffer.from('hi') },
    };
    for (const [key, value] of Object.entries(values)) context.set('flow1', key, value);
    await context.committed();
    await reopen();
    for (const [key, value] of Object.entries(values)) {
      const got = context.get('flow1', key);
      if (DateTime.isDateTime(value)) {
        assert.ok(DateTime.isDateTime(got));
        assert.equal((got as DateTime).toISO(), value.toISO());
        assert.equal((got as DateTime).zoneName, 'Europe/Berlin');
      } else {
        assert.deepStrictEqual(got, value, key);
      }
    }
    assert.ok(Buffer.isBuffer(context.get('flow1', 'buffer')));
    assert.ok(Object.is((context.get('flow1', 'special') as number[])[2], -0));
  });

  it('keeps objects and arrays made in a Function node’s sandbox (another realm) as plain values', async () => {
    const made = vm.runInNewContext('({ list: [1, { a: "b" }], when: new Date(5), at: { x: 1 } })') as Record<string, unknown>;
    await setAsync(context, 'flow1', 'made', made);
    await reopen();
    assert.deepStrictEqual(JSON.parse(JSON.stringify(context.get('flow1', 'made'))), { list: [1, { a: 'b' }], when: new Date(5).toISOString(), at: { x: 1 } });
    assert.ok(context.get('flow1', 'made.when') instanceof Date);
  });

  const unstorable: [string, () => unknown, RegExp][] = [
    ['a function', () => () => 1, /cannot store a function at bad$/],
    ['a symbol', () => Symbol('s'), /cannot store a symbol at bad$/],
    [
      'a circular reference',
      () => {
        const o: Record<string, unknown> = { name: 'loop' };
        o.self = o;
        return o;
      },
      /cannot store a circular reference at bad\.self$/,
    ],
    ['an instance of a class', () => new (class Thermostat {})(), /cannot store an instance of class Thermostat at bad$/],
    ['a function deep inside', () => ({ a: [{ b: () => 1 }] }), /cannot store a function at bad\.a\[0\]\.b$/],
  ];

  for (const [what, make, message] of unstorable) {
    it(`refuses ${what} with an error naming where it is, and changes nothing (synchronous and with a callback)`, async () => {
      await setAsync(context, 'flow1', 'bad', 'before');
      assert.throws(
        () => context.set('flow1', 'bad', make()),
        (error: Error & { code?: string }) => error.code === 'UNSTORABLE_VALUE' && message.test(error.message),
      );
      await assert.rejects(setAsync(context, 'flow1', 'bad', make()), (error: Error & { code?: string }) => error.code === 'UNSTORABLE_VALUE');
      assert.equal(context.get('flow1', 'bad'), 'before');
      await context.committed();
      assert.deepStrictEqual(await onDiskContext(defaultFile(userDir)), { flow1: { bad: 'before' } });
    });
  }

  it('refuses a nested write that would make the value circular, and leaves the value as it was', () => {
    context.set('flow1', 'a', { x: 1, list: [1, 2] });
    const a = context.get('flow1', 'a');
    assert.throws(() => context.set('flow1', 'a.self', a), /cannot store a circular reference at a\.self/);
    assert.throws(() => context.set('flow1', 'a.list[1]', a), /circular/);
    assert.throws(() => context.set('flow1', 'a.deep.deeper.fn', () => 1), /cannot store a function at a\.deep\.deeper\.fn/);
    assert.deepStrictEqual(context.get('flow1', 'a'), { x: 1, list: [1, 2] }, 'no property was added, no array changed, nothing was created on the way');
  });

  it('sets none of several keys when one value cannot be stored', async () => {
    context.set('flow1', 'one', 1);
    assert.throws(() => context.set('flow1', ['one', 'two', 'three'], [10, () => 2, 30]), /cannot store a function at two/);
    assert.deepEqual(context.get('flow1', ['one', 'two', 'three']), [1, undefined, undefined]);
    await context.committed();
    assert.deepStrictEqual(await onDiskContext(defaultFile(userDir)), { flow1: { one: 1 } });
  });

  it('refuses to set a property beneath a value that cannot have one (Node-RED drops such a write silently)', async () => {
    context.set('flow1', 'n', 5);
    context.set('flow1', 'o', { list: ['text'] });
    assert.throws(() => context.set('flow1', 'n.x', 1), /cannot set "n\.x": n holds a number/);
    assert.throws(() => context.set('flow1', 'o.list[0].y', 1), /o\.list\[0\] holds a string/);
    await assert.rejects(setAsync(context, 'flow1', 'n.x.y', 1), /n holds a number/);
    assert.equal(context.get('flow1', 'n'), 5);
    context.set('flow1', 'n.x', undefined); // deleting what is not there is no error
    assert.equal(context.get('flow1', 'n'), 5);
  });

  it('stores undefined or skipped array elements as null, as JSON and localfilesystem do', async () => {
    context.set('flow1', 'sparse', [1, undefined, 3]);
    context.set('flow1', 'grown[3]', 'd');
    assert.deepStrictEqual(context.get('flow1', 'sparse'), [1, null, 3]);
    assert.deepStrictEqual(context.get('flow1', 'grown'), [null, null, null, 'd']);
    await reopen();
    assert.deepStrictEqual(context.get('flow1', 'sparse'), [1, null, 3]);
    assert.deepStrictEqual(context.get('flow1', 'grown'), [null, null, null, 'd']);
  });

  it('leaves out undefined object properties, as JSON does', async () => {
    await setAsync(context, 'flow1', 'o', { a: 1, gone: undefined });
    await reopen();
    assert.deepStrictEqual(context.get('flow1', 'o'), { a: 1 });
  });

  it('refuses keys the store cannot hold: __proto__ anywhere, a lone surrogate', () => {
    assert.throws(() => context.set('flow1', '__proto__', { polluted: true }), /__proto__/);
    assert.throws(() => context.set('flow1', 'a.__proto__.polluted', true), /__proto__/);
    assert.throws(() => context.set('flow1', 'bad\uD800', 1), /lone UTF-16 surrogate/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(context.keys('flow1'), []);
  });

  it('reads give the stored object itself, as the memory store does; a change inside it is written by setting it again', async () => {
    const state = { on: false };
    context.set('flow1', 'light', state);
    assert.equal(context.get('flow1', 'light'), state);
    await context.committed();
    state.on = true;
    await context.committed();
    assert.deepStrictEqual(await onDiskContext(defaultFile(userDir)), { flow1: { light: { on: false } } }, 'a change inside the object alone writes nothing');
    context.set('flow1', 'light', state);
    await context.committed();
    await reopen();
    assert.deepStrictEqual(context.get('flow1', 'light'), { on: true });
  });

  it('logs a value changed in place into one it cannot store, naming the key, when a later set writes it; the disk keeps the last good value', async () => {
    const rooms: Record<string, unknown> = { kitchen: 21 };
    await setAsync(context, 'flow1', 'rooms', rooms);
    rooms.callback = () => 1; // changed inside, without a set
    context.set('flow1', 'rooms.hall', 19); // this set writes the whole top-level key
    await context.committed();
    assert.match(logger.errors.join('\n'), /context flow1 key "rooms" is not written to .*: cannot store a function at rooms\.callback/);
    assert.deepStrictEqual(await onDiskContext(defaultFile(userDir)), { flow1: { rooms: { kitchen: 21 } } });
    assert.equal(context.pendingWrites, 0, 'not retried: only a new set can fix it');
  });

  it('writes one row per top-level key, with the whole value, so a nested set rewrites its top-level key', async () => {
    context.set('flow1', 'house.kitchen.temp', 21);
    context.set('flow1', 'house.hall.temp', 19);
    await setAsync(context, 'flow1', 'other', true);
    assert.deepStrictEqual(await onDiskContext(defaultFile(userDir)), { flow1: { house: { kitchen: { temp: 21 }, hall: { temp: 19 } }, other: true } });
    assert.equal(await getAsync(context, 'flow1', 'house.hall.temp'), 19);
  });
});
