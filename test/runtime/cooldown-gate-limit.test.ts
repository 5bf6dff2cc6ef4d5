// cooldown-gate's options: limit per sliding window or calendar period, start-up quiet time, only on
// change and summaries. Time comes from the injected clock; the gate's timers fire at instants of it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { fireDueAlarms, useManualAlarms } from '../../nodes/red/timers';
import { gateNodes, gateOutputs } from '../support/gate-flow';
import { allNodes, collect, deploy, helper, lastStatus, ManualClock, node, nodeRedLine, useRuntime } from '../support/harness';

const nodes = allNodes();
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

interface Cooldown {
  key: string;
  lastPassed: string | null;
  elapsed: number | null;
  remaining: number | null;
  remainingText: string | null;
  count?: number;
  limit?: number;
  reason?: string;
  pass?: string;
  error?: string;
}

interface Summary {
  key: string;
  held: number;
  firstHeld: string;
  lastHeld: string;
  since: string;
  due: string;
  text: string;
}

const cooldownOf = (msg: NodeMessage) => msg.cooldown as Cooldown;
const summaryOf = (msg: NodeMessage) => msg.summary as Summary;

/** A tab with a cache-store on `file` (zone UTC unless `store` says otherwise), the gate "gate1" and a helper on each output. */
function gateFlow(file: string, gate: object = {}, store: object = {}) {
  return gateNodes({ id: 'store1', type: 'cache-store', name: 'test store', path: file, scope: 'flow', timezone: 'UTC', ...store }, { name: 'limit', ...gate });
}

const outputs = gateOutputs;

/** An example flow as shipped, its debug nodes replaced by helper nodes of the same id; `byName` finds a node's id. */
function example(file: string) {
  const flow = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'examples', 'cooldown-gate', file), 'utf8')) as {
    id: string;
    type: string;
    z?: string;
    name?: string;
  }[];
  const byName = (name: string) => {
    const found = flow.filter((n) => n.name === name);
    assert.equal(found.length, 1, `the example has one node named "${name}"`);
    return found[0].id;
  };
  const runtime = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
  const core = ['common/20-inject.js', 'common/90-comment.js', 'function/15-change.js', 'function/10-function.js'].map((file) =>
    require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [runtime] })),
  );
  const loadable = flow.map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n));
  return { flow: loadable, byName, nodes: [...nodes, ...core] };
}

/** Sends messages one after the other, each once the one before has left the gate. */
async function sendInTurn(out: ReturnType<typeof outputs>, ...msgs: NodeMessage[]): Promise<void> {
  for (const msg of msgs) {
    const before = out.completed.received.length;
    node('gate1').receive({ ...msg });
    await out.completed.until(before + 1);
  }
}

describe('cooldown-gate options', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock, '2026-06-01T10:00:00Z');
  before(() => useManualAlarms(true));
  after(() => useManualAlarms(false));

  describe('limit per sliding window', () => {
    it('passes 3 per hour and frees a slot exactly one hour after each pass', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 3 }));
      const out = outputs();
      const leak = { topic: 'binary_sensor.kitchen_leak', payload: 'on' };
      await sendInTurn(out, leak);
      clock.advance(20 * MINUTE);
      await sendInTurn(out, leak);
      clock.advance(20 * MINUTE);
      await sendInTurn(out, leak);
      assert.equal(out.passed.received.length, 3);
      assert.deepEqual(cooldownOf(out.passed.received[2]), {
        key: 'binary_sensor.kitchen_leak',
        lastPassed: '2026-06-01T10:40:00.000Z',
        elapsed: 0,
        remaining: 20 * MINUTE,
        remainingText: '20 min',
        count: 3,
        limit: 3,
        pass: cooldownOf(out.passed.received[2]).pass,
      });
      assert.match(cooldownOf(out.passed.received[2]).pass ?? '', /^1780310400000-[0-9a-z]+$/);
      assert.equal(lastStatus('gate1').text, 'passed binary_sensor.kitchen_leak: 3 of 3 per 1 h (3 passed / 0 suppressed)');

      // one millisecond before the first pass leaves the window: still full
      clock.set('2026-06-01T10:59:59.999Z');
      await sendInTurn(out, leak);
      assert.deepEqual(cooldownOf(out.suppressed.received[0]), {
        key: 'binary_sensor.kitchen_leak',
        lastPassed: '2026-06-01T10:40:00.000Z',
        elapsed: 19 * MINUTE + 59_999,
        remaining: 1,
        remainingText: '1 s',
        count: 3,
        limit: 3,
        reason: 'limit',
      });
      assert.equal(lastStatus('gate1').text, 'binary_sensor.kitchen_leak: 3 per 1 h reached, 1 s left (3 passed / 1 suppressed)');

      // exactly one hour after it: one slot
      clock.set('2026-06-01T11:00:00.000Z');
      await sendInTurn(out, leak, leak);
      assert.equal(out.passed.received.length, 4);
      assert.equal(cooldownOf(out.passed.received[3]).remaining, 20 * MINUTE, 'the next slot frees when the 10:20 pass leaves the window');
      assert.equal(cooldownOf(out.suppressed.received[1]).reason, 'limit');

      clock.set('2026-06-01T11:20:00.000Z');
      await sendInTurn(out, leak);
      assert.equal(out.passed.received.length, 5);
      assert.equal(out.caught.received.length, 0);
    });

    it('counts each key on its own', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 2, cooldown: 10, cooldownUnits: 'minutes' }));
      const out = outputs();
      await sendInTurn(out, { topic: 'a' }, { topic: 'a' }, { topic: 'b' }, { topic: 'a' }, { topic: 'b' });
      assert.deepEqual(
        out.passed.received.map((m) => m.topic),
        ['a', 'a', 'b', 'b'],
      );
      assert.deepEqual(
        out.suppressed.received.map((m) => [m.topic, cooldownOf(m).reason, cooldownOf(m).remaining]),
        [['a', 'limit', 10 * MINUTE]],
      );
    });

    it('lets exactly 3 of 100 simultaneous messages for a key through', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 3 }));
      const out = outputs();
      for (let i = 0; i < 100; i++) node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: i });
      await out.completed.until(100);
      assert.equal(out.passed.received.length, 3);
      assert.equal(out.suppressed.received.length, 97);
      assert.ok(out.suppressed.received.every((m) => cooldownOf(m).reason === 'limit'));
      assert.equal(lastStatus('gate1').text?.endsWith('(3 passed / 97 suppressed)'), true);
    });

    it('keeps the count across a restart and a redeploy', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 3 }));
      let out = outputs();
      await sendInTurn(out, { topic: 'sms' }, { topic: 'sms' });
      await helper.unload();

      clock.advance(10 * MINUTE);
      await helper.load(nodes, gateFlow(files.file, { limit: 3 }));
      out = outputs();
      await sendInTurn(out, { topic: 'sms' }, { topic: 'sms' });
      assert.equal(out.passed.received.length, 1, 'the third of the hour passes after the restart');
      assert.equal(cooldownOf(out.passed.received[0]).count, 3);
      assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'limit');

      await deploy(gateFlow(files.file, { limit: 3, name: 'renamed' }), 'full');
      out = outputs();
      await sendInTurn(out, { topic: 'sms' });
      assert.equal(out.suppressed.received.length, 1);
      assert.equal(cooldownOf(out.suppressed.received[0]).remaining, 50 * MINUTE);
    });

    it('holds at most one window when the clock is set back', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 2 }));
      const out = outputs();
      clock.set('2027-06-01T10:00:00Z');
      await sendInTurn(out, { topic: 'door' }, { topic: 'door' });
      clock.set('2026-06-01T10:00:00Z');
      await sendInTurn(out, { topic: 'door' });
      assert.equal(cooldownOf(out.suppressed.received[0]).remaining, HOUR);
      clock.advance(HOUR);
      await sendInTurn(out, { topic: 'door' });
      assert.equal(out.passed.received.length, 3);
    });
  });

  describe('limit per calendar period (store time zone)', () => {
    it('resets at local midnight across the spring daylight-saving change (a 23-hour day)', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 2, period: 'day' }, { timezone: 'Europe/Berlin' }));
      const out = outputs();
      const sms = { topic: 'sms', payload: 'leak' };
      clock.set('2026-03-28T22:30:00Z'); // 23:30 CET, Saturday
      await sendInTurn(out, sms, sms, sms);
      assert.equal(out.passed.received.length, 2);
      assert.deepEqual(cooldownOf(out.suppressed.received[0]), {
        key: 'sms',
        lastPassed: '2026-03-28T23:30:00.000+01:00',
        elapsed: 0,
        remaining: 30 * MINUTE,
        remainingText: '30 min',
        count: 2,
        limit: 2,
        reason: 'limit',
      });

      clock.set('2026-03-28T23:00:00Z'); // midnight CET: Sunday, the clocks go forward at 02:00
      await sendInTurn(out, sms, sms, sms);
      assert.equal(out.passed.received.length, 4);
      assert.equal(cooldownOf(out.passed.received[3]).remaining, 23 * HOUR, 'Sunday has 23 hours');
      assert.equal(cooldownOf(out.passed.received[3]).remainingText, '23 h');

      clock.set('2026-03-29T21:59:59.999Z'); // 23:59:59.999 CEST
      await sendInTurn(out, sms);
      assert.equal(cooldownOf(out.suppressed.received[2]).remaining, 1);
      clock.set('2026-03-29T22:00:00Z'); // midnight CEST
      await sendInTurn(out, sms);
      assert.equal(out.passed.received.length, 5);
      assert.equal(cooldownOf(out.passed.received[4]).lastPassed, '2026-03-30T00:00:00.000+02:00');
      assert.equal(lastStatus('gate1').text, 'passed sms: 1 of 2 per day (5 passed / 3 suppressed)');
    });

    it('holds for 25 hours across the autumn change, and by week (Monday) and month (the 1st)', async () => {
      await helper.load(nodes, gateFlow(files.file, { limit: 1, period: 'day' }, { timezone: 'Europe/Berlin' }));
      let out = outputs();
      clock.set('2026-10-24T22:00:00Z'); // midnight CEST, Sunday 25 October: the clocks go back at 03:00
      await sendInTurn(out, { topic: 'k' }, { topic: 'k' });
      assert.equal(cooldownOf(out.suppressed.received[0]).remaining, 25 * HOUR);
      assert.equal(cooldownOf(out.suppressed.received[0]).remainingText, '1 d 1 h');
      clock.set('2026-10-25T22:59:59.999Z');
      await sendInTurn(out, { topic: 'k' });
      clock.set('2026-10-25T23:00:00Z'); // midnight CET
      await sendInTurn(out, { topic: 'k' });
      assert.equal(out.passed.received.length, 2);
      assert.equal(out.suppressed.received.length, 2);

      await deploy(gateFlow(files.file, { limit: 1, period: 'week' }, { timezone: 'Europe/Berlin' }), 'full');
      out = outputs();
      clock.set('2026-10-22T10:00:00Z'); // Thursday
      await sendInTurn(out, { topic: 'w' }, { topic: 'w' });
      // Monday 26 October, 00:00 CET: from Thursday 12:00 CEST, 3 days 12 hours and the hour the clocks went back
      assert.equal(cooldownOf(out.suppressed.received[0]).remaining, 3 * 24 * HOUR + 13 * HOUR);
      clock.set('2026-10-25T23:00:00Z');
      await sendInTurn(out, { topic: 'w' });
      assert.equal(out.passed.received.length, 2);

      await deploy(gateFlow(files.file, { limit: 1, period: 'month' }, { timezone: 'Europe/Berlin' }), 'full');
      out = outputs();
      clock.set('2026-10-15T12:00:00Z');
      await sendInTurn(out, { topic: 'm' });
      clock.set('2026-10-31T22:59:00Z'); // 23:59 CET, 31 October
      await sendInTurn(out, { topic: 'm' });
      assert.equal(cooldownOf(out.suppressed.received[0]).remaining, MINUTE);
      clock.set('2026-10-31T23:00:00Z');
      await sendInTurn(out, { topic: 'm' });
      assert.equal(out.passed.received.length, 2);
      assert.equal(cooldownOf(out.passed.received[1]).lastPassed, '2026-11-01T00:00:00.000+01:00');
    });

    it('keeps one budget for all keys with a fixed key, across a restart', async () => {
      const flow = () => gateFlow(files.file, { key: 'sms-budget', keyType: 'str', limit: 3, period: 'day' }, { timezone: 'Europe/Berlin' });
      await helper.load(nodes, flow());
      let out = outputs();
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak' }, { topic: 'binary_sensor.bath_leak' });
      await helper.unload();
      clock.advance(HOUR);
      await helper.load(nodes, flow());
      out = outputs();
      await sendInTurn(out, { topic: 'binary_sensor.cellar_leak' }, { topic: 'binary_sensor.kitchen_leak' });
      assert.deepEqual(
        out.passed.received.map((m) => [m.topic, cooldownOf(m).count]),
        [['binary_sensor.cellar_leak', 3]],
      );
      assert.equal(cooldownOf(out.suppressed.received[0]).key, 'sms-budget');
    });
  });

  describe('start-up quiet time', () => {
    it('holds back every message for the first seconds after a start without arming the gate', async () => {
      await helper.load(nodes, gateFlow(files.file, { startupQuiet: 60, cooldown: 4 }));
      const out = outputs();
      assert.equal(lastStatus('gate1').text, 'start-up quiet: 1 min');
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      assert.deepEqual(cooldownOf(out.suppressed.received[0]), {
        key: 'binary_sensor.kitchen_leak',
        lastPassed: null,
        elapsed: null,
        remaining: MINUTE,
        remainingText: '1 min',
        reason: 'startup',
      });
      assert.equal(lastStatus('gate1').fill, 'blue');
      clock.advance(59_999);
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      assert.equal(cooldownOf(out.suppressed.received[1]).reason, 'startup');
      assert.equal(cooldownOf(out.suppressed.received[1]).remaining, 1);

      clock.advance(1);
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      assert.equal(out.passed.received.length, 1, 'the held-back messages did not start the cooldown');
      assert.equal(cooldownOf(out.passed.received[0]).lastPassed, '2026-06-01T10:01:00.000Z');
    });

    it('starts again after a redeploy and after a restart, and leaves a running cooldown as it is', async () => {
      await helper.load(nodes, gateFlow(files.file, { startupQuiet: 30, cooldown: 4 }));
      let out = outputs();
      clock.advance(30 * SECOND);
      await sendInTurn(out, { topic: 'leak' });
      assert.equal(out.passed.received.length, 1);

      clock.advance(HOUR);
      await deploy(gateFlow(files.file, { startupQuiet: 30, cooldown: 4, name: 'redeployed' }), 'full');
      out = outputs();
      await sendInTurn(out, { topic: 'leak' }, { topic: 'other' });
      assert.deepEqual(
        out.suppressed.received.map((m) => [m.topic, cooldownOf(m).reason, cooldownOf(m).remaining]),
        [
          ['leak', 'startup', 3 * HOUR], // the cooldown outlasts the quiet time
          ['other', 'startup', 30 * SECOND],
        ],
      );
      clock.advance(30 * SECOND);
      await sendInTurn(out, { topic: 'leak' }, { topic: 'other' });
      assert.equal(cooldownOf(out.suppressed.received[2]).reason, 'cooldown');
      assert.deepEqual(
        out.passed.received.map((m) => m.topic),
        ['other'],
      );

      await helper.unload();
      clock.advance(5 * HOUR);
      await helper.load(nodes, gateFlow(files.file, { startupQuiet: 30, cooldown: 4 }));
      out = outputs();
      await sendInTurn(out, { topic: 'leak' });
      assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'startup');
      clock.advance(30 * SECOND);
      await sendInTurn(out, { topic: 'leak' });
      assert.equal(out.passed.received.length, 1);
    });

    it('does not start again on a deploy that leaves the gate as it is', async () => {
      const flow = (label: string) => [...gateFlow(files.file, { startupQuiet: 30 }), { id: 'note', type: 'helper', z: 'tab1', name: label }];
      await helper.load(nodes, flow('first'));
      const gate = node('gate1');
      clock.advance(30 * SECOND);
      await deploy(flow('second'), 'nodes');
      assert.equal(node('gate1'), gate, 'the gate kept running');
      const out = outputs();
      await sendInTurn(out, { topic: 'leak' });
      assert.equal(out.passed.received.length, 1);
    });
  });

  describe('only on change', () => {
    it('holds back a value equal to the last one that passed, compared deeply, also after a restart', async () => {
      const flow = () => gateFlow(files.file, { onlyOnChange: true, cooldown: 1, cooldownUnits: 'seconds' });
      await helper.load(nodes, flow());
      let out = outputs();
      const person = (payload: unknown) => ({ topic: 'person.alice', payload });
      await sendInTurn(out, person('home'));
      clock.advance(MINUTE);
      await sendInTurn(out, person('home'));
      assert.deepEqual(cooldownOf(out.suppressed.received[0]), {
        key: 'person.alice',
        lastPassed: '2026-06-01T10:00:00.000Z',
        elapsed: MINUTE,
        remaining: 0,
        remainingText: '0 s',
        reason: 'unchanged',
      });
      assert.equal(lastStatus('gate1').text, 'person.alice unchanged (1 passed / 1 suppressed)');
      await sendInTurn(out, person('not_home'), person({ zone: 'work', since: [1, 2] }));
      clock.advance(MINUTE);
      await sendInTurn(out, person({ zone: 'work', since: [1, 2] }), person({ since: [1, 2], zone: 'work' }));
      clock.advance(MINUTE);
      await sendInTurn(out, person({ since: [2, 1], zone: 'work' }));
      assert.deepEqual(
        out.passed.received.map((m) => m.payload),
        ['home', 'not_home', { zone: 'work', since: [1, 2] }, { since: [2, 1], zone: 'work' }],
      );
      assert.deepEqual(
        out.suppressed.received.map((m) => cooldownOf(m).reason),
        // a changed value within the cooldown is held back by it; object keys in another order are the same value
        ['unchanged', 'cooldown', 'unchanged'],
      );

      await helper.unload();
      clock.advance(24 * HOUR);
      await helper.load(nodes, flow());
      out = outputs();
      await sendInTurn(out, person({ zone: 'work', since: [2, 1] }), person('home'));
      assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'unchanged', 'the last value survives the restart');
      assert.equal(out.passed.received[0].payload, 'home');
    });

    it('compares the configured property, an absent one as a value of its own', async () => {
      await helper.load(nodes, gateFlow(files.file, { onlyOnChange: true, changeProperty: 'data.new_state.state', cooldown: 1, cooldownUnits: 'seconds' }));
      const out = outputs();
      const event = (state: string, changed: string) => ({
        topic: 'binary_sensor.door',
        payload: state,
        data: { new_state: { state, last_changed: changed } },
      });
      await sendInTurn(out, event('on', 't1'));
      clock.advance(MINUTE);
      await sendInTurn(out, { ...event('on', 't2'), payload: 'something else' }, { topic: 'binary_sensor.door' });
      clock.advance(MINUTE);
      await sendInTurn(out, { topic: 'binary_sensor.door', data: {} }, event('on', 't3'));
      // the same state with another payload and time stamp is no change; no state at all is one, once
      assert.deepEqual(
        out.passed.received.map((m) => (m.data as { new_state?: { last_changed: string } } | undefined)?.new_state?.last_changed ?? 'absent'),
        ['t1', 'absent', 't3'],
      );
      assert.deepEqual(
        out.suppressed.received.map((m) => cooldownOf(m).reason),
        ['unchanged', 'unchanged'],
      );
    });

    it('rejects a value that refers to itself, and writes nothing', async () => {
      await helper.load(nodes, gateFlow(files.file, { onlyOnChange: true }));
      const out = outputs();
      const payload: Record<string, unknown> = { state: 'on' };
      payload.self = payload;
      node('gate1').receive({ topic: 'loop', payload });
      const [err] = await out.caught.until(1);
      assert.match((err.error as { message: string }).message, /msg\.payload cannot be compared: it refers to itself/);
      assert.equal(lastStatus('gate1').fill, 'red');
      await sendInTurn(out, { topic: 'loop', payload: 'on' });
      assert.equal(out.passed.received.length, 1);
    });
  });

  describe('summary when a cooldown ends', () => {
    const leak = (payload: string) => ({ topic: 'binary_sensor.kitchen_leak', payload });

    it('sends one summary of what was held back when the cooldown ends, and only once', async () => {
      await helper.load(nodes, gateFlow(files.file, { summary: true, cooldown: 4 }));
      const out = outputs();
      await sendInTurn(out, leak('on'));
      for (const [minutes, payload] of [
        [10, 'on again'],
        [50, 'still on'],
        [100, 'on, 3rd'],
      ] as const) {
        clock.set(`2026-06-01T10:00:00Z`);
        clock.advance(minutes * MINUTE);
        await sendInTurn(out, leak(payload));
      }
      assert.equal(out.suppressed.received.length, 3);
      clock.set('2026-06-01T13:59:59.999Z');
      assert.equal(fireDueAlarms(), 0);
      clock.set('2026-06-01T14:00:00Z');
      assert.equal(fireDueAlarms(), 1);
      const [sent] = await out.summaries.until(1);
      assert.equal(sent.payload, 'on, 3rd');
      assert.equal(sent.topic, 'binary_sensor.kitchen_leak');
      assert.deepEqual(summaryOf(sent), {
        key: 'binary_sensor.kitchen_leak',
        held: 3,
        firstHeld: '2026-06-01T10:10:00.000Z',
        lastHeld: '2026-06-01T11:40:00.000Z',
        since: '2026-06-01T10:00:00.000Z',
        due: '2026-06-01T14:00:00.000Z',
        text: '3 more for binary_sensor.kitchen_leak in 4 h',
      });
      assert.match(lastStatus('gate1').text ?? '', /summary for binary_sensor\.kitchen_leak: 3 held back/);

      clock.advance(HOUR);
      assert.equal(fireDueAlarms(), 0);
      await sendInTurn(out, leak('on'));
      assert.equal(out.passed.received.length, 2);
      assert.equal(out.summaries.received.length, 1);
    });

    it('sends the summary with the first message after the window when that comes first', async () => {
      await helper.load(nodes, gateFlow(files.file, { summary: true, limit: 2, cooldown: 1 }));
      const out = outputs();
      await sendInTurn(out, leak('1'), leak('2'), leak('3'));
      clock.advance(HOUR);
      await sendInTurn(out, leak('4'));
      assert.equal(out.summaries.received.length, 1);
      assert.equal(summaryOf(out.summaries.received[0]).held, 1);
      assert.equal(out.summaries.received[0].payload, '3');
      assert.deepEqual(
        out.passed.received.map((m) => m.payload),
        ['1', '2', '4'],
      );
      assert.equal(fireDueAlarms(), 0, 'the timer found nothing more to send');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(out.summaries.received.length, 1);
    });

    it('sends nothing when nothing was held back, and counts no unchanged or start-up message as held', async () => {
      await helper.load(nodes, gateFlow(files.file, { summary: true, onlyOnChange: true, startupQuiet: 10, cooldown: 1 }));
      const out = outputs();
      await sendInTurn(out, leak('on'));
      clock.advance(10 * SECOND);
      await sendInTurn(out, leak('on'), leak('on'));
      clock.advance(HOUR);
      fireDueAlarms();
      await sendInTurn(out, leak('on'));
      assert.deepEqual(
        out.suppressed.received.map((m) => cooldownOf(m).reason),
        ['startup', 'unchanged', 'unchanged'],
      );
      assert.equal(out.summaries.received.length, 0);
    });

    it('sends a summary that fell due while Node-RED was stopped once after the start', async () => {
      const flow = () => gateFlow(files.file, { summary: true, cooldown: 4 });
      await helper.load(nodes, flow());
      let out = outputs();
      await sendInTurn(out, leak('on'));
      clock.advance(HOUR);
      await sendInTurn(out, leak('on again'));
      await helper.unload();

      clock.set('2026-06-02T08:00:00Z'); // the morning after
      await helper.load(nodes, flow());
      out = outputs();
      const [late] = await out.summaries.until(1);
      assert.equal(late.payload, 'on again');
      assert.equal(summaryOf(late).due, '2026-06-01T14:00:00.000Z');
      assert.equal(summaryOf(late).held, 1);
      await helper.unload();

      clock.advance(MINUTE);
      await helper.load(nodes, flow());
      out = outputs();
      await sendInTurn(out, leak('on'));
      assert.equal(out.passed.received.length, 1);
      assert.equal(out.summaries.received.length, 0, 'not sent a second time');
    });

    it('keeps a summary not yet due across a restart and sends it when due; after the start-up quiet time', async () => {
      const flow = () => gateFlow(files.file, { summary: true, cooldown: 4, startupQuiet: 120 });
      await helper.load(nodes, flow());
      let out = outputs();
      clock.advance(2 * MINUTE);
      await sendInTurn(out, leak('on'), leak('on again'));
      await helper.unload();

      clock.advance(HOUR);
      await helper.load(nodes, flow());
      out = outputs();
      clock.set('2026-06-01T14:02:00Z');
      // the scan at start is under way: it plans the summary, then the alarm finds it due
      for (let i = 0; i < 1000 && out.summaries.received.length === 0; i++) {
        fireDueAlarms();
        await new Promise((resolve) => setImmediate(resolve));
      }
      const [sent] = await out.summaries.until(1);
      assert.equal(summaryOf(sent).since, '2026-06-01T10:02:00.000Z');

      // due during a stop and a quiet time at start: sent when the quiet time ends
      await sendInTurn(out, leak('on'), leak('again'));
      await helper.unload();
      clock.set('2026-06-02T08:00:00Z');
      await helper.load(nodes, flow());
      out = outputs();
      for (let i = 0; i < 20; i++) {
        assert.equal(fireDueAlarms(), 0, 'nothing is sent in the start-up quiet time');
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(out.summaries.received.length, 0);
      clock.advance(2 * MINUTE);
      for (let i = 0; i < 1000 && fireDueAlarms() === 0; i++) await new Promise((resolve) => setImmediate(resolve));
      const [afterQuiet] = await out.summaries.until(1);
      assert.equal(afterQuiet.payload, 'again');
    });

    it('sends what was held back at once when msg.reset clears the cooldown', async () => {
      await helper.load(nodes, gateFlow(files.file, { summary: true, cooldown: 4 }));
      const out = outputs();
      await sendInTurn(out, leak('on'), leak('on again'), { topic: 'binary_sensor.kitchen_leak', reset: true });
      const [sent] = await out.summaries.until(1);
      assert.equal(summaryOf(sent).held, 1);
      await sendInTurn(out, leak('on'));
      assert.equal(out.passed.received.length, 2);
      clock.advance(4 * HOUR);
      assert.equal(fireDueAlarms(), 0);
      assert.equal(out.summaries.received.length, 1);
    });
  });

  for (const [what, gate, pattern] of [
    ['a limit of 0', { limit: 0 }, /limit must be a whole number from 1 to 1000, got 0/],
    ['a fractional limit', { limit: 1.5 }, /limit must be a whole number from 1 to 1000, got 1\.5/],
    ['a sliding limit over 1000', { limit: 1001 }, /limit must be a whole number from 1 to 1000, got 1001/],
    ['an unknown period', { period: 'year' }, /period must be sliding, day, week or month, got "year"/],
    ['a negative start-up quiet time', { startupQuiet: -1 }, /start-up quiet time must be a number of seconds from 0 to 86400, got -1/],
    [
      'a malformed change property',
      { onlyOnChange: true, changeProperty: 'data..state' },
      /the property compared for changes must be a msg property such as payload, got "data\.\.state"/,
    ],
    ['a summary flag that is no flag', { summary: 'maybe' }, /summary must be true or false, got "maybe"/],
  ] as const) {
    it(`rejects ${what} in the configuration on every message`, async () => {
      await helper.load(nodes, gateFlow(files.file, gate));
      const out = outputs();
      assert.equal(lastStatus('gate1').fill, 'red');
      node('gate1').receive({ topic: 'k' });
      const [err] = await out.caught.until(1);
      assert.match((err.error as { message: string }).message, pattern);
      assert.equal(out.passed.received.length, 0);
    });
  }

  describe('examples as shipped', () => {
    it('leak alarm: quiet at start, one alarm, a summary 4 hours later', async () => {
      const { flow, byName, nodes: modules } = example('leak-alarm-quiet-start-summary.json');
      await helper.load(modules, flow);
      const notify = collect(byName('notification sent'));
      const held = collect(byName('held back (msg.cooldown.reason)'));
      const summary = collect(byName('summary (call service stand-in)'));
      node(byName('kitchen leak: on')).receive({});
      assert.equal(cooldownOf((await held.until(1))[0]).reason, 'startup');
      clock.advance(MINUTE);
      fireDueAlarms();
      node(byName('kitchen leak: on')).receive({});
      assert.deepEqual((await notify.until(1))[0].payload, { title: 'Leak', message: 'Water leak: binary_sensor.kitchen_leak' });
      clock.advance(10 * MINUTE);
      node(byName('kitchen leak: on again')).receive({});
      await held.until(2);
      node(byName('kitchen leak: on again')).receive({});
      const [, , repeat] = await held.until(3);
      assert.equal(cooldownOf(repeat).reason, 'cooldown');
      node(byName('bath leak: on')).receive({});
      await notify.until(2);
      clock.set('2026-06-01T14:01:00Z'); // 4 h after the kitchen alarm
      fireDueAlarms();
      const [sent] = await summary.until(1);
      assert.deepEqual(sent.payload, { title: 'Leak (summary)', message: '2 more for binary_sensor.kitchen_leak in 4 h' });

      // Home Assistant connects again: the quiet time starts over, the wet sensor's state raises nothing
      node(byName('Home Assistant ready: quiet again')).receive({});
      node(byName('kitchen leak: on')).receive({});
      const [, , , quiet] = await held.until(4);
      assert.equal(cooldownOf(quiet).reason, 'startup');
      // after it, an alarm whose notification fails is released: the next one is delivered
      clock.advance(MINUTE);
      fireDueAlarms();
      node(byName('kitchen leak: on, notify fails')).receive({});
      await collect(byName('notify failed (msg.error)')).until(1);
      assert.equal(notify.received.length, 2);
      clock.advance(SECOND);
      node(byName('kitchen leak: on')).receive({});
      await notify.until(3);
    });

    it('SMS budget: 20 a day across all sensors', async () => {
      const { flow, byName, nodes: modules } = example('sms-budget.json');
      await helper.load(modules, flow);
      const sent = collect(byName('SMS sent'));
      const over = collect(byName('over budget (not sent)'));
      const sensors = ['kitchen leak: on', 'smoke detector: on', 'front door: open'];
      for (let i = 0; i < 21; i++) {
        node(byName(sensors[i % 3])).receive({});
        await (i < 20 ? sent.until(i + 1) : over.until(1));
      }
      assert.equal(sent.received[0].payload, 'Alarm: binary_sensor.kitchen_leak (1 of 20 today)');
      assert.equal(sent.received[19].payload, 'Alarm: binary_sensor.smoke_detector (20 of 20 today)');
      assert.equal(cooldownOf(over.received[0]).reason, 'limit');
      assert.equal(cooldownOf(over.received[0]).key, 'sms-budget');
      clock.advance(24 * HOUR);
      node(byName('kitchen leak: on')).receive({});
      assert.equal((await sent.until(21))[20].payload, 'Alarm: binary_sensor.kitchen_leak (1 of 20 today)');
      // a refused SMS does not count against the day's budget
      node(byName('smoke detector: on, SMS fails')).receive({});
      await collect(byName('notify failed (msg.error)')).until(1);
      node(byName('front door: open')).receive({});
      assert.equal((await sent.until(22))[21].payload, 'Alarm: binary_sensor.front_door (2 of 20 today)');
    });

    it('presence: a notification per change, none for the same state, also after a restart', async () => {
      const { flow, byName, nodes: modules } = example('presence-on-change.json');
      await helper.load(modules, flow);
      let notify = collect(byName('notification sent'));
      let same = collect(byName('unchanged (held back)'));
      node(byName('Alice: home')).receive({});
      await notify.until(1);
      node(byName('Alice: home (again)')).receive({});
      assert.equal(cooldownOf((await same.until(1))[0]).reason, 'unchanged');
      clock.advance(SECOND);
      node(byName('Alice: not_home')).receive({});
      node(byName('Bob: home')).receive({});
      assert.deepEqual(
        (await notify.until(3)).map((m) => m.payload),
        ['person.alice is now home', 'person.alice is now not_home', 'person.bob is now home'],
      );
      await helper.unload();
      clock.advance(HOUR);
      await helper.load(modules, flow);
      notify = collect(byName('notification sent'));
      same = collect(byName('unchanged (held back)'));
      node(byName('Bob: home')).receive({});
      await same.until(1);
      node(byName('Alice: home')).receive({});
      assert.equal((await notify.until(1))[0].payload, 'person.alice is now home');
      // Bob leaves, the notification fails: the same state passes again once it can be delivered
      node(byName('Bob: not_home, notify fails')).receive({});
      await collect(byName('notify failed (msg.error)')).until(1);
      clock.advance(SECOND);
      node(byName('Bob: home')).receive({});
      assert.equal(cooldownOf((await same.until(2))[1]).reason, 'unchanged', 'home is still the last state delivered');
      node(byName('Alice: not_home')).receive({});
      await notify.until(2);
      node(example('presence-on-change.json').byName('on change')).receive({ topic: 'person.bob', payload: 'not_home' });
      assert.equal((await notify.until(3))[2].payload, 'person.bob is now not_home');
    });
  });

  it('takes a calendar limit without a cooldown', async () => {
    await helper.load(nodes, gateFlow(files.file, { period: 'month', limit: 100000, cooldown: '' }));
    const out = outputs();
    await sendInTurn(out, { topic: 'k' });
    assert.equal(cooldownOf(out.passed.received[0]).limit, 100000);
  });
});
