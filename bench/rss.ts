// Resident memory growth while writing many entries through the store, in a process of its own so
// nothing else shares its heap: `node --expose-gc dist/bench/rss.js <entries> <out.json> [store|harness]`.
// `harness` runs the same writers against a store that keeps nothing and commits at the next turn of
// the event loop: the growth the writers themselves cause (their values, promises and V8's young
// generation sized for them), measured beside the store's in the same run.
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../nodes/lib/store';
import { IN_FLIGHT, inFlight, removeDatabase, sampleValue, tempDir } from './lib';

export interface RssResult {
  entries: number;
  /** RSS after the writes (collected) minus RSS once the store was open, in MiB. */
  growthMb: number;
  /** Highest RSS seen during the writes minus the starting RSS, in MiB. */
  peakGrowthMb: number;
  /**
   * RSS after a garbage collection that also gives back V8's spare young-generation space (what V8
   * does by itself when memory runs short), minus RSS once the store was open, in MiB: what the
   * writes left behind.
   */
  retainedMb: number;
  /** Entries per second of the whole write. */
  rate: number;
  dbFileMb: number;
}

const MB = 1024 * 1024;
/** Writes in flight: large batches, so a million entries take seconds rather than a minute. */
const WRITERS = 10_000;

type Gc = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

function collect(): void {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** A collection that also shrinks the young generation (V8's last-resort flavour; a plain full collection where V8 lacks it). */
function collectAll(): void {
  (globalThis as { gc?: Gc }).gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** What the writers write to: the store, or (harness) a store that keeps nothing and commits at the next turn. */
interface Writable {
  set(namespace: string, key: string, value: unknown): Promise<unknown>;
  close(): Promise<void>;
}

function nothingKept(): Writable {
  let turn: Promise<void> | undefined;
  return {
    set(_namespace, _key, value) {
      JSON.stringify(value);
      turn ??= new Promise<void>((resolve) =>
        setImmediate(() => {
          turn = undefined;
          resolve();
        }),
      );
      return turn;
    },
    close: async () => undefined,
  };
}

export async function measureRss(entries: number, harness = false): Promise<RssResult> {
  const file = path.join(tempDir('flow-cache-bench-rss-'), 'rss.sqlite');
  // a cap above what 1,000,000 entries take, so every entry stays on disk (the 100 MB default would evict)
  const store: Writable = harness ? nothingKept() : await Store.open(file, { sizeLimitMb: 1024 });
  try {
    await inFlight(1_000, IN_FLIGHT, (i) => store.set('flow:rss', `warm.${i}`, sampleValue(i)));
    collect();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 50);
    const start = process.hrtime.bigint();
    await inFlight(entries, WRITERS, (i) => store.set('flow:rss', `entry.${i}`, sampleValue(i)));
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    collect();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = process.memoryUsage.rss();
    collectAll();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const retained = process.memoryUsage.rss();
    const dbFileMb = harness ? 0 : fs.statSync(file).size / MB;
    return {
      entries,
      growthMb: (after - before) / MB,
      peakGrowthMb: (peak - before) / MB,
      retainedMb: (retained - before) / MB,
      rate: (entries * 1000) / ms,
      dbFileMb,
    };
  } finally {
    await store.close();
    removeDatabase(file);
  }
}

if (require.main === module) {
  const entries = Number(process.argv[2] ?? 1_000_000);
  const out = process.argv[3];
  measureRss(entries, process.argv[4] === 'harness')
    .then((result) => {
      const text = JSON.stringify(result);
      if (out) fs.writeFileSync(out, text);
      else console.log(text);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
