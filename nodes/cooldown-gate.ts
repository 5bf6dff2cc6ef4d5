import { createHash } from 'node:crypto';
import { Duration } from 'luxon';
import { now } from './lib/clock';
import { InputError, messageOf } from './lib/errors';
import { encodeValue } from './lib/serialize';
import type { CacheSpace } from './lib/space';
import type { Entry, UpdateDecision } from './lib/store';
import type { BaseNodeConfig, Node, NodeAPI, NodeMessage, SendFunction } from './red/api';
import { StoreBinding } from './red/binding';
import { bindRuntime, fill, type Substitutions, textsOf } from './red/i18n';
import { checkKeyConfig, describe, isBlank, isPlainName, numberFrom, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { CALENDAR_PERIODS, type CalendarPeriod, nextPeriodStart, periodStartOf } from './red/periods';
import { StatusReporter } from './red/status';
import { isoInZone } from './red/time';
import { Alarm } from './red/timers';

interface CooldownGateConfig extends BaseNodeConfig {
  cooldown?: number | string;
  cooldownUnits?: string;
  failOpen?: boolean | string;
  limit?: number | string;
  period?: string;
  startupQuiet?: number | string;
  onlyOnChange?: boolean | string;
  changeProperty?: string;
  summary?: boolean | string;
}

/** Why a message left on the suppressed output. */
type Reason = 'cooldown' | 'limit' | 'startup' | 'unchanged';

/** The `msg.cooldown` object; `error` only when the store failed and the message passed anyway. */
interface CooldownInfo {
  key: string;
  lastPassed: string | null;
  elapsed: number | null;
  remaining: number | null;
  remainingText: string | null;
  /** Passes counted in the current window or calendar period, and the limit (only with a limit above 1 or a calendar period). */
  count?: number;
  limit?: number;
  /** Suppressed messages only: why. */
  reason?: Reason;
  error?: string;
}

const COOLDOWN_UNITS: Readonly<Record<string, number>> = {
  seconds: 1000,
  minutes: 60_000,
  hours: 3_600_000,
  days: 86_400_000,
};

type Period = 'sliding' | CalendarPeriod;
const PERIODS: readonly Period[] = ['sliding', ...CALENDAR_PERIODS];

/** A sliding window keeps one time stamp per pass: its limit stays small enough to rewrite them all on each pass. */
const MAX_SLIDING_LIMIT = 1000;
const MAX_CALENDAR_LIMIT = 1_000_000_000;
/** The longest start-up quiet time: a day. */
const MAX_STARTUP_QUIET_S = 86_400;
/** How long a summary that could not be sent (the store failed) waits before it is tried again. */
const SUMMARY_RETRY_MS = 60_000;

// The gate keeps its entries under its own prefix, so a cache-set on the same key (msg.topic is
// the default of both) neither overwrites nor is overwritten by a cooldown.
const STORE_KEY_PREFIX = 'cooldown:';

/** What the gate settles from its dialog fields. */
interface GateSettings {
  /** The cooldown, which is also the sliding window (ms); 0 with a calendar period. */
  windowMs: number;
  limit: number;
  period: Period;
  startupQuietMs: number;
  onlyOnChange: boolean;
  changeProperty: string;
  summary: boolean;
  /** No option in use: one pass per cooldown, kept as the time of the last pass (as before the options existed). */
  classic: boolean;
}

/**
 * What the store holds under `cooldown:<key>` once an option is in use (without options: the time of the
 * last pass, a number). Every field is optional; what is malformed reads as absent.
 */
interface GateState {
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
}

/** Messages held back while a key's window was full, to be summed up when it ends (at `due`). */
interface Held {
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

type Texts = (key: string, substitutions?: Substitutions) => string;

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Reads a stored state; a number is the time of one pass (what the gate stores without options). */
function readState(value: unknown): GateState {
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
  const held = v.held as Partial<Held> | undefined;
  if (
    held &&
    typeof held === 'object' &&
    isFiniteNumber(held.count) &&
    held.count > 0 &&
    isFiniteNumber(held.firstHeld) &&
    isFiniteNumber(held.lastHeld) &&
    isFiniteNumber(held.since) &&
    isFiniteNumber(held.due) &&
    typeof held.gate === 'string'
  ) {
    const kept: Held = { count: held.count, firstHeld: held.firstHeld, lastHeld: held.lastHeld, since: held.since, due: held.due, gate: held.gate };
    if ('payload' in held) kept.payload = held.payload;
    if (typeof held.topic === 'string') kept.topic = held.topic;
    state.held = kept;
  }
  return state;
}

/** A text that is equal for equal values: object keys in sorted order, types that JSON loses spelled out. */
function canonical(value: unknown, seen: Set<object>, t: Texts, property: string): string {
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
  if (seen.has(object)) throw new InputError(t('errors.changeCircular', { property }));
  seen.add(object);
  try {
    const inner = (v: unknown) => canonical(v, seen, t, property);
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

/** A short digest of a value, equal for deeply equal values: what "only on change" keeps of the last value. */
function digestOf(value: unknown, t: Texts, property: string): string {
  return createHash('sha256')
    .update(canonical(value, new Set(), t, property))
    .digest('base64url');
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

/** Checks the configured cooldown and returns it in ms; throws a readable error. */
function cooldownMs(cooldown: unknown, units: unknown, t: Texts): number {
  const unit = units === undefined || units === '' ? 'minutes' : units;
  if (typeof unit !== 'string' || !Object.hasOwn(COOLDOWN_UNITS, unit)) {
    throw new InputError(t('errors.unitsInvalid', { value: describe(unit) }));
  }
  const n = numberFrom(cooldown);
  if (n === undefined || n <= 0) {
    throw new InputError(t('errors.cooldownInvalid', { units: unit, value: describe(cooldown) }));
  }
  const ms = Math.round(n * COOLDOWN_UNITS[unit]);
  if (ms < 1 || !Number.isSafeInteger(ms)) throw new InputError(t('errors.cooldownRange', { value: n, units: unit }));
  return ms;
}

/** A dialog checkbox: absent or blank gives `fallback`; true/false or their text. */
function flag(value: unknown, fallback: boolean, field: string, t: Texts): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new InputError(t('errors.flag', { field, value: describe(value) }));
}

/** Checks every option of the dialog; throws a readable error. */
function gateSettings(RED: NodeAPI, config: CooldownGateConfig, t: Texts): GateSettings {
  const period = (isBlank(config.period) ? 'sliding' : config.period) as Period;
  if (!PERIODS.includes(period)) throw new InputError(t('errors.period', { value: describe(config.period) }));
  const windowMs = period === 'sliding' ? cooldownMs(config.cooldown ?? 5, config.cooldownUnits, t) : 0;
  const max = period === 'sliding' ? MAX_SLIDING_LIMIT : MAX_CALENDAR_LIMIT;
  const limit = isBlank(config.limit) ? 1 : numberFrom(config.limit);
  if (limit === undefined || !Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new InputError(t('errors.limit', { max, value: describe(config.limit) }));
  }
  const quiet = isBlank(config.startupQuiet) ? 0 : numberFrom(config.startupQuiet);
  if (quiet === undefined || quiet < 0 || quiet > MAX_STARTUP_QUIET_S) {
    throw new InputError(t('errors.startupQuiet', { max: MAX_STARTUP_QUIET_S, value: describe(config.startupQuiet) }));
  }
  const onlyOnChange = flag(config.onlyOnChange, false, 'onlyOnChange', t);
  const summary = flag(config.summary, false, 'summary', t);
  let changeProperty = typeof config.changeProperty === 'string' ? config.changeProperty.trim() : config.changeProperty;
  if (isBlank(changeProperty)) changeProperty = 'payload';
  if (typeof changeProperty !== 'string') throw new InputError(t('errors.changeProperty', { value: describe(config.changeProperty) }));
  if (changeProperty.startsWith('msg.')) changeProperty = changeProperty.slice(4);
  const normalise = (RED.util as { normalisePropertyExpression?: (path: string) => unknown }).normalisePropertyExpression;
  if (!isPlainName(changeProperty) && typeof normalise === 'function') {
    try {
      normalise(changeProperty);
    } catch {
      throw new InputError(t('errors.changeProperty', { value: describe(config.changeProperty) }));
    }
  }
  return {
    windowMs,
    limit,
    period,
    startupQuietMs: Math.round(quiet * 1000),
    onlyOnChange,
    changeProperty,
    summary,
    classic: limit === 1 && period === 'sliding' && !onlyOnChange && !summary,
  };
}

const TEXT_UNITS = [
  ['days', 'd'],
  ['hours', 'h'],
  ['minutes', 'min'],
  ['seconds', 's'],
] as const;

const textMemo = new Map<number, string>();

/** A duration as its two largest units, e.g. "3 h 12 min", "2 d 4 h", "45 s" (seconds rounded up). */
function durationText(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  // held-back messages of a burst share the same remaining seconds: build each text once
  let text = textMemo.get(seconds);
  if (text === undefined) {
    text = secondsText(seconds);
    if (textMemo.size >= 1_000) textMemo.clear();
    textMemo.set(seconds, text);
  }
  return text;
}

function secondsText(seconds: number): string {
  const parts = Duration.fromObject({ seconds }).shiftTo('days', 'hours', 'minutes', 'seconds');
  const first = TEXT_UNITS.findIndex(([unit]) => parts.get(unit) > 0);
  if (first === -1) return '0 s';
  return TEXT_UNITS.slice(first, first + 2)
    .filter(([unit]) => parts.get(unit) > 0)
    .map(([unit, short]) => `${parts.get(unit)} ${short}`)
    .join(' ');
}

/** The outcome of one message under the options, decided inside the store's atomic update of its key. */
interface Decision {
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
  /** The newest pass lay this far ahead of the clock (it was set back). */
  aheadBy: number;
  /** A stored period that starts after the current one (the clock was set back). */
  redated: number | null;
}

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  const t = textsOf(RED, 'cooldown-gate');
  // A status text comes from the catalogue once, with its placeholders, and is filled here for each
  // message: a catalogue lookup per message costs more than the gate's whole decision.
  const statusTemplates = new Map<string, string>();
  const placeholders = Object.fromEntries(['key', 'remaining', 'passed', 'suppressed', 'count', 'limit'].map((name) => [name, `__${name}__`]));
  const ts = (key: string, substitutions: Substitutions): string => {
    let template = statusTemplates.get(key);
    if (template === undefined) {
      template = t(key, placeholders);
      statusTemplates.set(key, template);
    }
    return fill(template, substitutions);
  };

  function CooldownGate(this: Node, config: CooldownGateConfig) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new StatusReporter(node);
    const failOpen = config.failOpen === undefined || config.failOpen === true || config.failOpen === 'true';
    let binding: StoreBinding;
    let settings: GateSettings;
    try {
      checkKeyConfig(config);
      settings = gateSettings(RED, config, t);
      binding = new StoreBinding(RED, node, config.store, status);
    } catch (error) {
      rejectAll(node, status, error);
      return;
    }
    const { windowMs, limit, period } = settings;
    const startedAt = now();
    const quietUntil = startedAt + settings.startupQuietMs;
    /** The quiet time ends when the clock reaches its end, or after as much real time: a clock set back does not stretch it. */
    let quietOver = settings.startupQuietMs === 0;
    /** With a limit above 1 or a calendar period, messages carry the count and the status shows the limit. */
    const counting = limit > 1 || period !== 'sliding';
    const limitText = period === 'sliding' ? t('per.window', { limit, window: durationText(windowMs) }) : t(`per.${period}`, { limit });
    let passed = 0;
    let suppressed = 0;
    const counts = (): Substitutions => ({ passed, suppressed });
    let closed = false;

    /** Passes a message although the store failed: a missed alarm is worse than a duplicate one. */
    function passDespite(error: unknown, key: string, msg: NodeMessage): NodeMessage {
      const cause = error instanceof Error ? error.message : String(error);
      node.warn(t('errors.failedOpen', { key, error: cause }));
      passed++;
      status.set(() => ({ fill: 'red', shape: 'ring', text: t('status.failedOpen', { key, ...counts() }) }));
      msg.cooldown = { key, lastPassed: null, elapsed: null, remaining: null, remainingText: null, error: cause } satisfies CooldownInfo;
      return msg;
    }

    /** The namespace the options' state lives in: kept until the gate itself lets it go, whatever the store's default TTL. */
    async function stateNamespace(): Promise<CacheSpace> {
      return (await binding.namespace()).withoutDefaultTtl();
    }

    // ---- the window of a key: passes counted against the limit ----

    /** The passes counted now, and when a message could pass again. */
    function windowOf(state: GateState, at: number) {
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
        periodStart = periodStartOf(at, period, binding.zone)!;
        if (state.periodStart === undefined) {
          // a state kept without a calendar period (the gate's period was changed): its passes of this period count
          count = (state.passes ?? []).filter((p) => periodStartOf(p, period, binding.zone) === periodStart).length;
        } else if (state.periodStart > periodStart) {
          // stamped by a clock running ahead: the count continues in the current period
          redated = state.periodStart;
          count = state.count ?? 0;
        } else {
          count = state.periodStart === periodStart ? (state.count ?? 0) : 0;
        }
      }
      const windowStart = period === 'sliding' ? (passes[0] ?? at) : periodStart;
      /** When the next message could pass, with `n` passes counted. */
      const freeAt = (n: number, list: number[]) =>
        n < limit ? at : period === 'sliding' ? list[list.length - limit] + windowMs : nextPeriodStart(at, period, binding.zone);
      return { passes, count, periodStart, windowStart, aheadBy, redated, freeAt };
    }

    /** What to store for a state: kept without expiry while it holds a last value or a pending summary, else until its window ends. */
    function persist(state: GateState, at: number): UpdateDecision {
      const keep = state.held !== undefined || (settings.onlyOnChange && state.last !== undefined);
      let until: number | undefined;
      if (period === 'sliding') {
        if (state.passes && state.passes.length > 0) until = state.passes[state.passes.length - 1] + windowMs;
      } else if (state.periodStart !== undefined && state.count) {
        until = nextPeriodStart(state.periodStart, period, binding.zone);
      }
      if (keep) return { value: state, evictable: false };
      if (until === undefined || until <= at) return { delete: true };
      return { value: state, ttl: (until - at) / 1000, evictable: false };
    }

    /** Decides one message under the options; returns the decision and what to write. */
    function decide(current: Entry | undefined, at: number, digest: string | undefined, msg: NodeMessage): { decision: Decision; write: UpdateDecision } {
      const state = current ? readState(current.value) : {};
      const win = windowOf(state, at);
      let dirty = win.aheadBy > 0 || win.redated !== null;
      let held = state.held;
      let summary: Held | undefined;
      if (held && held.due <= at) {
        summary = held;
        held = undefined;
        dirty = true;
      }
      let outcome: Decision['outcome'];
      let { passes, count } = win;
      let lastPass = state.lastPass !== undefined ? Math.min(state.lastPass, at) : undefined;
      let last = settings.onlyOnChange ? state.last : undefined;
      if (settings.onlyOnChange && digest !== undefined && state.last === digest) {
        outcome = 'unchanged';
      } else if (count >= limit) {
        outcome = period === 'sliding' && limit === 1 ? 'cooldown' : 'limit';
        if (settings.summary) {
          const kept = { ...storablePayload(msg.payload), ...(typeof msg.topic === 'string' ? { topic: msg.topic } : {}) };
          held = held
            ? { ...held, count: held.count + 1, lastHeld: at, ...kept }
            : { count: 1, firstHeld: at, lastHeld: at, since: win.windowStart, due: win.freeAt(count, passes), gate: node.id, ...kept };
          if (!('payload' in kept)) delete held.payload;
          dirty = true;
        }
      } else {
        outcome = 'pass';
        if (held) {
          // the key passes again before the summary fell due (a higher limit after a redeploy): the held-back stretch ends here
          summary = held;
          held = undefined;
        }
        if (period === 'sliding') passes = [...passes, at];
        count++;
        lastPass = at;
        if (settings.onlyOnChange) last = digest;
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
      return { decision, write: dirty ? persist(next, at) : undefined };
    }

    // ---- summaries: due times kept in the store, timers here ----

    /** When each key's summary is due (never before the start-up quiet time ends). */
    const schedule = new Map<string, number>();
    const flushing = new Set<Promise<void>>();
    const alarm = new Alarm(() => {
      const work = flushDue();
      flushing.add(work);
      work.finally(() => flushing.delete(work));
    });

    /** When a summary due at `due` is sent: not in the start-up quiet time (downstream nodes, such as Home Assistant's, may not be connected yet). */
    const fireAt = (due: number) => (quietOver ? due : Math.max(due, quietUntil));

    function rearm(): void {
      if (closed) return;
      let first = Number.POSITIVE_INFINITY;
      for (const due of schedule.values()) first = Math.min(first, fireAt(due));
      if (first === Number.POSITIVE_INFINITY) alarm.cancel();
      else if (alarm.due !== first) alarm.at(first);
    }

    function plan(key: string, due: number): void {
      if (closed) return;
      schedule.set(key, due);
      rearm();
    }

    function unplan(key: string): void {
      if (schedule.delete(key)) rearm();
    }

    function summaryMessage(key: string, held: Held): NodeMessage {
      const zone = binding.zone;
      const msg: NodeMessage = {
        topic: held.topic ?? key,
        summary: {
          key,
          held: held.count,
          firstHeld: isoInZone(held.firstHeld, zone),
          lastHeld: isoInZone(held.lastHeld, zone),
          since: isoInZone(held.since, zone),
          due: isoInZone(held.due, zone),
          text: t('summary.text', { held: held.count, key, duration: durationText(held.due - held.since) }),
        },
      };
      if ('payload' in held) msg.payload = held.payload;
      return msg;
    }

    function sendSummary(key: string, held: Held, send: SendFunction): void {
      send([null, null, summaryMessage(key, held)]);
      const count = held.count;
      status.set(() => ({ fill: 'blue', shape: 'dot', text: t('status.summary', { key, held: count, ...counts() }) }));
    }

    /** Sends the summary of `key` if it is due; the store's copy is cleared in the same atomic step, so it goes out once. */
    async function flushKey(key: string): Promise<void> {
      let out: Held | undefined;
      let later: number | undefined;
      try {
        const cache = await stateNamespace();
        await cache.update(STORE_KEY_PREFIX + key, (current) => {
          out = undefined;
          later = undefined;
          if (!current) return undefined;
          const state = readState(current.value);
          const at = now();
          if (!state.held) return undefined;
          if (state.held.due > at) {
            later = state.held.due;
            return undefined;
          }
          out = state.held;
          delete state.held;
          return persist(state, at);
        });
      } catch (error) {
        // kept in the store: tried again in a minute, or sent after the next start
        if (closed || binding.closing) return;
        node.warn(t('warnings.summaryFailed', { key, error: messageOf(error), retry: durationText(SUMMARY_RETRY_MS) }));
        plan(key, now() + SUMMARY_RETRY_MS);
        return;
      }
      if (later !== undefined) plan(key, later);
      if (out && !closed) sendSummary(key, out, (m) => node.send(m));
    }

    async function flushDue(): Promise<void> {
      const at = now();
      const due = [...schedule].filter(([, when]) => fireAt(when) <= at).map(([key]) => key);
      for (const key of due) schedule.delete(key);
      rearm();
      await Promise.all(due.map(flushKey));
    }

    /** Finds the summaries kept in the store (held back before a restart or redeploy) and plans them. */
    let scanned = false;
    let scanning: Promise<void> | undefined;
    function scan(): Promise<void> {
      scanning ??= (async () => {
        try {
          const cache = await binding.namespace();
          for (const [storeKey, entry] of await cache.entries()) {
            if (!storeKey.startsWith(STORE_KEY_PREFIX)) continue;
            const held = readState(entry.value).held;
            // another running gate on the same keys sends its own
            if (!held || (held.gate !== node.id && RED.nodes.getNode(held.gate))) continue;
            plan(storeKey.slice(STORE_KEY_PREFIX.length), held.due);
          }
          scanned = true;
        } catch (error) {
          // the next message tries again
          if (!closed && !binding.closing) node.warn(t('warnings.scanFailed', { error: messageOf(error) }));
        } finally {
          scanning = undefined;
        }
      })();
      return scanning;
    }
    if (settings.summary) void scan();

    // ---- start-up quiet time ----

    const quietAlarm = new Alarm(endQuiet);
    let quietTimer: NodeJS.Timeout | undefined;
    function endQuiet(): void {
      if (quietOver) return;
      quietOver = true;
      quietAlarm.cancel();
      clearTimeout(quietTimer);
      if (closed) return;
      status.set({});
      rearm();
    }
    if (!quietOver) {
      status.set({ fill: 'blue', shape: 'ring', text: t('status.quiet', { remaining: durationText(settings.startupQuietMs) }) });
      quietAlarm.at(quietUntil);
      quietTimer = setTimeout(endQuiet, settings.startupQuietMs);
      quietTimer.unref?.();
    }

    /** A message in the start-up quiet time: suppressed without arming the gate; says how long until it could pass. */
    async function quiet(key: string, msg: NodeMessage, at: number): Promise<void> {
      let lastPass: number | undefined;
      let gateLeft = 0;
      let count: number | undefined;
      try {
        const cache = await binding.namespace();
        await cache.update(STORE_KEY_PREFIX + key, (current) => {
          const state = current ? readState(current.value) : {};
          const win = windowOf(state, at);
          lastPass = state.lastPass !== undefined ? Math.min(state.lastPass, at) : undefined;
          gateLeft = win.freeAt(win.count, win.passes) - at;
          count = win.count;
          return undefined;
        });
      } catch {
        // only what the quiet time says: the store is not needed to hold a message back now
      }
      // a clock set back since the start would show a quiet time longer than configured
      const quietLeft = Math.min(quietUntil - at, settings.startupQuietMs);
      const remaining = Math.max(quietLeft, gateLeft);
      const info: CooldownInfo = {
        key,
        lastPassed: isoInZone(lastPass, binding.zone),
        elapsed: lastPass === undefined ? null : Math.max(0, at - lastPass),
        remaining,
        remainingText: durationText(remaining),
      };
      if (counting && count !== undefined) Object.assign(info, { count, limit });
      info.reason = 'startup';
      msg.cooldown = info;
      suppressed++;
      status.set(() => ({ fill: 'blue', shape: 'ring', text: ts('status.startup', { key, remaining: durationText(quietLeft), ...counts() }) }));
    }

    // ---- messages ----

    /** No option in use: the time of the last pass, with the cooldown as its TTL (as before the options existed). */
    async function classic(key: string, msg: NodeMessage, send: SendFunction): Promise<void> {
      const storeKey = STORE_KEY_PREFIX + key;
      let decidedAt = 0;
      let lastPassed: number | undefined;
      let armed = false;
      let aheadBy = 0;
      try {
        const cache = await binding.namespace();
        await cache.update(storeKey, (current) => {
          // decided from `current` alone: a shared store may call this again with a newer entry
          decidedAt = now();
          lastPassed = undefined;
          armed = false;
          aheadBy = 0;
          const value = current?.value;
          // a state kept while an option was in use counts by its last pass
          const last = typeof value === 'number' || value === undefined ? value : readState(value).lastPass;
          if (typeof last === 'number' && Number.isFinite(last) && last > decidedAt) {
            // armed by a clock running ahead (a device booting with a wrong date, then corrected):
            // the cooldown starts over from now rather than holding until the clock reaches the stamp
            aheadBy = last - decidedAt;
            lastPassed = decidedAt;
            return { value: decidedAt, ttl: windowMs / 1000, evictable: false };
          }
          if (typeof last === 'number' && Number.isFinite(last) && decidedAt - last < windowMs) {
            lastPassed = last;
            return undefined;
          }
          lastPassed = decidedAt;
          armed = true;
          return { value: decidedAt, ttl: windowMs / 1000, evictable: false };
        });
      } catch (error) {
        if (!failOpen) throw error;
        send([passDespite(error, key, msg), null]);
        return;
      }

      if (aheadBy > 0) node.warn(t('warnings.clockAhead', { key, ahead: durationText(aheadBy), cooldown: durationText(windowMs) }));
      const last = lastPassed ?? decidedAt;
      const elapsed = Math.min(windowMs, Math.max(0, decidedAt - last));
      const remaining = windowMs - elapsed;
      const info: CooldownInfo = {
        key,
        lastPassed: isoInZone(last, binding.zone),
        elapsed,
        remaining,
        remainingText: durationText(remaining),
      };
      msg.cooldown = info;
      if (armed) {
        passed++;
        status.set(() => ({ fill: 'green', shape: 'dot', text: ts('status.passed', { key, ...counts() }) }));
        send([msg, null]);
      } else {
        info.reason = 'cooldown';
        suppressed++;
        const remainingText = info.remainingText;
        status.set(() => ({ fill: 'yellow', shape: 'ring', text: ts('status.suppressed', { key, remaining: remainingText, ...counts() }) }));
        send([null, msg]);
      }
    }

    /** With options: limit per sliding window or calendar period, only on change, summaries. */
    async function limited(key: string, msg: NodeMessage, send: SendFunction): Promise<void> {
      let digest: string | undefined;
      if (settings.onlyOnChange) {
        const property = settings.changeProperty;
        let value: unknown;
        try {
          value = isPlainName(property) ? msg[property] : RED.util.getMessageProperty(msg, property);
        } catch {
          value = undefined; // a path through a missing object: the value is absent
        }
        digest = digestOf(value, t, `msg.${property}`);
      }
      if (settings.summary && !scanned) void scan();
      let decision: Decision | undefined;
      let at = 0;
      try {
        const cache = await stateNamespace();
        await cache.update(STORE_KEY_PREFIX + key, (current) => {
          at = now();
          const { decision: decided, write } = decide(current, at, digest, msg);
          decision = decided;
          return write;
        });
      } catch (error) {
        if (!failOpen) throw error;
        send([passDespite(error, key, msg), null]);
        return;
      }
      const d = decision!;
      if (d.aheadBy > 0) node.warn(t('warnings.clockAhead', { key, ahead: durationText(d.aheadBy), cooldown: durationText(windowMs) }));
      if (d.redated !== null) {
        node.warn(
          t('warnings.periodAhead', {
            key,
            period: t(`periods.${period}`),
            stored: isoInZone(d.redated, binding.zone),
            current: isoInZone(periodStartOf(at, period as CalendarPeriod, binding.zone), binding.zone),
          }),
        );
      }
      if (d.summary) {
        unplan(key);
        sendSummary(key, d.summary, send);
      }
      if (d.held) plan(key, d.held.due);
      const remaining = Math.max(0, d.remaining);
      const info: CooldownInfo = {
        key,
        lastPassed: isoInZone(d.lastPass, binding.zone),
        elapsed: d.lastPass === undefined ? null : Math.max(0, at - d.lastPass),
        remaining,
        remainingText: durationText(remaining),
      };
      if (counting) Object.assign(info, { count: d.count, limit });
      msg.cooldown = info;
      if (d.outcome === 'pass') {
        passed++;
        const count = d.count;
        status.set(() => ({
          fill: 'green',
          shape: 'dot',
          text: counting ? ts('status.passedCount', { key, count, limit: limitText, ...counts() }) : ts('status.passed', { key, ...counts() }),
        }));
        send([msg, null]);
        return;
      }
      info.reason = d.outcome;
      suppressed++;
      const remainingText = info.remainingText;
      if (d.outcome === 'unchanged') status.set(() => ({ fill: 'grey', shape: 'ring', text: ts('status.unchanged', { key, ...counts() }) }));
      else if (d.outcome === 'limit')
        status.set(() => ({ fill: 'yellow', shape: 'ring', text: ts('status.limited', { key, limit: limitText, remaining: remainingText, ...counts() }) }));
      else status.set(() => ({ fill: 'yellow', shape: 'ring', text: ts('status.suppressed', { key, remaining: remainingText, ...counts() }) }));
      send([null, msg]);
    }

    onInput(node, status, async (msg, send) => {
      const key = await resolveKey(RED, node, config, msg);

      if (msg.reset === true) {
        const cache = await binding.namespace();
        let held: Held | undefined;
        await cache.update(STORE_KEY_PREFIX + key, (current) => {
          held = current ? readState(current.value).held : undefined;
          return current ? { delete: true } : undefined;
        });
        unplan(key);
        status.set({ fill: 'blue', shape: 'ring', text: t('status.reset', { key, ...counts() }) });
        // the reset ends the key's cooldown: what was held back in it is summed up now
        if (held && settings.summary) sendSummary(key, held, send);
        return;
      }

      const at = now();
      if (!quietOver) {
        if (at < quietUntil) {
          await quiet(key, msg, at);
          send([null, msg]);
          return;
        }
        endQuiet();
      }
      if (settings.classic) await classic(key, msg, send);
      else await limited(key, msg, send);
    });

    node.on('close', (_removed, done) => {
      closed = true;
      alarm.cancel();
      quietAlarm.cancel();
      clearTimeout(quietTimer);
      schedule.clear();
      done();
    });
    releaseOnClose(node, status, binding, () => Promise.allSettled([...flushing]));
  }
  RED.nodes.registerType('cooldown-gate', CooldownGate);
};
