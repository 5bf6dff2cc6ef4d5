import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';

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

/** A thin promise face of the `sqlite3` driver, for the raw-SQLite baselines. */
export class RawSqlite {
  private constructor(readonly db: sqlite3.Database) {}

  static open(file: string): Promise<RawSqlite> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, (error) => (error ? reject(error) : resolve(new RawSqlite(db))));
    });
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (error) => (error ? reject(error) : resolve())));
  }

  prepare(sql: string): Promise<RawStatement> {
    return new Promise((resolve, reject) => {
      const statement = this.db.prepare(sql, (error) => (error ? reject(error) : resolve(new RawStatement(statement))));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.db.close((error) => (error ? reject(error) : resolve())));
  }
}

export class RawStatement {
  constructor(private readonly statement: sqlite3.Statement) {}

  run(...params: unknown[]): Promise<void> {
    return new Promise((resolve, reject) => this.statement.run(params, (error: Error | null) => (error ? reject(error) : resolve())));
  }

  get<T>(...params: unknown[]): Promise<T | undefined> {
    return new Promise((resolve, reject) => this.statement.get(params, (error: Error | null, row: T) => (error ? reject(error) : resolve(row))));
  }

  finalize(): Promise<void> {
    return new Promise((resolve) => this.statement.finalize(() => resolve()));
  }
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
