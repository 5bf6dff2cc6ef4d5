// cooldown-gate's delivery-confirmed passes: a message sent back with msg.release = true and the
// msg.cooldown of its pass (a Catch node on the notify node, then a change node) makes that pass count
// for nothing, so the next trigger notifies; and msg.quiet = true, which starts the start-up quiet
// time again. On a SQLite file here; test/redis/cooldown-gate-release.test.ts runs the same release
// cases on a Redis server. Time comes from the injected clock.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fireDueAlarms, useManualAlarms } from '../../nodes/red/timers';
import { cooldownOf, releaseCases, releaseKit } from '../support/gate-release';
import { allNodes, collect, helper, lastStatus, ManualClock, node, nodeRedLine, useRuntime } from '../support/harness';

const nodes = allNodes();
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Core nodes of the Node-RED line under test. */
function coreNodes(...files: string[]): unknown[] {
  const runtime = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
  return files.map((file) => require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [runtime] })));
}

describe('cooldown-gate releases and msg.quiet', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock, '2026-06-01T10:00:00Z');
  before(() => useManualAlarms(true));
  after(() => useManualAlarms(false));
  const kit = releaseKit(files, 'sqlite');
  const { gateFlow, outputs, sendInTurn, releaseOf } = kit;

  describe('on a SQLite file', () => releaseCases(kit, clock));

  it('refuses a release without the msg.cooldown of a pass, a malformed pass id, and control fields combined', async () => {
    await helper.load(nodes, gateFlow());
    const out = outputs();
    await sendInTurn(out, { topic: 'k' });
    node('gate1').receive({ topic: 'k', release: true });
    node('gate1').receive({ topic: 'k', release: true, cooldown: { key: 'k', pass: 'yesterday' } });
    node('gate1').receive({ ...releaseOf(out.passed.received[0]), reset: true });
    const errors = (await out.caught.until(3)).map((m) => (m.error as { message: string }).message.replace(/^InputError: /, '')).sort();
    assert.deepEqual(
      errors,
      [
        'msg.release needs the msg.cooldown of the pass it releases (send back the message that passed)',
        'msg.release needs msg.cooldown.pass, the id of the pass it releases; got "yesterday"',
        'msg.reset, msg.release cannot be combined in one message',
      ].sort(),
    );
    assert.equal(lastStatus('gate1').fill, 'red');
    await sendInTurn(out, { topic: 'k' });
    assert.equal(out.suppressed.received.length, 1, 'nothing was undone');
  });

  it('a Catch node on the notify node releases a failed notification: one alarm reaches the phone', async () => {
    const flow = [
      // one Catch node only (the test helper loads the catch module once per Catch node)
      ...gateFlow({ cooldown: 4 }).filter((n) => !['passed', 'catch-all', 'caught'].includes((n as { id: string }).id)),
      // the notify action: refuses while Home Assistant is away
      {
        id: 'passed',
        type: 'function',
        z: 'tab1',
        name: 'notify',
        func: "if (flow.get('away')) throw new Error('NoConnectionError'); return msg;",
        outputs: 1,
        wires: [['phone']],
      },
      { id: 'phone', type: 'helper', z: 'tab1' },
      { id: 'catchNotify', type: 'catch', z: 'tab1', scope: ['passed'], uncaught: false, wires: [['releaseIt']] },
      {
        id: 'releaseIt',
        type: 'change',
        z: 'tab1',
        rules: [{ t: 'set', p: 'release', pt: 'msg', to: 'true', tot: 'bool' }],
        wires: [['gate1']],
      },
      { id: 'away', type: 'change', z: 'tab1', rules: [{ t: 'set', p: 'away', pt: 'flow', to: 'payload', tot: 'msg' }], wires: [[]] },
    ];
    await helper.load([...nodes, ...coreNodes('function/15-change.js', 'function/10-function.js')], flow);
    const phone = collect('phone');
    const suppressed = collect('suppressed');
    const completed = collect('completed');
    node('away').receive({ payload: true });
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
    // the pass, then its release from the Catch node
    await completed.until(2);
    assert.equal(cooldownOf(completed.received[1]).reason, 'released');
    node('away').receive({ payload: false });
    clock.advance(SECOND);
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
    const [alarm] = await phone.until(1);
    assert.equal(alarm.payload, 'on');
    node('gate1').receive({ topic: 'binary_sensor.kitchen_leak', payload: 'on' });
    assert.equal(cooldownOf((await suppressed.until(1))[0]).remainingText, '4 h');
    assert.equal(phone.received.length, 1);
  });

  describe('msg.quiet', () => {
    it('starts the start-up quiet time again from now, and sends nothing', async () => {
      await helper.load(nodes, gateFlow({ startupQuiet: 60, cooldown: 4 }));
      const out = outputs();
      clock.advance(MINUTE);
      fireDueAlarms();
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      assert.equal(out.passed.received.length, 1);

      // Home Assistant reconnects: it sends every state again, a still wet sensor among them
      clock.advance(4 * HOUR + 12 * MINUTE);
      await sendInTurn(out, { quiet: true });
      assert.equal(lastStatus('gate1').text, 'start-up quiet: 1 min');
      assert.equal(out.passed.received.length + out.suppressed.received.length, 1, 'msg.quiet is not sent on');
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'startup');
      assert.equal(cooldownOf(out.suppressed.received[0]).remaining, MINUTE);
      clock.advance(MINUTE);
      fireDueAlarms();
      await sendInTurn(out, { topic: 'binary_sensor.kitchen_leak', payload: 'on' });
      assert.equal(out.passed.received.length, 2, 'after the quiet time the gate decides as before');
    });

    it('is an error for a gate without a start-up quiet time', async () => {
      await helper.load(nodes, gateFlow());
      const out = outputs();
      node('gate1').receive({ quiet: true });
      const [err] = await out.caught.until(1);
      assert.match((err.error as { message: string }).message, /^(InputError: )?set a start-up quiet time to use msg\.quiet$/);
      await sendInTurn(out, { topic: 'k' });
      assert.equal(out.passed.received.length, 1);
    });
  });
});
