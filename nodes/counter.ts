import { now } from './lib/clock';
import { CacheError, InputError } from './lib/errors';
import type { Entry } from './lib/store';
import type { BaseNodeConfig, Node, NodeAPI } from './red/api';
import { StoreBinding } from './red/binding';
import { bindRuntime, text, textsOf } from './red/i18n';
import { checkKeyConfig, describe, finiteNumber, isBlank, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { periodStartOf, type ResetEvery } from './red/periods';
import { StatusReporter } from './red/status';
import { isoInZone } from './red/time';

interface CounterConfig extends BaseNodeConfig {
  step?: number | string;
  initial?: number | string;
  resetEvery?: string;
}

const RESET_PERIODS: readonly ResetEvery[] = ['never', 'day', 'week', 'month'];

/** Counts live under `counter:<key>` in the node's namespace. */
const KEY_PREFIX = 'counter:';

/** What the counter stores under its key. */
interface CountRecord {
  count: number;
  /** Start of the period the count belongs to (ms), null when the counter never resets. */
  periodStart: number | null;
}

/** What one message asks for. */
type Action = { kind: 'add'; amount: number } | { kind: 'reset' } | { kind: 'set'; count: number };

/**
 * Reads what is stored under a key as a count; a plain number (e.g. written by cache-set) counts as one.
 * Anything else is an error, unless `replacing` (a reset or set may overwrite it): then it reads as no count.
 */
function readRecord(entry: Entry, key: string, replacing: boolean): CountRecord | undefined {
  const value = entry.value;
  if (typeof value === 'number' && Number.isFinite(value)) return { count: value, periodStart: null };
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as Partial<CountRecord>;
    const periodStart = record.periodStart;
    if (
      typeof record.count === 'number' &&
      Number.isFinite(record.count) &&
      (periodStart === null || periodStart === undefined || Number.isFinite(periodStart))
    ) {
      return { count: record.count, periodStart: periodStart ?? null };
    }
  }
  if (replacing) return undefined;
  throw new CacheError('NOT_A_COUNT', text(undefined, 'counter', 'errors.notACount', { key: `${KEY_PREFIX}${key}`, value: describe(value) }));
}

export = (RED: NodeAPI) => {
  bindRuntime(RED);
  const t = textsOf(RED, 'counter');
  function Counter(this: Node, config: CounterConfig) {
    RED.nodes.createNode(this, config);
    const status = new StatusReporter(this);
    const resetEvery = (config.resetEvery || 'never') as ResetEvery;
    let binding: StoreBinding;
    let step: number;
    let initial: number;
    try {
      checkKeyConfig(config);
      step = finiteNumber(isBlank(config.step) ? 1 : config.step, 'step');
      initial = finiteNumber(isBlank(config.initial) ? 0 : config.initial, t('fields.initial'));
      if (!RESET_PERIODS.includes(resetEvery)) throw new InputError(t('errors.resetEvery', { value: resetEvery }));
      binding = new StoreBinding(RED, this, config.store, status);
    } catch (error) {
      rejectAll(this, status, error);
      return;
    }

    onInput(this, status, async (msg, send) => {
      // a key and a namespace that are there at once are taken without awaiting (a microtask turn each)
      const found = resolveKey(RED, this, config, msg);
      const key = typeof found === 'string' ? found : await found;
      let action: Action;
      if (msg.count !== undefined) action = { kind: 'set', count: finiteNumber(msg.count, 'msg.count') };
      else if (msg.reset === true) action = { kind: 'reset' };
      else action = { kind: 'add', amount: msg.increment === undefined ? step : finiteNumber(msg.increment, 'msg.increment') };

      const zone = binding.zone;
      const opened = binding.namespace();
      const cache = opened instanceof Promise ? await opened : opened;
      let outcome: { record: CountRecord; previous: number | null; rolledOver: boolean; redated: number | null } | undefined;
      // a count is kept until reset, whatever the store's default TTL; the prefix keeps counts
      // apart from values cache-set writes under the same key (msg.topic)
      await cache.withoutDefaultTtl().update(`${KEY_PREFIX}${key}`, (current) => {
        const at = now();
        const periodStart = periodStartOf(at, resetEvery, zone);
        const stored = current ? readRecord(current, key, action.kind !== 'add') : undefined;
        // a count without a period belongs to the period of its last change
        const storedStart = stored ? (stored.periodStart ?? periodStartOf(current!.storedAt, resetEvery, zone)) : null;
        const rolledOver = stored !== undefined && periodStart !== null && storedStart !== null && periodStart > storedStart;
        // a stored period that starts after the current one was stamped by a clock running ahead (a
        // device booting with a wrong date, then corrected by NTP): its count is kept and moved into
        // the current period, so the next reset comes at the current calendar's next boundary, not a
        // year later when the clock catches up with the stamp
        const redated = stored !== undefined && periodStart !== null && storedStart !== null && storedStart > periodStart ? storedStart : null;
        const base = stored && !rolledOver ? stored.count : initial;
        let count: number;
        if (action.kind === 'set') count = action.count;
        else if (action.kind === 'reset') count = initial;
        else count = base + action.amount;
        if (!Number.isFinite(count)) throw new InputError(t('errors.range', { key }));
        const record: CountRecord = { count, periodStart };
        outcome = { record, previous: stored ? stored.count : null, rolledOver, redated };
        return { value: record, evictable: false };
      });
      const { record, previous, rolledOver, redated } = outcome!;
      if (redated !== null) {
        this.warn(
          t('warnings.clockSetBack', {
            period: t(`periods.${resetEvery}`),
            key,
            stored: isoInZone(redated, zone),
            current: isoInZone(record.periodStart, zone),
          }),
        );
      }
      msg.payload = record.count;
      msg.counter = { key, count: record.count, previous, periodStart: isoInZone(record.periodStart, zone) };
      const count = record.count;
      const which = action.kind === 'reset' ? 'reset' : action.kind === 'set' ? 'set' : rolledOver ? 'newPeriod' : redated !== null ? 'clockSetBack' : 'count';
      status.set(() => ({ fill: 'green', shape: 'dot', text: t(`status.${which}`, { key, count, period: t(`periods.${resetEvery}`) }) }));
      send(msg);
    });

    releaseOnClose(this, status, binding);
  }
  RED.nodes.registerType('counter', Counter);
};
