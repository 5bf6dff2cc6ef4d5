import { Duration } from 'luxon';
import { now } from './lib/clock';
import { InputError, messageOf } from './lib/errors';
import type { BaseNodeConfig, Node, NodeAPI, NodeMessage } from './red/api';
import { StoreBinding } from './red/binding';
import { checkKeyConfig, describe, numberFrom, resolveKey } from './red/input';
import { onInput, rejectAll, releaseOnClose } from './red/lifecycle';
import { StatusReporter } from './red/status';
import { isoInZone } from './red/time';

interface CooldownGateConfig extends BaseNodeConfig {
  cooldown?: number | string;
  cooldownUnits?: string;
  failOpen?: boolean | string;
}

/** The `msg.cooldown` object; `error` only when the store failed and the message passed anyway. */
interface CooldownInfo {
  key: string;
  lastPassed: string | null;
  elapsed: number | null;
  remaining: number | null;
  remainingText: string | null;
  error?: string;
}

const COOLDOWN_UNITS: Readonly<Record<string, number>> = {
  seconds: 1000,
  minutes: 60_000,
  hours: 3_600_000,
  days: 86_400_000,
};

// The gate keeps its entries under its own prefix, so a cache-set on the same key (msg.topic is
// the default of both) neither overwrites nor is overwritten by a cooldown.
const STORE_KEY_PREFIX = 'cooldown:';

/** Checks the configured cooldown and returns it in ms; throws a readable error. */
function cooldownMs(cooldown: unknown, units: unknown): number {
  const unit = units === undefined || units === '' ? 'minutes' : units;
  if (typeof unit !== 'string' || !Object.hasOwn(COOLDOWN_UNITS, unit)) {
    throw new InputError(`cooldown units must be seconds, minutes, hours or days, got ${describe(unit)}`);
  }
  const n = numberFrom(cooldown);
  if (n === undefined || n <= 0) {
    throw new InputError(`cooldown must be a positive number of ${unit}, got ${describe(cooldown)}`);
  }
  const ms = Math.round(n * COOLDOWN_UNITS[unit]);
  if (ms < 1 || !Number.isSafeInteger(ms)) throw new InputError(`cooldown of ${n} ${unit} is out of range`);
  return ms;
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

export = (RED: NodeAPI) => {
  function CooldownGate(this: Node, config: CooldownGateConfig) {
    RED.nodes.createNode(this, config);
    const node = this;
    const status = new StatusReporter(node);
    const failOpen = config.failOpen === undefined || config.failOpen === true || config.failOpen === 'true';
    let binding: StoreBinding;
    let cooldown: number;
    try {
      checkKeyConfig(config);
      cooldown = cooldownMs(config.cooldown ?? 5, config.cooldownUnits);
      binding = new StoreBinding(RED, node, config.store, status);
    } catch (error) {
      rejectAll(node, status, messageOf(error));
      return;
    }
    let passed = 0;
    let suppressed = 0;
    const counts = () => `${passed} passed / ${suppressed} suppressed`;

    /** Passes a message although the store failed: a missed alarm is worse than a duplicate one. */
    function passDespite(error: unknown, key: string, msg: NodeMessage): NodeMessage {
      const text = error instanceof Error ? error.message : String(error);
      node.warn(`cache store failed, message for ${key} passed without a cooldown check: ${text}`);
      passed++;
      status.set({ fill: 'red', shape: 'ring', text: `store failed, passed ${key} (${counts()})` });
      msg.cooldown = { key, lastPassed: null, elapsed: null, remaining: null, remainingText: null, error: text } satisfies CooldownInfo;
      return msg;
    }

    onInput(node, status, async (msg, send) => {
      const key = await resolveKey(RED, node, config, msg);
      const storeKey = STORE_KEY_PREFIX + key;

      if (msg.reset === true) {
        const cache = await binding.namespace();
        await cache.delete(storeKey);
        status.set({ fill: 'blue', shape: 'ring', text: `reset ${key} (${counts()})` });
        return;
      }

      let decidedAt = 0;
      let lastPassed: number | undefined;
      let armed = false;
      let aheadBy = 0;
      try {
        const cache = await binding.namespace();
        await cache.update(storeKey, (current) => {
          decidedAt = now();
          const last = current?.value;
          if (typeof last === 'number' && Number.isFinite(last) && last > decidedAt) {
            // armed by a clock running ahead (a device booting with a wrong date, then corrected):
            // the cooldown starts over from now rather than holding until the clock reaches the stamp
            aheadBy = last - decidedAt;
            lastPassed = decidedAt;
            return { value: decidedAt, ttl: cooldown / 1000, evictable: false };
          }
          if (typeof last === 'number' && Number.isFinite(last) && decidedAt - last < cooldown) {
            lastPassed = last;
            return undefined;
          }
          lastPassed = decidedAt;
          armed = true;
          return { value: decidedAt, ttl: cooldown / 1000, evictable: false };
        });
      } catch (error) {
        if (!failOpen) throw error;
        send([passDespite(error, key, msg), null]);
        return;
      }

      if (aheadBy > 0) {
        node.warn(`the cooldown of ${key} was armed ${durationText(aheadBy)} ahead of the clock (the clock was set back); it holds for ${durationText(cooldown)} from now`);
      }
      const last = lastPassed ?? decidedAt;
      const elapsed = Math.min(cooldown, Math.max(0, decidedAt - last));
      const remaining = cooldown - elapsed;
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
        status.set({ fill: 'green', shape: 'dot', text: `passed ${key} (${counts()})` });
        send([msg, null]);
      } else {
        suppressed++;
        status.set({ fill: 'yellow', shape: 'ring', text: `${key}: ${info.remainingText} left (${counts()})` });
        send([null, msg]);
      }
    });

    releaseOnClose(node, status, binding);
  }
  RED.nodes.registerType('cooldown-gate', CooldownGate);
};
