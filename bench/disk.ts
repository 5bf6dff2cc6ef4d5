// Bytes sent to the storage layer per durable write (SD cards wear out with what is written to
// them): 2,000 sequential writes of ~100-byte values to 1,000 keys that already exist, counted with
// Linux's /proc/self/io `write_bytes` from the first write to the end of the close, so the
// checkpoint (SQLite copying its write-ahead log into the database file) and the last flush count.
// Each case runs in a fresh process:
//   node dist/bench/disk.js <store.immediate|store.deferred|keyv|localfilesystem>   prints the result as JSON
// FLOW_CACHE_DRIVER picks the store's driver, as everywhere. `diskFigures()` runs them all for bench/run.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import type { DriverName } from '../nodes/lib/driver';
import { messageOf } from '../nodes/lib/errors';
import { type Durability, Store } from '../nodes/lib/store';
import { RawSqlite, sampleValue, tempDir } from './lib';

/** Writes measured, and the keys they go to (each key written twice). */
export const WRITES = 2_000;
export const DISK_KEYS = 1_000;
/**
 * Writes per flush for the stores that write on a timer (our deferred mode, Node-RED's
 * localfilesystem), both every 30 s by default: at one write per second, 30 writes share a flush.
 */
export const WRITES_PER_FLUSH = 30;

export const DISK_CASES = ['store.immediate', 'store.deferred', 'keyv', 'localfilesystem'] as const;
export type DiskCase = (typeof DISK_CASES)[number];

export interface DiskResult {
  /** KiB sent to the storage layer per write */
  kibPerWrite: number;
  /** bytes sent over the whole span */
  bytes: number;
  writes: number;
  /** the store's driver (store cases) */
  driver?: DriverName;
}

/**
 * Bytes this process has caused to be sent to the storage layer: Linux counts a page of the file
 * cache (4 KiB) when it becomes dirty, so a page written again before it reaches the disk counts
 * once, as the disk sees it. Null where the kernel does not say.
 */
export function writeBytes(): number | null {
  try {
    const match = /^write_bytes: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

const keyOf = (i: number) => `sensor.room_${i % DISK_KEYS}`;
const NS = 'flow:disk';

/** Counts the bytes written by `body` (the writes and the close that ends them). */
async function counted(body: () => Promise<void>): Promise<DiskResult> {
  const before = writeBytes();
  if (before === null) throw new Error('no write_bytes in /proc/self/io (Linux only)');
  await body();
  const bytes = (writeBytes() as number) - before;
  return { kibPerWrite: bytes / 1024 / WRITES, bytes, writes: WRITES };
}

/** Our store: every key written once and the file closed (checkpointed) before the measured writes. */
async function ourStore(dir: string, durability: Durability): Promise<DiskResult> {
  const file = path.join(dir, 'disk.sqlite');
  const filler = await Store.open(file);
  for (let i = 0; i < DISK_KEYS; i++) await filler.set(NS, keyOf(i), sampleValue(i));
  await filler.close();
  const store = await Store.open(file, { durability });
  const result = await counted(async () => {
    for (let i = 0; i < WRITES; i++) {
      await store.set(NS, keyOf(i), sampleValue(DISK_KEYS + i));
      // deferred: the flush its 30-second timer would make at one write per second
      if (durability === 'deferred' && i % WRITES_PER_FLUSH === WRITES_PER_FLUSH - 1) await store.flush();
    }
    await store.close();
  });
  return { ...result, driver: store.driver };
}

/** keyv + @keyv/sqlite as shipped (rollback journal, synchronous=FULL, 4 KiB pages). */
async function keyvAsShipped(dir: string): Promise<DiskResult> {
  // required here, not imported: its native sqlite3 module may not load on this Node.js
  const Adapter = (require('@keyv/sqlite') as { default: typeof KeyvSqlite }).default;
  const file = path.join(dir, 'keyv.sqlite');
  // the 1,000 keys written in keyv's table and row format in one transaction: through keyv, each is a commit with two fsyncs
  const raw = await RawSqlite.open(file, 'sqlite3');
  await raw.exec('CREATE TABLE IF NOT EXISTS keyv(key VARCHAR(255) PRIMARY KEY, value TEXT )');
  await raw.exec('BEGIN');
  const insert = await raw.prepare('INSERT INTO keyv(key, value) VALUES(?, ?)');
  for (let i = 0; i < DISK_KEYS; i++) await insert.run(`keyv:${keyOf(i)}`, JSON.stringify({ value: sampleValue(i) }));
  await insert.finalize();
  await raw.exec('COMMIT');
  await raw.close();
  const keyv = new Keyv({ store: new Adapter({ uri: `sqlite://${file}` }) });
  if ((await keyv.get(keyOf(7))) === undefined) throw new Error('keyv: a stored key was not found'); // connected, and the rows are keyv's
  return counted(async () => {
    for (let i = 0; i < WRITES; i++) await keyv.set(keyOf(i), sampleValue(DISK_KEYS + i));
    await keyv.disconnect();
  });
}

interface ContextStore {
  open(): Promise<void>;
  close(): Promise<void>;
  set(scope: string, key: string, value: unknown, callback?: (error?: unknown) => void): void;
  writePromise: Promise<unknown>;
}

/**
 * Node-RED's localfilesystem context store with its defaults (cache on; it writes each changed
 * scope's whole file, pretty-printed, 30 s after the first change): one flow's 1,000 keys, and the
 * flush its timer makes every 30 writes at one write per second (run at once: flushInterval 0
 * writes on the next timer tick, after the 30 writes made in one tick).
 */
async function localFileSystem(dir: string): Promise<DiskResult> {
  const nodeRed = path.dirname(require.resolve(process.env.NODE_RED_LINE === '5' ? 'node-red5/package.json' : 'node-red/package.json'));
  const runtime = path.dirname(require.resolve('@node-red/runtime/package.json', { paths: [nodeRed] }));
  const make = require(path.join(runtime, 'lib', 'nodes', 'context', 'localfilesystem.js')) as (config: object) => ContextStore;
  const scope = 'f1a2b3c4d5e6f708';
  const context = (flushInterval: number) => make({ dir, flushInterval, settings: { userDir: dir } });
  const filler = context(30);
  await filler.open();
  for (let i = 0; i < DISK_KEYS; i++) filler.set(scope, keyOf(i).replace('.', '_'), sampleValue(i));
  await filler.close();
  const store = context(0);
  await store.open();
  return counted(async () => {
    for (let first = 0; first < WRITES; first += WRITES_PER_FLUSH) {
      for (let i = first; i < Math.min(first + WRITES_PER_FLUSH, WRITES); i++) store.set(scope, keyOf(i).replace('.', '_'), sampleValue(DISK_KEYS + i));
      await new Promise((resolve) => setTimeout(resolve, 1));
      await store.writePromise;
    }
    await store.close();
  });
}

export function measureDisk(name: DiskCase, dir: string): Promise<DiskResult> {
  switch (name) {
    case 'store.immediate':
      return ourStore(dir, 'immediate');
    case 'store.deferred':
      return ourStore(dir, 'deferred');
    case 'keyv':
      return keyvAsShipped(dir);
    case 'localfilesystem':
      return localFileSystem(dir);
  }
}

/** Runs a case in a fresh process (with `env` added) and returns what it measured. */
export function runDiskCase(name: DiskCase, env: NodeJS.ProcessEnv = {}): DiskResult {
  const child = spawnSync(process.execPath, [__filename, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  if (child.status !== 0) throw new Error(`disk ${name} exited with ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout) as DiskResult;
}

if (require.main === module) {
  const name = process.argv[2] as DiskCase;
  if (!DISK_CASES.includes(name)) {
    console.error(`usage: node dist/bench/disk.js <${DISK_CASES.join('|')}>`);
    process.exit(2);
  }
  measureDisk(name, tempDir('flow-cache-bench-disk-'))
    .then((result) => {
      console.log(JSON.stringify(result));
      process.exit(0);
    })
    .catch((error: unknown) => {
      console.error(messageOf(error));
      process.exit(1);
    });
}
