// Timers that fire at an instant of the injected clock (nodes/lib/clock.ts), not after a delay.
import { now } from '../lib/clock';

/** The longest a timer sleeps before it looks at the clock again (a step of the clock, waits over 24 days). */
const MAX_SLEEP_MS = 3_600_000;

const pending = new Set<Alarm>();
let manual = false;

/**
 * One timer: `at(when)` (re)arms it for an instant of the injected clock, `cancel()` disarms it.
 * It fires once the clock has reached that instant; it sleeps at most an hour at a time, so a clock
 * that is set forward or back is noticed. It does not keep the process alive.
 */
export class Alarm {
  private when: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly fire: () => void) {}

  /** The instant it is armed for, if it is. */
  get due(): number | undefined {
    return this.when;
  }

  at(when: number): void {
    this.when = when;
    pending.add(this);
    this.sleep();
  }

  cancel(): void {
    this.when = undefined;
    pending.delete(this);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Fires if the clock has reached its instant; otherwise sleeps again. */
  check(): void {
    if (this.when === undefined) return;
    if (now() < this.when) {
      this.sleep();
      return;
    }
    this.cancel();
    this.fire();
  }

  private sleep(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.when === undefined) return;
    if (manual) {
      // the clock moves only when a test moves it: what is due already fires at once, the rest on fireDueAlarms()
      if (this.when <= now()) this.timer = setTimeout(() => this.check(), 0);
      return;
    }
    const wait = Math.min(MAX_SLEEP_MS, Math.max(0, this.when - now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.check();
    }, wait);
    this.timer.unref?.();
  }
}

/**
 * Tests that move the clock by hand: `true` stops alarms from waiting on real time; one armed for an
 * instant the clock has reached fires at once, the others when `fireDueAlarms()` is called after the
 * clock has been moved to them. `false` restores real timers.
 */
export function useManualAlarms(on: boolean): void {
  manual = on;
  for (const alarm of [...pending]) {
    const when = alarm.due;
    if (when !== undefined) alarm.at(when);
  }
}

/** Fires every armed alarm whose instant the clock has reached; returns how many fired. */
export function fireDueAlarms(): number {
  let fired = 0;
  for (const alarm of [...pending]) {
    const when = alarm.due;
    if (when !== undefined && now() >= when) {
      alarm.check();
      fired++;
    }
  }
  return fired;
}
