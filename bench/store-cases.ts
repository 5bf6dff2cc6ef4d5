import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import type { DriverName } from '../nodes/lib/driver';
import { Store } from '../nodes/lib/store';
import {
  completedWithin,
  IN_FLIGHT,
  inFlight,
  KEYS,
  keyOf,
  median,
  medianOf,
  msSince,
  oneByOne,
  perSecond,
  RawSqlite,
  removeDatabase,
  sampleValue,
  settle,
  tempDir,
  timed,
} from './lib';

const NS = 'flow:bench';

/** How much work each measurement does; `quick` scales the slow ones down. */
export interface Plan {
  repeats: number;
  /** Durable sets awaited one at a time. */
  sequentialSets: number;
  /** Gets of hot keys per repetition. */
  hotGets: number;
  /** keyv + @keyv/sqlite as shipped commits with synchronous=FULL (a few hundred per second): sets per repetition. */
  keyvSets: number;
  keyvSequentialSets: number;
  keyvGets: number;
  /** Time after which the fsync-bound keyv set baselines stop repeating (ms). */
  keyvBudgetMs: number;
  /** Raw SQLite commits, one per write. */
  singleCommits: number;
  /** Rows of the row-by-row transaction baseline. */
  preparedRows: number;
  /** Entries in the large store of the startup measurement. */
  startupEntries: number;
  /** Keys read to warm up before the cold-read rounds, and keys read per round. */
  coldWarmup: number;
  coldKeys: number;
  /** Entries written per round of the event-loop stall measurement. */
  stallEntries: number;
}

export function plan(quick: boolean): Plan {
  return quick
    ? {
        repeats: 3,
        sequentialSets: 300,
        hotGets: 50_000,
        keyvSets: IN_FLIGHT,
        keyvSequentialSets: 100,
        keyvGets: 2_000,
        keyvBudgetMs: 1_000,
        singleCommits: 300,
        preparedRows: 2_000,
        startupEntries: 100_000,
        coldWarmup: 1_000,
        coldKeys: 3_000,
        stallEntries: 100_000,
      }
    : {
        repeats: 3,
        sequentialSets: 2_000,
        hotGets: 200_000,
        keyvSets: IN_FLIGHT,
        keyvSequentialSets: 200,
        keyvGets: 10_000,
        keyvBudgetMs: 3_000,
        singleCommits: 2_000,
        preparedRows: KEYS,
        startupEntries: 100_000,
        coldWarmup: KEYS,
        coldKeys: KEYS,
        stallEntries: 100_000,
      };
}

/** Writes keys [0, count) with values, `concurrency` in flight. */
async function fill(store: Store, count: number, concurrency = IN_FLIGHT): Promise<void> {
  await inFlight(count, concurrency, (i) => store.set(NS, keyOf(i), sampleValue(i)));
}

// ---- our store ----

/** store.set.concurrent: durable sets of the 10,000 keys with 1,000 in flight. */
export async function storeSetConcurrent(dir: string, p: Plan): Promise<number> {
  const store = await Store.open(path.join(dir, 'set-concurrent.sqlite'));
  try {
    await fill(store, KEYS); // first write of every key, and warm-up
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(KEYS, () => inFlight(KEYS, IN_FLIGHT, (i) => store.set(NS, keyOf(i), sampleValue(i + round * KEYS))));
    });
  } finally {
    await store.close();
  }
}

/** store.set.sequential: durable sets awaited one at a time (one commit each). */
export async function storeSetSequential(dir: string, p: Plan): Promise<number> {
  const store = await Store.open(path.join(dir, 'set-sequential.sqlite'));
  try {
    await oneByOne(200, (i) => store.set(NS, keyOf(i), sampleValue(i)));
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(p.sequentialSets, () => oneByOne(p.sequentialSets, (i) => store.set(NS, keyOf(i), sampleValue(i + round))));
    });
  } finally {
    await store.close();
  }
}

/** store.get.hot: repeated gets of 100 hot keys (in the read cache), 1,000 in flight. */
export async function storeGetHot(dir: string, p: Plan): Promise<number> {
  const store = await Store.open(path.join(dir, 'get-hot.sqlite'));
  try {
    await fill(store, KEYS);
    await inFlight(p.hotGets / 10, IN_FLIGHT, (i) => store.get(NS, keyOf(i % 100)));
    return await medianOf(p.repeats, async () => {
      await settle();
      return timed(p.hotGets, () => inFlight(p.hotGets, IN_FLIGHT, (i) => store.get(NS, keyOf(i % 100))));
    });
  } finally {
    await store.close();
  }
}

/** store.get.cold: gets of distinct keys (all 10,000 in a full run) right after opening the store (nothing in the read cache), 1,000 in flight. */
export async function storeGetCold(dir: string, p: Plan): Promise<number> {
  const file = path.join(dir, 'get-cold.sqlite');
  const writer = await Store.open(file);
  await fill(writer, KEYS);
  await writer.close();
  const readAll = async (count = KEYS) => {
    const store = await Store.open(file);
    try {
      return await timed(count, () =>
        inFlight(count, IN_FLIGHT, async (i) => {
          if (!(await store.get(NS, keyOf(i)))) throw new Error(`key ${keyOf(i)} missing`);
        }),
      );
    } finally {
      await store.close();
    }
  };
  await readAll(p.coldWarmup); // warms the OS file cache and the code
  return medianOf(p.repeats, async () => {
    await settle();
    return readAll(p.coldKeys);
  });
}

/** store.incr.concurrent and store.incr.lost: 10,000 update() increments issued at once over 100 keys. */
export async function storeIncrements(dir: string, p: Plan): Promise<{ rate: number; lost: number }> {
  const total = 10_000;
  const counters = 100;
  const lostCounts: number[] = [];
  const rate = await medianOf(p.repeats, async (round) => {
    const file = path.join(dir, `incr-${round}.sqlite`);
    const store = await Store.open(file);
    let rate: number;
    try {
      await settle();
      rate = await timed(total, () =>
        Promise.all(
          Array.from({ length: total }, (_, i) =>
            store.update(NS, `counter.${i % counters}`, (current) => ({ value: ((current?.value as number | undefined) ?? 0) + 1 })),
          ),
        ),
      );
    } finally {
      await store.close();
    }
    // count what reached the disk: a fresh store reads every counter from the file
    const reader = await Store.open(file);
    try {
      let sum = 0;
      for (let k = 0; k < counters; k++) sum += ((await reader.get(NS, `counter.${k}`))?.value as number | undefined) ?? 0;
      lostCounts.push(total - sum);
    } finally {
      await reader.close();
      removeDatabase(file);
    }
    return rate;
  });
  return { rate, lost: Math.max(...lostCounts) };
}

/** startup.ms: milliseconds from Store.open to the first get's answer, empty store and one with `entries` entries. */
export async function storeStartup(dir: string, p: Plan): Promise<{ empty: number; large: number }> {
  const emptyFile = path.join(dir, 'startup-empty.sqlite');
  const largeFile = path.join(dir, 'startup-large.sqlite');
  await (await Store.open(emptyFile)).close();
  const writer = await Store.open(largeFile);
  await inFlight(p.startupEntries, 10_000, (i) => writer.set(NS, `entry.${i}`, sampleValue(i)));
  await writer.close();
  const openAndGet = async (file: string, key: string) => {
    const start = process.hrtime.bigint();
    const store = await Store.open(file);
    await store.get(NS, key);
    const ms = msSince(start);
    await store.close();
    return ms;
  };
  const emptyKey = 'entry.1';
  const largeKey = `entry.${p.startupEntries >> 1}`;
  // one untimed round each warms the code and the OS file cache; then the two alternate, so neither gains from going second
  await openAndGet(emptyFile, emptyKey);
  await openAndGet(largeFile, largeKey);
  const empty: number[] = [];
  const large: number[] = [];
  for (let round = 0; round < p.repeats + 2; round++) {
    await settle();
    empty.push(await openAndGet(emptyFile, emptyKey));
    await settle();
    large.push(await openAndGet(largeFile, largeKey));
  }
  return { empty: median(empty), large: median(large) };
}

/** What store.stall measured: the event loop's longest stall while the store wrote `entries` new entries. */
export interface StallResult {
  /** The store's driver in this process. */
  driver: DriverName;
  entries: number;
  /** Median over the rounds of each round's longest stall (ms). */
  maxMs: number;
  /** The longest stall of any round (ms). */
  worstMs: number;
  /** Median over the rounds of each round's 99th percentile delay (ms). */
  p99Ms: number;
  /**
   * Median over the rounds of the most main-thread CPU time spent between two ticks of a 1 ms timer
   * (ms): the stall without the time the process waited for a core on a busy machine. Null where
   * Node.js has no per-thread CPU clock (process.threadCpuUsage: Node.js >= 22).
   */
  cpuMaxMs: number | null;
  /** Median write rate (entries/s). */
  rate: number;
}

/**
 * store.stall.ms.max: the longest event-loop stall while the store writes `stallEntries` new entries,
 * durable sets with 1,000 in flight, into a fresh store each round. Sampled with
 * monitorEventLoopDelay at 1 ms: a stall is the gap between two ticks of a 1 ms timer, so an idle
 * loop reads about 1 ms.
 */
export async function storeStall(dir: string, p: Plan): Promise<StallResult> {
  const threadCpu = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage;
  const cpuMs = () => {
    const { user, system } = (threadCpu as () => NodeJS.CpuUsage)();
    return (user + system) / 1000;
  };
  const maxima: number[] = [];
  const cpuMaxima: number[] = [];
  const p99s: number[] = [];
  const rates: number[] = [];
  let driver: DriverName | undefined;
  for (let round = 0; round < p.repeats; round++) {
    const file = path.join(dir, `stall-${round}.sqlite`);
    const store = await Store.open(file);
    driver = store.driver;
    try {
      await inFlight(IN_FLIGHT, IN_FLIGHT, (i) => store.set(NS, `warm.${i}`, sampleValue(i)));
      await settle();
      const delay = monitorEventLoopDelay({ resolution: 1 });
      // main-thread CPU time between two ticks of a 1 ms timer: the part of a stall that is work on this thread
      let cpuMax = 0;
      let lastCpu = threadCpu ? cpuMs() : 0;
      const cpuSampler = threadCpu
        ? setInterval(() => {
            const now = cpuMs();
            cpuMax = Math.max(cpuMax, now - lastCpu);
            lastCpu = now;
          }, 1)
        : undefined;
      delay.enable();
      const start = process.hrtime.bigint();
      await inFlight(p.stallEntries, IN_FLIGHT, (i) => store.set(NS, `entry.${i}`, sampleValue(i)));
      const ms = msSince(start);
      delay.disable();
      clearInterval(cpuSampler);
      if (threadCpu) cpuMaxima.push(cpuMax);
      maxima.push(delay.max / 1e6);
      p99s.push(delay.percentile(99) / 1e6);
      rates.push(perSecond(p.stallEntries, ms));
    } finally {
      await store.close();
      removeDatabase(file);
    }
  }
  return {
    driver: driver as DriverName,
    entries: p.stallEntries,
    maxMs: median(maxima),
    worstMs: Math.max(...maxima),
    p99Ms: median(p99s),
    cpuMaxMs: cpuMaxima.length > 0 ? median(cpuMaxima) : null,
    rate: median(rates),
  };
}

// ---- keyv + @keyv/sqlite as shipped ----

function plainKeyv(file: string): Keyv {
  // required here, not imported: its native sqlite3 module may not load on this Node.js, and only these baselines need it
  const Adapter = (require('@keyv/sqlite') as { default: typeof KeyvSqlite }).default;
  return new Keyv({ store: new Adapter({ uri: `sqlite://${file}` }) });
}

/** baseline.keyv.set.concurrent: keyv sets with up to 1,000 in flight, no pragmas (default journal, synchronous=FULL). */
export async function keyvSetConcurrent(dir: string, p: Plan): Promise<number> {
  const keyv = plainKeyv(path.join(dir, 'keyv-set.sqlite'));
  let drained = true;
  try {
    await inFlight(20, 20, (i) => keyv.set(keyOf(i), sampleValue(i)));
    const rates: number[] = [];
    const start = Date.now();
    for (let round = 0; round < p.repeats && drained && Date.now() - start < p.keyvBudgetMs; round++) {
      await settle();
      // commits are fsync-bound (a few hundred to a thousand per second, by disk): count what completes within the window
      const { rate, finished } = await completedWithin(
        p.keyvSets,
        IN_FLIGHT,
        (i) => keyv.set(keyOf(i + round * p.keyvSets), sampleValue(i)),
        p.keyvBudgetMs / 2,
      );
      rates.push(rate);
      drained = finished;
    }
    return median(rates);
  } finally {
    if (drained) await keyv.disconnect(); // else writes are still queued: the case's process exits without waiting for them
  }
}

/** baseline.keyv.set.sequential: keyv sets awaited one at a time. */
export async function keyvSetSequential(dir: string, p: Plan): Promise<number> {
  const keyv = plainKeyv(path.join(dir, 'keyv-set-seq.sqlite'));
  const count = p.keyvSequentialSets;
  try {
    return await medianOf(
      p.repeats,
      async (round) => {
        await settle();
        return timed(count, () => oneByOne(count, (i) => keyv.set(keyOf(i + round * count), sampleValue(i))));
      },
      p.keyvBudgetMs,
    );
  } finally {
    await keyv.disconnect();
  }
}

/** baseline.keyv.get: keyv gets over the 10,000 stored keys, 1,000 in flight. */
export async function keyvGet(dir: string, p: Plan): Promise<number> {
  const file = path.join(dir, 'keyv-get.sqlite');
  // written directly in keyv's own row format (key prefix 'keyv:'): filling through keyv would take a minute
  await rawFill(file, 'keyv', (i) => JSON.stringify({ value: sampleValue(i) }), false, 'keyv:');
  const keyv = plainKeyv(file);
  try {
    if ((await keyv.get(keyOf(7))) === undefined) throw new Error('keyv baseline: stored key not found');
    await inFlight(1_000, IN_FLIGHT, (i) => keyv.get(keyOf(i)));
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(p.keyvGets, () => inFlight(p.keyvGets, IN_FLIGHT, (i) => keyv.get(keyOf(i * 7 + round))));
    });
  } finally {
    await keyv.disconnect();
  }
}

// ---- the store's SQLite driver directly (sqlite3 or node:sqlite, as the store picks), WAL + synchronous=NORMAL ----

const RAW_TABLE = 'CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT)';
const RAW_UPSERT = 'INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value';

async function rawOpen(file: string): Promise<RawSqlite> {
  const db = await RawSqlite.open(file);
  await db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;');
  await db.exec(RAW_TABLE);
  return db;
}

/** Writes the 10,000 keys into a key/value table in one transaction. */
async function rawFill(file: string, table: string, text: (i: number) => string, wal = true, prefix = ''): Promise<void> {
  const db = await RawSqlite.open(file);
  try {
    if (wal) await db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;');
    await db.exec(`CREATE TABLE IF NOT EXISTS ${table}(key VARCHAR(255) PRIMARY KEY, value TEXT)`);
    await db.exec('BEGIN');
    const insert = await db.prepare(`INSERT OR REPLACE INTO ${table}(key, value) VALUES(?, ?)`);
    await Promise.all(Array.from({ length: KEYS }, (_, i) => insert.run(prefix + keyOf(i), text(i))));
    await insert.finalize();
    await db.exec('COMMIT');
  } finally {
    await db.close();
  }
}

/** baseline.sqlite.set.single: one upsert and one commit per write, awaited one at a time. */
export async function sqliteSetSingle(dir: string, p: Plan): Promise<number> {
  const db = await rawOpen(path.join(dir, 'raw-single.sqlite'));
  const upsert = await db.prepare(RAW_UPSERT);
  try {
    await oneByOne(200, (i) => upsert.run(keyOf(i), JSON.stringify(sampleValue(i))));
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(p.singleCommits, () => oneByOne(p.singleCommits, (i) => upsert.run(keyOf(i), JSON.stringify(sampleValue(i + round)))));
    });
  } finally {
    await upsert.finalize();
    await db.close();
  }
}

/** baseline.sqlite.set.tx: all 10,000 upserts in one transaction, 500 rows per statement (the shape our store writes). */
export async function sqliteSetTx(dir: string, p: Plan): Promise<number> {
  const db = await rawOpen(path.join(dir, 'raw-tx.sqlite'));
  const rows = 500;
  const upsert = await db.prepare(
    `INSERT INTO kv(key, value) VALUES ${Array.from({ length: rows }, () => '(?, ?)').join(', ')} ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
  );
  const writeAll = async (round: number) => {
    await db.exec('BEGIN');
    for (let first = 0; first < KEYS; first += rows) {
      const params: string[] = [];
      for (let i = first; i < first + rows; i++) params.push(keyOf(i), JSON.stringify(sampleValue(i + round * KEYS)));
      await upsert.run(...params);
    }
    await db.exec('COMMIT');
  };
  try {
    await writeAll(-1);
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(KEYS, () => writeAll(round));
    });
  } finally {
    await upsert.finalize();
    await db.close();
  }
}

/** baseline.sqlite.set.tx.prepared: upserts in one transaction, one prepared-statement run per row (queued at once). */
export async function sqliteSetTxPrepared(dir: string, p: Plan): Promise<number> {
  const db = await rawOpen(path.join(dir, 'raw-tx-prepared.sqlite'));
  const upsert = await db.prepare(RAW_UPSERT);
  const writeAll = async (round: number) => {
    await db.exec('BEGIN');
    await Promise.all(Array.from({ length: p.preparedRows }, (_, i) => upsert.run(keyOf(i), JSON.stringify(sampleValue(i + round * KEYS)))));
    await db.exec('COMMIT');
  };
  try {
    await writeAll(-1);
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(p.preparedRows, () => writeAll(round));
    });
  } finally {
    await upsert.finalize();
    await db.close();
  }
}

/** baseline.sqlite.get: point selects by key, decoded with JSON.parse (as a cache read must); 8 prepared statements, 1,000 in flight (the fastest way found with the sqlite3 driver; node:sqlite answers each at once). */
export async function sqliteGet(dir: string, p: Plan): Promise<number> {
  const file = path.join(dir, 'raw-get.sqlite');
  await rawFill(file, 'kv', (i) => JSON.stringify(sampleValue(i)));
  const db = await rawOpen(file);
  const selects = await Promise.all(Array.from({ length: 8 }, () => db.prepare('SELECT value FROM kv WHERE key = ?')));
  const get = async (i: number) => {
    const row = await selects[i & 7].get<{ value: string }>(keyOf(i));
    if (!row) throw new Error(`raw baseline: key ${keyOf(i)} missing`);
    return JSON.parse(row.value);
  };
  try {
    await inFlight(KEYS, IN_FLIGHT, get);
    return await medianOf(p.repeats, async (round) => {
      await settle();
      return timed(KEYS, () => inFlight(KEYS, IN_FLIGHT, (i) => get(i * 7 + round)));
    });
  } finally {
    for (const select of selects) await select.finalize();
    await db.close();
  }
}

export function benchDir(): string {
  return tempDir('flow-cache-bench-store-');
}
