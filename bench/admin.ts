// What the flow cache sidebar asks of a big store, through the store methods its admin API calls: a
// namespace of 100,000 keys (beside another of 10,000), its first page, a substring filter, the page
// sorted by last write, and the counts per namespace. In a fresh process:
//   node dist/bench/admin.js --child [--quick]   prints the figures as JSON
// `adminFigures(quick)` runs it for bench/run.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Store } from '../nodes/lib/store';
import { inFlight, median, msSince, tempDir } from './lib';

export const ADMIN_DESCRIPTIONS: Record<string, [string, string]> = {
  'admin.list.ms.100k': ['ms', 'admin API: first page (50 keys, by key, with the total) of a namespace of 100,000 keys'],
  'admin.filter.ms.100k': ['ms', 'admin API: keys containing a text (substring, any case), first page and total, in that namespace'],
  'admin.list.stored.ms.100k': ['ms', 'admin API: first page sorted by last write, in that namespace'],
  'admin.namespaces.ms.100k': ['ms', 'admin API: entries, expired entries and bytes of every namespace (110,000 rows)'],
};

const KEYS = 100_000;
const OTHER_KEYS = 10_000;
const NAMESPACE = 'flow:bench';

const keyOf = (i: number) => `counter:sensor.room_${String(i).padStart(5, '0')}`;

async function measure(quick: boolean): Promise<Record<string, number>> {
  const file = path.join(tempDir('flow-cache-bench-admin-'), 'cache.sqlite');
  let store = await Store.open(file, { sweepInterval: 0 });
  await inFlight(KEYS, 1000, (i) => store.set(NAMESPACE, keyOf(i), { count: i, periodStart: null }));
  await inFlight(OTHER_KEYS, 1000, (i) => store.set('shared:other', keyOf(i), i));
  await store.close();
  // measured on the file as a restart finds it: nothing of it in the store's memory
  store = await Store.open(file, { sweepInterval: 0 });
  const rounds = quick ? 5 : 21;
  const timeOf = async (task: () => Promise<unknown>): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const start = process.hrtime.bigint();
      await task();
      times.push(msSince(start));
    }
    return Math.round(median(times) * 100) / 100;
  };
  try {
    const first = await store.listKeys(NAMESPACE, { limit: 50 });
    const filtered = await store.listKeys(NAMESPACE, { filter: 'ROOM_0471', match: 'substring', limit: 50 });
    if (first.total !== KEYS || first.keys.length !== 50 || filtered.total !== 10) {
      throw new Error(`unexpected listing: ${first.total} keys, ${first.keys.length} on the page, ${filtered.total} filtered`);
    }
    return {
      'admin.list.ms.100k': await timeOf(() => store.listKeys(NAMESPACE, { limit: 50 })),
      'admin.filter.ms.100k': await timeOf(() => store.listKeys(NAMESPACE, { filter: 'ROOM_0471', match: 'substring', limit: 50 })),
      'admin.list.stored.ms.100k': await timeOf(() => store.listKeys(NAMESPACE, { sort: 'stored', limit: 50 })),
      'admin.namespaces.ms.100k': await timeOf(() => store.namespaceStats()),
    };
  } finally {
    await store.close();
  }
}

/** The admin figures, measured in a child process of their own. */
export function adminFigures(quick: boolean): { figures: Record<string, number | null>; notes: Record<string, string> } {
  const names = Object.keys(ADMIN_DESCRIPTIONS);
  const result = spawnSync(process.execPath, [__filename, '--child', ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 2] });
  if (result.status !== 0) {
    const why = `failed: exited with ${result.status ?? result.signal}`;
    return { figures: Object.fromEntries(names.map((n) => [n, null])), notes: Object.fromEntries(names.map((n) => [n, why])) };
  }
  const figures = JSON.parse(result.stdout) as Record<string, number>;
  return { figures, notes: { 'admin.list.ms.100k': `median of ${quick ? 5 : 21} calls, store reopened after the writes` } };
}

if (require.main === module && process.argv.includes('--child')) {
  measure(process.argv.includes('--quick')).then(
    (figures) => process.stdout.write(`${JSON.stringify(figures)}\n`),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
