import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { allNodes, catchAndComplete, collect, deploy, helper, lastStatus, ManualClock, node, nodeRedLine, useRuntime } from '../support/harness';

const nodes = allNodes();

/** Core nodes of the Node-RED line under test (the example flow uses them). */
function coreNodes(...files: string[]): unknown[] {
  const runtime = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
  return files.map((file) => require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [runtime] })));
}
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface Cooldown {
  key: string;
  lastPassed: string | null;
  elapsed: number | null;
  remaining: number | null;
  remainingText: string | null;
  pass?: string;
  error?: string;
}

function cooldownOf(msg: NodeMessage): Cooldown {
  return msg.cooldown as Cooldown;
}

/** A tab with a cache-store on `file`, the gate "gate1" (4 h per msg.topic unless `gate` says otherwise), its two outputs, Catch and Complete. */
function gateFlow(file: string | null, gate: object = {}, store: object = {}) {
  return [
    { id: 'tab1', type: 'tab', label: 'Leak alerts' },
    ...(file ? [{ id: 'store1', type: 'cache-store', name: 'test store', path: file, scope: 'flow', ...store }] : []),
    {
      id: 'gate1',
      type: 'cooldown-gate',
      z: 'tab1',
      name: 'leak cooldown',
      store: file ? 'store1' : '',
      key: 'topic',
      keyType: 'msg',
      cooldown: 4,
      cooldownUnits: 'hours',
      failOpen: true,
      ...gate,
      wires: [['passed'], ['suppressed']],
    },
    { id: 'passed', type: 'helper', z: 'tab1' },
    { id: 'suppressed', type: 'helper', z: 'tab1' },
    ...catchAndComplete('tab1', ['gate1']),
  ];
}

function warnings(id: string): string[] {
  const log = helper.log() as unknown as { WARN: number; getCalls(): { args: { level: number; id?: string; msg: unknown }[] }[] };
  return log
    .getCalls()
    .map((call) => call.args[0])
    .filter((entry) => entry.level === log.WARN && entry.id === id)
    .map((entry) => String(entry.msg));
}

describe('cooldown-gate', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock);

  it('passes the first alarm at once, suppresses repeats and passes again after the cooldown', async () => {
    await helper.load(nodes, gateFlow(files.file, {}, { timezone: 'Europe/Berlin' }));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    const leak = { topic: 'binary_sensor.kitchen_leak', payload: 'on' };

    node('gate1').receive({ ...leak });
    const [first] = await passed.until(1);
    assert.equal(first.payload, 'on');
    assert.deepEqual(cooldownOf(first), {
      key: 'binary_sensor.kitchen_leak',
      lastPassed: '2026-06-01T12:00:00.000+02:00',
      elapsed: 0,
      remaining: 4 * HOUR,
      remainingText: '4 h',
      pass: cooldownOf(first).pass,
    });
    // the id of the pass: its time, then a tag
    assert.match(cooldownOf(first).pass ?? '', /^1780308000000-[0-9a-z]+$/);
    assert.equal(lastStatus('gate1').fill, 'green');
    assert.match(lastStatus('gate1').text ?? '', /1 passed \/ 0 suppressed/);

    clock.advance(48 * MINUTE);
    node('gate1').receive({ ...leak });
    const [repeat] = await suppressed.until(1);
    assert.deepEqual(cooldownOf(repeat), {
      key: 'binary_sensor.kitchen_leak',
      lastPassed: '2026-06-01T12:00:00.000+02:00',
      elapsed: 48 * MINUTE,
      remaining: 3 * HOUR + 12 * MINUTE,
      remainingText: '3 h 12 min',
      reason: 'cooldown',
    });
    assert.equal(lastStatus('gate1').fill, 'yellow');
    assert.match(lastStatus('gate1').text ?? '', /3 h 12 min left \(1 passed \/ 1 suppressed\)/);

    clock.advance(3 * HOUR + 11 * MINUTE + 59_500);
    node('gate1').receive({ ...leak });
    const [, last] = await suppressed.until(2);
    assert.equal(cooldownOf(last).remaining, 500);
    assert.equal(cooldownOf(last).remainingText, '1 s');

    clock.advance(500);
    node('gate1').receive({ ...leak });
    const [, again] = await passed.until(2);
    assert.equal(cooldownOf(again).lastPassed, '2026-06-01T16:00:00.000+02:00');
    assert.equal(passed.received.length, 2);
    assert.equal(suppressed.received.length, 2);
  });

  it('cools down each key on its own', async () => {
    await helper.load(nodes, gateFlow(files.file, { cooldown: 30, cooldownUnits: 'minutes' }));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    await passed.until(1);
    clock.advance(MINUTE);
    node('gate1').receive({ topic: 'binary_sensor.bath_leak' });
    const [, bath] = await passed.until(2);
    assert.equal(cooldownOf(bath).key, 'binary_sensor.bath_leak');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    node('gate1').receive({ topic: 'binary_sensor.bath_leak' });
    const held = await suppressed.until(2);
    assert.deepEqual(held.map((m) => [cooldownOf(m).key, cooldownOf(m).remaining]).sort(), [
      ['binary_sensor.bath_leak', 30 * MINUTE],
      ['binary_sensor.kitchen_leak', 29 * MINUTE],
    ]);
    clock.advance(29 * MINUTE);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    node('gate1').receive({ topic: 'binary_sensor.bath_leak' });
    const [, , kitchen] = await passed.until(3);
    assert.equal(cooldownOf(kitchen).key, 'binary_sensor.kitchen_leak');
    const [, , bathAgain] = await suppressed.until(3);
    assert.equal(cooldownOf(bathAgain).remainingText, '1 min');
  });

  it('builds the key from a {{...}} template', async () => {
    await helper.load(nodes, gateFlow(files.file, { key: 'last_notification:{{topic}}', keyType: 'str' }));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    node('gate1').receive({ topic: 'binary_sensor.water_leak' });
    const [msg] = await passed.until(1);
    assert.equal(cooldownOf(msg).key, 'last_notification:binary_sensor.water_leak');
    node('gate1').receive({ topic: 'binary_sensor.water_leak' });
    await suppressed.until(1);
    node('gate1').receive({ topic: 'binary_sensor.other_leak' });
    await passed.until(2);
  });

  it('lets exactly one of 100 simultaneous messages for a key through', async () => {
    await helper.load(nodes, gateFlow(files.file));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    const completed = collect('completed');
    for (let i = 0; i < 100; i++) node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: i });
    await completed.until(100);
    assert.equal(passed.received.length, 1);
    assert.equal(suppressed.received.length, 99);
    assert.match(lastStatus('gate1').text ?? '', /1 passed \/ 99 suppressed/);
  });

  it('clears a cooldown on msg.reset = true and sends nothing for the reset', async () => {
    await helper.load(nodes, gateFlow(files.file));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    const completed = collect('completed');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    node('gate1').receive({ topic: 'binary_sensor.bath_leak' });
    await passed.until(2);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', reset: true });
    await completed.until(3);
    assert.equal(passed.received.length, 2);
    assert.equal(suppressed.received.length, 0);
    assert.match(lastStatus('gate1').text ?? '', /reset binary_sensor\.kitchen_leak/);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    await passed.until(3);
    node('gate1').receive({ topic: 'binary_sensor.bath_leak' });
    await suppressed.until(1);
    node('gate1').receive({ topic: 'binary_sensor.bath_leak', reset: 'yes' });
    await suppressed.until(2); // only the boolean true resets
  });

  it('keeps the cooldown across a restart (unload + load) and a redeploy (setFlows)', async () => {
    await helper.load(nodes, gateFlow(files.file));
    let passed = collect('passed');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    await passed.until(1);
    await helper.unload();

    clock.advance(HOUR);
    await helper.load(nodes, gateFlow(files.file));
    let suppressed = collect('suppressed');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    const [afterRestart] = await suppressed.until(1);
    assert.equal(cooldownOf(afterRestart).remaining, 3 * HOUR);

    clock.advance(HOUR);
    const redeployed = gateFlow(files.file, { name: 'renamed gate' });
    await deploy(redeployed, 'full');
    suppressed = collect('suppressed');
    passed = collect('passed');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    const [afterDeploy] = await suppressed.until(1);
    assert.equal(cooldownOf(afterDeploy).remainingText, '2 h');

    clock.advance(2 * HOUR);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    await passed.until(1);
  });

  it('stores the last pass with the cooldown as its TTL', async () => {
    const flow = [
      ...gateFlow(files.file, { cooldown: 90, cooldownUnits: 'seconds' }),
      {
        id: 'reader',
        type: 'cache-get',
        z: 'tab1',
        store: 'store1',
        key: 'cooldown:{{topic}}',
        keyType: 'str',
        property: 'payload',
        defaultType: 'none',
        wires: [['found'], ['missing']],
      },
      { id: 'found', type: 'helper', z: 'tab1' },
      { id: 'missing', type: 'helper', z: 'tab1' },
    ];
    await helper.load(nodes, flow);
    const passed = collect('passed');
    const found = collect('found');
    const missing = collect('missing');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    await passed.until(1);
    node('reader').receive({ topic: 'binary_sensor.kitchen_leak' });
    const [entry] = await found.until(1);
    assert.equal(Date.parse((entry.cache as { expiresAt: string }).expiresAt), clock.ms + 90_000);
    clock.advance(90_000);
    node('reader').receive({ topic: 'binary_sensor.kitchen_leak' });
    await missing.until(1);
  });

  it('does not touch a value cache-set stored under the same key', async () => {
    const flow = [
      ...gateFlow(files.file),
      {
        id: 'writer',
        type: 'cache-set',
        z: 'tab1',
        store: 'store1',
        key: 'topic',
        keyType: 'msg',
        operation: 'set',
        value: 'payload',
        valueType: 'msg',
        wires: [['written']],
      },
      { id: 'written', type: 'helper', z: 'tab1' },
      {
        id: 'reader',
        type: 'cache-get',
        z: 'tab1',
        store: 'store1',
        key: 'topic',
        keyType: 'msg',
        property: 'payload',
        defaultType: 'none',
        wires: [['found'], []],
      },
      { id: 'found', type: 'helper', z: 'tab1' },
    ];
    await helper.load(nodes, flow);
    const written = collect('written');
    const passed = collect('passed');
    const found = collect('found');
    node('writer').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
    await written.until(1);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
    await passed.until(1);
    node('reader').receive({ topic: 'binary_sensor.kitchen_leak' });
    assert.equal((await found.until(1))[0].payload, 'on');
  });

  it('works with the default store (no cache-store node)', async () => {
    await helper.load(nodes, gateFlow(null));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    node('gate1').receive({ topic: 'binary_sensor.default_store_leak' });
    await passed.until(1);
    node('gate1').receive({ topic: 'binary_sensor.default_store_leak' });
    await suppressed.until(1);
  });

  it('holds at most one cooldown from when a clock that ran a year ahead is set back', async () => {
    await helper.load(nodes, gateFlow(files.file, {}, { timezone: 'UTC' }));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    const leak = { topic: 'binary_sensor.kitchen_leak', payload: 'on' };
    clock.set('2027-06-01T10:00:00Z'); // booted without a clock source, a year ahead
    node('gate1').receive({ ...leak });
    await passed.until(1);

    clock.set('2026-06-01T10:05:00Z'); // NTP sets it right
    node('gate1').receive({ ...leak });
    const [held] = await suppressed.until(1);
    assert.deepEqual(cooldownOf(held), {
      key: 'binary_sensor.kitchen_leak',
      lastPassed: '2026-06-01T10:05:00.000Z',
      elapsed: 0,
      remaining: 4 * HOUR,
      remainingText: '4 h',
      reason: 'cooldown',
    });
    assert.equal(warnings('gate1').length, 1);
    assert.match(
      warnings('gate1')[0],
      /binary_sensor\.kitchen_leak was armed 364 d 23 h ahead of the clock \(the clock was set back\); it holds for 4 h from now/,
    );

    clock.advance(4 * HOUR - 1);
    node('gate1').receive({ ...leak });
    const [, stillHeld] = await suppressed.until(2);
    assert.equal(cooldownOf(stillHeld).remaining, 1);
    clock.advance(1);
    node('gate1').receive({ ...leak });
    const [, again] = await passed.until(2);
    assert.equal(cooldownOf(again).lastPassed, '2026-06-01T14:05:00.000Z');
    assert.equal(warnings('gate1').length, 1);
  });

  it('holds no longer than one cooldown when the clock steps back a little right after a pass', async () => {
    await helper.load(nodes, gateFlow(files.file, { cooldown: 10, cooldownUnits: 'minutes' }, { timezone: 'UTC' }));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    clock.set('2026-06-01T10:00:30Z');
    node('gate1').receive({ topic: 'door' });
    await passed.until(1);
    clock.set('2026-06-01T10:00:00Z'); // NTP steps back 30 s
    node('gate1').receive({ topic: 'door' });
    const [held] = await suppressed.until(1);
    assert.equal(cooldownOf(held).remaining, 10 * MINUTE);
    clock.set('2026-06-01T10:10:00Z');
    node('gate1').receive({ topic: 'door' });
    await passed.until(2);
  });

  describe('when the store fails', () => {
    function brokenStoreFile(): string {
      const blocker = path.join(files.dir, 'not-a-dir');
      fs.writeFileSync(blocker, 'a file where a directory should be');
      return path.join(blocker, 'cache.sqlite');
    }

    it('passes the message with msg.cooldown.error and a warning (failOpen on, the default)', async () => {
      const flow = gateFlow(brokenStoreFile());
      delete (flow[2] as { failOpen?: boolean }).failOpen;
      await helper.load(nodes, flow);
      const passed = collect('passed');
      const completed = collect('completed');
      const caught = collect('caught');
      node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      const [msg] = await passed.until(2);
      await completed.until(2);
      const info = cooldownOf(msg);
      assert.equal(info.key, 'binary_sensor.kitchen_leak');
      assert.equal(info.lastPassed, null);
      assert.match(info.error ?? '', /cannot (create|lock) cache database \S*not-a-dir/);
      assert.equal(caught.received.length, 0);
      const warned = warnings('gate1');
      assert.equal(warned.length, 2);
      assert.match(warned[0], /passed without a cooldown check: cannot (create|lock) cache database \S*not-a-dir/);
      assert.equal(lastStatus('gate1').fill, 'red');
    });

    it('ends the message with an error a Catch node sees (failOpen off)', async () => {
      await helper.load(nodes, gateFlow(brokenStoreFile(), { failOpen: false }));
      const caught = collect('caught');
      const completed = collect('completed');
      const passed = collect('passed');
      const suppressed = collect('suppressed');
      node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
      const [err] = await caught.until(1);
      assert.match((err.error as { message: string }).message, /cannot (create|lock) cache database \S*not-a-dir/);
      assert.equal(passed.received.length, 0);
      assert.equal(suppressed.received.length, 0);
      assert.equal(completed.received.length, 0);
      assert.equal(lastStatus('gate1').fill, 'red');
      assert.deepEqual(warnings('gate1'), []);
    });

    it('reports a failed reset as an error even with failOpen on', async () => {
      await helper.load(nodes, gateFlow(brokenStoreFile()));
      const caught = collect('caught');
      node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', reset: true });
      const [err] = await caught.until(1);
      assert.match((err.error as { message: string }).message, /cannot (create|lock) cache database \S*not-a-dir/);
    });
  });

  for (const [what, msg, pattern] of [
    ['an empty key', { topic: '' }, /key msg\.topic is empty/],
    ['a non-string key', { topic: 42 }, /must be a string, got number/],
    ['a missing key', { payload: 'on' }, /key msg\.topic is not set/],
    ['a key over the length limit', { topic: 'k'.repeat(1025) }, /key msg\.topic is 1025 characters long; the limit is 1024/],
  ] as const) {
    it(`rejects ${what} with a catchable error, even with failOpen on`, async () => {
      await helper.load(nodes, gateFlow(files.file));
      const caught = collect('caught');
      const passed = collect('passed');
      const suppressed = collect('suppressed');
      node('gate1').receive({ ...msg } as NodeMessage);
      const [err] = await caught.until(1);
      assert.match((err.error as { message: string }).message, pattern);
      assert.equal(lastStatus('gate1').fill, 'red');
      assert.equal(passed.received.length, 0);
      assert.equal(suppressed.received.length, 0);
      assert.deepEqual(warnings('gate1'), []);
    });
  }

  for (const [what, gate, pattern] of [
    ['a zero cooldown', { cooldown: 0 }, /cooldown must be a positive number of hours, got 0/],
    ['a negative cooldown', { cooldown: -5 }, /cooldown must be a positive number/],
    ['a blank cooldown', { cooldown: '' }, /cooldown must be a positive number of hours, got ""/],
    ['a non-numeric cooldown', { cooldown: 'soon' }, /cooldown must be a positive number of hours, got "soon"/],
    ['unknown units', { cooldownUnits: 'weeks' }, /cooldown units must be seconds, minutes, hours or days, got "weeks"/],
    ['an empty string key', { key: '', keyType: 'str' }, /the key is empty/],
    ['an unknown key type', { keyType: 'bogus' }, /unknown key type/],
  ] as const) {
    it(`rejects ${what} in the configuration on every message`, async () => {
      await helper.load(nodes, gateFlow(files.file, gate));
      const caught = collect('caught');
      const passed = collect('passed');
      assert.equal(lastStatus('gate1').fill, 'red');
      node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
      node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
      const errors = await caught.until(2);
      for (const err of errors) assert.match((err.error as { message: string }).message, pattern);
      assert.equal(passed.received.length, 0);
    });
  }

  it('accepts a cooldown given as text and in days', async () => {
    await helper.load(nodes, gateFlow(files.file, { cooldown: '1.5', cooldownUnits: 'days' }));
    const passed = collect('passed');
    const suppressed = collect('suppressed');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    const [msg] = await passed.until(1);
    assert.equal(cooldownOf(msg).remaining, 36 * HOUR);
    assert.equal(cooldownOf(msg).remainingText, '1 d 12 h');
    clock.advance(36 * HOUR - 45_000);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak' });
    assert.equal(cooldownOf((await suppressed.until(1))[0]).remainingText, '45 s');
  });

  it('runs the water-leak example flow as shipped', async () => {
    const example = JSON.parse(
      fs.readFileSync(path.join(__dirname, '..', '..', '..', 'examples', 'cooldown-gate', 'water-leak-notification.json'), 'utf8'),
    ) as {
      id: string;
      type: string;
      z?: string;
      name?: string;
    }[];
    const byName = (name: string) => {
      const found = example.find((n) => n.name === name);
      assert.ok(found, `the example has a node named "${name}"`);
      return found.id;
    };
    // The debug nodes become helper nodes with the same ids, so the test sees what they would show.
    const flow = example.map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n));
    await helper.load([...nodes, ...coreNodes('common/20-inject.js', 'common/90-comment.js', 'function/15-change.js', 'function/10-function.js')], flow);
    const notify = collect(byName('notification sent'));
    const failed = collect(byName('notify failed (msg.error)'));
    const heldBack = collect(byName('held back (msg.cooldown)'));
    node(byName('kitchen leak: on')).receive({});
    const [first] = await notify.until(1);
    assert.deepEqual(first.payload, { title: 'Alert', message: 'Water leak detected: binary_sensor.kitchen_leak' });
    clock.advance(10 * MINUTE);
    node(byName('kitchen leak: on again')).receive({});
    const [held] = await heldBack.until(1);
    assert.equal(cooldownOf(held).remainingText, '3 h 50 min');
    node(byName('bathroom leak: on')).receive({});
    await notify.until(2);
    node(byName('leak fixed: reset kitchen')).receive({});
    node(byName('kitchen leak: on again')).receive({});
    const [, , again] = await notify.until(3);
    assert.equal(again.topic, 'binary_sensor.kitchen_leak');
    assert.equal(heldBack.received.length, 1);

    // a notification that fails is released: the next alarm for the sensor is delivered
    node(byName('leak fixed: reset kitchen')).receive({});
    node(byName('kitchen leak: on, notify fails')).receive({});
    await failed.until(1);
    assert.equal(notify.received.length, 3);
    clock.advance(MINUTE);
    node(byName('kitchen leak: on')).receive({});
    const [, , , delivered] = await notify.until(4);
    assert.equal(delivered.topic, 'binary_sensor.kitchen_leak');
    assert.equal(heldBack.received.length, 1);
  });
});
