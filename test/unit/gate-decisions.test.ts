// cooldown-gate's decisions as pure functions (nodes/red/gate-decisions.ts): the stored entry, the time
// and the rules in, the decision and what to write out. No Node-RED, no store, no timers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry, UpdateDecision } from '../../nodes/lib/store';
import {
  CircularValueError,
  decide,
  decideClassic,
  digestOf,
  type GateRules,
  type Held,
  newPassId,
  passTimeOf,
  peek,
  persist,
  putBackSummary,
  readState,
  releasePass,
  resetKey,
  takeDueSummary,
} from '../../nodes/red/gate-decisions';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.parse('2026-06-01T10:00:00Z');

const rules = (over: Partial<GateRules & { summary: boolean }> = {}): GateRules & { summary: boolean } => ({
  windowMs: HOUR,
  limit: 1,
  period: 'sliding',
  onlyOnChange: false,
  summary: false,
  zone: 'UTC',
  gate: 'gate1',
  ...over,
});

/** What the store would hold after a write. */
function entryAfter(write: UpdateDecision, before: Entry | undefined, at: number): Entry | undefined {
  if (write === undefined) return before;
  if ('delete' in write) return undefined;
  return { value: structuredClone(write.value), storedAt: at, expiresAt: write.ttl ? at + write.ttl * 1000 : null };
}

/** Runs messages through `decide` as the store would, returning each outcome and the final entry. */
function run(r: GateRules & { summary: boolean }, messages: { at: number; digest?: string; payload?: unknown }[], start?: Entry) {
  let entry = start;
  const outcomes: string[] = [];
  const ids: string[] = [];
  for (const m of messages) {
    const passId = newPassId(m.at);
    const { decision, write } = decide(r, entry, m.at, { digest: m.digest, payload: m.payload, topic: 'k', passId, mayFlush: true });
    outcomes.push(decision.outcome);
    ids.push(passId);
    entry = entryAfter(write, entry, m.at);
  }
  return { outcomes, ids, entry };
}

describe('gate decisions', () => {
  it('names each pass by its time and a tag, and reads the time back', () => {
    const a = newPassId(T0);
    const b = newPassId(T0);
    assert.notEqual(a, b);
    assert.match(a, /^1780308000000-[0-9a-z]+$/);
    assert.equal(passTimeOf(a), T0);
    for (const bad of [undefined, 5, '', 'yesterday', '12', `${'9'.repeat(17)}-a`, `${T0}-A!`]) assert.equal(passTimeOf(bad), undefined, String(bad));
  });

  it('reads a stored state, a number as one pass, and what is malformed as absent', () => {
    assert.deepEqual(readState(T0), { passes: [T0], lastPass: T0 });
    assert.deepEqual(readState([1, 2]), {});
    assert.deepEqual(readState({ passes: [3, 'x', 1], count: -1, periodStart: 5, last: 7, held: { count: 0 }, pass: { id: 1 } }), {
      passes: [1, 3],
      lastPass: 3,
    });
    const held: Held = { count: 2, firstHeld: 1, lastHeld: 2, since: 0, due: 9, gate: 'g', payload: null, topic: 't' };
    assert.deepEqual(readState({ held, pass: { id: 'p', at: 4, last: 'd' } }).held, held);
    assert.deepEqual(readState({ pass: { id: 'p', at: 4, last: 'd' } }).pass, { id: 'p', at: 4, last: 'd' });
  });

  it('passes a limit per sliding window and holds the rest, by the cooldown or the limit', () => {
    const two = run(rules({ limit: 2 }), [{ at: T0 }, { at: T0 + MINUTE }, { at: T0 + 2 * MINUTE }, { at: T0 + HOUR }]);
    assert.deepEqual(two.outcomes, ['pass', 'pass', 'limit', 'pass']);
    const one = run(rules(), [{ at: T0 }, { at: T0 + HOUR - 1 }, { at: T0 + HOUR }]);
    assert.deepEqual(one.outcomes, ['pass', 'cooldown', 'pass']);
    // the state expires when its window ends
    assert.equal(one.entry?.expiresAt, T0 + 2 * HOUR);
  });

  it('counts a calendar day in the store zone, 23 hours across the spring change', () => {
    const r = rules({ limit: 1, period: 'day', windowMs: 0, zone: 'Europe/Berlin' });
    const sunday = Date.parse('2026-03-28T23:00:00Z'); // midnight CET, the clocks go forward at 02:00
    const { decision, write } = decide(r, undefined, sunday, { passId: newPassId(sunday), mayFlush: true });
    assert.equal(decision.outcome, 'pass');
    const held = decide(r, entryAfter(write, undefined, sunday), sunday + HOUR, { passId: 'x', mayFlush: true }).decision;
    assert.equal(held.outcome, 'limit');
    assert.equal(held.remaining, 22 * HOUR);
  });

  it('holds back an unchanged value, equal by content whatever the key order', () => {
    const r = rules({ onlyOnChange: true, windowMs: 1000 });
    const d = (v: unknown) => digestOf(v);
    assert.equal(d({ a: 1, b: [1, 2] }), d({ b: [1, 2], a: 1 }));
    assert.notEqual(d(undefined), d(null));
    const looped: Record<string, unknown> = {};
    looped.self = looped;
    assert.throws(() => digestOf(looped), CircularValueError);
    const { outcomes } = run(r, [
      { at: T0, digest: d('home') },
      { at: T0 + MINUTE, digest: d('home') },
      { at: T0 + 2 * MINUTE, digest: d('away') },
    ]);
    assert.deepEqual(outcomes, ['pass', 'unchanged', 'pass']);
  });

  it('keeps what was held back, due when the window ends, and hands it out once', () => {
    const r = rules({ summary: true });
    const { entry } = run(r, [{ at: T0 }, { at: T0 + MINUTE, payload: 'a' }, { at: T0 + 2 * MINUTE, payload: 'b' }]);
    const held = readState(entry?.value).held!;
    assert.deepEqual(held, { count: 2, firstHeld: T0 + MINUTE, lastHeld: T0 + 2 * MINUTE, since: T0, due: T0 + HOUR, gate: 'gate1', payload: 'b', topic: 'k' });
    assert.deepEqual(takeDueSummary(r, entry, T0 + HOUR - 1, true), { later: T0 + HOUR, write: undefined });
    // a gate that is closing leaves it in the store
    assert.deepEqual(takeDueSummary(r, entry, T0 + HOUR, false), { write: undefined });
    const taken = takeDueSummary(r, entry, T0 + HOUR, true);
    assert.deepEqual(taken.summary, held);
    const after = entryAfter(taken.write, entry, T0 + HOUR);
    assert.equal(readState(after?.value).held, undefined);
    // a decision while closing does not take a due summary either
    const closing = decide(r, entry, T0 + HOUR, { passId: 'p', mayFlush: false });
    assert.equal(closing.decision.summary, undefined);
    assert.deepEqual(readState((closing.write as { value: unknown }).value).held, held);
  });

  it('puts a summary that could not be sent back, merged with what was held since', () => {
    const r = rules({ summary: true });
    const sent: Held = { count: 2, firstHeld: T0 + 1, lastHeld: T0 + 2, since: T0, due: T0 + HOUR, gate: 'g' };
    const back = putBackSummary(r, undefined, T0 + HOUR, sent) as { value: unknown; ttl?: number };
    assert.deepEqual(readState(back.value).held, sent);
    assert.equal(back.ttl, undefined, 'kept until sent');
    const since: Held = { count: 1, firstHeld: T0 + HOUR + 5, lastHeld: T0 + HOUR + 5, since: T0 + HOUR, due: T0 + 2 * HOUR, gate: 'g' };
    const merged = putBackSummary(r, { value: { held: since }, storedAt: 0, expiresAt: null }, T0 + HOUR, sent) as { value: unknown };
    assert.deepEqual(readState(merged.value).held, { ...since, count: 3, firstHeld: T0 + 1, since: T0, due: T0 + HOUR });
  });

  it('resets a key: the summary handed out, or kept due now by a closing gate', () => {
    const r = rules({ summary: true });
    const held: Held = { count: 1, firstHeld: T0 + 1, lastHeld: T0 + 1, since: T0, due: T0 + HOUR, gate: 'g' };
    const entry: Entry = { value: { passes: [T0], lastPass: T0, held }, storedAt: T0, expiresAt: null };
    assert.deepEqual(resetKey(r, undefined, T0, { summaryOn: true, mayFlush: true }), { existed: false, write: undefined });
    assert.deepEqual(resetKey(r, entry, T0 + 5, { summaryOn: true, mayFlush: true }), { summary: held, existed: true, write: { delete: true } });
    const kept = resetKey(r, entry, T0 + 5, { summaryOn: true, mayFlush: false });
    assert.deepEqual((kept.write as { value: unknown }).value, { held: { ...held, due: T0 + 5 } });
    assert.deepEqual(resetKey(r, entry, T0 + 5, { summaryOn: false, mayFlush: true }), { existed: true, write: { delete: true } });
  });

  describe('release', () => {
    it('gives the newest pass back to a sliding window and puts the last pass before it back', () => {
      const r = rules({ limit: 2 });
      const { ids, entry } = run(r, [{ at: T0 }, { at: T0 + MINUTE }]);
      const { release, write } = releasePass(r, entry, T0 + MINUTE + 5, ids[1], T0 + MINUTE, false);
      assert.deepEqual(release, { released: true, lastPass: T0, count: 1, remaining: 0 });
      const after = entryAfter(write, entry, T0 + MINUTE + 5);
      assert.deepEqual(readState(after?.value), { passes: [T0], lastPass: T0 });
      // the first pass is not the newest: its release changes nothing
      assert.equal(releasePass(r, entry, T0 + MINUTE + 5, ids[0], T0, false).release.released, false);
      assert.equal(releasePass(r, entry, T0 + MINUTE + 5, ids[0], T0, false).write, undefined);
      // a second release of the same pass changes nothing
      assert.equal(releasePass(r, after, T0 + MINUTE + 6, ids[1], T0 + MINUTE, false).release.released, false);
    });

    it('changes nothing once the window is over, unless a compared value is left to put back', () => {
      const r = rules();
      const { ids, entry } = run(r, [{ at: T0 }]);
      assert.deepEqual(releasePass(r, entry, T0 + HOUR, ids[0], T0, false), {
        release: { released: false, lastPass: T0, count: 0, remaining: 0 },
        write: undefined,
      });
      const changes = rules({ onlyOnChange: true, windowMs: 1000 });
      const home = run(changes, [
        { at: T0, digest: digestOf('away') },
        { at: T0 + MINUTE, digest: digestOf('home') },
      ]);
      const { release, write } = releasePass(changes, home.entry, T0 + HOUR, home.ids[1], T0 + MINUTE, false);
      assert.equal(release.released, true);
      const after = entryAfter(write, home.entry, T0 + HOUR);
      assert.equal(readState(after?.value).last, digestOf('away'));
      assert.equal(decide(changes, after, T0 + HOUR + 1, { digest: digestOf('home'), passId: 'x', mayFlush: true }).decision.outcome, 'pass');
    });

    it('takes a pass off a calendar period count, and leaves the summary as it was', () => {
      const r = rules({ limit: 2, period: 'day', windowMs: 0, summary: true });
      const { ids, entry } = run(r, [{ at: T0 }, { at: T0 + 1 }, { at: T0 + 2, payload: 'held' }]);
      const { release, write } = releasePass(r, entry, T0 + 3, ids[1], T0 + 1, false);
      assert.equal(release.count, 1);
      const after = readState(entryAfter(write, entry, T0 + 3)?.value);
      assert.equal(after.count, 1);
      assert.equal(after.held?.count, 1);
      // the next day the pass no longer counts: nothing to undo
      assert.equal(releasePass(r, entry, T0 + 24 * HOUR, ids[1], T0 + 1, false).release.released, false);
    });

    it('deletes the time of the pass without options, while it is that pass and its cooldown lasts', () => {
      const r = rules();
      let { decision, write } = decideClassic(HOUR, undefined, T0);
      assert.equal(decision.armed, true);
      const entry = entryAfter(write, undefined, T0);
      const id = newPassId(T0);
      assert.deepEqual(releasePass(r, entry, T0 + 5, id, T0, true).write, { delete: true });
      assert.equal(releasePass(r, entry, T0 + 5, newPassId(T0 - 1), T0 - 1, true).release.released, false);
      assert.equal(releasePass(r, entry, T0 + HOUR, id, T0, true).release.released, false);
      ({ decision, write } = decideClassic(HOUR, entry, T0 + 5));
      assert.deepEqual(decision, { armed: false, lastPassed: T0, aheadBy: 0 });
      assert.equal(write, undefined);
    });
  });

  it('tells a message of the quiet time about its key without arming it', () => {
    const r = rules({ limit: 2 });
    const { entry } = run(r, [{ at: T0 }, { at: T0 + MINUTE }]);
    assert.deepEqual(peek(r, entry, T0 + 2 * MINUTE), { lastPass: T0 + MINUTE, gateLeft: HOUR - 2 * MINUTE, count: 2 });
    assert.deepEqual(persist(r, {}, T0), { delete: true });
  });
});
