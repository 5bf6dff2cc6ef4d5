// `npm run bench` (`-- --quick` for a shorter run): every figure of the benchmark, measured in one run,
// written to bench/results.json and printed as Markdown. A benchmark, not a test: it never fails on a number.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DriverName } from '../nodes/lib/driver';
import { availableDrivers } from '../nodes/lib/driver';
import { messageOf } from '../nodes/lib/errors';
import { ADMIN_DESCRIPTIONS, adminFigures } from './admin';
import { runCase } from './case';
import { contextFigures } from './context';
import { inGroup, type MemoryGroup, memoryGroup } from './device';
import { type DiskCase, runDiskCase } from './disk';
import { formatNumber, keyvSqliteLoadError, median, ROOT, type Spread, storeDriver, tempDir } from './lib';
import { NODERED_DESCRIPTIONS, NODERED_RATIOS, noderedFigures } from './nodered';
import { NODE_CASES, type NodeCase, type NodeResult, REDIS_NODE_CASES } from './nodes';
import { REDIS_DESCRIPTIONS, REDIS_RATIOS, redisStoreFigures, startBenchRedis } from './redis';
import type { RssResult } from './rss';
import { plan, type StallResult } from './store-cases';

type Figures = Record<string, number | null>;

interface Ratio {
  value: number | null;
  /** '' where the ratio has no target */
  target: string;
  /** null when a figure it needs was not measured, or the ratio has no target */
  met: boolean | null;
  note?: string;
  /** node ratios: the spread of the ratios of the pairs of rounds whose median is `value` */
  spread?: Omit<Spread, 'median'>;
  /** node ratios: the median of the same pairs' ratios on the wall clock */
  wallClock?: number | null;
  /** node ratios: the share of the rounds' time the process waited for a core (median, highest) */
  wait?: { median: number; max: number } | null;
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
  'node.cooldown-gate.limit': ['msgs/s', 'cooldown-gate with a limit of 3 per sliding hour, messages over the limit held back (1,000 keys)'],
  'node.counter': ['msgs/s', 'counter, durable increments (1,000 keys)'],
  'node.ttl-fetch.hit': ['msgs/s', 'ttl-fetch, every message a cache hit (100 URLs)'],
  'disk.kib.per.write': [
    'KiB',
    'store (DRIVER), immediate: bytes sent to the storage layer per durable write (2,000 writes of ~100 bytes to 1,000 keys, close and checkpoint included)',
  ],
  'disk.kib.per.write.deferred': ['KiB', 'store (DRIVER), deferred: the same, a flush every 30 writes (its 30 s flush at 1 write/s)'],
  'disk.kib.per.write.node:sqlite': ['KiB', 'store, immediate, as above, with the node:sqlite driver'],
  'disk.kib.per.write.deferred.node:sqlite': ['KiB', 'store, deferred, as above, with the node:sqlite driver'],
  'disk.kib.per.write.sqlite3': ['KiB', 'store, immediate, as above, with the sqlite3 driver'],
  'disk.kib.per.write.deferred.sqlite3': ['KiB', 'store, deferred, as above, with the sqlite3 driver'],
  'disk.kib.per.write.keyv': ['KiB', 'keyv + @keyv/sqlite as shipped: the same writes'],
  'disk.kib.per.write.localfilesystem': [
    'KiB',
    "Node-RED's localfilesystem context store (one flow's 1,000 keys): the same writes, a flush every 30 writes (its 30 s flush at 1 write/s)",
  ],
  'startup.ms.empty': ['ms', 'open to first get, empty store'],
  'startup.ms.100k': ['ms', 'open to first get, store with 100,000 entries'],
  'rss.mb.1m': ['MiB', 'RSS growth after writing 1,000,000 entries (child process)'],
  'rss.mb.1m.peak': ['MiB', 'highest RSS growth during those writes'],
  'rss.mb.1m.retained': ['MiB', 'RSS growth after those writes once V8 has given back its spare young-generation space (what the writes left behind)'],
  'rss.mb.1m.harness': ['MiB', 'the same writers against a store that keeps nothing: the growth the writers and V8 cause without the package'],
  'rss.mb.1m.device.2gb': ['MiB', 'rss.mb.1m in a child confined to 2 GiB (a memory cgroup): Node.js sizes V8 as on a 2 GiB Raspberry Pi, without V8 flags'],
  'rss.mb.1m.device.1gb': ['MiB', 'the same, confined to 1 GiB'],
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

const RATIOS: [string, string, string, '>=' | '<=' | '', number][] = [
  ['store.set.concurrent / baseline.sqlite.set.tx', 'store.set.concurrent', 'baseline.sqlite.set.tx', '>=', 0.3],
  ['store.get.hot / baseline.sqlite.get', 'store.get.hot', 'baseline.sqlite.get', '>=', 10],
  ['store.incr.concurrent / baseline.sqlite.set.tx', 'store.incr.concurrent', 'baseline.sqlite.set.tx', '>=', 0.3],
  ['node.cache-get.hit / node.change', 'node.cache-get.hit', 'node.change', '>=', 0.5],
  ['node.cooldown-gate / node.change', 'node.cooldown-gate', 'node.change', '>=', 0.5],
  ['node.cooldown-gate.limit / node.change', 'node.cooldown-gate.limit', 'node.change', '', 0],
  ['node.counter / node.change', 'node.counter', 'node.change', '>=', 0.3],
  ['node.cache-set / node.change', 'node.cache-set', 'node.change', '', 0],
  ['node.ttl-fetch.hit / node.change', 'node.ttl-fetch.hit', 'node.change', '>=', 0.4],
  ['startup.ms.100k / startup.ms.empty', 'startup.ms.100k', 'startup.ms.empty', '<=', 2],
  // the quick run writes 50,000 entries: its target is 60 MiB (see quickTargets)
  ['rss.mb.1m', 'rss.mb.1m', '', '<=', 100],
  ['rss.mb.1m.device.2gb', 'rss.mb.1m.device.2gb', '', '<=', 100],
  ['rss.mb.1m.device.1gb', 'rss.mb.1m.device.1gb', '', '<=', 100],
  ['disk.kib.per.write', 'disk.kib.per.write', '', '<=', 8],
  ['store.set.concurrent / baseline.keyv.set.concurrent', 'store.set.concurrent', 'baseline.keyv.set.concurrent', '>=', 10],
  ['store.get.hot / baseline.keyv.get', 'store.get.hot', 'baseline.keyv.get', '>=', 10],
  ...[...REDIS_RATIOS, ...NODERED_RATIOS].map(([name, top, bottom]): [string, string, string, '', number] => [name, top, bottom, '', 0]),
];
Object.assign(DESCRIPTIONS, REDIS_DESCRIPTIONS, NODERED_DESCRIPTIONS);

/**
 * The ratios of the figures; a node's ratio to the change node is the median of its pairs of rounds
 * (`paired`, by the node's figure), not the quotient of the two medians; a ratio between two nodes is
 * the quotient of their medians.
 */
/** Targets that differ in a quick run, which measures less: RSS growth for 50,000 entries, not 1,000,000. */
const QUICK_TARGETS: Record<string, number> = { 'rss.mb.1m': 60, 'rss.mb.1m.device.2gb': 60, 'rss.mb.1m.device.1gb': 60 };

function ratios(figures: Figures, notes: Record<string, string>, paired: Record<string, NodeResult>, quick: boolean): Record<string, Ratio> {
  const out: Record<string, Ratio> = {};
  for (const [name, top, bottom, op, fullTarget] of RATIOS) {
    const target = quick ? (QUICK_TARGETS[name] ?? fullTarget) : fullTarget;
    const a = figures[top];
    const b = bottom ? figures[bottom] : 1;
    // the pairs were measured against the change node: they give only the ratio to it
    const pairs = bottom === 'node.change' ? paired[top]?.ratio : undefined;
    const value = a === null || a === undefined || b === null || b === undefined || b === 0 ? null : pairs ? pairs.median : a / b;
    const met = value === null || op === '' ? null : op === '>=' ? value >= target : value <= target;
    const ratio: Ratio = { value, target: op === '' ? '' : `${op} ${target}`, met };
    if (pairs && value !== null) {
      const { median: _median, ...rest } = pairs;
      ratio.spread = rest;
      ratio.wallClock = paired[top].wallRatio ?? null;
      ratio.wait = paired[top].wait ?? null;
    }
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

/** Runs a benchmark script in a Node.js child of its own (confined to a memory cgroup when `group` is given). */
function runChild(script: string, args: string[], nodeArgs: string[] = [], group?: MemoryGroup): void {
  const node: [string, string[]] = [process.execPath, [...nodeArgs, path.join(__dirname, script), ...args]];
  const [command, argv] = group ? inGroup(group, ...node) : node;
  // the child's output goes to stderr: stdout carries only the Markdown table
  const result = spawnSync(command, argv, { stdio: ['ignore', 2, 2] });
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

/** A ratio with three significant digits (0.0412, 0.412, 4.12, 41.2, 412). */
function formatRatio(value: number): string {
  return Math.abs(value) >= 1000 ? formatNumber(value) : String(Number(value.toPrecision(3)));
}

function markdown(figures: Figures, notes: Record<string, string>, ratioTable: Record<string, Ratio>, header: string, driver: string): string {
  const lines = [header, '', '| figure | value | unit | what | note |', '|---|---:|---|---|---|'];
  for (const [name, value] of Object.entries(figures)) {
    const [unit, what] = DESCRIPTIONS[name] ?? ['', ''];
    lines.push(
      `| \`${name}\` | ${value === null ? 'not measured' : formatNumber(value)} | ${unit} | ${what.replace('DRIVER', driver)} | ${notes[name] ?? ''} |`,
    );
  }
  lines.push('', '| ratio | value | spread of the pairs: min–max (quartiles) | target | met |', '|---|---:|---|---|---|');
  for (const [name, r] of Object.entries(ratioTable)) {
    const met = r.value === null ? `not measured (${r.note ?? 'no figure'})` : r.met === null ? '' : r.met ? 'yes' : '**no**';
    const s = r.spread;
    const spreadText = s ? `${formatRatio(s.min)}–${formatRatio(s.max)} (${formatRatio(s.q1)}–${formatRatio(s.q3)}), ${s.n} pairs` : '';
    lines.push(`| ${name} | ${r.value === null ? '—' : formatRatio(r.value)} | ${spreadText} | ${r.target} | ${met} |`);
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
  process.stderr.write(
    `flow-cache benchmark${quick ? ' (quick)' : ''} on Node.js ${process.version}, store driver ${driverNote}: median of ${p.repeats} per figure\n`,
  );

  // the store and its baselines, each in a fresh process; a case that fails is recorded, not fatal
  const measure = async <T = number>(
    label: string,
    name: Parameters<typeof runCase>[0],
    env: NodeJS.ProcessEnv = {},
    noteAs: string = name,
  ): Promise<T | null> => {
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
    if (stall && stall.cpuMaxMs === null)
      notes[cpuName] = `not measured: Node.js ${process.version} has no per-thread CPU clock (process.threadCpuUsage, Node.js >= 22)`;
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

  // bytes sent to the storage layer per durable write: the store in each mode with each driver this Node.js can load, keyv, localfilesystem
  const diskFigure = async (label: string, figure: string, name: DiskCase, env: NodeJS.ProcessEnv = {}): Promise<number | null> => {
    try {
      const result = await step(label, async () => runDiskCase(name, env));
      const perDay = (result.kibPerWrite * 86_400) / 1024;
      notes[figure] = `${formatNumber(perDay)} MiB a day at one write per second`;
      return result.kibPerWrite;
    } catch (error) {
      process.stderr.write(` failed: ${messageOf(error)}\n`);
      notes[figure] = `failed: ${messageOf(error)}`;
      return null;
    }
  };
  for (const d of stallDrivers) {
    for (const mode of ['immediate', 'deferred'] as const) {
      const figure = `disk.kib.per.write${mode === 'deferred' ? '.deferred' : ''}${d === driver ? '' : `.${d}`}`;
      figures[figure] = await diskFigure(`disk writes, ${mode}, ${d}`, figure, `store.${mode}`, { FLOW_CACHE_DRIVER: d });
    }
  }
  if (keyvMissing) {
    figures['disk.kib.per.write.keyv'] = null;
    notes['disk.kib.per.write.keyv'] = `not measured: ${keyvMissing}`;
  } else {
    figures['disk.kib.per.write.keyv'] = await diskFigure('disk writes, keyv', 'disk.kib.per.write.keyv', 'keyv');
  }
  figures['disk.kib.per.write.localfilesystem'] = await diskFigure('disk writes, localfilesystem', 'disk.kib.per.write.localfilesystem', 'localfilesystem');

  // the context store beside Node-RED's memory and localfilesystem stores, each case in a fresh process
  const contextStarted = Date.now();
  const context = contextFigures(quick, (figure) => process.stderr.write(`  ${figure}\n`));
  Object.assign(figures, context.figures);
  Object.assign(notes, context.notes);
  process.stderr.write(`  (context: ${((Date.now() - contextStarted) / 1000).toFixed(1)} s)\n`);

  // what the flow cache sidebar asks of a namespace of 100,000 keys, in a fresh process
  process.stderr.write('  admin API listing, 100,000 keys\n');
  const admin = adminFigures(quick);
  Object.assign(DESCRIPTIONS, ADMIN_DESCRIPTIONS);
  Object.assign(figures, admin.figures);
  Object.assign(notes, admin.notes);

  // the Redis backend on a redis-server of the run's own: its store figures beside raw @redis/client, then its nodes below
  const redis = await startBenchRedis();
  const redisMissing = 'missing' in redis ? redis.missing : undefined;
  if ('server' in redis) {
    process.stderr.write(`  Redis backend (redis-server on ${redis.server.url})\n`);
    const measured = redisStoreFigures(redis.server.url, quick, (line) => process.stderr.write(`    ${line}\n`));
    Object.assign(figures, measured.figures);
    Object.assign(notes, measured.notes);
    process.env.BENCH_REDIS_URL = redis.server.url;
  } else {
    process.stderr.write(`  Redis backend not measured: ${redisMissing}\n`);
    for (const name of Object.keys(REDIS_DESCRIPTIONS)) {
      figures[name] = null;
      notes[name] = `not measured: ${redisMissing}`;
    }
  }

  // messages through nodes in a running Node-RED: each node beside the change node, in a child process of its own
  const work = tempDir('flow-cache-bench-run-');
  const nodeFigures: Record<NodeCase, string> = {
    'cache-get': 'node.cache-get.hit',
    'cache-set': 'node.cache-set',
    'cooldown-gate': 'node.cooldown-gate',
    'cooldown-gate.limit': 'node.cooldown-gate.limit',
    counter: 'node.counter',
    'ttl-fetch': 'node.ttl-fetch.hit',
    'counter.redis': 'redis.node.counter',
    'cooldown-gate.redis': 'redis.node.cooldown-gate',
  };
  const nodesStarted = Date.now();
  const paired: Record<string, NodeResult> = {};
  const changeRounds: number[] = [];
  const only = process.env.BENCH_ONLY?.split(',');
  for (const type of NODE_CASES) {
    const name = nodeFigures[type];
    if (only && !only.includes(type)) continue;
    if (redisMissing && REDIS_NODE_CASES.includes(type)) continue;
    const file = path.join(work, `node-${type}.json`);
    const t = Date.now();
    process.stderr.write(`  node ${type} beside the change node ...`);
    try {
      runChild('nodes.js', [type, ...(quick ? ['--quick'] : []), '--out', file], ['--expose-gc']);
      const result = JSON.parse(fs.readFileSync(file, 'utf8')) as NodeResult;
      figures[name] = result.rate;
      if (result.note) notes[name] = result.note;
      paired[name] = result;
      changeRounds.push(...(result.changeRounds ?? []));
      const r = result.ratio;
      process.stderr.write(
        r
          ? ` ${formatNumber(result.rate)}/s, ratio ${formatRatio(r.median)} (${formatRatio(r.min)}–${formatRatio(r.max)}) (${((Date.now() - t) / 1000).toFixed(1)} s)\n`
          : ` ${result.note}\n`,
      );
    } catch (error) {
      figures[name] = null;
      notes[name] = `node benchmark failed: ${messageOf(error)}`;
      process.stderr.write(` failed: ${messageOf(error)}\n`);
    }
  }
  figures['node.change'] = changeRounds.length > 0 ? median(changeRounds) : null;
  notes['node.change'] =
    changeRounds.length > 0 ? `median of its ${changeRounds.length} rounds, each just before a round of a node` : 'no node was measured beside it';
  process.stderr.write(`  (nodes: ${((Date.now() - nodesStarted) / 1000).toFixed(1)} s)\n`);
  if ('server' in redis) await redis.server.stop();

  // resident memory, in a child process of its own
  const entries = quick ? 50_000 : 1_000_000;
  const rssFile = path.join(work, 'rss.json');
  const rssStarted = Date.now();
  process.stderr.write(`  rss: writing ${entries.toLocaleString('en-US')} entries in a child process ...`);
  try {
    runChild('rss.js', [String(entries), rssFile], ['--expose-gc']);
    const rss = JSON.parse(fs.readFileSync(rssFile, 'utf8')) as RssResult;
    runChild('rss.js', [String(entries), rssFile, 'harness'], ['--expose-gc']);
    const harness = JSON.parse(fs.readFileSync(rssFile, 'utf8')) as RssResult;
    figures['rss.mb.1m'] = rss.growthMb;
    figures['rss.mb.1m.peak'] = rss.peakGrowthMb;
    figures['rss.mb.1m.retained'] = rss.retainedMb;
    figures['rss.mb.1m.harness'] = harness.growthMb;
    const scaled = entries < 1_000_000 ? `quick run: ${entries.toLocaleString('en-US')} entries, not 1,000,000; ` : '';
    notes['rss.mb.1m'] = `${scaled}written at ${formatNumber(rss.rate)}/s with 10,000 in flight; database ${formatNumber(rss.dbFileMb)} MiB`;
    notes['rss.mb.1m.peak'] = scaled ? 'quick run: scaled down' : '';
    notes['rss.mb.1m.harness'] =
      `peak ${formatNumber(harness.peakGrowthMb)} MiB; after the collection that gives back spare space ${formatNumber(harness.retainedMb)} MiB`;
    process.stderr.write(
      ` ${formatNumber(rss.growthMb)} MiB, without the package ${formatNumber(harness.growthMb)} MiB (${((Date.now() - rssStarted) / 1000).toFixed(1)} s)\n`,
    );
  } catch (error) {
    for (const name of ['rss.mb.1m', 'rss.mb.1m.peak', 'rss.mb.1m.retained', 'rss.mb.1m.harness']) figures[name] = null;
    notes['rss.mb.1m'] = `failed: ${(error as Error).message}`;
    process.stderr.write(' failed\n');
  }

  // the same writes as on devices with less memory: V8 sizes its young generation from the memory it may use
  for (const [figure, limitMb] of [
    ['rss.mb.1m.device.2gb', 2048],
    ['rss.mb.1m.device.1gb', 1024],
  ] as const) {
    const deviceStarted = Date.now();
    process.stderr.write(`  rss: the same in ${limitMb} MiB ...`);
    try {
      const group = memoryGroup(limitMb);
      if (typeof group === 'string') {
        figures[figure] = null;
        notes[figure] = `not measured: ${group}`;
        process.stderr.write(` not measured: ${group}\n`);
        continue;
      }
      fs.rmSync(rssFile, { force: true });
      try {
        runChild('rss.js', [String(entries), rssFile], ['--expose-gc'], group);
      } finally {
        group.remove();
      }
      const device = JSON.parse(fs.readFileSync(rssFile, 'utf8')) as RssResult;
      figures[figure] = device.growthMb;
      notes[figure] = `peak ${formatNumber(device.peakGrowthMb)} MiB; what the writes left behind ${formatNumber(device.retainedMb)} MiB`;
      process.stderr.write(` ${formatNumber(device.growthMb)} MiB (${((Date.now() - deviceStarted) / 1000).toFixed(1)} s)\n`);
    } catch (error) {
      figures[figure] = null;
      notes[figure] = `failed: ${(error as Error).message}`;
      process.stderr.write(' failed\n');
    }
  }

  // Node-RED with the package beside Node-RED without it: start-up, idle RSS and idle CPU, from a child process of its own
  const noderedStarted = Date.now();
  process.stderr.write('  Node-RED with and without the package\n');
  const nodered = noderedFigures(quick);
  Object.assign(figures, nodered.figures);
  Object.assign(notes, nodered.notes);
  process.stderr.write(`  (Node-RED processes: ${((Date.now() - noderedStarted) / 1000).toFixed(1)} s)\n`);

  const ratioTable = ratios(figures, notes, paired, quick);
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
