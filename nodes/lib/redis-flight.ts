// One single flight among every process on a Redis server: a lock key taken with SET NX PX `holdMs`.
// The holder runs the work, then keeps its outcome under a key of its own for the waiters and lets the
// lock go, in one script. Waiters poll for the outcome with backoff; they read the entry the holder
// stored, or get its error. A holder that dies leaves the lock to expire, and the next caller takes it.
import { randomUUID } from 'node:crypto';
import { CacheError, messageOf } from './errors';
import { pause, type RedisBackend } from './redis-connection';
import { sha1 } from './redis-keys';
import type { FlightOptions } from './space';
import type { Entry } from './store-rows';

/** How long a flight's outcome stays readable for the processes that waited on it, at least. */
const FLIGHT_OUTCOME_MIN_MS = 10_000;
const FLIGHT_POLL_FIRST_MS = 5;
const FLIGHT_POLL_MAX_MS = 100;

// A flight ends: its outcome is kept for the waiters (KEYS[2], PX ARGV[3]), then its lock goes if it is still this flight's.
const LAND_SCRIPT = `redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;
const LAND_SHA = sha1(LAND_SCRIPT);

/**
 * Runs `work` under the flight lock `lock`, or waits for the process holding it and reads, with
 * `read`, the entry its work stored under `options.key`.
 */
export async function flight(
  backend: RedisBackend,
  lock: string,
  work: () => Promise<Entry>,
  options: FlightOptions,
  read: (key: string) => Promise<Entry | undefined>,
): Promise<Entry> {
  const deadline = Date.now() + options.waitMs;
  const holdMs = Math.max(1, Math.round(options.holdMs));
  let pollMs = FLIGHT_POLL_FIRST_MS;
  for (;;) {
    const token = randomUUID();
    const taken = await backend.run((client) => client.set(lock, token, { NX: true, PX: holdMs }));
    if (taken === 'OK') return hold(backend, lock, token, work, options);
    // someone else holds it: wait for their outcome, or for the lock to go without one (the holder died)
    let holder = await backend.run((client) => client.get(lock));
    while (holder !== null && holder !== undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw options.timeout();
      await pause(Math.min(pollMs, left));
      pollMs = Math.min(FLIGHT_POLL_MAX_MS, Math.ceil(pollMs * 1.5));
      const [outcome, still] = await backend.run((client) => client.mGet([`${lock}:${holder}`, lock]));
      if (outcome !== null && outcome !== undefined) {
        const failure = landed(String(outcome), options);
        if (failure instanceof Error) throw failure;
        const entry = await read(options.key);
        if (entry) return entry;
        break; // the answer is already gone (cleared, expired): take a flight of our own
      }
      holder = still;
    }
    if (Date.now() >= deadline) throw options.timeout();
  }
}

async function hold(backend: RedisBackend, lock: string, token: string, work: () => Promise<Entry>, options: FlightOptions): Promise<Entry> {
  let entry: Entry | undefined;
  let failure: unknown;
  let failed = false;
  try {
    entry = await work();
  } catch (error) {
    failed = true;
    failure = error;
  }
  const outcome = failed ? { ok: false, error: encodeFailure(failure, options) } : { ok: true };
  try {
    const keepMs = String(Math.max(FLIGHT_OUTCOME_MIN_MS, Math.round(options.waitMs)));
    await backend.run((client) => backend.script(client, LAND_SCRIPT, LAND_SHA, [lock, `${lock}:${token}`], [token, JSON.stringify(outcome), keepMs]));
  } catch {
    // the waiters see the lock expire without an outcome and take a flight of their own
  }
  if (failed) throw failure;
  return entry as Entry;
}

function encodeFailure(error: unknown, options: FlightOptions): unknown {
  try {
    const encoded = options.encodeError?.(error);
    if (encoded !== undefined) return { custom: encoded };
  } catch {
    // fall back to the message
  }
  const code = error instanceof CacheError ? error.code : undefined;
  return { message: messageOf(error), code };
}

/** The error of a flight that landed with one (undefined: it stored its entry). */
function landed(text: string, options: FlightOptions): Error | undefined {
  let outcome: { ok?: boolean; error?: { custom?: unknown; message?: string; code?: string } };
  try {
    outcome = JSON.parse(text) as typeof outcome;
  } catch {
    return new Error('a single flight in another process left an unreadable outcome');
  }
  if (outcome.ok) return undefined;
  const error = outcome.error ?? {};
  if ('custom' in error && options.decodeError) return options.decodeError(error.custom);
  const message = error.message ?? 'the request failed in another process';
  return error.code ? new CacheError(error.code as CacheError['code'], message) : new Error(message);
}
