// Node-RED's context store interface, as Node-RED's own tests check it for `memory` and `localfilesystem`
// (test/unit/@node-red/runtime/lib/nodes/context/ in the node-red repository): every behaviour they
// check, for this store, in its synchronous form and with callbacks. Nested keys are parsed by the
// @node-red/util of the Node-RED line under test (NODE_RED_LINE), as in a running Node-RED.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FlowCacheContext } from '../../nodes/context/context-store';
import { contextStore, freshDir, getArgs, getAsync, keysAsync, setAsync } from './fixtures';

describe('context store interface', () => {
  let userDir: string;
  let context: FlowCacheContext;

  beforeEach(async () => {
    userDir = freshDir();
    context = contextStore(userDir);
    await context.open();
  });
  afterEach(async () => {
    await context.clean([]);
    await context.close();
  });

  /** Closes and opens the store again on the same file: what a restart of Node-RED sees. */
  async function reopen(): Promise<void> {
    await context.close();
    context = contextStore(userDir);
    await context.open();
  }

  describe('get/set, synchronous', () => {
    it('stores a property', () => {
      assert.equal(context.get('nodeX', 'foo'), undefined);
      context.set('nodeX', 'foo', 'test');
      assert.equal(context.get('nodeX', 'foo'), 'test');
    });

    it('creates parent properties', () => {
      context.set('nodeX', 'foo.bar', 'test');
      assert.deepEqual(context.get('nodeX', 'foo'), { bar: 'test' });
    });

    it('deletes a property when set to undefined, at every depth', () => {
      context.set('nodeX', 'foo.abc.bar1', 'test1');
      context.set('nodeX', 'foo.abc.bar2', 'test2');
      assert.deepEqual(context.get('nodeX', 'foo.abc'), { bar1: 'test1', bar2: 'test2' });
      context.set('nodeX', 'foo.abc.bar1', undefined);
      assert.deepEqual(context.get('nodeX', 'foo.abc'), { bar2: 'test2' });
      context.set('nodeX', 'foo.abc', undefined);
      assert.equal(context.get('nodeX', 'foo.abc'), undefined);
      context.set('nodeX', 'foo', undefined);
      assert.equal(context.get('nodeX', 'foo'), undefined);
      assert.deepEqual(context.keys('nodeX'), []);
    });

    it('does not share context between scopes', () => {
      assert.equal(context.get('nodeX', 'foo'), undefined);
      assert.equal(context.get('nodeY', 'foo'), undefined);
      context.set('nodeX', 'foo', 'testX');
      context.set('nodeY', 'foo', 'testY');
      assert.equal(context.get('nodeX', 'foo'), 'testX');
      assert.equal(context.get('nodeY', 'foo'), 'testY');
    });

    it('throws on an invalid key, for set and get', () => {
      assert.throws(
        () => context.set('nodeX', '.foo', 'test'),
        (error: Error & { code?: string }) => error.code === 'INVALID_EXPR',
      );
      assert.throws(
        () => context.get('nodeX', '.foo'),
        (error: Error & { code?: string }) => error.code === 'INVALID_EXPR',
      );
      assert.throws(() => context.set('nodeX', ' ', 'bar'));
      assert.throws(() => context.get('nodeX', ' '));
      assert.deepEqual(context.keys('nodeX'), [], 'nothing was set');
    });

    it('gets several values at once', () => {
      context.set('nodeX', 'one', 'test1');
      context.set('nodeX', 'two', 'test2');
      context.set('nodeX', 'three', 'test3');
      context.set('nodeX', 'four', 'test4');
      assert.deepEqual(context.get('nodeX', ['one', 'two', 'four']), ['test1', 'test2', 'test4']);
      assert.deepEqual(context.get('nodeX', ['one', 'unknown.with.multiple.levels']), ['test1', undefined]);
    });

    it('throws if one of several keys to get is invalid', () => {
      context.set('nodeX', 'one', 'test1');
      assert.throws(() => context.get('nodeX', ['one', '.foo', 'three']));
    });

    it('gets the value of a missing key, and of a path through a primitive, as undefined', () => {
      context.set('nodeX', 'n', 5);
      assert.equal(context.get('nodeX', 'missing'), undefined);
      assert.equal(context.get('nodeX', 'missing.deeper[3]'), undefined);
      assert.equal(context.get('nodeX', 'n.x'), undefined);
      assert.equal(context.get('never-used-scope', 'foo'), undefined);
    });

    it('sets several values at once; one value for several keys sets the first and null for the rest', () => {
      context.set('nodeX', ['one', 'two', 'three'], ['test1', 'test2', 'test3']);
      assert.deepEqual(context.get('nodeX', ['one', 'two', 'three']), ['test1', 'test2', 'test3']);
      context.set('nodeX', ['one', 'two', 'three'], 'only');
      assert.deepEqual(context.get('nodeX', ['one', 'two', 'three']), ['only', null, null]);
      context.set('nodeX', ['four', 'five'], ['a']);
      assert.deepEqual(context.get('nodeX', ['four', 'five']), ['a', null]);
    });

    it('sets none of several keys if one of them is invalid', () => {
      assert.throws(() => context.set('nodeX', ['one', '.foo', 'three'], ['test1', 'test2', 'test3']));
      assert.equal(context.get('nodeX', 'one'), undefined);
      assert.equal(context.get('nodeX', 'three'), undefined);
    });

    it('works synchronously as a store with a cache does: get without a callback returns the value', () => {
      // localfilesystem without its cache refuses a get without a callback; with it (its default), and here, it works
      context.set('nodeX', 'foo', 'bar');
      assert.equal(context.get('nodeX', 'foo'), 'bar');
      assert.deepEqual(context.keys('nodeX'), ['foo']);
    });

    it('throws when a callback is given that is not a function, for get, set and keys', () => {
      assert.throws(() => context.get('nodeX', 'foo', 'callback' as never), /Callback must be a function/);
      assert.throws(() => context.set('nodeX', 'foo', 'bar', 'callback' as never), /Callback must be a function/);
      assert.throws(() => context.keys('nodeX', 'callback' as never), /Callback must be a function/);
      assert.equal(context.get('nodeX', 'foo'), undefined, 'the set with a bad callback changed nothing');
    });

    it('reads nested keys as Node-RED resolves them: dots, indexes, quoted names and msg references', () => {
      context.set('nodeX', 'a.b[0].c', 1);
      context.set('nodeX', 'a["x y"]', 2);
      context.set('nodeX', "a['q.r']", 3);
      context.set('nodeX', 'which', 'x y');
      assert.deepEqual(context.get('nodeX', 'a'), { b: [{ c: 1 }], 'x y': 2, 'q.r': 3 });
      assert.equal(context.get('nodeX', 'a.b[0].c'), 1);
      assert.equal(context.get('nodeX', 'a[msg.which]'), 2, 'a msg. reference reads another key of the same scope');
      context.set('nodeX', 'list[2]', 'third');
      assert.deepStrictEqual(context.get('nodeX', 'list'), [null, null, 'third'], 'the elements skipped over are null, as JSON has them');
      context.set('nodeX', 'list[1]', undefined);
      assert.deepStrictEqual(context.get('nodeX', 'list'), [null, 'third'], 'deleting an array element removes it (splice), as Node-RED does');
    });
  });

  describe('get/set with callbacks', () => {
    it('stores a property', async () => {
      assert.equal(await getAsync(context, 'nodeX', 'foo'), undefined);
      await setAsync(context, 'nodeX', 'foo', 'test');
      assert.equal(await getAsync(context, 'nodeX', 'foo'), 'test');
    });

    it('creates parent properties, in a node scope as in a flow scope', async () => {
      await setAsync(context, 'nodeX', 'foo.bar', 'test');
      assert.deepEqual(await getAsync(context, 'nodeX', 'foo'), { bar: 'test' });
      await setAsync(context, 'abc:def', 'foo.bar', 'test');
      assert.deepEqual(await getAsync(context, 'abc:def', 'foo'), { bar: 'test' });
    });

    it('deletes a property when set to undefined', async () => {
      await setAsync(context, 'nodeX', 'foo.abc.bar1', 'test1');
      await setAsync(context, 'nodeX', 'foo.abc.bar2', 'test2');
      assert.deepEqual(await getAsync(context, 'nodeX', 'foo.abc'), { bar1: 'test1', bar2: 'test2' });
      await setAsync(context, 'nodeX', 'foo.abc.bar1', undefined);
      assert.deepEqual(await getAsync(context, 'nodeX', 'foo.abc'), { bar2: 'test2' });
      await setAsync(context, 'nodeX', 'foo.abc', undefined);
      assert.equal(await getAsync(context, 'nodeX', 'foo.abc'), undefined);
      await setAsync(context, 'nodeX', 'foo', undefined);
      assert.equal(await getAsync(context, 'nodeX', 'foo'), undefined);
    });

    it('does not share context between scopes', async () => {
      await setAsync(context, 'nodeX', 'foo', 'testX');
      await setAsync(context, 'nodeY', 'foo', 'testY');
      assert.equal(await getAsync(context, 'nodeX', 'foo'), 'testX');
      assert.equal(await getAsync(context, 'nodeY', 'foo'), 'testY');
    });

    it('stores strings, numbers, null, booleans, objects and arrays, and reads array elements by index', async () => {
      const cases: [string, unknown][] = [
        ['string', 'bar'],
        ['numericString', '1'],
        ['number', 1],
        ['null', null],
        ['true', true],
        ['false', false],
        ['object', { obj: 'bar' }],
        ['array', ['a', 'b', 'c']],
        [
          'arrayOfArrays',
          [
            ['a', 'b', 'c'],
            [1, 2, 3, 4],
            [true, false],
          ],
        ],
        ['arrayOfObjects', [{ obj: 'bar1' }, { obj: 'bar2' }, { obj: 'bar3' }]],
      ];
      for (const [key, value] of cases) {
        assert.equal(await getAsync(context, 'nodeX', key), undefined);
        await setAsync(context, 'nodeX', key, value);
        assert.deepStrictEqual(await getAsync(context, 'nodeX', key), value, key);
      }
      assert.equal(typeof (await getAsync(context, 'nodeX', 'numericString')), 'string');
      assert.equal(await getAsync(context, 'nodeX', 'array[1]'), 'b');
      assert.deepEqual(await getAsync(context, 'nodeX', 'arrayOfArrays[1]'), [1, 2, 3, 4]);
      assert.deepEqual(await getAsync(context, 'nodeX', 'arrayOfObjects[1]'), { obj: 'bar2' });
      await reopen();
      for (const [key, value] of cases) assert.deepStrictEqual(await getAsync(context, 'nodeX', key), value, `${key} after a restart`);
    });

    it('passes an invalid key to the callback, for set and get', async () => {
      await assert.rejects(setAsync(context, 'nodeX', '.foo', 'test'));
      const [error] = await getArgs(context, 'nodeX', '.foo');
      assert.ok(error instanceof Error);
      await setAsync(context, 'nodeX', 'foo', 'bar');
      assert.ok((await getArgs(context, 'nodeX', ' '))[0] instanceof Error);
      await assert.rejects(setAsync(context, 'nodeX', ' ', 'bar'));
    });

    it('gets several values: the callback gets (undefined, value1, value2, …)', async () => {
      context.set('nodeX', 'one', 'test1');
      context.set('nodeX', 'two', 'test2');
      context.set('nodeX', 'three', 'test3');
      context.set('nodeX', 'four', 'test4');
      assert.deepEqual(await getArgs(context, 'nodeX', ['one', 'two', 'four']), [undefined, 'test1', 'test2', 'test4']);
      assert.deepEqual(await getArgs(context, 'nodeX', ['one', 'unknown']), [undefined, 'test1', undefined]);
    });

    it('sets several values with a callback; one value for several keys gives null to the rest', async () => {
      await setAsync(context, 'nodeX', ['one', 'two', 'three'], ['test1', 'test2', 'test3']);
      assert.deepEqual(await getArgs(context, 'nodeX', ['one', 'two']), [undefined, 'test1', 'test2']);
      assert.deepEqual(await getArgs(context, 'nodeX', ['one', 'two', 'unknown']), [undefined, 'test1', 'test2', undefined]);
      await setAsync(context, 'nodeY', ['one', 'two', 'three'], 'test1');
      assert.deepEqual(await getArgs(context, 'nodeY', ['one', 'two']), [undefined, 'test1', null]);
    });

    it('passes the error of one invalid key among several to the callback, and sets none of them', async () => {
      await setAsync(context, 'nodeX', ['one', 'two', 'three'], ['test1', 'test2', 'test3']);
      const [error] = await getArgs(context, 'nodeX', ['one', '.foo', 'three']);
      assert.ok(error instanceof Error);
      await assert.rejects(setAsync(context, 'nodeY', ['one', '.foo', 'three'], ['test1', 'test2', 'test3']));
      assert.equal(await getAsync(context, 'nodeY', 'one'), undefined, "'one' was not set");
    });
  });

  describe('keys', () => {
    it('lists a scope’s top-level keys, synchronously and with a callback', async () => {
      assert.deepEqual(context.keys('nodeX'), []);
      assert.deepEqual(await keysAsync(context, 'nodeX'), []);
      context.set('nodeX', 'foo', 'bar');
      assert.deepEqual(context.keys('nodeX'), ['foo']);
      await setAsync(context, 'nodeX', 'abc.def', 'bar');
      assert.deepEqual(context.keys('nodeX'), ['foo', 'abc']);
      assert.deepEqual(await keysAsync(context, 'nodeX'), ['foo', 'abc']);
    });

    it('lists each scope’s own keys', async () => {
      context.set('nodeX', 'foo', 'bar');
      await setAsync(context, 'nodeY', 'hoge', 'piyo');
      assert.deepEqual(context.keys('nodeX'), ['foo']);
      assert.deepEqual(await keysAsync(context, 'nodeY'), ['hoge']);
    });

    it('lists global keys, but not "set", "get" or "keys" (the global context object’s methods)', () => {
      assert.deepEqual(context.keys('global'), []);
      context.set('global', 'foo', 'bar');
      context.set('global', 'abc.def', 'bar');
      assert.deepEqual(context.keys('global'), ['foo', 'abc']);
      context.set('global', 'set', 'bar');
      context.set('global', 'get', 'bar');
      context.set('global', 'keys', 'bar');
      assert.deepEqual(context.keys('global'), ['foo', 'abc']);
      assert.equal(context.get('global', 'get'), 'bar', 'they are stored all the same');
    });

    it('lists the keys after a restart', async () => {
      context.set('global', 'g', 1);
      context.set('flow1', 'f', 2);
      await setAsync(context, 'node1:flow1', 'n', 3);
      await reopen();
      assert.deepEqual(context.keys('global'), ['g']);
      assert.deepEqual(await keysAsync(context, 'flow1'), ['f']);
      assert.deepEqual(context.keys('node1:flow1'), ['n']);
    });
  });

  describe('delete', () => {
    it('deletes one scope and nothing else, also on disk', async () => {
      context.set('nodeX', 'foo', 'abc');
      await setAsync(context, 'nodeY', 'foo', 'abc');
      assert.equal(context.get('nodeX', 'foo'), 'abc');
      await context.delete('nodeX');
      assert.equal(context.get('nodeX', 'foo'), undefined);
      assert.equal(await getAsync(context, 'nodeY', 'foo'), 'abc');
      await reopen();
      assert.equal(context.get('nodeX', 'foo'), undefined);
      assert.equal(context.get('nodeY', 'foo'), 'abc');
    });

    it('deletes the global scope when asked (Node-RED’s context.clear does)', async () => {
      await setAsync(context, 'global', 'foo', 'bar');
      assert.equal(context.get('global', 'foo'), 'bar');
      await context.delete('global');
      assert.equal(context.get('global', 'foo'), undefined);
      await reopen();
      assert.deepEqual(context.keys('global'), []);
    });
  });

  describe('clean', () => {
    it('removes every flow and node context when no node is active, and keeps global', async () => {
      await setAsync(context, 'global', 'foo', 'testGlobal');
      await setAsync(context, 'nodeX:flow1', 'foo', 'testX');
      await setAsync(context, 'nodeY:flow2', 'foo', 'testY');
      await setAsync(context, 'flow1', 'foo', 'testFlow');
      assert.equal(await getAsync(context, 'nodeX:flow1', 'foo'), 'testX');
      await context.clean([]);
      assert.equal(await getAsync(context, 'nodeX:flow1', 'foo'), undefined);
      assert.equal(await getAsync(context, 'nodeY:flow2', 'foo'), undefined);
      assert.equal(await getAsync(context, 'flow1', 'foo'), undefined);
      assert.equal(await getAsync(context, 'global', 'foo'), 'testGlobal');
      await context.clean(['global']);
      assert.equal(context.get('global', 'foo'), 'testGlobal');
    });

    it('keeps the context of active nodes and flows, also on disk', async () => {
      await setAsync(context, 'global', 'foo', 'testGlobal');
      await setAsync(context, 'nodeX:flow1', 'foo', 'testX');
      await setAsync(context, 'nodeY:flow2', 'foo', 'testY');
      await setAsync(context, 'nodeZ:flow1', 'foo', 'testZ');
      await context.clean(['flow1', 'nodeX']);
      assert.equal(await getAsync(context, 'nodeX:flow1', 'foo'), 'testX');
      assert.equal(await getAsync(context, 'nodeY:flow2', 'foo'), undefined);
      assert.equal(await getAsync(context, 'nodeZ:flow1', 'foo'), undefined, 'a removed node of a remaining flow');
      assert.equal(await getAsync(context, 'global', 'foo'), 'testGlobal');
      await reopen();
      assert.equal(context.get('nodeX:flow1', 'foo'), 'testX');
      assert.equal(context.get('nodeY:flow2', 'foo'), undefined);
      assert.equal(context.get('nodeZ:flow1', 'foo'), undefined);
    });

    it('removes a node’s context when its flow is gone, even if a node of that id is active', async () => {
      await setAsync(context, 'nodeX:flow1', 'foo', 'testX');
      await context.clean(['nodeX']);
      assert.equal(context.get('nodeX:flow1', 'foo'), undefined);
    });

    it('keeps flow contexts whose flow is active (scopes without a node)', async () => {
      await setAsync(context, 'flowA', 'key', 'flowA');
      await setAsync(context, 'flowB', 'key', 'flowB');
      await reopen();
      assert.equal(context.get('flowA', 'key'), 'flowA');
      assert.equal(context.get('flowB', 'key'), 'flowB');
      await context.clean(['flowA']);
      assert.equal(context.get('flowA', 'key'), 'flowA');
      assert.equal(context.get('flowB', 'key'), undefined);
    });
  });

  describe('open and close', () => {
    it('loads every scope into memory at open, so reads need no disk', async () => {
      context.set('global', 'key', 'global');
      context.set('flow', 'key', 'flow');
      await setAsync(context, 'node:flow', 'key', 'node');
      await reopen();
      assert.equal(context.get('global', 'key'), 'global');
      assert.equal(context.get('flow', 'key'), 'flow');
      assert.equal(context.get('node:flow', 'key'), 'node');
    });

    it('refuses writes once closed, with a clear error; reads after close find nothing', async () => {
      await context.close();
      assert.throws(() => context.set('nodeX', 'foo', 1), /not open/);
      await assert.rejects(setAsync(context, 'nodeX', 'foo', 1), /not open/);
      assert.equal(context.get('nodeX', 'foo'), undefined);
      context = contextStore(userDir);
      await context.open();
    });

    it('can be closed twice', async () => {
      await context.close();
      await context.close();
      context = contextStore(userDir);
      await context.open();
    });
  });
});
