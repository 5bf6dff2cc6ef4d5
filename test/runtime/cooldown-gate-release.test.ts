// cooldown-gate's delivery-confirmed passes: a message sent back with msg.release = true and the
// msg.cooldown of its pass (a Catch node on the notify node, then a change node) makes that pass count
// for nothing, so the next trigger notifies; and msg.quiet = true, which starts the start-up quiet
// time again. On a SQLite file and on a real Redis server. Time comes from the injected clock.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { fireDueAlarms, useManualAlarms } from '../../nodes/red/timers';
import { allNodes, catchAndComplete, collect, helper, lastStatus, ManualClock, node, nodeRedLine, useRuntime } from '../support/harness';
import { RedisServer } from '../support/redis-server';

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
  pass?: string;
  reason?: string;
}

const cooldownOf = (msg: NodeMessage) => msg.cooldown as Cooldown;

/** Core nodes of the Node-RED line under test. */
function coreNodes(...files: string[]): unknown[] {
  const runtime = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
  return files.map((file) => require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [runtime] })));
}

type Backend = 'sqlite' | 'redis';

describe('cooldown-gate releases and msg.quiet', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock, '2026-06-01T10:00:00Z');
  let redis: RedisServer | undefined;
  let prefixes = 0;
  before(async () => {
    useManualAlarms(true);
    redis = await RedisServer.start();
  });
  after(async () => {
    useManualAlarms(false);
    await redis?.stop();
  });

  /** The cache-store of a test: the test's SQLite file, or the Redis server under a prefix of the test's own. */
  function store(backend: Backend, extra: object = {}): object {
    if (backend === 'sqlite') return { id: 'store1', type: 'cache-store', name: 'test store', path: files.file, scope: 'flow', timezone: 'UTC', ...extra };
    prefixes++;
    return {
      id: 'store1',
      type: 'cache-store',
      name: 'test store',
      backend: 'redis',
      redisUrl: redis!.url,
      redisPrefix: `release-${process.pid}-${prefixes}:`,
      scope: 'flow',
      timezone: 'UTC',
      ...extra,
    };
  }

  /** A tab with the store, the gate "gate1" (1 h per msg.topic unless `gate` says otherwise) and a helper on each output. */
  function gateFlow(backend: Backend, gate: object = {}, storeExtra: object = {}) {
    return [
      { id: 'tab1', type: 'tab', label: 'Notifications' },
      store(backend, storeExtra),
      {
        id: 'gate1',
        type: 'cooldown-gate',
        z: 'tab1',
        store: 'store1',
        key: 'topic',
        keyType: 'msg',
        cooldown: 1,
        cooldownUnits: 'hours',
        failOpen: false,
        ...gate,
        wires: [['passed'], ['suppressed'], ['summaries']],
      },
      { id: 'passed', type: 'helper', z: 'tab1' },
      { id: 'suppressed', type: 'helper', z: 'tab1' },
      { id: 'summaries', type: 'helper', z: 'tab1' },
      ...catchAndComplete('tab1', ['gate1']),
    ];
  }

  function outputs() {
    return {
      passed: collect('passed'),
      suppressed: collect('suppressed'),
      summaries: collect('summaries'),
      caught: collect('caught'),
      completed: collect('completed'),
    };
  }

  /** Sends messages one after the other, each once the one before has left the gate; returns them as they left it. */
  async function sendInTurn(out: ReturnType<typeof outputs>, ...msgs: NodeMessage[]): Promise<NodeMessage[]> {
    const done: NodeMessage[] = [];
    for (const msg of msgs) {
      const before = out.completed.received.length;
      node('gate1').receive({ ...msg });
      done.push((await out.completed.until(before + 1))[before]);
    }
    return done;
  }

  /** The message a Catch node hands back for a failed notification: the passed message with msg.release = true. */
  const releaseOf = (passed: NodeMessage): NodeMessage => ({ ...passed, error: { message: 'Action notify.mobile_app_phone not found' }, release: true });

  for (const backend of ['sqlite', 'redis'] as const) {
    describe(`on ${backend === 'sqlite' ? 'a SQLite file' : 'a Redis server'}`, () => {
      it('gives a released pass back to a sliding limit: the next trigger notifies, and nothing is sent for the release', async () => {
        await helper.load(nodes, gateFlow(backend, { limit: 2 }));
        const out = outputs();
        const sms = { topic: 'sms', payload: 'leak' };
        await sendInTurn(out, sms);
        clock.advance(10 * MINUTE);
        await sendInTurn(out, sms);
        assert.equal(cooldownOf(out.passed.received[1]).count, 2);
        clock.advance(SECOND);
        const [release] = await sendInTurn(out, releaseOf(out.passed.received[1]));
        assert.equal(out.passed.received.length + out.suppressed.received.length, 2, 'the release is not sent on');
        assert.deepEqual(cooldownOf(release), {
          key: 'sms',
          lastPassed: '2026-06-01T10:00:00.000Z',
          elapsed: 10 * MINUTE + SECOND,
          remaining: 0,
          remainingText: '0 s',
          count: 1,
          limit: 2,
          pass: cooldownOf(out.passed.received[1]).pass,
          reason: 'released',
        });
        assert.equal(lastStatus('gate1').text, 'released sms: its pass counts for nothing (2 passed / 0 suppressed)');
        await sendInTurn(out, sms, sms);
        assert.equal(out.passed.received.length, 3, 'the next trigger notifies');
        assert.equal(cooldownOf(out.passed.received[2]).count, 2);
        assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'limit');
        // the first pass still frees its slot an hour after it
        assert.equal(cooldownOf(out.suppressed.received[0]).remaining, 50 * MINUTE - SECOND);
        assert.equal(out.caught.received.length, 0);
      });

      it('gives a released pass back to a calendar day, whose count then says so', async () => {
        await helper.load(nodes, gateFlow(backend, { key: 'sms-budget', keyType: 'str', limit: 2, period: 'day' }));
        const out = outputs();
        await sendInTurn(out, { topic: 'a' }, { topic: 'b' }, { topic: 'c' });
        assert.deepEqual(
          out.suppressed.received.map((m) => cooldownOf(m).reason),
          ['limit'],
        );
        // a refused SMS does not count against the day's budget; the release carries the key of its pass
        const [release] = await sendInTurn(out, { ...releaseOf(out.passed.received[1]), topic: 'something else' });
        assert.equal(cooldownOf(release).count, 1);
        assert.equal(cooldownOf(release).key, 'sms-budget');
        await sendInTurn(out, { topic: 'd' }, { topic: 'e' });
        assert.deepEqual(
          out.passed.received.map((m) => [m.topic, cooldownOf(m).count]),
          [
            ['a', 1],
            ['b', 2],
            ['d', 2],
          ],
        );
        assert.equal(out.suppressed.received.length, 2);
      });

      it('puts the last value back with only on change, so the same value passes again', async () => {
        await helper.load(nodes, gateFlow(backend, { onlyOnChange: true, cooldown: 1, cooldownUnits: 'seconds' }));
        const out = outputs();
        const alice = (payload: string) => ({ topic: 'person.alice', payload });
        await sendInTurn(out, alice('not_home'));
        clock.advance(MINUTE);
        await sendInTurn(out, alice('home'));
        // its notification fails a minute later: the window of one second is over, the value is still undone
        clock.advance(MINUTE);
        const [release] = await sendInTurn(out, releaseOf(out.passed.received[1]));
        assert.equal(cooldownOf(release).reason, 'released');
        await sendInTurn(out, alice('home'), alice('home'));
        assert.deepEqual(
          out.passed.received.map((m) => m.payload),
          ['not_home', 'home', 'home'],
        );
        assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'unchanged');
      });

      it('undoes a pass without options, and ignores a release that is no longer current', async () => {
        await helper.load(nodes, gateFlow(backend));
        const out = outputs();
        const leak = { topic: 'binary_sensor.kitchen_leak', payload: 'on' };
        await sendInTurn(out, leak);
        const first = out.passed.received[0];
        // a repeat before the release is held back as usual
        await sendInTurn(out, leak);
        assert.equal(cooldownOf(out.suppressed.received[0]).reason, 'cooldown');
        await sendInTurn(out, releaseOf(first));
        clock.advance(SECOND);
        await sendInTurn(out, leak);
        assert.equal(out.passed.received.length, 2);
        const second = out.passed.received[1];

        // the release of the first pass again, after the second: the second stays
        const [stale] = await sendInTurn(out, releaseOf(first));
        assert.equal(cooldownOf(stale).reason, 'stale');
        assert.equal(cooldownOf(stale).remaining, HOUR);
        assert.equal(cooldownOf(stale).lastPassed, '2026-06-01T10:00:01.000Z');
        assert.match(lastStatus('gate1').text ?? '', /^binary_sensor\.kitchen_leak: release ignored/);
        await sendInTurn(out, leak);
        assert.equal(out.suppressed.received.length, 2);

        // its cooldown is over: nothing is left to undo
        clock.advance(HOUR);
        const [late] = await sendInTurn(out, releaseOf(second));
        assert.equal(cooldownOf(late).reason, 'stale');
        // a reset in between: nothing to undo either
        await sendInTurn(out, leak, { topic: leak.topic, reset: true });
        const [afterReset] = await sendInTurn(out, releaseOf(out.passed.received[2]));
        assert.equal(cooldownOf(afterReset).reason, 'stale');
        assert.equal(out.caught.received.length, 0);
      });

      it('keeps what was held back before a release in the summary, sent with the next pass', async () => {
        await helper.load(nodes, gateFlow(backend, { summary: true, cooldown: 4 }));
        const out = outputs();
        const leak = (payload: string) => ({ topic: 'binary_sensor.kitchen_leak', payload });
        await sendInTurn(out, leak('on'), leak('on again'));
        await sendInTurn(out, releaseOf(out.passed.received[0]));
        assert.equal(out.summaries.received.length, 0);
        clock.advance(MINUTE);
        await sendInTurn(out, leak('still on'));
        assert.equal(out.passed.received.length, 2);
        const [summary] = await out.summaries.until(1);
        assert.equal((summary.summary as { held: number }).held, 1);
        assert.equal(summary.payload, 'on again');
        clock.advance(4 * HOUR);
        fireDueAlarms();
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(out.summaries.received.length, 1, 'sent once');
      });

      it('releases exactly one pass when many messages and its release arrive together', async () => {
        await helper.load(nodes, gateFlow(backend, { limit: 3 }));
        const out = outputs();
        await sendInTurn(out, { topic: 'k' });
        const release = releaseOf(out.passed.received[0]);
        for (let i = 0; i < 20; i++) node('gate1').receive(i === 5 ? { ...release } : { topic: 'k' });
        await out.completed.until(21);
        // 3 passes before the release, or 2 before it and 1 after: 4 in all, or 3 and the release stale
        const released = out.completed.received.filter((m) => cooldownOf(m)?.reason === 'released').length;
        assert.equal(out.passed.received.length, 3 + released);
      });
    });
  }

  it('refuses a release without the msg.cooldown of a pass, a malformed pass id, and control fields combined', async () => {
    await helper.load(nodes, gateFlow('sqlite'));
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
      ...gateFlow('sqlite', { cooldown: 4 }).filter((n) => !['passed', 'catch-all', 'caught'].includes((n as { id: string }).id)),
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
      await helper.load(nodes, gateFlow('sqlite', { startupQuiet: 60, cooldown: 4 }));
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
      await helper.load(nodes, gateFlow('sqlite'));
      const out = outputs();
      node('gate1').receive({ quiet: true });
      const [err] = await out.caught.until(1);
      assert.match((err.error as { message: string }).message, /^(InputError: )?set a start-up quiet time to use msg\.quiet$/);
      await sendInTurn(out, { topic: 'k' });
      assert.equal(out.passed.received.length, 1);
    });
  });
});
