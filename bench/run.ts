// `npm run bench` (`-- --quick` for a shorter run): every figure of the benchmark, measured in one run,
// written to bench/results.json and printed as Markdown. A benchmark, not a test: it never fails on a number.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DriverName } from '../nodes/lib/driver';
import { availableDrivers } from '../nodes/lib/driver';
import { formatNumber, keyvSqliteLoadError, ROOT, storeDriver, tempDir } from './lib';
import type { NodeResult } from './nodes';
import type { RssResult } from './rss';
import { runCase } from './case';
import { contextFigures } from './context';
import { plan, type StallResult } from './store-cases';

type Figures = Record<string, number | null>;

interface Ratio {
  value: number | null;
  target: string;
  /** null when a figure it needs was not measured */
  met: boolean | null;
  note?: string;
}

/** What each figure is, for the table: [unit, description]; `DRIVER` stands for the SQLite driver the store uses in the run. */
const DESCRIPTIONS: Record<string, [string, string]> = {
  'store.set.concurrent': ['sets/s', 'store: durable sets, 1,000 in flight'],
  'store.set.sequential': ['sets/s', 'store: durable sets, one at a time'],
  'store.get.hot': ['gets/s', 'store: gets of 100 hot keys (read cache), 1,000 in flight'],
  'store.get.cold': ['gets/s', 'store: gets of distinct keys right after opening, 1,000 in flight'],
  'store.incr.concurrent': ['updates/s', 'store: 10,000 update() increments issued at once (100 keys)'],
  'store.incr.lost': ['increments', 'store: increments missing on disk afterwards (must be 0)'],
  'store.stall.ms.max': ['ms', 'store (DRIVER): longest event-loop stall while writing 100,000 entries, durable sets, 1,000 in flight'],
  'store.stall.cpu.ms.max': ['ms', 'store (DRIVER): most main-thread CPU time within one such stall (what an idle machine would see)'],
  'store.stall.ms.max.node:sqlite': ['ms', 'longest event-loop stall, as above, with the node:sqlite driver'],
  'store.stall.cpu.ms.max.node:sqlite': ['ms', 'main-thread CPU within one stall, as above, with the node:sqlite driver'],
  'store.stall.ms.max.sqlite3': ['ms', 'longest event-loop stall, as above, with the sqlite3 driver'],
  'store.stall.cpu.ms.max.sqlite3': ['ms', 'main-thread CPU within one stall, as above, with the sqlite3 driver'],
  'baseline.keyv.set.concurrent': ['sets/s', 'keyv + @keyv/sqlite as shipped: sets, 1,000 in flight'],
  'baseline.keyv.set.sequential': ['sets/s', 'keyv + @keyv/sqlite as shipped: sets, one at a time'],
  'baseline.keyv.get': ['gets/s', 'keyv + @keyv/sqlite as shipped: gets, 1,000 in flight'],
  'baseline.sqlite.set.single': ['sets/s', 'DRIVER driver, WAL+NORMAL: one upsert and commit per write'],
  'baseline.sqlite.set.tx': ['sets/s', 'DRIVER driver, WAL+NORMAL: 10,000 upserts in one transaction, 500 rows per statement'],
  'baseline.sqlite.set.tx.prepared': ['sets/s', 'DRIVER driver, WAL+NORMAL: upserts in one transaction, one prepared run per row'],
  'baseline.sqlite.get': ['gets/s', 'DRIVER driver, WAL: point selects + JSON.parse, 8 prepared statements, 1,000 in flight'],
  'node.change': ['msgs/s', 'core change node (one rule)'],
  'node.cache-get.hit': ['msgs/s', 'cache-get, every message a hit (1,000 keys)'],
  'node.cache-set': ['msgs/s', 'cache-set, durable writes (10,000 keys)'],
  'node.cooldown-gate': ['msgs/s', 'cooldown-gate, repeats held back (1,000 armed keys)'],
  'node.counter': ['msgs/s', 'counter, durable increments (1,000 keys)'],
  'node.ttl-fetch.hit': ['msgs/s', 'ttl-fetch, every message a cache hit (100 URLs)'],
  'startup.ms.empty': ['ms', 'open to first get, empty store'],
  'startup.ms.100k': ['ms', 'open to first get, store with 100,000 entries'],
  'rss.mb.1m': ['MiB', 'RSS growth after writing 1,000,000 entries (child process)'],
  'rss.mb.1m.peak': ['MiB', 'highest RSS growth during those writes'],
  'context.set.sync': ['sets/s', 'context store (flow-cache/context): flow.set(k, v) without callback, 10,000 keys, until committed'],
  'context.set.sync.memory': ['sets/s', "Node-RED's memory context store: flow.set(k, v)"],
  'context.set.sync.localfilesystem': ['sets/s', "Node-RED's localfilesystem context store (cache on, flushInterval 30 s): flow.set(k, v)"],
  'context.get.sync': ['gets/s', 'context store (flow-cache/context): flow.get(k), 10,000 keys'],
  'context.get.sync.memory': ['gets/s', "Node-RED's memory context store: flow.get(k)"],
  'context.get.sync.localfilesystem': ['gets/s', "Node-RED's localfilesystem context store: flow.get(k)"],
  'context.set.async': ['sets/s', 'context store (flow-cache/context): flow.set(k, v, cb), 1,000 in flight'],
  'context.set.async.memory': ['sets/s', "Node-RED's memory context store: flow.set(k, v, cb), 1,000 in flight"],
  'context.set.async.localfilesystem': ['sets/s', "Node-RED's localfilesystem context store: flow.set(k, v, cb), 1,000 in flight"],
  'context.open.ms.100k': ['ms', 'context store (flow-cache/context): open() to the first get, 100,000 keys in 100 flows'],
  'context.open.heap.mb.100k': ['MiB', 'context store (flow-cache/context): heap held after that open (collected)'],
  'context.open.rss.mb.100k': ['MiB', 'context store (flow-cache/context): RSS growth over that open (collected)'],
  'context.open.ms.100k.localfilesystem': ['ms', "Node-RED's localfilesystem context store: open() to the first get, the same 100,000 keys"],
  'context.open.heap.mb.100k.localfilesystem': ['MiB', "Node-RED's localfilesystem context store: heap held after that open (collected)"],
  'context.open.rss.mb.100k.localfilesystem': ['MiB', "Node-RED's localfilesystem context store: RSS growth over that open (collected)"],
};

const RATIOS: [string, string, string, '>=' | '<=', number][] = [
  ['store.set.concurrent / baseline.sqlite.set.tx', 'store.set.concurrent', 'baseline.sqlite.set.tx', '>=', 0.3],
  ['store.get.hot / baseline.sqlite.get', 'store.get.hot', 'baseline.sqlite.get', '>=', 10],
  ['store.incr.concurrent / baseline.sqlite.set.tx', 'store.incr.concurrent', 'baseline.sqlite.set.tx', '>=', 0.3],
  ['node.cache-get.hit / node.change', 'node.cache-get.hit', 'node.change', '>=', 0.5],
  ['node.cooldown-gate / node.change', 'node.cooldown-gate', 'node.change', '>=', 0.4],
  ['node.counter / node.change', 'node.counter', 'node.change', '>=', 0.3],
  ['startup.ms.100k / startup.ms.empty', 'startup.ms.100k', 'startup.ms.empty', '<=', 2],
  ['rss.mb.1m', 'rss.mb.1m', '', '<=', 100],
  ['store.set.concurrent / baseline.keyv.set.concurrent', 'store.set.concurrent', 'baseline.keyv.set.concurrent', '>=', 10],
  ['store.get.hot / baseline.keyv.get', 'store.get.hot', 'baseline.keyv.get', '>=', 10],
];

function ratios(figures: Figures, notes: Record<string, string>): Record<string, Ratio> {
  const out: Record<string, Ratio> = {};
  for (const [name, top, bottom, op, target] of RATIOS) {
    const a = figures[top];
    const b = bottom ? figures[bottom] : 1;
    const value = a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;
    const met = value === null ? null : op === '>=' ? value >= target : value <= target;
    const ratio: Ratio = { value, target: `${op} ${target}`, met };
    const missing = [top, bottom].filter((k) => k && (figures[k] === null || figures[k] === undefined));
    if (missing.length > 0) ratio.note = `${missing.map((k) => `${k}: ${(notes[k] ?? 'no figure').replace(/^not measured: /, '')}`).join('; ')}`;
    out[name] = ratio;
  }
  return out;
}

/** A case that yields several figures leaves its failure note under the case name: put it on each figure. */
function moveNote(notes: Record<string, string>, from: string, to: string[]): void {
  if (notes[from] === undefined) return;
  for (const name of to) notes[name] = notes[from];
  delete notes[from];
}

function runChild(script: string, args: string[], nodeArgs: string[] = []): void {
  // the child's output goes to stderr: stdout carries only the Markdown table
  const result = spawnSync(process.execPath, [...nodeArgs, path.join(__dirname, script), ...args], { stdio: ['ignore', 2, 2] });
  if (result.status !== 0) throw new Error(`${script} exited with ${result.status ?? result.signal}`);
}

function nodeRedVersion(): string {
  const line = process.env.NODE_RED_LINE === '5' ? 'node-red5' : 'node-red';
  return (JSON.parse(fs.readFileSync(require.resolve(`${line}/package.json`), 'utf8')) as { version: string }).version;
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function markdown(figures: Figures, notes: Record<string, string>, ratioTable: Record<string, Ratio>, header: string, driver: string): string {
  const lines = [header, '', '| figure | value | unit | what | note |', '|---|---:|---|---|---|'];
  for (const [name, value] of Object.entries(figures)) {
    const [unit, what] = DESCRIPTIONS[name] ?? ['', ''];
    lines.push(`| \`${name}\` | ${value === null ? 'not measured' : formatNumber(value)} | ${unit} | ${what.replace('DRIVER', driver)} | ${notes[name] ?? ''} |`);
  }
  lines.push('', '| ratio | value | target | met |', '|---|---:|---|---|');
  for (const [name, r] of Object.entries(ratioTable)) {
    const met = r.met === null ? `not measured (${r.note ?? 'no figure'})` : r.met ? 'yes' : '**no**';
    lines.push(`| ${name} | ${r.value === null ? '—' : formatNumber(r.value)} | ${r.target} | ${met} |`);
  }
  return lines.join('\n');
}

/** The driver the store uses in this run, or why it has none. */
function driverOfRun(): { driver: DriverName | null; note: string } {
  try {
    const driver = storeDriver();
    const forced = process.env.FLOW_CACHE_DRIVER ? ` (FLOW_CACHE_DRIVER=${process.env.FLOW_CACHE_DRIVER})` : '';
    return { driver, note: `${driver}${forced}` };
  } catch (error) {
    return { driver: null, note: `no driver: ${(error as Error).message}` };
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const started = Date.now();
  const p = plan(quick);
  const figures: Figures = {};
  const notes: Record<string, string> = {};
  const step = async <T>(name: string, measure: () => Promise<T>): Promise<T> => {
    process.stderr.write(`  ${name} ...`);
    const t = Date.now();
    const value = await measure();
    process.stderr.write(` ${typeof value === 'number' ? formatNumber(value) : JSON.stringify(value)} (${((Date.now() - t) / 1000).toFixed(1)} s)\n`);
    return value;
  };
  const { driver, note: driverNote } = driverOfRun();
  const raw = driver ?? 'sqlite';
  process.stderr.write(`flow-cache benchmark${quick ? ' (quick)' : ''} on Node.js ${process.version}, store driver ${driverNote}: median of ${p.repeats} per figure\n`);

  // the store and its baselines, each in a fresh process; a case that fails is recorded, not fatal
  const measure = async <T = number>(label: string, name: Parameters<typeof runCase>[0], env: NodeJS.ProcessEnv = {}, noteAs: string = name): Promise<T | null> => {
    try {
      return await step(label, async () => runCase<T>(name, quick, env));
    } catch (error) {
      process.stderr.write(` failed: ${(error as Error).message}\n`);
      notes[noteAs] = `failed: ${(error as Error).message}`;
      return null;
    }
  };
  figures['store.set.concurrent'] = await measure('store set, 1,000 in flight', 'store.set.concurrent');
  figures['store.set.sequential'] = await measure('store set, one at a time', 'store.set.sequential');
  figures['store.get.hot'] = await measure('store get, hot', 'store.get.hot');
  figures['store.get.cold'] = await measure('store get, cold', 'store.get.cold');
  const incr = await measure<{ rate: number; lost: number }>('store update() increments', 'store.incr');
  figures['store.incr.concurrent'] = incr?.rate ?? null;
  figures['store.incr.lost'] = incr?.lost ?? null;
  if (incr && incr.lost > 0) notes['store.incr.lost'] = `${incr.lost} increments lost: update() is not atomic`;
  moveNote(notes, 'store.incr', ['store.incr.concurrent', 'store.incr.lost']);
  // the longest event-loop stall while writing, with the store's driver and then each other driver this Node.js can load
  const stallDrivers = driver ? [driver, ...availableDrivers().filter((d) => d !== driver)] : [];
  if (!driver) {
    figures['store.stall.ms.max'] = null;
    notes['store.stall.ms.max'] = driverNote;
  }
  for (const d of stallDrivers) {
    const suffix = d === driver ? '' : `.${d}`;
    const name = `store.stall.ms.max${suffix}`;
    const cpuName = `store.stall.cpu.ms.max${suffix}`;
    const stall = await measure<StallResult>(`store stall, ${d}`, 'store.stall', { FLOW_CACHE_DRIVER: d }, name);
    figures[name] = stall?.maxMs ?? null;
    figures[cpuName] = stall?.cpuMaxMs ?? null;
    if (stall && stall.cpuMaxMs === null) notes[cpuName] = `not measured: Node.js ${process.version} has no per-thread CPU clock (process.threadCpuUsage, Node.js >= 22)`;
    else if (!stall) notes[cpuName] = notes[name];
    if (stall) {
      notes[name] =
        `${d}; ${formatNumber(stall.entries)} entries per round, longest of any round ${formatNumber(stall.worstMs)} ms, ` +
        `99th percentile ${formatNumber(stall.p99Ms)} ms, ${formatNumber(stall.rate)} sets/s (an idle loop reads ~1 ms)` +
        (stall.driver === d ? '' : `; the store ran on ${stall.driver}, not ${d}`);
    }
  }
  // keyv + @keyv/sqlite as shipped needs the native sqlite3 module: where it does not load, say so instead of guessing
  const keyvCases = ['baseline.keyv.set.concurrent', 'baseline.keyv.set.sequential', 'baseline.keyv.get'] as const;
  const keyvMissing = keyvSqliteLoadError();
  if (keyvMissing) {
    process.stderr.write(`  keyv baselines not measured: ${keyvMissing}\n`);
    for (const name of keyvCases) {
      figures[name] = null;
      notes[name] = `not measured: ${keyvMissing}`;
    }
  } else {
    figures['baseline.keyv.set.concurrent'] = await measure('keyv set, 1,000 in flight', 'baseline.keyv.set.concurrent');
    figures['baseline.keyv.set.sequential'] = await measure('keyv set, one at a time', 'baseline.keyv.set.sequential');
    figures['baseline.keyv.get'] = await measure('keyv get', 'baseline.keyv.get');
  }
  figures['baseline.sqlite.set.single'] = await measure(`${raw} one commit per write`, 'baseline.sqlite.set.single');
  figures['baseline.sqlite.set.tx'] = await measure(`${raw} one transaction, multi-row`, 'baseline.sqlite.set.tx');
  figures['baseline.sqlite.set.tx.prepared'] = await measure(`${raw} one transaction, row by row`, 'baseline.sqlite.set.tx.prepared');
  figures['baseline.sqlite.get'] = await measure(`${raw} get`, 'baseline.sqlite.get');
  notes['baseline.keyv.set.concurrent'] ??= `${p.keyvSets} sets issued at once, completions counted for up to ${p.keyvBudgetMs / 2000} s (fsync-bound)`;
  notes['baseline.keyv.set.sequential'] ??= `${p.keyvSequentialSets} sets per repetition`;
  notes['store.get.cold'] ??= `${p.coldKeys.toLocaleString('en-US')} keys per repetition`;
  notes['baseline.sqlite.set.tx.prepared'] ??= `${p.preparedRows.toLocaleString('en-US')} rows per transaction`;
  const startup = await measure<{ empty: number; large: number }>('startup', 'store.startup');
  figures['startup.ms.empty'] = startup?.empty ?? null;
  figures['startup.ms.100k'] = startup?.large ?? null;
  moveNote(notes, 'store.startup', ['startup.ms.empty', 'startup.ms.100k']);

  // the context store beside Node-RED's memory and localfilesystem stores, each case in a fresh process
  const contextStarted = Date.now();
  const context = contextFigures(quick, (figure) => process.stderr.write(`  ${figure}\n`));
  Object.assign(figures, context.figures);
  Object.assign(notes, context.notes);
  process.stderr.write(`  (context: ${((Date.now() - contextStarted) / 1000).toFixed(1)} s)\n`);

  // messages through nodes in a running Node-RED, in a child process
  const work = tempDir('flow-cache-bench-run-');
  const nodesFile = path.join(work, 'nodes.json');
  const nodeFigures: Record<string, string> = {
    change: 'node.change',
    'cache-get': 'node.cache-get.hit',
    'cache-set': 'node.cache-set',
    'cooldown-gate': 'node.cooldown-gate',
    counter: 'node.counter',
    'ttl-fetch': 'node.ttl-fetch.hit',
  };
  const nodesStarted = Date.now();
  try {
    runChild('nodes.js', [...(quick ? ['--quick'] : []), '--out', nodesFile]);
    process.stderr.write(`  (nodes: ${((Date.now() - nodesStarted) / 1000).toFixed(1)} s)\n`);
    const results = JSON.parse(fs.readFileSync(nodesFile, 'utf8')) as Record<string, NodeResult>;
    for (const [type, name] of Object.entries(nodeFigures)) {
      const result = results[type];
      figures[name] = result?.rate ?? null;
      if (result?.note) notes[name] = result.note;
      else if (!result) notes[name] = 'no result';
    }
  } catch (error) {
    for (const name of Object.values(nodeFigures)) {
      figures[name] = null;
      notes[name] = `node benchmark failed: ${(error as Error).message}`;
    }
  }

  // resident memory, in a child process of its own
  const entries = quick ? 50_000 : 1_000_000;
  const rssFile = path.join(work, 'rss.json');
  const rssStarted = Date.now();
  process.stderr.write(`  rss: writing ${entries.toLocaleString('en-US')} entries in a child process ...`);
  try {
    runChild('rss.js', [String(entries), rssFile], ['--expose-gc']);
    const rss = JSON.parse(fs.readFileSync(rssFile, 'utf8')) as RssResult;
    figures['rss.mb.1m'] = rss.growthMb;
    figures['rss.mb.1m.peak'] = rss.peakGrowthMb;
    const scaled = entries < 1_000_000 ? `quick run: ${entries.toLocaleString('en-US')} entries, not 1,000,000; ` : '';
    notes['rss.mb.1m'] = `${scaled}written at ${formatNumber(rss.rate)}/s with 10,000 in flight; database ${formatNumber(rss.dbFileMb)} MiB`;
    notes['rss.mb.1m.peak'] = scaled ? 'quick run: scaled down' : '';
    process.stderr.write(` ${formatNumber(rss.growthMb)} MiB (${((Date.now() - rssStarted) / 1000).toFixed(1)} s)\n`);
  } catch (error) {
    figures['rss.mb.1m'] = null;
    figures['rss.mb.1m.peak'] = null;
    notes['rss.mb.1m'] = `failed: ${(error as Error).message}`;
    process.stderr.write(' failed\n');
  }

  const ratioTable = ratios(figures, notes);
  const seconds = (Date.now() - started) / 1000;
  const meta = {
    date: new Date().toISOString(),
    quick,
    seconds: Math.round(seconds * 10) / 10,
    repeats: p.repeats,
    node: process.version,
    driver: driverNote,
    nodeRed: nodeRedVersion(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    commit: gitCommit(),
  };
  const results = { meta, figures, ratios: ratioTable, notes };
  fs.writeFileSync(path.join(ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const header = `Benchmark${quick ? ' (quick)' : ''}: ${meta.date}, Node ${meta.node}, store driver ${driverNote}, Node-RED ${meta.nodeRed}, ${meta.cpus}, ${meta.seconds} s, median of ${p.repeats}`;
  console.log(markdown(figures, notes, ratioTable, header, raw));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
