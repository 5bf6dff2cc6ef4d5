import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { allNodes, catchAndComplete, collect, deploy, helper, lastStatus, ManualClock, node, useRuntime } from '../support/harness';

const nodes = allNodes();

function storeConfig(file: string, extra: object = {}) {
  return { id: 'store', type: 'cache-store', name: 'test store', path: file, scope: 'flow', ...extra };
}

function getSetFlow(file: string, tab = 'tab1', extraStore: object = {}) {
  return [
    { id: tab, type: 'tab', label: 'Flow 1' },
    storeConfig(file, extraStore),
    {
      id: 'cacheSet',
      type: 'cache-set',
      z: tab,
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      wires: [['setOut']],
    },
    { id: 'setOut', type: 'helper', z: tab },
    {
      id: 'cacheGet',
      type: 'cache-get',
      z: tab,
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      property: 'payload',
      defaultType: 'none',
      wires: [['found'], ['missing']],
    },
    { id: 'found', type: 'helper', z: tab },
    { id: 'missing', type: 'helper', z: tab },
    { id: 'cacheDel', type: 'cache-set', z: tab, store: 'store', key: 'topic', keyType: 'msg', operation: 'delete', wires: [['delOut']] },
    { id: 'delOut', type: 'helper', z: tab },
    { id: 'cacheClear', type: 'cache-set', z: tab, store: 'store', operation: 'clear', wires: [['clrOut']] },
    { id: 'clrOut', type: 'helper', z: tab },
    ...catchAndComplete(tab, ['cacheSet', 'cacheGet', 'cacheDel', 'cacheClear']),
  ];
}

describe('cache-get and cache-set', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock);

  it('stores a value and reads it back with msg.cache', async () => {
    await helper.load(nodes, getSetFlow(files.file));
    const stored = collect('setOut');
    const found = collect('found');
    node('cacheSet').receive({ topic: 'sensor.kitchen', payload: { temp: 21.5, at: new Date('2026-06-01T09:00:00Z') } });
    const [setMsg] = await stored.until(1);
    assert.equal((setMsg.cache as { key: string }).key, 'sensor.kitchen');
    assert.equal((setMsg.cache as { hit: boolean }).hit, false);
    clock.advance(1500);
    node('cacheGet').receive({ topic: 'sensor.kitchen' });
    const [msg] = await found.until(1);
    assert.deepEqual(msg.payload, { temp: 21.5, at: new Date('2026-06-01T09:00:00Z') });
    const cache = msg.cache as { hit: boolean; age: number; storedAt: string; expiresAt: string | null };
    assert.equal(cache.hit, true);
    assert.equal(cache.age, 1500);
    assert.equal(Date.parse(cache.storedAt), Date.parse('2026-06-01T10:00:00Z'));
    assert.equal(cache.expiresAt, null);
    assert.match(lastStatus('cacheGet').text ?? '', /hit sensor\.kitchen/);
  });

  it('sends a missing key to the second output, or the default on the first', async () => {
    const flow = getSetFlow(files.file);
    flow.push({
      id: 'cacheGetDefault',
      type: 'cache-get',
      z: 'tab1',
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      property: 'value',
      default: '7',
      defaultType: 'num',
      wires: [['found'], ['missing']],
    } as never);
    await helper.load(nodes, flow);
    const missing = collect('missing');
    const found = collect('found');
    node('cacheGet').receive({ topic: 'nothing.here', payload: 'unchanged' });
    const [msg] = await missing.until(1);
    assert.equal(msg.payload, 'unchanged');
    assert.equal((msg.cache as { hit: boolean }).hit, false);
    node('cacheGetDefault').receive({ topic: 'nothing.here' });
    const [withDefault] = await found.until(1);
    assert.equal(withDefault.value, 7);
    assert.equal((withDefault.cache as { hit: boolean }).hit, false);
  });

  it('expires an entry after its TTL (msg.ttl overrides the node)', async () => {
    await helper.load(nodes, getSetFlow(files.file));
    const stored = collect('setOut');
    const found = collect('found');
    const missing = collect('missing');
    node('cacheSet').receive({ topic: 'weather', payload: 'sunny', ttl: 60 });
    const [setMsg] = await stored.until(1);
    assert.equal(Date.parse((setMsg.cache as { expiresAt: string }).expiresAt), clock.ms + 60_000);
    clock.advance(59_000);
    node('cacheGet').receive({ topic: 'weather' });
    await found.until(1);
    clock.advance(1_000);
    node('cacheGet').receive({ topic: 'weather' });
    await missing.until(1);
  });

  it('deletes one key and clears only its own flow', async () => {
    await helper.load(nodes, getSetFlow(files.file));
    const stored = collect('setOut');
    const deleted = collect('delOut');
    const cleared = collect('clrOut');
    const missing = collect('missing');
    const found = collect('found');
    for (const topic of ['a', 'b', 'c']) node('cacheSet').receive({ topic, payload: topic.toUpperCase() });
    await stored.until(3);
    node('cacheDel').receive({ topic: 'a' });
    const [delMsg] = await deleted.until(1);
    assert.equal((delMsg.cache as { hit: boolean }).hit, true);
    node('cacheGet').receive({ topic: 'a' });
    await missing.until(1);
    node('cacheGet').receive({ topic: 'b' });
    assert.equal((await found.until(1))[0].payload, 'B');
    node('cacheClear').receive({});
    await cleared.until(1);
    node('cacheGet').receive({ topic: 'c' });
    await missing.until(2);
  });

  it('keeps values across a restart (unload + load) and a redeploy (setFlows)', async () => {
    await helper.load(nodes, getSetFlow(files.file));
    let stored = collect('setOut');
    node('cacheSet').receive({ topic: 'motion_count', payload: 41 });
    await stored.until(1);
    await helper.unload();
    await helper.load(nodes, getSetFlow(files.file));
    let found = collect('found');
    node('cacheGet').receive({ topic: 'motion_count' });
    assert.equal((await found.until(1))[0].payload, 41);
    stored = collect('setOut');
    node('cacheSet').receive({ topic: 'motion_count', payload: 42 });
    await stored.until(1);
    const redeployed = getSetFlow(files.file);
    (redeployed[4] as { name?: string }).name = 'renamed get';
    await deploy(redeployed, 'full');
    found = collect('found');
    node('cacheGet').receive({ topic: 'motion_count' });
    assert.equal((await found.until(1))[0].payload, 42);
  });

  it('keeps two flows apart unless they share a store with scope "shared"', async () => {
    const flowA = getSetFlow(files.file, 'tabA');
    const flowB = getSetFlow(files.file, 'tabB').map((n) => renameIds(n, 'B'));
    await helper.load(nodes, [...flowA, ...flowB.filter((n) => !['cache-store', 'catch', 'complete'].includes((n as { type: string }).type))]);
    const stored = collect('setOut');
    const missingB = collect('missingB');
    node('cacheSet').receive({ topic: 'secret', payload: 'only in A' });
    await stored.until(1);
    node('cacheGetB').receive({ topic: 'secret' });
    await missingB.until(1);
    await helper.unload();

    const shared = { scope: 'shared', namespace: 'house' };
    const sharedA = getSetFlow(files.file, 'tabA', shared);
    const sharedB = getSetFlow(files.file, 'tabB', shared).map((n) => renameIds(n, 'B'));
    await helper.load(nodes, [...sharedA, ...sharedB.filter((n) => !['cache-store', 'catch', 'complete'].includes((n as { type: string }).type))]);
    const storedShared = collect('setOut');
    const foundB = collect('foundB');
    node('cacheSet').receive({ topic: 'mode', payload: 'away' });
    await storedShared.until(1);
    node('cacheGetB').receive({ topic: 'mode' });
    assert.equal((await foundB.until(1))[0].payload, 'away');
  });

  it('uses {{...}} placeholders in a string key', async () => {
    const flow = getSetFlow(files.file);
    Object.assign(flow[2], { key: 'last_notification:{{topic}}', keyType: 'str' });
    Object.assign(flow[4], { key: 'last_notification:{{topic}}', keyType: 'str' });
    await helper.load(nodes, flow);
    const stored = collect('setOut');
    const found = collect('found');
    node('cacheSet').receive({ topic: 'binary_sensor.leak', payload: 1 });
    assert.equal(((await stored.until(1))[0].cache as { key: string }).key, 'last_notification:binary_sensor.leak');
    node('cacheGet').receive({ topic: 'binary_sensor.leak' });
    assert.equal((await found.until(1))[0].payload, 1);
  });

  for (const [what, msg, pattern] of [
    ['an empty key', { topic: '', payload: 1 }, /empty/],
    ['a non-string key', { topic: 42, payload: 1 }, /must be a string/],
    ['a missing key', { payload: 1 }, /not set/],
    ['a function value', { topic: 'k', payload: { f: () => 1 } }, /function at value\.f/],
    ['a negative TTL', { topic: 'k', payload: 1, ttl: -5 }, /msg\.ttl must be a number of seconds >= 0/],
    ['a non-numeric TTL', { topic: 'k', payload: 1, ttl: 'soon' }, /msg\.ttl must be a number/],
  ] as const) {
    it(`rejects ${what} with a catchable error and writes nothing`, async () => {
      await helper.load(nodes, getSetFlow(files.file));
      const caught = collect('caught');
      const missing = collect('missing');
      node('cacheSet').receive({ ...msg } as never);
      const [err] = await caught.until(1);
      assert.match((err.error as { message: string }).message, pattern);
      assert.equal(lastStatus('cacheSet').fill, 'red');
      assert.equal(collect('setOut').received.length, 0);
      node('cacheGet').receive({ topic: 'k' });
      await missing.until(1);
    });
  }

  it('rejects a circular value, naming where the cycle is', async () => {
    await helper.load(nodes, getSetFlow(files.file));
    const caught = collect('caught');
    const payload: Record<string, unknown> = { a: { b: 1 } };
    (payload.a as Record<string, unknown>).self = payload;
    node('cacheSet').receive({ topic: 'loop', payload });
    const [err] = await caught.until(1);
    assert.match((err.error as { message: string }).message, /circular reference at value\.a\.self/);
  });

  it('a node that is closing and holds no store refuses a late message with NODE_CLOSING and opens nothing', async () => {
    await helper.load(nodes, getSetFlow(files.file));
    const caught = collect('caught');
    const setter = helper.getNode('cacheSet') as unknown as { close(removed: boolean): Promise<void>; receive(msg: object): void };
    const closed = setter.close(false);
    setter.receive({ topic: 'late', payload: 'arrived during a redeploy' });
    await closed;
    const [err] = await caught.until(1);
    assert.match((err.error as { message: string }).message, /cache-set is stopping \(redeploy or shutdown\): message not processed, nothing written$/);
    assert.equal(lastStatus('cacheSet').fill, 'red');
    // no store was opened for it, so none is left open: the database file was never created
    assert.equal(fs.existsSync(files.file), false);
  });

  it('reports an unusable database path as an error on each message', async () => {
    const blocker = path.join(files.dir, 'not-a-dir');
    require('node:fs').writeFileSync(blocker, 'a file where a directory should be');
    await helper.load(nodes, getSetFlow(path.join(blocker, 'cache.sqlite')));
    const caught = collect('caught');
    node('cacheSet').receive({ topic: 'k', payload: 1 });
    const [err] = await caught.until(1);
    assert.match((err.error as { message: string }).message, /cannot (create|lock) cache database \S*not-a-dir/);
    assert.equal(lastStatus('cacheSet').fill, 'red');
  });
});

function renameIds(n: object, suffix: string): object {
  const copy = JSON.parse(JSON.stringify(n)) as { id: string; z?: string; store?: string; wires?: string[][] };
  if (copy.id !== 'store' && (copy as { type?: string }).type !== 'tab') copy.id += suffix;
  if (copy.wires) copy.wires = copy.wires.map((w) => w.map((id) => id + suffix));
  return copy;
}
