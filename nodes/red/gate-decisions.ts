// cooldown-gate's decisions: when a message passes, is held back, arms the key, is released, counts
// against a limit, and when a summary of what was held back goes out. Pure functions of the stored
// entry, the time (`at`, from the injected clock) and the gate's rules (the store's zone among them):
// each runs inside the store's atomic update of one key, which may call it again with a newer entry
// (a shared Redis store), so none has side effects. The node file (cooldown-gate.ts) is the glue
// between Node-RED and these.
import { createHash, randomBytes } from 'node:crypto';
import { encodeValue } from '../lib/serialize';
import type { Entry, UpdateDecision } from '../lib/store';
import { type CalendarPeriod, nextPeriodStart, periodStartOf } from './periods';

/** Why a message left on the suppressed output. */
export type Reason = 'cooldown' | 'limit' | 'startup' | 'unchanged';

export type Period = 'sliding' | CalendarPeriod;

/** What the decisions need of a gate's settings. */
export interface GateRules {
  /** The cooldown, which is also the sliding window (ms); 0 with a calendar period. */
  windowMs: number;
  limit: number;
  period: Period;
  onlyOnChange: boolean;
  /** The time zone calendar periods are counted in (the store's). */
  zone: string;
  /** The gate's node id: what it holds back is marked with it. */
  gate: string;
}

/**
 * What the store holds under `cooldown:<key>` once an option is in use (without options: the time of the
 * last pass, a number). Every field is optional; what is malformed reads as absent.
 */
export interface GateState {
  /** Sliding window: the times of the passes still in the window, oldest first. */
  passes?: number[];
  /** Calendar period: passes in the period that starts at `periodStart`. */
  count?: number;
  periodStart?: number;
  /** When a message last passed. */
  lastPass?: number;
  /** Only on change: a digest of the value that passed last. */
  last?: string;
  /** Summary: what was held back since the window filled. */
  held?: Held;
  /** The newest pass, and what it replaced: a release of it puts that back. */
  pass?: PassRecord;
}

/** The newest pass of a key: its id (msg.cooldown.pass) and the last pass and value before it. */
export interface PassRecord {
  id: string;
  at: number;
  lastPass?: number;
  last?: string;
}

/** Messages held back while a key's window was full, to be summed up when it ends (at `due`). */
export interface Held {
  count: number;
  firstHeld: number;
  lastHeld: number;
  /** When the window the held messages were counted against began. */
  since: number;
  /** When the window ends and the summary is sent. */
  due: number;
  /** The last held message's payload and topic (the payload only if the store can hold it). */
  payload?: unknown;
  topic?: string;
  /** The gate that held them back (a deleted gate's summaries are taken over by another). */
  gate: string;
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

// ---- pass ids ----

const processTag = randomBytes(4).toString('hex');
let passSerial = 0;

/** A new pass id: the time of the pass, then a tag unique in this process and across processes. */
export function newPassId(at: number): string {
  passSerial = (passSerial + 1) % Number.MAX_SAFE_INTEGER;
  return `${at}-${processTag}${passSerial.toString(36)}`;
}

/** The time of the pass an id names; undefined for what is no pass id. */
export function passTimeOf(id: unknown): number | undefined {
  if (typeof id !== 'string' || id.length > 100) return undefined;
  const match = /^(\d{1,16})-[0-9a-z]+$/.exec(id);
  if (!match) return undefined;
  const at = Number(match[1]);
  return Number.isSafeInteger(at) ? at : undefined;
}

// ---- reading the stored state ----

function readHeld(held: Partial<Held> | undefined): Held | undefined {
  if (
    !held ||
    typeof held !== 'object' ||
    !isFiniteNumber(held.count) ||
    held.count <= 0 ||
    !isFiniteNumber(held.firstHeld) ||
    !isFiniteNumber(held.lastHeld) ||
    !isFiniteNumber(held.since) ||
    !isFiniteNumber(held.due) ||
    typeof held.gate !== 'string'
  ) {
    return undefined;
  }
  const kept: Held = { count: held.count, firstHeld: held.firstHeld, lastHeld: held.lastHeld, since: held.since, due: held.due, gate: held.gate };
  if ('payload' in held) kept.payload = held.payload;
  if (typeof held.topic === 'string') kept.topic = held.topic;
  return kept;
}

function readPass(pass: Partial<PassRecord> | undefined): PassRecord | undefined {
  if (!pass || typeof pass !== 'object' || typeof pass.id !== 'string' || !isFiniteNumber(pass.at)) return undefined;
  const kept: PassRecord = { id: pass.id, at: pass.at };
  if (isFiniteNumber(pass.lastPass)) kept.lastPass = pass.lastPass;
  if (typeof pass.last === 'string') kept.last = pass.last;
  return kept;
}

/** Reads a stored state; a number is the time of one pass (what the gate stores without options). */
export function readState(value: unknown): GateState {
  if (isFiniteNumber(value)) return { passes: [value], lastPass: value };
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  const v = value as Record<string, unknown>;
  const state: GateState = {};
  if (Array.isArray(v.passes)) {
    const passes = v.passes.filter(isFiniteNumber).sort((a, b) => a - b);
    if (passes.length > 0) state.passes = passes;
  }
  if (isFiniteNumber(v.count) && v.count >= 0 && isFiniteNumber(v.periodStart)) {
    state.count = v.count;
    state.periodStart = v.periodStart;
  }
  if (isFiniteNumber(v.lastPass)) state.lastPass = v.lastPass;
  else if (state.passes) state.lastPass = state.passes[state.passes.length - 1];
  if (typeof v.last === 'string') state.last = v.last;
  const held = readHeld(v.held as Partial<Held> | undefined);
  if (held) state.held = held;
  const pass = readPass(v.pass as Partial<PassRecord> | undefined);
  if (pass) state.pass = pass;
  return state;
}

// ---- only on change ----

/** A value that refers to itself cannot be compared. */
export class CircularValueError extends Error {}

/** A text that is equal for equal values: object keys in sorted order, types that JSON loses spelled out. */
function canonical(value: unknown, seen: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '0' : String(value);
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return `Symbol(${JSON.stringify(value.description ?? '')})`;
    case 'function':
      return 'function';
  }
  if (value === null) return 'null';
  const object = value as object;
  if (seen.has(object)) throw new CircularValueError();
  seen.add(object);
  try {
    const inner = (v: unknown) => canonical(v, seen);
    if (Array.isArray(object)) return `[${object.map(inner).join(',')}]`;
    if (Buffer.isBuffer(object)) return `Buffer(${object.toString('base64')})`;
    if (ArrayBuffer.isView(object)) return `${object.constructor.name}(${Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64')})`;
    if (object instanceof Date) return `Date(${object.getTime()})`;
    if (object instanceof Map)
      return `Map(${[...object]
        .map(([k, v]) => `${inner(k)}=>${inner(v)}`)
        .sort()
        .join(',')})`;
    if (object instanceof Set) return `Set(${[...object].map(inner).sort().join(',')})`;
    const record = object as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${inner(record[k])}`)
      .join(',')}}`;
  } finally {
    seen.delete(object);
  }
}

/** A short digest of a value, equal for deeply equal values: what "only on change" keeps of the last value. Throws CircularValueError. */
export function digestOf(value: unknown): string {
  return createHash('sha256').update(canonical(value, new Set())).digest('base64url');
}

/** The payload to keep for a summary: undefined when the store could not hold it. */
function storablePayload(payload: unknown): { payload?: unknown } {
  if (payload === undefined) return {};
  try {
    encodeValue(payload);
    return { payload };
  } catch {
    return {};
  }
}

// ---- the window of a key: passes counted against the limit ----

export interface Window {
  /** Sliding: the passes in the window now. */
  passes: number[];
  count: number;
  /** Calendar: the start of the current period. */
  periodStart: number;
  windowStart: number;
  /** The newest pass lay this far ahead of the clock (it was set back). */
  aheadBy: number;
  /** A stored period that starts after the current one (the clock was set back). */
  redated: number | null;
  /** When the next message could pass, with `n` passes counted. */
  freeAt(n: number, list: number[]): number;
}

/** The passes counted at `at`, and when a message could pass again. */
export function windowOf(rules: GateRules, state: GateState, at: number): Window {
  const { period, windowMs, limit, zone } = rules;
  let passes: number[] = [];
  let count: number;
  let periodStart = 0;
  let aheadBy = 0;
  let redated: number | null = null;
  if (period === 'sliding') {
    passes = state.passes ?? [];
    const newest = passes.length > 0 ? passes[passes.length - 1] : undefined;
    if (newest !== undefined && newest > at) {
      // stamped by a clock running ahead (a device booting with a wrong date, then corrected): the
      // passes count from now, so the window holds for at most one window from now
      aheadBy = newest - at;
      passes = passes.map((p) => Math.min(p, at));
    }
    passes = passes.filter((p) => at - p < windowMs);
    count = passes.length;
  } else {
    periodStart = periodStartOf(at, period, zone)!;
    if (state.periodStart === undefined) {
      // a state kept without a calendar period (the gate's period was changed): its passes of this period count
      count = (state.passes ?? []).filter((p) => periodStartOf(p, period, zone) === periodStart).length;
    } else if (state.periodStart > periodStart) {
      // stamped by a clock running ahead: the count continues in the current period
      redated = state.periodStart;
      count = state.count ?? 0;
    } else {
      count = state.periodStart === periodStart ? (state.count ?? 0) : 0;
    }
  }
  const windowStart = period === 'sliding' ? (passes[0] ?? at) : periodStart;
  const freeAt = (n: number, list: number[]) =>
    n < limit ? at : period === 'sliding' ? list[list.length - limit] + windowMs : nextPeriodStart(at, period, zone);
  return { passes, count, periodStart, windowStart, aheadBy, redated, freeAt };
}

/** What to store for a state: kept without expiry while it holds a last value or a pending summary, else until its window ends. */
export function persist(rules: GateRules, state: GateState, at: number): UpdateDecision {
  const keep = state.held !== undefined || (rules.onlyOnChange && state.last !== undefined);
  let until: number | undefined;
  if (rules.period === 'sliding') {
    if (state.passes && state.passes.length > 0) until = state.passes[state.passes.length - 1] + rules.windowMs;
  } else if (state.periodStart !== undefined && state.count) {
    until = nextPeriodStart(state.periodStart, rules.period, rules.zone);
  }
  if (keep) return { value: state, evictable: false };
  if (until === undefined || until <= at) return { delete: true };
  return { value: state, ttl: (until - at) / 1000, evictable: false };
}

// ---- one message under the options ----

/** What the decision needs of a message. */
export interface Trigger {
  /** Only on change: the digest of the compared value. */
  digest?: string;
  payload?: unknown;
  topic?: unknown;
  /** The id this message gets if it passes. */
  passId: string;
  /** Whether a summary that is due may leave the store with this decision (the gate runs and sends it). */
  mayFlush: boolean;
}

/** The outcome of one message under the options. */
export interface Decision {
  outcome: 'pass' | Exclude<Reason, 'startup'>;
  lastPass: number | undefined;
  /** ms until a message could pass again (by the limit; 0 when it could now). */
  remaining: number;
  /** Passes in the current window or period, after this message. */
  count: number;
  /** A summary to send now: its window ended (or a pass ended the held-back stretch). */
  summary?: Held;
  /** What is held back after this message (its summary is due at `due`). */
  held?: Held;
  aheadBy: number;
  redated: number | null;
}

/** Decides one message under the options (limit, period, only on change, summary); returns the decision and what to write. */
export function decide(
  rules: GateRules & { summary: boolean },
  current: Entry | undefined,
  at: number,
  trigger: Trigger,
): { decision: Decision; write: UpdateDecision } {
  const { period, limit } = rules;
  const state = current ? readState(current.value) : {};
  const win = windowOf(rules, state, at);
  let dirty = win.aheadBy > 0 || win.redated !== null;
  let held = state.held;
  let summary: Held | undefined;
  if (held && held.due <= at && trigger.mayFlush) {
    summary = held;
    held = undefined;
    dirty = true;
  }
  let outcome: Decision['outcome'];
  let { passes, count } = win;
  let lastPass = state.lastPass !== undefined ? Math.min(state.lastPass, at) : undefined;
  let last = rules.onlyOnChange ? state.last : undefined;
  let pass = state.pass;
  if (rules.onlyOnChange && trigger.digest !== undefined && state.last === trigger.digest) {
    outcome = 'unchanged';
  } else if (count >= limit) {
    outcome = period === 'sliding' && limit === 1 ? 'cooldown' : 'limit';
    if (rules.summary) {
      const kept = { ...storablePayload(trigger.payload), ...(typeof trigger.topic === 'string' ? { topic: trigger.topic } : {}) };
      held = held
        ? { ...held, count: held.count + 1, lastHeld: at, ...kept }
        : { count: 1, firstHeld: at, lastHeld: at, since: win.windowStart, due: win.freeAt(count, passes), gate: rules.gate, ...kept };
      if (!('payload' in kept)) delete held.payload;
      dirty = true;
    }
  } else {
    outcome = 'pass';
    if (held && trigger.mayFlush) {
      // the key passes again before the summary fell due (a higher limit after a redeploy): the held-back stretch ends here
      summary = held;
      held = undefined;
    }
    pass = { id: trigger.passId, at };
    if (lastPass !== undefined) pass.lastPass = lastPass;
    if (last !== undefined) pass.last = last;
    if (period === 'sliding') passes = [...passes, at];
    count++;
    lastPass = at;
    if (rules.onlyOnChange) last = trigger.digest;
    dirty = true;
  }
  const next: GateState = {};
  if (period === 'sliding') {
    if (passes.length > 0) next.passes = passes;
  } else if (count > 0) {
    next.count = count;
    next.periodStart = win.periodStart;
  }
  if (lastPass !== undefined) next.lastPass = lastPass;
  if (last !== undefined) next.last = last;
  if (held) next.held = held;
  if (pass) next.pass = pass;
  const decision: Decision = {
    outcome,
    lastPass,
    remaining: win.freeAt(count, passes) - at,
    count,
    summary,
    held,
    aheadBy: win.aheadBy,
    redated: win.redated,
  };
  return { decision, write: dirty ? persist(rules, next, at) : undefined };
}

// ---- one message without options ----

export interface ClassicDecision {
  armed: boolean;
  /** The last pass (this one when armed). */
  lastPassed: number;
  /** The stored pass lay this far ahead of the clock (it was set back): the cooldown starts over from now. */
  aheadBy: number;
}

/** No option in use: the time of the last pass, with the cooldown as its TTL. */
export function decideClassic(windowMs: number, current: Entry | undefined, at: number): { decision: ClassicDecision; write: UpdateDecision } {
  const value = current?.value;
  // a state kept while an option was in use counts by its last pass
  const last = typeof value === 'number' || value === undefined ? value : readState(value).lastPass;
  const arm = { value: at, ttl: windowMs / 1000, evictable: false };
  if (typeof last === 'number' && Number.isFinite(last) && last > at) {
    // armed by a clock running ahead (a device booting with a wrong date, then corrected):
    // the cooldown starts over from now rather than holding until the clock reaches the stamp
    return { decision: { armed: false, lastPassed: at, aheadBy: last - at }, write: arm };
  }
  if (typeof last === 'number' && Number.isFinite(last) && at - last < windowMs) {
    return { decision: { armed: false, lastPassed: last, aheadBy: 0 }, write: undefined };
  }
  return { decision: { armed: true, lastPassed: at, aheadBy: 0 }, write: arm };
}

// ---- summaries ----

/**
 * Takes a key's summary out of the store if it is due and the gate may send it: it leaves the store
 * only in the step that sends it. `later`: when a summary not yet due falls due.
 */
export function takeDueSummary(
  rules: GateRules,
  current: Entry | undefined,
  at: number,
  mayFlush: boolean,
): { summary?: Held; later?: number; write: UpdateDecision } {
  if (!current) return { write: undefined };
  const state = readState(current.value);
  if (!state.held) return { write: undefined };
  if (state.held.due > at) return { later: state.held.due, write: undefined };
  if (!mayFlush) return { write: undefined };
  const summary = state.held;
  delete state.held;
  return { summary, write: persist(rules, state, at) };
}

/**
 * Puts back a summary that was taken out but could not be sent (the gate began closing meanwhile),
 * merged with what was held back since, so the next start sends it once.
 */
export function putBackSummary(rules: GateRules, current: Entry | undefined, at: number, summary: Held): UpdateDecision {
  const state = current ? readState(current.value) : {};
  const now = state.held;
  state.held = now
    ? {
        ...now,
        count: now.count + summary.count,
        firstHeld: Math.min(now.firstHeld, summary.firstHeld),
        since: Math.min(now.since, summary.since),
        due: Math.min(now.due, summary.due),
      }
    : summary;
  return persist(rules, state, at);
}

/**
 * msg.reset (and the sidebar's reset): the key's cooldown, count and last value go. What was held back
 * is handed out to be sent now when `sendSummary`; a gate that is closing keeps it in the store instead.
 */
export function resetKey(
  rules: GateRules,
  current: Entry | undefined,
  at: number,
  options: { summaryOn: boolean; mayFlush: boolean },
): { summary?: Held; existed: boolean; write: UpdateDecision } {
  if (!current) return { existed: false, write: undefined };
  const held = readState(current.value).held;
  if (held && options.summaryOn) {
    if (options.mayFlush) return { summary: held, existed: true, write: { delete: true } };
    // the reset ends the window: the summary is due now
    return { existed: true, write: persist(rules, { held: { ...held, due: Math.min(held.due, at) } }, at) };
  }
  return { existed: true, write: { delete: true } };
}

// ---- releases: a pass that was not delivered counts for nothing ----

export interface Release {
  /** Whether the pass was undone; false: it was no longer current (a later pass, a reset, or its window is over). */
  released: boolean;
  /** After the release: the last pass, the count, and ms until a message could pass. */
  lastPass: number | undefined;
  count: number;
  remaining: number;
}

/**
 * Undoes the pass `id` (msg.cooldown.pass) if it is still the key's newest pass: its place in the
 * window or calendar period, its cooldown, and its only-on-change value (the one before comes back, so
 * the same value passes again). What was held back since stays in the summary.
 */
export function releasePass(
  rules: GateRules,
  current: Entry | undefined,
  at: number,
  id: string,
  passAt: number,
  classic: boolean,
): { release: Release; write: UpdateDecision } {
  if (classic) {
    // without options the store holds the time of the last pass: the pass is current while that is its time
    const value = current?.value;
    if (typeof value === 'number' && value === passAt && at - passAt < rules.windowMs)
      return { release: { released: true, lastPass: undefined, count: 0, remaining: 0 }, write: { delete: true } };
    const last = typeof value === 'number' && Number.isFinite(value) ? Math.min(value, at) : undefined;
    const remaining = last === undefined ? 0 : Math.max(0, rules.windowMs - (at - last));
    return { release: { released: false, lastPass: last, count: remaining > 0 ? 1 : 0, remaining }, write: undefined };
  }
  const state = current ? readState(current.value) : {};
  const win = windowOf(rules, state, at);
  const pass = state.pass;
  const unchanged = (): { release: Release; write: UpdateDecision } => ({
    release: {
      released: false,
      lastPass: state.lastPass !== undefined ? Math.min(state.lastPass, at) : undefined,
      count: win.count,
      remaining: Math.max(0, win.freeAt(win.count, win.passes) - at),
    },
    write: undefined,
  });
  if (!pass || pass.id !== id || pass.at !== passAt) return unchanged();
  let { passes, count } = win;
  let counted = false;
  if (rules.period === 'sliding') {
    const index = passes.lastIndexOf(Math.min(pass.at, at));
    if (index !== -1 && at - pass.at < rules.windowMs) {
      passes = [...passes.slice(0, index), ...passes.slice(index + 1)];
      count = passes.length;
      counted = true;
    }
  } else if (state.periodStart !== undefined && periodStartOf(pass.at, rules.period, rules.zone) === win.periodStart && count > 0) {
    count--;
    counted = true;
  }
  const digest = rules.onlyOnChange && state.last !== pass.last;
  // its window is over and it changed no value that is still compared: nothing is left to undo
  if (!counted && !digest) return unchanged();
  const next: GateState = {};
  if (rules.period === 'sliding') {
    if (passes.length > 0) next.passes = passes;
  } else if (count > 0) {
    next.count = count;
    next.periodStart = win.periodStart;
  }
  if (pass.lastPass !== undefined) next.lastPass = pass.lastPass;
  if (rules.onlyOnChange && pass.last !== undefined) next.last = pass.last;
  if (state.held) next.held = state.held;
  const lastPass = next.lastPass;
  return {
    release: { released: true, lastPass, count, remaining: Math.max(0, win.freeAt(count, passes) - at) },
    write: persist(rules, next, at),
  };
}

// ---- the start-up quiet time ----

/** What a message in the start-up quiet time is told of its key, without arming it. */
export function peek(rules: GateRules, current: Entry | undefined, at: number): { lastPass: number | undefined; gateLeft: number; count: number } {
  const state = current ? readState(current.value) : {};
  const win = windowOf(rules, state, at);
  return {
    lastPass: state.lastPass !== undefined ? Math.min(state.lastPass, at) : undefined,
    gateLeft: win.freeAt(win.count, win.passes) - at,
    count: win.count,
  };
}
