// The context store beside Node-RED's own `memory` and `localfilesystem` stores, called as Node-RED's
// runtime calls them (scope, key, value, callback), each measurement in a fresh process:
//   node --expose-gc dist/bench/context.js <case> <store> [--quick] [--dir <userDir>]   prints the result as JSON
// `contextFigures(quick)` runs them all for bench/run.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { FlowCacheContext } from '../nodes/context/context-store';
import type { NodeRedUtilModule } from '../nodes/context/node-red-util';
import { inFlight, median, msSince, perSecond, sampleValue, tempDir } from './lib';

export const CONTEXT_STORES = ['flow-cache', 'memory', 'localfilesystem'] as const;
export type ContextStoreName = (typeof CONTEXT_STORES)[number];

/** What Node-RED's runtime calls on a context store. */
interface ContextStore {
  open(): Promise<void>;
  close(): Promise<void>;
  get(scope: string, key: string, callback?: (error: unknown, value?: unknown) => void): unknown;
  set(scope: string, key: string, value: unknown, callback?: (error?: unknown) => void): void;
}

const KEYS = 10_000;

/** The key for index i: a flat name (in context, a dot would make it a path into one object). */
function keyOf(i: number): string {
  return `sensor_room_${i % KEYS}`;
}
const OPEN_KEYS = 100_000;
const OPEN_SCOPES = 100;
const MB = 1024 * 1024;

function nodeRedDir(): string {
  return path.dirname(require.resolve(process.env.NODE_RED_LINE === '5' ? 'node-red5/package.json' : 'node-red/package.json'));
}

/** A store as Node-RED makes it from settings.js: `module(config)` with the userDir added; Node-RED's stores with their defaults. */
function makeStore(name: ContextStoreName, userDir: string): ContextStore {
  if (name === 'flow-cache') {
    const util = require(require.resolve('@node-red/util', { paths: [nodeRedDir()] })) as NodeRedUtilModule;
    const quiet = { info: () => undefined, warn: () => undefined, error: (m: string) => process.stderr.write(`${m}\n`) };
    return new FlowCacheContext({ settings: { userDir } }, { util: util.util, logger: quiet }) as unknown as ContextStore;
  }
  const runtime = path.dirname(require.resolve('@node-red/runtime/package.json', { paths: [nodeRedDir()] }));
  const make = require(path.join(runtime, 'lib', 'nodes', 'context', `${name}.js`)) as (config: object) => ContextStore;
  return make({ settings: { userDir } });
}

/** Resolves once every change made so far is committed (this store), or at once (the others write later or never). */
async function settled(store: ContextStore): Promise<void> {
  if (store instanceof FlowCacheContext) await store.committed();
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

export interface ContextPlan {
  repeats: number;
  syncSets: number;
  gets: number;
  asyncSets: number;
}

export function contextPlan(quick: boolean): ContextPlan {
  return quick ? { repeats: 3, syncSets: 50_000, gets: 500_000, asyncSets: 20_000 } : { repeats: 3, syncSets: 200_000, gets: 2_000_000, asyncSets: 100_000 };
}

/**
 * Synchronous sets (flow.set(k, v)) of 10,000 keys, 1,000 per turn of the event loop (as messages
 * arrive), until every one is committed: this store's figure includes its commits; memory writes
 * nothing, localfilesystem writes 30 s later.
 */
async function setSync(store: ContextStore, p: ContextPlan): Promise<number> {
  return median(
    await rounds(p.repeats, async (round) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < p.syncSets; i++) {
        store.set('flow1', keyOf(i), sampleValue(i + round));
        if (i % 1000 === 999) await tick();
      }
      await settled(store);
      return perSecond(p.syncSets, msSince(start));
    }),
  );
}

/** Synchronous gets (flow.get(k)) of 10,000 keys. */
async function getSync(store: ContextStore, p: ContextPlan): Promise<number> {
  for (let i = 0; i < KEYS; i++) store.set('flow1', keyOf(i), sampleValue(i));
  await settled(store);
  return median(
    await rounds(p.repeats, async () => {
      const start = process.hrtime.bigint();
      let found = 0;
      for (let i = 0; i < p.gets; i++) if (store.get('flow1', keyOf(i)) !== undefined) found++;
      const rate = perSecond(p.gets, msSince(start));
      if (found !== p.gets) throw new Error(`${p.gets - found} gets missed`);
      return rate;
    }),
  );
}

/** Sets with a callback (flow.set(k, v, cb)), 1,000 in flight: this store calls back once committed. */
async function setAsync(store: ContextStore, p: ContextPlan): Promise<number> {
  return median(
    await rounds(p.repeats, async (round) => {
      const start = process.hrtime.bigint();
      await inFlight(
        p.asyncSets,
        1000,
        (i) => new Promise<void>((resolve, reject) => store.set('flow1', keyOf(i), sampleValue(i + round), (e) => (e ? reject(e) : resolve()))),
      );
      return perSecond(p.asyncSets, msSince(start));
    }),
  );
}

async function rounds(repeats: number, body: (round: number) => Promise<number>): Promise<number[]> {
  await body(-1); // warm-up, not counted
  const values: number[] = [];
  for (let round = 0; round < repeats; round++) values.push(await body(round));
  return values;
}

/** Writes 100,000 keys (100 flow scopes of 1,000) through a store and closes it (localfilesystem writes its files then). */
async function fill(store: ContextStore): Promise<void> {
  for (let i = 0; i < OPEN_KEYS; i++) {
    store.set(`flow${i % OPEN_SCOPES}`, `entity_${i}`, sampleValue(i));
    if (i % 1000 === 999) await tick();
  }
  await settled(store);
}

export interface OpenResult {
  /** open() until the first get answers */
  ms: number;
  /** heap used after open, collected, minus before */
  heapMb: number;
  /** resident memory after open, collected, minus before */
  rssMb: number;
}

/** A fresh process opens a userDir holding 100,000 keys: time to the first get, and the memory it takes. */
async function openLarge(store: ContextStore): Promise<OpenResult> {
  collect();
  const heap = process.memoryUsage().heapUsed;
  const rss = process.memoryUsage.rss();
  const start = process.hrtime.bigint();
  await store.open();
  if (store.get('flow7', 'entity_99907') === undefined) throw new Error('the 100,000 keys did not load');
  const ms = msSince(start);
  collect();
  await new Promise((resolve) => setTimeout(resolve, 100));
  collect();
  const result = { ms, heapMb: (process.memoryUsage().heapUsed - heap) / MB, rssMb: (process.memoryUsage.rss() - rss) / MB };
  await store.close();
  return result;
}

const CASES = {
  'set.sync': setSync,
  'get.sync': getSync,
  'set.async': setAsync,
} as const;
type CaseName = keyof typeof CASES | 'fill' | 'open';

function runChild<T>(name: CaseName, store: ContextStoreName, quick: boolean, dir?: string): T {
  const args = ['--expose-gc', __filename, name, store, ...(quick ? ['--quick'] : []), ...(dir ? ['--dir', dir] : [])];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (child.status !== 0) throw new Error(`context ${name} (${store}) exited with ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout) as T;
}

/** Every context figure, each in a fresh process; a case that fails leaves a note instead of a figure. */
export function contextFigures(
  quick: boolean,
  step: (label: string) => void = () => undefined,
): { figures: Record<string, number | null>; notes: Record<string, string> } {
  const figures: Record<string, number | null> = {};
  const notes: Record<string, string> = {};
  const suffix = (store: ContextStoreName) => (store === 'flow-cache' ? '' : `.${store}`);
  for (const name of Object.keys(CASES) as (keyof typeof CASES)[]) {
    for (const store of CONTEXT_STORES) {
      const figure = `context.${name}${suffix(store)}`;
      step(figure);
      try {
        figures[figure] = runChild<number>(name, store, quick);
      } catch (error) {
        figures[figure] = null;
        notes[figure] = `failed: ${(error as Error).message}`;
      }
    }
  }
  for (const store of ['flow-cache', 'localfilesystem'] as const) {
    const names = ['ms', 'heap.mb', 'rss.mb'].map((what) => `context.open.${what}.100k${suffix(store)}`);
    step(names[0]);
    try {
      const dir = tempDir('flow-cache-bench-context-');
      runChild('fill', store, quick, dir);
      const result = runChild<OpenResult>('open', store, quick, dir);
      [figures[names[0]], figures[names[1]], figures[names[2]]] = [result.ms, result.heapMb, result.rssMb];
    } catch (error) {
      for (const name of names) {
        figures[name] = null;
        notes[name] = `failed: ${(error as Error).message}`;
      }
    }
  }
  notes['context.set.sync'] = 'until every set is committed';
  notes['context.set.sync.localfilesystem'] = 'in memory; written to disk up to 30 s later';
  notes['context.set.async'] = 'called back once committed';
  notes['context.set.async.localfilesystem'] = 'called back at once; written to disk up to 30 s later';
  return { figures, notes };
}

if (require.main === module) {
  const [name, store] = process.argv.slice(2) as [CaseName, ContextStoreName];
  const quick = process.argv.includes('--quick');
  const dirAt = process.argv.indexOf('--dir');
  const userDir = dirAt > 0 ? process.argv[dirAt + 1] : tempDir('flow-cache-bench-context-');
  const run = async (): Promise<unknown> => {
    const context = makeStore(store, userDir);
    if (name === 'open') return openLarge(context);
    await context.open();
    try {
      if (name === 'fill') return await fill(context);
      const measure = CASES[name];
      if (!measure) throw new Error(`unknown case ${name}`);
      return await measure(context, contextPlan(quick));
    } finally {
      await context.close();
    }
  };
  run()
    .then((result) => {
      console.log(JSON.stringify(result ?? null));
      process.exit(0);
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
}
