import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acquireStore } from '../../nodes/lib/registry';
import { StatusReporter } from '../../nodes/red/status';
import { onDisk } from '../store/fixtures';
import { allNodes, catchAndComplete, collect, helper, lastStatus, ManualClock, node, useRuntime } from '../support/harness';

const nodes = allNodes();
const kb = (n: number) => 'x'.repeat(n * 1024);

function flow(file: string, storeExtra: object = {}) {
  return [
    { id: 'tab1', type: 'tab', label: 'Flow 1' },
    { id: 'store', type: 'cache-store', name: 'small store', path: file, scope: 'flow', sizeLimitMb: 1, ...storeExtra },
    {
      id: 'cacheSet',
      type: 'cache-set',
      z: 'tab1',
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      wires: [['setOut']],
    },
    { id: 'setOut', type: 'helper', z: 'tab1' },
    {
      id: 'counter1',
      type: 'counter',
      z: 'tab1',
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      step: 1,
      initial: 0,
      resetEvery: 'never',
      wires: [['counted']],
    },
    { id: 'counted', type: 'helper', z: 'tab1' },
    {
      id: 'gate',
      type: 'cooldown-gate',
      z: 'tab1',
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      cooldown: 4,
      cooldownUnits: 'hours',
      wires: [['passed'], ['held']],
    },
    { id: 'passed', type: 'helper', z: 'tab1' },
    { id: 'held', type: 'helper', z: 'tab1' },
    ...catchAndComplete('tab1', ['cacheSet', 'counter1', 'gate']),
  ];
}

describe('a small size limit in flows', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock);

  it('keeps a count and an armed cooldown while cache-set values are evicted, and says so in the status', async () => {
    StatusReporter.noticeMs = 60_000;
    await helper.load(nodes, flow(files.file));
    const counted = collect('counted');
    const passed = collect('passed');
    const held = collect('held');
    const stored = collect('setOut');
    node('counter1').receive({ topic: 'kitchen', count: 12_345 });
    await counted.until(1);
    node('gate').receive({ topic: 'binary_sensor.leak', payload: 'wet' });
    await passed.until(1);
    for (let i = 0; i < 15; i++) {
      clock.advance(1000);
      node('cacheSet').receive({ topic: `big${i}`, payload: kb(100) });
      await stored.until(i + 1);
    }
    const keys = await onDisk(files.file, (db) => db.all<{ key: string }>('SELECT key FROM keyv'));
    assert.ok(keys.length < 17, `some cache values were evicted (${keys.length} rows left)`);
    node('counter1').receive({ topic: 'kitchen' });
    const [, again] = await counted.until(2);
    assert.equal(again.payload, 12_346, 'the count survived the size limit');
    node('gate').receive({ topic: 'binary_sensor.leak', payload: 'wet' });
    await held.until(1);
    assert.equal(passed.received.length, 1, 'the leak alarm did not pass a second time');
    assert.match(lastStatus('cacheSet').text ?? '', /store full: evicted \d+ cache entries/);
    StatusReporter.noticeMs = 5000;
  });

  it('refuses one value larger than the limit with STORE_FULL and keeps every other row', async () => {
    await helper.load(nodes, flow(files.file));
    const stored = collect('setOut');
    const caught = collect('caught');
    node('cacheSet').receive({ topic: 'small', payload: 'kept' });
    await stored.until(1);
    node('cacheSet').receive({ topic: 'huge', payload: kb(1500) });
    const [error] = await caught.until(1);
    assert.equal((error.error as { code?: string }).code, 'STORE_FULL');
    assert.equal(lastStatus('cacheSet').fill, 'red');
    assert.equal(stored.received.length, 1, 'the refused message goes no further');
    const rows = await onDisk(files.file, (db) => db.all<{ key: string }>('SELECT key FROM keyv'));
    assert.deepStrictEqual(
      rows.map((r) => r.key.slice(r.key.indexOf(':') + 1)),
      ['small'],
    );
  });
});

describe('a deferred store that cannot write (a full disk)', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock);

  it('turns every node on the store red with the cause, keeps counting, and recovers once space is free', async () => {
    await helper.load(nodes, flow(files.file, { durability: 'deferred' }));
    const counted = collect('counted');
    const stored = collect('setOut');
    node('counter1').receive({ topic: 'kitchen' });
    node('cacheSet').receive({ topic: 'a', payload: 1 });
    await counted.until(1);
    await stored.until(1);
    const lease = await acquireStore(files.file, { durability: 'deferred', sizeLimitMb: 1 });
    try {
      await lease.store.flush();
      await onDisk(files.file, (db) => db.run(`CREATE TRIGGER full_disk BEFORE INSERT ON keyv BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`));
      node('counter1').receive({ topic: 'kitchen' });
      await counted.until(2);
      await assert.rejects(lease.store.flush());
      for (const id of ['counter1', 'cacheSet', 'gate']) {
        assert.equal(lastStatus(id).fill, 'red', `${id} shows the failure`);
        assert.match(lastStatus(id).text ?? '', /store cannot write: .*database or disk is full/);
      }
      node('counter1').receive({ topic: 'kitchen' });
      const [, , third] = await counted.until(3);
      assert.equal(third.payload, 3, 'the count goes on from memory, never backwards');
      assert.equal(lastStatus('counter1').fill, 'red', 'the failure stays shown over the count');
      await onDisk(files.file, (db) => db.run('DROP TRIGGER full_disk'));
      await lease.store.flush();
      assert.notEqual(lastStatus('counter1').fill, 'red');
      const rows = await onDisk(files.file, (db) => db.all<{ key: string; value: string }>('SELECT key, value FROM keyv'));
      const count = rows.find((r) => r.key.endsWith(':counter:kitchen'));
      assert.equal(JSON.parse(count?.value ?? '{}').v.count, 3);
    } finally {
      await lease.release();
    }
  });
});
