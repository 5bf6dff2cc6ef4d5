// Resident memory growth while writing many entries through the store, in a process of its own so
// nothing else shares its heap: `node --expose-gc dist/bench/rss.js <entries> <out.json>`.
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
  /** Entries per second of the whole write. */
  rate: number;
  dbFileMb: number;
}

const MB = 1024 * 1024;
/** Writes in flight: large batches, so a million entries take seconds rather than a minute. */
const WRITERS = 10_000;

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

export async function measureRss(entries: number): Promise<RssResult> {
  const file = path.join(tempDir('flow-cache-bench-rss-'), 'rss.sqlite');
  // a cap above what 1,000,000 entries take, so every entry stays on disk (the 100 MB default would evict)
  const store = await Store.open(file, { sizeLimitMb: 1024 });
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
    const dbFileMb = fs.statSync(file).size / MB;
    return { entries, growthMb: (after - before) / MB, peakGrowthMb: (peak - before) / MB, rate: (entries * 1000) / ms, dbFileMb };
  } finally {
    await store.close();
    removeDatabase(file);
  }
}

if (require.main === module) {
  const entries = Number(process.argv[2] ?? 1_000_000);
  const out = process.argv[3];
  measureRss(entries)
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
