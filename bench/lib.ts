import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { DRIVER_CHOICES, type DriverChoice, type DriverName, resolveDriver } from '../nodes/lib/driver';

const load = createRequire(__filename);

/** The repository root (dist/bench/ is two levels below it). */
export const ROOT = path.join(__dirname, '..', '..');

/** Number of distinct keys every store measurement works over. */
export const KEYS = 10_000;

/** Operations in flight for the concurrent measurements. */
export const IN_FLIGHT = 1_000;

/** The key for index i (a Home Assistant-like entity id). */
export function keyOf(i: number): string {
  return `sensor.room_${i % KEYS}`;
}

/** A value of about 100 bytes of JSON, as a sensor state event carries. */
export function sampleValue(i: number): { entity_id: string; state: string; attributes: { unit: string; friendly_name: string }; seq: number } {
  return {
    entity_id: keyOf(i),
    state: (18 + (i % 70) / 10).toFixed(1),
    attributes: { unit: '°C', friendly_name: `Room ${i % KEYS}` },
    seq: i,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The spread of a set of measurements: extremes, quartiles (linear interpolation) and median. */
export interface Spread {
  n: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const pos = (sorted.length - 1) * q;
    const low = Math.floor(pos);
    return sorted[low] + (sorted[Math.min(low + 1, sorted.length - 1)] - sorted[low]) * (pos - low);
  };
  return { n: sorted.length, min: sorted[0], q1: at(0.25), median: median(sorted), q3: at(0.75), max: sorted[sorted.length - 1] };
}

/**
 * Runs `body` `repeats` times and returns the median of what it returns; stops early (after at
 * least one round) once `budgetMs` has passed, for baselines whose speed depends on the disk's fsync.
 */
export async function medianOf(repeats: number, body: (round: number) => Promise<number>, budgetMs = Number.POSITIVE_INFINITY): Promise<number> {
  const values: number[] = [];
  const start = Date.now();
  for (let round = 0; round < repeats; round++) {
    values.push(await body(round));
    if (Date.now() - start > budgetMs) break;
  }
  return median(values);
}

/** Operations per second for `count` operations that took `ms`. */
export function perSecond(count: number, ms: number): number {
  return (count * 1000) / ms;
}

/** Milliseconds elapsed since `start` (a process.hrtime.bigint() reading). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Times `body`, which performs `count` operations, and returns operations per second. */
export async function timed(count: number, body: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await body();
  return perSecond(count, msSince(start));
}

/** Calls `task(i)` for i in [0, count) with at most `concurrency` calls in flight. */
export async function inFlight(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < count && failure === undefined) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        failure = error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (failure !== undefined) throw failure;
}

/**
 * Like inFlight, but stops waiting after `maxMs`: resolves with operations per second counted up to
 * then, and whether everything finished (if not, tasks are still running: only exit the process after).
 */
export async function completedWithin(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
  maxMs: number,
): Promise<{ rate: number; finished: boolean }> {
  let completed = 0;
  let expired = false;
  const start = process.hrtime.bigint();
  const all = inFlight(count, concurrency, async (i) => {
    if (expired) return;
    await task(i);
    completed++;
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, maxMs);
  });
  const finished = await Promise.race([all.then(() => true), deadline.then(() => false)]);
  clearTimeout(timer);
  expired = true;
  return { rate: perSecond(completed, msSince(start)), finished };
}

/** Calls `task(i)` for i in [0, count), one at a time. */
export async function oneByOne(count: number, task: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i++) await task(i);
}

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A new empty directory under the OS temp dir, removed when the process exits. */
export function tempDir(prefix = 'flow-cache-bench-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes a database file and its WAL companions. */
export function removeDatabase(file: string): void {
  for (const extra of ['', '-wal', '-shm', '-journal']) fs.rmSync(file + extra, { force: true });
}

/** Lets pending timers and I/O callbacks run (and the collector catch up) between measurements. */
export function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  return new Promise((resolve) => setTimeout(resolve, 20));
}

/** The SQLite driver the store picks in this process: FLOW_CACHE_DRIVER if it names one, else the best this Node.js has. */
export function storeDriver(): DriverName {
  const named = process.env.FLOW_CACHE_DRIVER;
  return resolveDriver(named && (DRIVER_CHOICES as readonly string[]).includes(named) ? (named as DriverChoice) : 'auto');
}

/**
 * Why keyv + @keyv/sqlite cannot be measured here (its native `sqlite3` module does not load: not
 * installed, not built, or built for another Node.js ABI), or null when it loads.
 */
export function keyvSqliteLoadError(): string | null {
  try {
    load('sqlite3');
    load('@keyv/sqlite');
    return null;
  } catch (error) {
    const first = String((error as Error).message ?? error).split('\n')[0];
    return `@keyv/sqlite needs the native sqlite3 module, which does not load on Node.js ${process.version} (${first})`;
  }
}

/** A prepared statement of a raw baseline, with the same promise face on both drivers. */
export interface RawStatement {
  run(...params: unknown[]): Promise<void>;
  get<T>(...params: unknown[]): Promise<T | undefined>;
  finalize(): Promise<void>;
}

/**
 * A raw SQLite connection for the baselines, through the driver the store uses on this Node.js (or
 * the one named): the `sqlite3` module (asynchronous; the store reaches it through @keyv/sqlite) or
 * `node:sqlite` (synchronous; each call runs at once and returns a settled promise). The baselines
 * run the same statements and pragmas on either.
 */
export interface RawSqlite {
  readonly driver: DriverName;
  exec(sql: string): Promise<void>;
  prepare(sql: string): Promise<RawStatement>;
  close(): Promise<void>;
}

export const RawSqlite = {
  open(file: string, driver: DriverName = storeDriver()): Promise<RawSqlite> {
    return driver === 'node:sqlite' ? openNodeSqlite(file) : openSqlite3(file);
  },
};

// the part of each driver the baselines use (the Node.js 20 type package has no node:sqlite, and sqlite3 is optional)
interface Sqlite3Statement {
  run(params: unknown[], callback: (error: Error | null) => void): void;
  get(params: unknown[], callback: (error: Error | null, row: unknown) => void): void;
  finalize(callback: () => void): void;
}
interface Sqlite3Database {
  exec(sql: string, callback: (error: Error | null) => void): void;
  prepare(sql: string, callback: (error: Error | null) => void): Sqlite3Statement;
  close(callback: (error: Error | null) => void): void;
}
interface NodeSqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
}
interface NodeSqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): NodeSqliteStatement;
  close(): void;
}

function openSqlite3(file: string): Promise<RawSqlite> {
  const sqlite3 = load('sqlite3') as { Database: new (file: string, callback: (error: Error | null) => void) => Sqlite3Database };
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (error) => {
      if (error) {
        reject(error);
        return;
      }
      resolve({
        driver: 'sqlite3',
        exec: (sql) => new Promise((done, fail) => db.exec(sql, (failure) => (failure ? fail(failure) : done()))),
        prepare: (sql) =>
          new Promise((done, fail) => {
            const statement = db.prepare(sql, (failure) =>
              failure
                ? fail(failure)
                : done({
                    run: (...params) => new Promise((ok, no) => statement.run(params, (e) => (e ? no(e) : ok()))),
                    get: <T>(...params: unknown[]) =>
                      new Promise<T | undefined>((ok, no) => statement.get(params, (e, row) => (e ? no(e) : ok(row as T | undefined)))),
                    finalize: () => new Promise((ok) => statement.finalize(() => ok())),
                  }),
            );
          }),
        close: () => new Promise((done, fail) => db.close((failure) => (failure ? fail(failure) : done()))),
      });
    });
  });
}

/** Runs a synchronous call and gives its outcome as a promise, as the sqlite3 face does. */
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

async function openNodeSqlite(file: string): Promise<RawSqlite> {
  const { DatabaseSync } = load('node:sqlite') as { DatabaseSync: new (file: string) => NodeSqliteDatabase };
  const db = new DatabaseSync(file);
  return {
    driver: 'node:sqlite',
    exec: (sql) => settled(() => db.exec(sql)),
    prepare: (sql) =>
      settled(() => {
        const statement = db.prepare(sql);
        return {
          run: (...params) => settled(() => void statement.run(...params)),
          get: <T>(...params: unknown[]) => settled(() => statement.get(...params) as T | undefined),
          finalize: async () => undefined, // node:sqlite finalizes its statements when the database closes
        };
      }),
    close: () => settled(() => db.close()),
  };
}

/** Formats a figure for the table: rates without decimals, small numbers with a few. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * Runs `body` under the V8 CPU profiler when BENCH_PROFILE names a directory, writing `<name>.cpuprofile`
 * there (open it in Chrome DevTools or summarise it with `node dist/bench/profile-top.js <file>`).
 */
export async function profiled<T>(name: string, body: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return body();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await body();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name.replace(/[^\w.-]+/g, '_')}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}
