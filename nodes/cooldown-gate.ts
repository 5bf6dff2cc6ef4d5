// cooldown-gate: the glue between Node-RED and the gate's decisions (red/gate-decisions.ts): settings,
// messages, statuses, the timers of summaries and of the start-up quiet time, and closing.
import { Duration } from 'luxon';
import { now } from './lib/clock';
import { InputError, messageOf } from './lib/errors';
import type { CacheSpace } from './lib/space';
import type { Entry, UpdateDecision } from './lib/store';
import type { BaseNodeConfig, Node, NodeAPI, NodeMessage, SendFunction } from './red/api';
import { StoreBinding } from './red/binding';
import {
  CircularValueError,
  type Decision,
  decide,
  decideClassic,
  digestOf,
  type GateRules,
  type Held,
  newPassId,
  type Period,
  passTimeOf,
  peek,
  putBackSummary,
  type Reason,
  readState,
  releasePass,
  resetKey,
  takeDueSummary,
} from './red/gate-decisions';
import { registerGate } from './red/gates';
import { bindRuntime, fill, type Substitutions, textsOf } from './red/i18n';
import { checkKeyConfig, describe, isBlank, isPlainName, numberFrom, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { CALENDAR_PERIODS, type CalendarPeriod, periodStartOf } from './red/periods';
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
  /** Passed messages: the id of the pass, which a message with msg.release = true carries back to undo it. */
  pass?: string;
  /** Suppressed messages: why; a release message: `released`, or `stale` when its pass was no longer current. */
  reason?: Reason | 'released' | 'stale';
  error?: string;
}

const COOLDOWN_UNITS: Readonly<Record<string, number>> = {
  seconds: 1000,
  minutes: 60_000,
  hours: 3_600_000,
  days: 86_400_000,
};

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

type Texts = (key: string, substitutions?: Substitutions) => string;

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

/** The digest of the property "only on change" compares; a value that refers to itself is an error. */
function digestOfProperty(RED: NodeAPI, t: Texts, property: string, msg: NodeMessage): string {
  let value: unknown;
  try {
    value = isPlainName(property) ? msg[property] : RED.util.getMessageProperty(msg, property);
  } catch {
    value = undefined; // a path through a missing object: the value is absent
  }
  try {
    return digestOf(value);
  } catch (error) {
    if (error instanceof CircularValueError) throw new InputError(t('errors.changeCircular', { property: `msg.${property}` }));
    throw error;
  }
}

/** The summary of what was held back for a key, as it leaves on the third output. */
function summaryMessage(t: Texts, zone: string, key: string, held: Held): NodeMessage {
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

/** The gate's texts: `t` from the catalogue; `ts` a status text, its template looked up once and filled per message. */
interface GateTexts {
  t: Texts;
  ts: Texts;
}

/** Message fields that tell the gate to do something rather than decide: at most one per message. */
const CONTROLS = ['reset', 'release', 'quiet'] as const;

/** Where a release message's key is read when it carries one: the msg.cooldown of the pass it releases. */
const KEY_OF_PASS: BaseNodeConfig = { id: '', type: 'cooldown-gate', key: 'cooldown.key', keyType: 'msg' } as BaseNodeConfig;

/** One running gate: its messages, statuses, summaries and start-up quiet time. */
class Gate {
  private readonly rules: GateRules & { summary: boolean };
  private readonly t: Texts;
  private readonly ts: Texts;
  private readonly failOpen: boolean;
  /** With a limit above 1 or a calendar period, messages carry the count and the status shows the limit. */
  private readonly counting: boolean;
  private readonly limitText: string;
  private quietUntil: number;
  /** The quiet time ends when the clock reaches its end, or after as much real time: a clock set back does not stretch it. */
  private quietOver: boolean;
  private quietTimer: NodeJS.Timeout | undefined;
  private readonly quietAlarm = new Alarm(() => this.endQuiet());
  private passed = 0;
  private suppressed = 0;
  private closed = false;
  /** When each key's summary is due (never before the start-up quiet time ends). */
  private readonly schedule = new Map<string, number>();
  /** Summaries being sent, and resets asked for by the admin API: closing waits for them. */
  private readonly flushing = new Set<Promise<unknown>>();
  private readonly alarm = new Alarm(() => void this.track(this.flushDue()));
  private scanned = false;
  private scanning: Promise<void> | undefined;
  /** Summaries sent whose delivery Node-RED has not yet made (it delivers a turn later): a stop before it drops them. */
  private readonly inFlight = new Set<{ key: string; held: Held }>();

  constructor(
    private readonly RED: NodeAPI,
    private readonly node: Node,
    private readonly config: CooldownGateConfig,
    private readonly status: StatusReporter,
    private readonly binding: StoreBinding,
    private readonly settings: GateSettings,
    texts: GateTexts,
  ) {
    this.t = texts.t;
    this.ts = texts.ts;
    this.failOpen = config.failOpen === undefined || config.failOpen === true || config.failOpen === 'true';
    const { windowMs, limit, period, onlyOnChange, summary } = settings;
    this.rules = {
      windowMs,
      limit,
      period,
      onlyOnChange,
      summary,
      gate: node.id,
      get zone() {
        return binding.zone;
      },
    };
    this.counting = limit > 1 || period !== 'sliding';
    this.limitText = period === 'sliding' ? this.t('per.window', { limit, window: durationText(windowMs) }) : this.t(`per.${period}`, { limit });
    this.quietUntil = now() + settings.startupQuietMs;
    this.quietOver = settings.startupQuietMs === 0;
  }

  /** Starts the gate: its summaries kept in the store, its quiet time, its messages, its close. */
  start(): void {
    const { node, status, binding } = this;
    if (this.settings.summary) void this.scan();
    if (!this.quietOver) this.startQuiet();
    onInput(node, status, (msg, send) => this.input(msg, send));
    // the admin API's reset of a key reaches the gate that holds its summary (SQLite files only: the sidebar lists no Redis store)
    let unregister: () => void = () => undefined;
    if (binding.settings.backend !== 'redis') {
      unregister = registerGate(binding.settings.file, binding.namespaceName, {
        id: node.id,
        summary: this.settings.summary,
        running: () => this.running(),
        reset: (key) => this.track(this.reset(key, (m) => node.send(m))),
      });
    }
    node.on('close', (_removed, done) => {
      this.closed = true;
      unregister();
      this.alarm.cancel();
      this.quietAlarm.cancel();
      clearTimeout(this.quietTimer);
      this.schedule.clear();
      // summaries whose delivery the stop came before: back to the store for the next start
      for (const { key, held } of this.inFlight) void this.track(this.putBack(key, held));
      this.inFlight.clear();
      done();
    });
    releaseOnClose(node, status, binding, () => Promise.allSettled([...this.flushing]));
  }

  private counts(): Substitutions {
    return { passed: this.passed, suppressed: this.suppressed };
  }

  /** True until the gate begins closing: only a running gate takes a summary out of the store (it sends it at once). */
  private running(): boolean {
    return !this.closed && !this.binding.closing;
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.flushing.add(work);
    const forget = () => this.flushing.delete(work);
    work.then(forget, forget);
    return work;
  }

  /**
   * Runs `step` on the namespace the gate's state lives in (kept until the gate itself lets it go,
   * whatever the store's default TTL): at once when it is open, else once it is. Every message's step
   * (pass, hold, reset, release) starts this way with nothing awaited before it, so a key's steps
   * reach the store in the order their messages came.
   */
  private inState<T>(step: (cache: CacheSpace) => Promise<T>): Promise<T> {
    const opened = this.binding.namespace();
    return opened instanceof Promise ? opened.then((space) => step(space.withoutDefaultTtl())) : step(opened.withoutDefaultTtl());
  }

  private async input(msg: NodeMessage, send: SendFunction): Promise<void> {
    const controls = CONTROLS.filter((name) => msg[name] === true);
    if (controls.length > 1) throw new InputError(this.t('errors.controls', { fields: controls.map((name) => `msg.${name}`).join(', ') }));
    if (msg.quiet === true) return this.restartQuiet();
    if (msg.release === true) return this.release(msg);
    // a key and a namespace that are there at once are taken without awaiting (a microtask turn each)
    const found = resolveKey(this.RED, this.node, this.config, msg);
    const key = typeof found === 'string' ? found : await found;
    if (msg.reset === true) {
      await this.reset(key, send);
      return;
    }
    const at = now();
    if (!this.quietOver) {
      if (at < this.quietUntil) {
        await this.quiet(key, msg, at);
        send([null, msg]);
        return;
      }
      this.endQuiet();
    }
    if (this.settings.classic) await this.classic(key, msg, send);
    else await this.limited(key, msg, send);
  }

  /** Passes a message although the store failed: a missed alarm is worse than a duplicate one. */
  private passDespite(error: unknown, key: string, msg: NodeMessage): NodeMessage {
    const cause = error instanceof Error ? error.message : String(error);
    this.node.warn(this.t('errors.failedOpen', { key, error: cause }));
    this.passed++;
    this.status.set(() => ({ fill: 'red', shape: 'ring', text: this.t('status.failedOpen', { key, ...this.counts() }) }));
    // a pass that armed nothing: its release finds nothing to undo
    const info: CooldownInfo = { key, lastPassed: null, elapsed: null, remaining: null, remainingText: null, pass: newPassId(now()), error: cause };
    msg.cooldown = info;
    return msg;
  }

  /**
   * Decides one message inside the store's atomic update of its key (decided from `current` alone: a
   * shared store may call `step` again with a newer entry). Every message takes this same way to the
   * store, as msg.reset and msg.release do, so a key's updates run in the order its messages came. A
   * store failure passes the message (fail open, then undefined) or is thrown.
   */
  private async decideInStore<D>(
    key: string,
    msg: NodeMessage,
    send: SendFunction,
    step: (current: Entry | undefined) => { decision: D; write: UpdateDecision },
  ): Promise<D | undefined> {
    let decision: D | undefined;
    try {
      await this.inState((cache) =>
        cache.update(STORE_KEY_PREFIX + key, (current) => {
          const decided = step(current);
          decision = decided.decision;
          return decided.write;
        }),
      );
    } catch (error) {
      if (!this.failOpen) throw error;
      send([this.passDespite(error, key, msg), null]);
      return undefined;
    }
    return decision;
  }

  // ---- messages ----

  /** No option in use: the time of the last pass, with the cooldown as its TTL (as before the options existed). */
  private async classic(key: string, msg: NodeMessage, send: SendFunction): Promise<void> {
    const { windowMs } = this.settings;
    let decidedAt = 0;
    const d = await this.decideInStore(key, msg, send, (current) => {
      decidedAt = now();
      return decideClassic(windowMs, current, decidedAt);
    });
    if (!d) return;
    if (d.aheadBy > 0) this.node.warn(this.t('warnings.clockAhead', { key, ahead: durationText(d.aheadBy), cooldown: durationText(windowMs) }));
    const elapsed = Math.min(windowMs, Math.max(0, decidedAt - d.lastPassed));
    const remaining = windowMs - elapsed;
    const info: CooldownInfo = { key, lastPassed: isoInZone(d.lastPassed, this.binding.zone), elapsed, remaining, remainingText: durationText(remaining) };
    msg.cooldown = info;
    if (d.armed) {
      info.pass = newPassId(decidedAt);
      this.passed++;
      this.status.set(() => ({ fill: 'green', shape: 'dot', text: this.ts('status.passed', { key, ...this.counts() }) }));
      send([msg, null]);
    } else {
      info.reason = 'cooldown';
      this.suppressed++;
      const remainingText = info.remainingText;
      this.status.set(() => ({ fill: 'yellow', shape: 'ring', text: this.ts('status.suppressed', { key, remaining: remainingText, ...this.counts() }) }));
      send([null, msg]);
    }
  }

  /** With options: limit per sliding window or calendar period, only on change, summaries. */
  private async limited(key: string, msg: NodeMessage, send: SendFunction): Promise<void> {
    const { t, ts, settings, binding } = this;
    const digest = settings.onlyOnChange ? digestOfProperty(this.RED, this.t, settings.changeProperty, msg) : undefined;
    if (settings.summary && !this.scanned) void this.scan();
    let at = 0;
    let passId = '';
    const d: Decision | undefined = await this.decideInStore(key, msg, send, (current) => {
      at = now();
      passId = newPassId(at);
      return decide(this.rules, current, at, { digest, payload: msg.payload, topic: msg.topic, passId, mayFlush: this.running() });
    });
    if (!d) return;
    if (d.aheadBy > 0) this.node.warn(t('warnings.clockAhead', { key, ahead: durationText(d.aheadBy), cooldown: durationText(settings.windowMs) }));
    if (d.redated !== null) {
      const period = settings.period as CalendarPeriod;
      const zone = binding.zone;
      const current = isoInZone(periodStartOf(at, period, zone), zone);
      this.node.warn(t('warnings.periodAhead', { key, period: t(`periods.${period}`), stored: isoInZone(d.redated, zone), current }));
    }
    if (d.summary) {
      this.unplan(key);
      await this.deliver(key, d.summary, send);
    }
    if (d.held) this.plan(key, d.held.due);
    const remaining = Math.max(0, d.remaining);
    const info: CooldownInfo = {
      key,
      lastPassed: isoInZone(d.lastPass, binding.zone),
      elapsed: d.lastPass === undefined ? null : Math.max(0, at - d.lastPass),
      remaining,
      remainingText: durationText(remaining),
    };
    if (this.counting) Object.assign(info, { count: d.count, limit: settings.limit });
    msg.cooldown = info;
    const counts = () => this.counts();
    if (d.outcome === 'pass') {
      info.pass = passId;
      this.passed++;
      const count = d.count;
      const limitText = this.limitText;
      this.status.set(() => ({
        fill: 'green',
        shape: 'dot',
        text: this.counting ? ts('status.passedCount', { key, count, limit: limitText, ...counts() }) : ts('status.passed', { key, ...counts() }),
      }));
      send([msg, null]);
      return;
    }
    info.reason = d.outcome;
    this.suppressed++;
    const remainingText = info.remainingText;
    if (d.outcome === 'unchanged') this.status.set(() => ({ fill: 'grey', shape: 'ring', text: ts('status.unchanged', { key, ...counts() }) }));
    else if (d.outcome === 'limit')
      this.status.set(() => ({
        fill: 'yellow',
        shape: 'ring',
        text: ts('status.limited', { key, limit: this.limitText, remaining: remainingText, ...counts() }),
      }));
    else this.status.set(() => ({ fill: 'yellow', shape: 'ring', text: ts('status.suppressed', { key, remaining: remainingText, ...counts() }) }));
    send([null, msg]);
  }

  /** msg.reset, and the admin API's reset: the key's state goes; what was held back in it is summed up now. */
  private async reset(key: string, send: SendFunction): Promise<boolean> {
    let outcome: { summary?: Held; existed: boolean } = { existed: false };
    await this.inState((cache) =>
      cache.update(STORE_KEY_PREFIX + key, (current) => {
        const decided = resetKey(this.rules, current, now(), { summaryOn: this.settings.summary, mayFlush: this.running() });
        outcome = decided;
        return decided.write;
      }),
    );
    this.unplan(key);
    this.status.set({ fill: 'blue', shape: 'ring', text: this.t('status.reset', { key, ...this.counts() }) });
    if (outcome.summary) await this.deliver(key, outcome.summary, send);
    return outcome.existed;
  }

  /** msg.release: the pass whose msg.cooldown the message carries counts for nothing, if it is still the key's newest. */
  private async release(msg: NodeMessage): Promise<void> {
    const { t, binding } = this;
    const info = msg.cooldown as Record<string, unknown> | undefined;
    if (!info || typeof info !== 'object' || Array.isArray(info)) throw new InputError(t('errors.releaseNoCooldown'));
    const passId = info.pass;
    const passAt = passTimeOf(passId);
    if (passAt === undefined) throw new InputError(t('errors.releaseNoPass', { value: describe(passId) }));
    const found = resolveKey(this.RED, this.node, info.key === undefined ? this.config : KEY_OF_PASS, msg);
    const key = typeof found === 'string' ? found : await found;
    let at = 0;
    let outcome: ReturnType<typeof releasePass>['release'] | undefined;
    await this.inState((cache) =>
      cache.update(STORE_KEY_PREFIX + key, (current) => {
        at = now();
        const decided = releasePass(this.rules, current, at, passId as string, passAt, this.settings.classic);
        outcome = decided.release;
        return decided.write;
      }),
    );
    const r = outcome!;
    const result: CooldownInfo = {
      key,
      lastPassed: isoInZone(r.lastPass, binding.zone),
      elapsed: r.lastPass === undefined ? null : Math.max(0, at - r.lastPass),
      remaining: r.remaining,
      remainingText: durationText(r.remaining),
    };
    if (this.counting) Object.assign(result, { count: r.count, limit: this.settings.limit });
    result.pass = passId as string;
    result.reason = r.released ? 'released' : 'stale';
    msg.cooldown = result;
    const counts = this.counts();
    if (r.released) this.status.set({ fill: 'blue', shape: 'dot', text: t('status.released', { key, ...counts }) });
    else this.status.set({ fill: 'grey', shape: 'ring', text: t('status.stale', { key, ...counts }) });
  }

  // ---- summaries: due times kept in the store, timers here ----

  /** When a summary due at `due` is sent: not in the start-up quiet time (downstream nodes, such as Home Assistant's, may not be connected yet). */
  private fireAt(due: number): number {
    return this.quietOver ? due : Math.max(due, this.quietUntil);
  }

  private rearm(): void {
    if (this.closed) return;
    let first = Number.POSITIVE_INFINITY;
    for (const due of this.schedule.values()) first = Math.min(first, this.fireAt(due));
    if (first === Number.POSITIVE_INFINITY) this.alarm.cancel();
    else if (this.alarm.due !== first) this.alarm.at(first);
  }

  private plan(key: string, due: number): void {
    if (this.closed) return;
    this.schedule.set(key, due);
    this.rearm();
  }

  private unplan(key: string): void {
    if (this.schedule.delete(key)) this.rearm();
  }

  /**
   * Sends a summary taken out of the store. The gate took it while running; if it began closing since,
   * its messages no longer reach the next nodes: the summary goes back to the store for the next start.
   */
  private async deliver(key: string, held: Held, send: SendFunction): Promise<void> {
    if (!this.closed) {
      // Node-RED delivers a message in the next turn (setImmediate), in order: this turn, queued just
      // before the delivery, marks it made. A stop before it drops the message, and the gate, closing,
      // puts the summary back.
      const sending = { key, held };
      if (!this.RED.settings?.runtimeSyncDelivery) {
        this.inFlight.add(sending);
        setImmediate(() => this.inFlight.delete(sending));
      }
      send([null, null, summaryMessage(this.t, this.binding.zone, key, held)]);
      const count = held.count;
      this.status.set(() => ({ fill: 'blue', shape: 'dot', text: this.t('status.summary', { key, held: count, ...this.counts() }) }));
      return;
    }
    await this.putBack(key, held);
  }

  private async putBack(key: string, held: Held): Promise<void> {
    try {
      await this.inState((cache) => cache.update(STORE_KEY_PREFIX + key, (current) => putBackSummary(this.rules, current, now(), held)));
    } catch (error) {
      this.node.warn(this.t('warnings.summaryLost', { key, error: messageOf(error) }));
    }
  }

  /** Sends the summary of `key` if it is due; it leaves the store in the same atomic step, only while the gate runs. */
  private async flushKey(key: string): Promise<void> {
    let taken: { summary?: Held; later?: number } = {};
    try {
      await this.inState((cache) =>
        cache.update(STORE_KEY_PREFIX + key, (current) => {
          const decided = takeDueSummary(this.rules, current, now(), this.running());
          taken = decided;
          return decided.write;
        }),
      );
    } catch (error) {
      // kept in the store: tried again in a minute, or sent after the next start
      if (!this.running()) return;
      this.node.warn(this.t('warnings.summaryFailed', { key, error: messageOf(error), retry: durationText(SUMMARY_RETRY_MS) }));
      this.plan(key, now() + SUMMARY_RETRY_MS);
      return;
    }
    if (taken.later !== undefined) this.plan(key, taken.later);
    if (taken.summary) await this.deliver(key, taken.summary, (m) => this.node.send(m));
  }

  private async flushDue(): Promise<void> {
    const at = now();
    const due = [...this.schedule].filter(([, when]) => this.fireAt(when) <= at).map(([key]) => key);
    for (const key of due) this.schedule.delete(key);
    this.rearm();
    await Promise.all(due.map((key) => this.flushKey(key)));
  }

  /** Finds the summaries kept in the store (held back before a restart or redeploy) and plans them. */
  private scan(): Promise<void> {
    this.scanning ??= (async () => {
      try {
        const cache = await this.binding.namespace();
        for (const [storeKey, entry] of await cache.entries()) {
          if (!storeKey.startsWith(STORE_KEY_PREFIX)) continue;
          const held = readState(entry.value).held;
          // another running gate on the same keys sends its own
          if (!held || (held.gate !== this.node.id && this.RED.nodes.getNode(held.gate))) continue;
          this.plan(storeKey.slice(STORE_KEY_PREFIX.length), held.due);
        }
        this.scanned = true;
      } catch (error) {
        // the next message tries again
        if (this.running()) this.node.warn(this.t('warnings.scanFailed', { error: messageOf(error) }));
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  // ---- start-up quiet time ----

  /** Starts the quiet time (at the start, or again on msg.quiet) until `quietUntil`. */
  private startQuiet(): void {
    const ms = this.settings.startupQuietMs;
    this.status.set({ fill: 'blue', shape: 'ring', text: this.t('status.quiet', { remaining: durationText(ms) }) });
    this.quietAlarm.at(this.quietUntil);
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.endQuiet(), ms);
    this.quietTimer.unref?.();
    this.rearm();
  }

  private endQuiet(): void {
    if (this.quietOver) return;
    this.quietOver = true;
    this.quietAlarm.cancel();
    clearTimeout(this.quietTimer);
    if (this.closed) return;
    this.status.set({});
    this.rearm();
  }

  /** msg.quiet: the start-up quiet time starts again from now (Home Assistant reconnected, say). */
  private async restartQuiet(): Promise<void> {
    if (this.settings.startupQuietMs === 0) throw new InputError(this.t('errors.quietNotSet'));
    this.quietUntil = now() + this.settings.startupQuietMs;
    this.quietOver = false;
    this.startQuiet();
  }

  /** A message in the start-up quiet time: suppressed without arming the gate; says how long until it could pass. */
  private async quiet(key: string, msg: NodeMessage, at: number): Promise<void> {
    let seen: ReturnType<typeof peek> = { lastPass: undefined, gateLeft: 0, count: 0 };
    let read = false;
    try {
      await this.inState((cache) =>
        cache.update(STORE_KEY_PREFIX + key, (current) => {
          seen = peek(this.rules, current, at);
          read = true;
          return undefined;
        }),
      );
    } catch {
      // only what the quiet time says: the store is not needed to hold a message back now
    }
    // a clock set back since the start would show a quiet time longer than configured
    const quietLeft = Math.min(this.quietUntil - at, this.settings.startupQuietMs);
    const remaining = Math.max(quietLeft, seen.gateLeft);
    const info: CooldownInfo = {
      key,
      lastPassed: isoInZone(seen.lastPass, this.binding.zone),
      elapsed: seen.lastPass === undefined ? null : Math.max(0, at - seen.lastPass),
      remaining,
      remainingText: durationText(remaining),
    };
    if (this.counting && read) Object.assign(info, { count: seen.count, limit: this.settings.limit });
    info.reason = 'startup';
    msg.cooldown = info;
    this.suppressed++;
    this.status.set(() => ({ fill: 'blue', shape: 'ring', text: this.ts('status.startup', { key, remaining: durationText(quietLeft), ...this.counts() }) }));
  }
}

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  const t = textsOf(RED, 'cooldown-gate');
  // A status text comes from the catalogue once, with its placeholders, and is filled here for each
  // message: a catalogue lookup per message costs more than the gate's whole decision.
  const statusTemplates = new Map<string, string>();
  const placeholders = Object.fromEntries(['key', 'remaining', 'passed', 'suppressed', 'count', 'limit'].map((name) => [name, `__${name}__`]));
  const ts = (key: string, substitutions: Substitutions = {}): string => {
    let template = statusTemplates.get(key);
    if (template === undefined) {
      template = t(key, placeholders);
      statusTemplates.set(key, template);
    }
    return fill(template, substitutions);
  };

  function CooldownGate(this: Node, config: CooldownGateConfig) {
    RED.nodes.createNode(this, config);
    const status = new StatusReporter(this);
    let binding: StoreBinding;
    let settings: GateSettings;
    try {
      checkKeyConfig(config);
      settings = gateSettings(RED, config, t);
      binding = new StoreBinding(RED, this, config.store, status);
    } catch (error) {
      rejectAll(this, status, error);
      return;
    }
    new Gate(RED, this, config, status, binding, settings, { t, ts }).start();
  }
  RED.nodes.registerType('cooldown-gate', CooldownGate);
};
