import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { acquireStore } from '../../nodes/lib/registry';
import type { NodeMessage } from '../../nodes/red/api';
import { hostZone } from '../../nodes/red/time';
import { RecordingLogger } from '../store/fixtures';
import { allNodes, catchAndComplete, collect, deploy, helper, lastStatus, ManualClock, node, nodeRedLine, useRuntime } from '../support/harness';

const nodes = allNodes();

/** Core nodes of the Node-RED line under test (the example flows use them). */
function coreNodes(...files: string[]): unknown[] {
  const runtime = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
  return files.map((file) => require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [runtime] })));
}

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  once?: boolean;
  crontab?: string;
}

/**
 * An example flow as shipped, with its debug nodes turned into helper nodes (same ids) and its
 * injects left to the test (no start-up or timed runs); `byName` finds a node's id.
 */
function exampleFlow(name: string) {
  const example = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'examples', 'counter', name), 'utf8')) as FlowNode[];
  const flow = example.map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n.type === 'inject' ? { ...n, once: false, crontab: '' } : n));
  const byName = (nodeName: string) => {
    const found = example.find((n) => n.name === nodeName);
    assert.ok(found, `the example has a node named "${nodeName}"`);
    return found.id;
  };
  return { example, flow, byName };
}
const exampleNodes = () => [...nodes, ...coreNodes('common/20-inject.js', 'common/90-comment.js', 'function/15-change.js')];

interface CounterInfo {
  key: string;
  count: number;
  previous: number | null;
  periodStart: string | null;
}

function info(msg: NodeMessage): CounterInfo {
  return msg.counter as CounterInfo;
}

/** A flow with one counter (id "counter1") wired to helper "out", a cache-store with `storeExtra`, and Catch/Complete nodes. */
function counterFlow(file: string, counterExtra: object = {}, storeExtra: object = {}) {
  return [
    { id: 'tab1', type: 'tab', label: 'Counters' },
    { id: 'store', type: 'cache-store', name: 'test store', path: file, scope: 'flow', ...storeExtra },
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
      wires: [['out']],
      ...counterExtra,
    },
    { id: 'out', type: 'helper', z: 'tab1' },
    {
      id: 'reader',
      type: 'cache-get',
      z: 'tab1',
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      property: 'payload',
      defaultType: 'none',
      wires: [['found'], ['missing']],
    },
    { id: 'found', type: 'helper', z: 'tab1' },
    { id: 'missing', type: 'helper', z: 'tab1' },
    {
      id: 'writer',
      type: 'cache-set',
      z: 'tab1',
      store: 'store',
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      wires: [['written']],
    },
    { id: 'written', type: 'helper', z: 'tab1' },
    ...catchAndComplete('tab1', ['counter1']),
  ];
}

/** Sends messages one after the other (each after the previous one came out) and returns what came out. */
async function sendAll(msgs: NodeMessage[], out = collect('out')): Promise<NodeMessage[]> {
  const start = out.received.length;
  for (const [i, msg] of msgs.entries()) {
    node('counter1').receive(msg);
    await out.until(start + i + 1);
  }
  return out.received.slice(start);
}

describe('counter', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock);

  it('adds the step to the count and sends the message on with msg.counter', async () => {
    await helper.load(nodes, counterFlow(files.file));
    const completed = collect('completed');
    const msgs = await sendAll([
      { topic: 'binary_sensor.motion', payload: 'on', extra: 'kept' },
      { topic: 'binary_sensor.motion', payload: 'on' },
      { topic: 'binary_sensor.motion', payload: 'on' },
    ]);
    assert.deepEqual(
      msgs.map((m) => m.payload),
      [1, 2, 3],
    );
    assert.equal(msgs[0].extra, 'kept');
    assert.deepEqual(info(msgs[0]), { key: 'binary_sensor.motion', count: 1, previous: null, periodStart: null });
    assert.deepEqual(info(msgs[2]), { key: 'binary_sensor.motion', count: 3, previous: 2, periodStart: null });
    assert.equal(lastStatus('counter1').text, 'binary_sensor.motion: 3');
    await completed.until(3);
  });

  it('keeps one count per key', async () => {
    await helper.load(nodes, counterFlow(files.file));
    const msgs = await sendAll([{ topic: 'hall' }, { topic: 'kitchen' }, { topic: 'hall' }, { topic: 'hall' }, { topic: 'kitchen' }]);
    assert.deepEqual(
      msgs.map((m) => `${info(m).key}=${m.payload}`),
      ['hall=1', 'kitchen=1', 'hall=2', 'hall=3', 'kitchen=2'],
    );
  });

  it('uses the configured step and initial value, msg.increment overrides, negative counts down', async () => {
    await helper.load(nodes, counterFlow(files.file, { step: -1, initial: 10 }));
    const msgs = await sendAll([
      { topic: 'laps' },
      { topic: 'laps' },
      { topic: 'laps', increment: 5 },
      { topic: 'laps', increment: '-2.5' },
      { topic: 'laps', increment: 0 },
    ]);
    assert.deepEqual(
      msgs.map((m) => m.payload),
      [9, 8, 13, 10.5, 10.5],
    );
  });

  it('adds exactly 1,000 steps for 1,000 messages arriving together', async () => {
    await helper.load(nodes, counterFlow(files.file, { step: 2 }));
    const out = collect('out');
    for (let i = 0; i < 1000; i++) node('counter1').receive({ topic: 'burst' });
    const msgs = await out.until(1000, 60_000);
    const counts = msgs.map((m) => m.payload as number).sort((a, b) => a - b);
    assert.deepEqual(
      counts,
      Array.from({ length: 1000 }, (_, i) => 2 * (i + 1)),
    );
    const [last] = await sendAll([{ topic: 'burst', increment: 0 }], out);
    assert.equal(last.payload, 2000);
  });

  it('resets to the initial value with msg.reset and sets the count with msg.count, without adding the step', async () => {
    await helper.load(nodes, counterFlow(files.file, { initial: 100 }));
    const msgs = await sendAll([
      { topic: 'door' },
      { topic: 'door' },
      { topic: 'door', reset: true, payload: 'reset please' },
      { topic: 'door' },
      { topic: 'door', count: 41 },
      { topic: 'door' },
      { topic: 'door', count: '7', reset: true },
      { topic: 'door', reset: false },
    ]);
    assert.deepEqual(
      msgs.map((m) => m.payload),
      [101, 102, 100, 101, 41, 42, 7, 8],
    );
    assert.equal(msgs[2].reset, true);
    assert.deepEqual(info(msgs[2]), { key: 'door', count: 100, previous: 102, periodStart: null });
    assert.deepEqual(info(msgs[4]), { key: 'door', count: 41, previous: 101, periodStart: null });
    assert.match(lastStatus('counter1').text ?? '', /door: 8/);
  });

  it('keeps the count across a restart (unload + load) and a redeploy (setFlows)', async () => {
    await helper.load(nodes, counterFlow(files.file));
    await sendAll([{ topic: 'motion_count' }, { topic: 'motion_count' }, { topic: 'motion_count' }]);
    await helper.unload();

    await helper.load(nodes, counterFlow(files.file));
    let [msg] = await sendAll([{ topic: 'motion_count' }]);
    assert.equal(msg.payload, 4);
    assert.equal(info(msg).previous, 3);

    const redeployed = counterFlow(files.file, { name: 'renamed counter', step: 10 });
    await deploy(redeployed, 'full');
    [msg] = await sendAll([{ topic: 'motion_count' }]);
    assert.equal(msg.payload, 14);
  });

  it('keeps counts apart from cache-set values under the same key, readable as counter:<key>', async () => {
    await helper.load(nodes, counterFlow(files.file));
    const written = collect('written');
    node('writer').receive({ topic: 'binary_sensor.motion', payload: 'on' });
    await written.until(1);
    await sendAll([{ topic: 'binary_sensor.motion' }, { topic: 'binary_sensor.motion' }]);
    const found = collect('found');
    node('reader').receive({ topic: 'binary_sensor.motion' });
    node('reader').receive({ topic: 'counter:binary_sensor.motion' });
    const [state, count] = await found.until(2);
    assert.equal(state.payload, 'on');
    assert.deepEqual(count.payload, { count: 2, periodStart: null });

    node('writer').receive({ topic: 'counter:seeded', payload: 500 });
    await written.until(2);
    const [msg] = await sendAll([{ topic: 'seeded' }]);
    assert.equal(msg.payload, 501);
  });

  it('starts a new count after local midnight in the store zone', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'day' }, { timezone: 'Europe/Berlin' }));
    clock.set('2026-06-01T21:58:00Z'); // 23:58 in Berlin
    let msgs = await sendAll([{ topic: 'doorbell' }, { topic: 'doorbell' }, { topic: 'doorbell' }]);
    assert.deepEqual(info(msgs[2]), { key: 'doorbell', count: 3, previous: 2, periodStart: '2026-06-01T00:00:00.000+02:00' });
    clock.set('2026-06-01T21:59:59.999Z');
    msgs = await sendAll([{ topic: 'doorbell' }]);
    assert.equal(msgs[0].payload, 4);
    clock.set('2026-06-01T22:00:00Z'); // midnight in Berlin
    msgs = await sendAll([{ topic: 'doorbell' }, { topic: 'doorbell' }]);
    assert.deepEqual(info(msgs[0]), { key: 'doorbell', count: 1, previous: 4, periodStart: '2026-06-02T00:00:00.000+02:00' });
    assert.deepEqual(info(msgs[1]), { key: 'doorbell', count: 2, previous: 1, periodStart: '2026-06-02T00:00:00.000+02:00' });
    assert.match(lastStatus('counter1').text ?? '', /doorbell: 2/);
  });

  it('starts a new period from the initial value, then adds the step', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'day', initial: 10, step: 5 }, { timezone: 'UTC' }));
    let [msg] = await sendAll([{ topic: 'k' }]);
    assert.equal(msg.payload, 15);
    clock.set('2026-06-02T00:00:01Z');
    [msg] = await sendAll([{ topic: 'k', increment: 2 }]);
    assert.deepEqual(info(msg), { key: 'k', count: 12, previous: 15, periodStart: '2026-06-02T00:00:00.000Z' });
  });

  // Each day below is 23 or 25 hours long; a reset every 24 hours would come an hour early or late.
  for (const { zone, day, times, nextMidnight, dayStart, nextStart } of [
    {
      zone: 'Europe/Berlin',
      day: 'spring forward (23-hour day)',
      times: ['2026-03-28T23:30:00Z', '2026-03-29T01:30:00Z', '2026-03-29T21:59:59Z'],
      nextMidnight: '2026-03-29T22:00:00Z',
      dayStart: '2026-03-29T00:00:00.000+01:00',
      nextStart: '2026-03-30T00:00:00.000+02:00',
    },
    {
      zone: 'Europe/Berlin',
      day: 'fall back (25-hour day)',
      times: ['2026-10-24T22:00:00Z', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-25T22:30:00Z'],
      nextMidnight: '2026-10-25T23:00:00Z',
      dayStart: '2026-10-25T00:00:00.000+02:00',
      nextStart: '2026-10-26T00:00:00.000+01:00',
    },
    {
      zone: 'America/New_York',
      day: 'spring forward (23-hour day)',
      times: ['2026-03-08T05:00:00Z', '2026-03-08T07:30:00Z', '2026-03-09T03:59:59Z'],
      nextMidnight: '2026-03-09T04:00:00Z',
      dayStart: '2026-03-08T00:00:00.000-05:00',
      nextStart: '2026-03-09T00:00:00.000-04:00',
    },
    {
      zone: 'America/New_York',
      day: 'fall back (25-hour day)',
      times: ['2026-11-01T04:00:00Z', '2026-11-01T05:30:00Z', '2026-11-01T06:30:00Z', '2026-11-02T04:30:00Z'],
      nextMidnight: '2026-11-02T05:00:00Z',
      dayStart: '2026-11-01T00:00:00.000-04:00',
      nextStart: '2026-11-02T00:00:00.000-05:00',
    },
  ]) {
    it(`resets at local midnight across ${zone} ${day}`, async () => {
      await helper.load(nodes, counterFlow(files.file, { resetEvery: 'day' }, { timezone: zone }));
      const out = collect('out');
      for (const [i, at] of times.entries()) {
        clock.set(at);
        const [msg] = await sendAll([{ topic: 'k' }], out);
        assert.deepEqual(info(msg), { key: 'k', count: i + 1, previous: i === 0 ? null : i, periodStart: dayStart }, `message at ${at}`);
      }
      clock.set(nextMidnight);
      const [msg] = await sendAll([{ topic: 'k' }], out);
      assert.deepEqual(info(msg), { key: 'k', count: 1, previous: times.length, periodStart: nextStart });
    });
  }

  it('resets weekly at midnight between Sunday and Monday', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'week' }, { timezone: 'America/New_York' }));
    const out = collect('out');
    clock.set('2026-06-03T16:00:00Z'); // Wednesday
    let [msg] = await sendAll([{ topic: 'k' }], out);
    assert.equal(info(msg).periodStart, '2026-06-01T00:00:00.000-04:00');
    clock.set('2026-06-08T03:59:59Z'); // Sunday 23:59:59 local
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.equal(msg.payload, 2);
    clock.set('2026-06-08T04:00:00Z'); // Monday 00:00 local
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.deepEqual(info(msg), { key: 'k', count: 1, previous: 2, periodStart: '2026-06-08T00:00:00.000-04:00' });
  });

  it('resets monthly at midnight on the 1st', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'month' }, { timezone: 'Europe/Berlin' }));
    const out = collect('out');
    clock.set('2026-02-10T12:00:00Z');
    let [msg] = await sendAll([{ topic: 'k' }], out);
    assert.equal(info(msg).periodStart, '2026-02-01T00:00:00.000+01:00');
    clock.set('2026-02-28T22:59:59Z'); // Feb 28 23:59:59 local
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.equal(msg.payload, 2);
    clock.set('2026-02-28T23:00:00Z'); // Mar 1 00:00 local
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.deepEqual(info(msg), { key: 'k', count: 1, previous: 2, periodStart: '2026-03-01T00:00:00.000+01:00' });
    clock.set('2026-03-31T21:59:59Z'); // Mar 31 23:59:59 local, summer time by now
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.equal(msg.payload, 2);
    clock.set('2026-03-31T22:00:00Z'); // Apr 1 00:00 local
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.deepEqual(info(msg), { key: 'k', count: 1, previous: 2, periodStart: '2026-04-01T00:00:00.000+02:00' });
  });

  it('honours a midnight that passed while Node-RED was stopped', async () => {
    const flow = () => counterFlow(files.file, { resetEvery: 'day' }, { timezone: 'Europe/Berlin' });
    await helper.load(nodes, flow());
    clock.set('2026-06-01T20:00:00Z'); // 22:00 local
    await sendAll([{ topic: 'k' }, { topic: 'k' }, { topic: 'k' }, { topic: 'k' }, { topic: 'k' }]);
    await helper.unload();
    clock.advance(3 * 60 * 60 * 1000); // 01:00 local the next day
    await helper.load(nodes, flow());
    const [msg] = await sendAll([{ topic: 'k' }]);
    assert.deepEqual(info(msg), { key: 'k', count: 1, previous: 5, periodStart: '2026-06-02T00:00:00.000+02:00' });
  });

  it('starts over at the next message after several days without messages', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'day', step: 3 }, { timezone: 'UTC' }));
    await sendAll([{ topic: 'k' }, { topic: 'k' }]);
    clock.set('2026-06-05T08:00:00Z');
    const [msg] = await sendAll([{ topic: 'k' }]);
    assert.deepEqual(info(msg), { key: 'k', count: 3, previous: 6, periodStart: '2026-06-05T00:00:00.000Z' });
  });

  it('starts resetting by the current calendar once a clock that ran a year ahead is set back', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'day' }, { timezone: 'UTC' }));
    const out = collect('out');
    clock.set('2027-06-01T08:00:00Z'); // booted without a clock source, a year ahead
    await sendAll([{ topic: 'k' }, { topic: 'k' }, { topic: 'k' }], out);
    clock.set('2026-06-01T09:00:00Z'); // NTP sets it right
    let [msg] = await sendAll([{ topic: 'k' }], out);
    // the count made under the wrong date is kept, in the day it really is
    assert.deepEqual(info(msg), { key: 'k', count: 4, previous: 3, periodStart: '2026-06-01T00:00:00.000Z' });
    assert.equal(lastStatus('counter1').text, 'k: 4 (clock set back)');
    clock.set('2026-06-01T23:59:59Z');
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.deepEqual(info(msg), { key: 'k', count: 5, previous: 4, periodStart: '2026-06-01T00:00:00.000Z' });
    clock.set('2026-06-02T00:00:01Z'); // the next real midnight resets it, not 2027-06-02
    [msg] = await sendAll([{ topic: 'k' }], out);
    assert.deepEqual(info(msg), { key: 'k', count: 1, previous: 5, periodStart: '2026-06-02T00:00:00.000Z' });
  });

  it('re-dates a weekly period stamped ahead of the clock, and a plain stored number written ahead of it', async () => {
    await helper.load(nodes, counterFlow(files.file, { resetEvery: 'week' }, { timezone: 'UTC' }));
    const out = collect('out');
    const written = collect('written');
    clock.set('2026-09-02T12:00:00Z');
    await sendAll([{ topic: 'w' }, { topic: 'w' }], out);
    node('writer').receive({ topic: 'counter:n', payload: 10 }); // a bare number, dated by when it was stored
    await written.until(1);
    clock.set('2026-06-03T12:00:00Z'); // Wednesday, three months earlier
    let [msg] = await sendAll([{ topic: 'w' }], out);
    assert.deepEqual(info(msg), { key: 'w', count: 3, previous: 2, periodStart: '2026-06-01T00:00:00.000Z' });
    [msg] = await sendAll([{ topic: 'n' }], out);
    assert.deepEqual(info(msg), { key: 'n', count: 11, previous: 10, periodStart: '2026-06-01T00:00:00.000Z' });
    clock.set('2026-06-08T00:00:00Z'); // the next Monday
    [msg] = await sendAll([{ topic: 'w' }], out);
    assert.deepEqual(info(msg), { key: 'w', count: 1, previous: 3, periodStart: '2026-06-08T00:00:00.000Z' });
  });

  it('while closing, counts each message on the store it holds or refuses it with NODE_CLOSING, then flushes and closes that store', async (t) => {
    await helper.load(nodes, counterFlow(files.file, {}, { durability: 'deferred', flushInterval: 3600 }));
    const out = collect('out');
    const caught = collect('caught');
    await sendAll([{ topic: 'k' }], out);
    const counter = helper.getNode('counter1') as unknown as { close(removed: boolean): Promise<void>; receive(msg: NodeMessage): void };
    for (let i = 0; i < 20; i++) counter.receive({ topic: 'k' }); // in progress when the redeploy starts
    let sent = 20;
    let finished = false;
    const closed = counter.close(false).then(() => {
      finished = true;
    });
    // Node-RED keeps delivering until every close handler has finished
    while (!finished) {
      counter.receive({ topic: 'k' });
      sent++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await closed;
    await new Promise((resolve) => setImmediate(resolve));
    const counted = out.received.length - 1;
    const refused = caught.received.map((m) => (m.error as { message: string }).message);
    t.diagnostic(`${sent} sent around the close: ${counted} counted, ${refused.length} refused`);
    assert.equal(counted + refused.length, sent, `${sent} sent while closing: ${counted} counted, ${refused.length} refused, the rest lost`);
    assert.ok(counted >= 20, `the ${20} messages in progress at close were counted (${counted})`);
    for (const message of refused) assert.match(message, /counter is stopping|counter is stopped/);
    assert.deepEqual(
      out.received.map((m) => m.payload),
      Array.from({ length: counted + 1 }, (_, i) => i + 1),
    );
    // the store was flushed and closed: the file opens again as a new store with new settings and holds every count
    const logger = new RecordingLogger();
    const lease = await acquireStore(files.file, { sizeLimitMb: 3, logger });
    try {
      assert.deepEqual(logger.warnings, []);
      assert.equal(lease.store.sizeLimitBytes, 3 * 1024 * 1024);
      assert.equal(lease.store.durability, 'immediate');
      assert.deepEqual((await lease.store.get('flow:tab1', 'counter:k'))?.value, { count: counted + 1, periodStart: null });
    } finally {
      await lease.release();
    }
  });

  for (const [what, msg, pattern] of [
    ['a non-numeric increment', { topic: 'k', increment: 'lots' }, /msg\.increment must be a finite number, got "lots"/],
    ['a NaN increment', { topic: 'k', increment: Number.NaN }, /msg\.increment must be a finite number, got NaN/],
    ['an infinite increment', { topic: 'k', increment: Number.POSITIVE_INFINITY }, /msg\.increment must be a finite number/],
    ['an object increment', { topic: 'k', increment: { by: 1 } }, /msg\.increment must be a finite number, got a object/],
    ['a non-numeric msg.count', { topic: 'k', count: 'ten' }, /msg\.count must be a finite number, got "ten"/],
    ['a null msg.count', { topic: 'k', count: null }, /msg\.count must be a finite number, got null/],
    ['an empty key', { topic: '' }, /empty/],
    ['a missing key', {}, /not set/],
    ['a non-string key', { topic: 7 }, /must be a string/],
  ] as const) {
    it(`rejects ${what} with a catchable error and changes nothing`, async () => {
      await helper.load(nodes, counterFlow(files.file));
      const out = collect('out');
      const caught = collect('caught');
      await sendAll([{ topic: 'k' }, { topic: 'k' }], out);
      node('counter1').receive({ ...msg } as NodeMessage);
      const [err] = await caught.until(1);
      assert.match((err.error as { message: string }).message, pattern);
      assert.equal((err.error as { source: { id: string } }).source.id, 'counter1');
      assert.equal(lastStatus('counter1').fill, 'red');
      assert.equal(out.received.length, 2);
      const [next] = await sendAll([{ topic: 'k' }], out);
      assert.equal(next.payload, 3);
    });
  }

  it('rejects a count that would leave the range of numbers and keeps the old one', async () => {
    await helper.load(nodes, counterFlow(files.file));
    const out = collect('out');
    const caught = collect('caught');
    await sendAll([{ topic: 'k', count: Number.MAX_VALUE }], out);
    node('counter1').receive({ topic: 'k', increment: Number.MAX_VALUE });
    const [err] = await caught.until(1);
    assert.match((err.error as { message: string }).message, /range of numbers/);
    const [next] = await sendAll([{ topic: 'k', increment: 0 }], out);
    assert.equal(next.payload, Number.MAX_VALUE);
  });

  it('refuses to add to a stored value that is not a count, and leaves it as it was until msg.count sets it', async () => {
    await helper.load(nodes, counterFlow(files.file));
    const written = collect('written');
    node('writer').receive({ topic: 'counter:note', payload: 'do not overwrite me' });
    await written.until(1);
    const caught = collect('caught');
    node('counter1').receive({ topic: 'note' });
    const [err] = await caught.until(1);
    assert.match((err.error as { message: string }).message, /"counter:note" holds "do not overwrite me", not a count/);
    const found = collect('found');
    node('reader').receive({ topic: 'counter:note' });
    assert.equal((await found.until(1))[0].payload, 'do not overwrite me');
    const [msg] = await sendAll([{ topic: 'note', count: 3 }]);
    assert.deepEqual(info(msg), { key: 'note', count: 3, previous: null, periodStart: null });
  });

  for (const [what, extra, pattern] of [
    ['a step that is not a number', { step: 'two' }, /step must be a finite number, got "two"/],
    ['an initial value that is not a number', { initial: 'zero' }, /initial value must be a finite number/],
    ['an unknown reset period', { resetEvery: 'hour' }, /reset every must be never, day, week or month/],
    ['an empty key', { key: '', keyType: 'str' }, /the key is empty/],
  ] as const) {
    it(`rejects every message when configured with ${what}`, async () => {
      await helper.load(nodes, counterFlow(files.file, extra));
      const caught = collect('caught');
      node('counter1').receive({ topic: 'k' });
      const [err] = await caught.until(1);
      assert.match((err.error as { message: string }).message, pattern);
      assert.equal(lastStatus('counter1').fill, 'red');
      assert.equal(collect('out').received.length, 0);
      const missing = collect('missing');
      node('reader').receive({ topic: 'counter:k' });
      await missing.until(1);
    });
  }

  it('reports an unusable database path as a catchable error on each message', async () => {
    const blocker = path.join(files.dir, 'not-a-dir');
    fs.writeFileSync(blocker, 'a file where a directory should be');
    await helper.load(nodes, counterFlow(path.join(blocker, 'cache.sqlite')));
    const caught = collect('caught');
    node('counter1').receive({ topic: 'k' });
    node('counter1').receive({ topic: 'k' });
    const errors = await caught.until(2);
    for (const err of errors) assert.match((err.error as { message: string }).message, /cannot (create|lock) cache database \S*not-a-dir/);
    assert.equal(lastStatus('counter1').fill, 'red');
  });

  it('runs the motion counter example as shipped, and its count survives a restart', async () => {
    const { example, flow, byName } = exampleFlow('motion-counter.json');
    assert.ok(
      example.every((n) => n.type === 'tab' || n.z === example[0].id),
      'one tab',
    );
    assert.ok(example.find((n) => n.name === 'on start: show the count')?.once, 'shows the restored count at start-up');
    await helper.load(exampleNodes(), flow);
    let total = collect(byName('total motion events'));
    node(byName('on start: show the count')).receive({});
    assert.equal((await total.until(1))[0].payload, 0);
    for (let i = 0; i < 3; i++) node(byName('motion: on')).receive({});
    assert.deepEqual(
      (await total.until(4)).slice(1).map((m) => m.payload),
      [1, 2, 3],
    );
    await helper.unload();

    await helper.load(exampleNodes(), flow);
    total = collect(byName('total motion events'));
    node(byName('on start: show the count')).receive({});
    assert.equal((await total.until(1))[0].payload, 3);
    node(byName('motion: on')).receive({});
    assert.equal((await total.until(2))[1].payload, 4);
    node(byName('reset the count')).receive({});
    assert.equal((await total.until(3))[2].payload, 0);
  });

  it('runs the daily counter example as shipped, starting over at midnight', async () => {
    const { example, flow, byName } = exampleFlow('daily-counter.json');
    assert.ok(
      example.every((n) => n.type === 'tab' || n.z === example[0].id),
      'one tab',
    );
    assert.equal((example.find((n) => n.name === 'presses today') as { resetEvery?: string }).resetEvery, 'day');
    await helper.load(exampleNodes(), flow);
    const text = collect(byName("today's count"));
    const info = collect(byName('msg.counter'));
    const local = (iso: string) => DateTime.fromISO(iso, { zone: hostZone() }).toMillis();
    clock.ms = local('2026-06-01T18:00:00');
    node(byName('doorbell pressed')).receive({});
    node(byName('doorbell pressed')).receive({});
    assert.deepEqual(
      (await text.until(2)).map((m) => m.payload),
      ['Doorbell pressed 1 time today', 'Doorbell pressed 2 times today'],
    );
    clock.ms = local('2026-06-01T23:59:00');
    node(byName("23:59: today's total")).receive({});
    assert.equal((await text.until(3))[2].payload, 'Doorbell pressed 2 times today');
    clock.ms = local('2026-06-02T07:30:00');
    node(byName('doorbell pressed')).receive({});
    assert.equal((await text.until(4))[3].payload, 'Doorbell pressed 1 time today');
    const counter = (await info.until(4))[3].counter as CounterInfo;
    assert.equal(counter.previous, 2);
    assert.equal(counter.key, 'binary_sensor.doorbell');
    assert.equal(Date.parse(counter.periodStart ?? ''), local('2026-06-02T00:00:00'));
  });
});
