// The release cases of cooldown-gate run on every backend: the SQLite ones in the runtime suite,
// the Redis ones in the Redis suite (which has a redis-server). Each test builds its flow here.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { fireDueAlarms } from '../../nodes/red/timers';
import { gateNodes, gateOutputs } from './gate-flow';
import { allNodes, helper, lastStatus, type ManualClock, node, type RuntimeFiles } from './harness';

const nodes = allNodes();

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export interface Cooldown {
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

export const cooldownOf = (msg: NodeMessage) => msg.cooldown as Cooldown;

export type Backend = 'sqlite' | 'redis';

/** Flows and helpers of the release tests on `backend` (Redis: the server `redisUrl()` names, a prefix per test). */
export function releaseKit(files: RuntimeFiles, backend: Backend, redisUrl?: () => string) {
  let prefixes = 0;

  /** The cache-store of a test: the test's SQLite file, or the Redis server under a prefix of the test's own. */
  function store(extra: object = {}): object {
    if (backend === 'sqlite') return { id: 'store1', type: 'cache-store', name: 'test store', path: files.file, scope: 'flow', timezone: 'UTC', ...extra };
    prefixes++;
    return {
      id: 'store1',
      type: 'cache-store',
      name: 'test store',
      backend: 'redis',
      redisUrl: redisUrl!(),
      redisPrefix: `release-${process.pid}-${prefixes}:`,
      scope: 'flow',
      timezone: 'UTC',
      ...extra,
    };
  }

  /** A tab with the store, the gate "gate1" (1 h per msg.topic unless `gate` says otherwise) and a helper on each output. */
  function gateFlow(gate: object = {}, storeExtra: object = {}) {
    return gateNodes(store(storeExtra), gate);
  }

  const outputs = gateOutputs;

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

  return { gateFlow, outputs, sendInTurn, releaseOf };
}

/** The release tests that run on each backend. */
export function releaseCases(kit: ReturnType<typeof releaseKit>, clock: ManualClock): void {
  const { gateFlow, outputs, sendInTurn, releaseOf } = kit;
  it('gives a released pass back to a sliding limit: the next trigger notifies, and nothing is sent for the release', async () => {
    await helper.load(nodes, gateFlow({ limit: 2 }));
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
    await helper.load(nodes, gateFlow({ key: 'sms-budget', keyType: 'str', limit: 2, period: 'day' }));
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
    await helper.load(nodes, gateFlow({ onlyOnChange: true, cooldown: 1, cooldownUnits: 'seconds' }));
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
    await helper.load(nodes, gateFlow());
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
    await helper.load(nodes, gateFlow({ summary: true, cooldown: 4 }));
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
    await helper.load(nodes, gateFlow({ limit: 3 }));
    const out = outputs();
    await sendInTurn(out, { topic: 'k' });
    const release = releaseOf(out.passed.received[0]);
    for (let i = 0; i < 20; i++) node('gate1').receive(i === 5 ? { ...release } : { topic: 'k' });
    await out.completed.until(21);
    // 3 passes before the release, or 2 before it and 1 after: 4 in all, or 3 and the release stale
    const released = out.completed.received.filter((m) => cooldownOf(m)?.reason === 'released').length;
    assert.equal(out.passed.received.length, 3 + released);
  });
}
