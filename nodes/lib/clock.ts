/** Milliseconds since the epoch; every time-dependent decision in the package reads it from here. */
export type Clock = () => number;

const systemClock: Clock = () => Date.now();
let current: Clock = systemClock;

/** The current time in ms, from the injected clock if one is set. */
export function now(): number {
  return current();
}

/** Replaces the clock (tests use a manual clock); `undefined` restores the system clock. */
export function setClock(clock: Clock | undefined): void {
  current = clock ?? systemClock;
}
