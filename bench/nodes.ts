// Messages per second through one node in a running Node-RED (the embedded runtime, no editor).
// Run by bench/run.js, one child process per node: `node --expose-gc dist/bench/nodes.js <node> [--quick] --out <file.json>`.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { NodeMessage } from '../nodes/red/api';
import { KEYS, median, perSecond, profiled, ROOT, type Spread, sampleValue, spread, tempDir } from './lib';

/** Message types the package may provide; a type is measured only if its compiled file exists and Node-RED registered it. */
export const PACKAGE_NODES = ['cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'] as const;
export type PackageNode = (typeof PACKAGE_NODES)[number];
/** What is measured, each in a Node-RED of its own: every node type, and variants of a type ('<type>.<variant>'). */
export const NODE_CASES = [...PACKAGE_NODES, 'cooldown-gate.limit', 'counter.redis', 'cooldown-gate.redis'] as const;
/** The cases on a Redis store: measured only where the run has a server (BENCH_REDIS_URL). */
export const REDIS_NODE_CASES: readonly NodeCase[] = ['counter.redis', 'cooldown-gate.redis'];
export type NodeCase = (typeof NODE_CASES)[number];
/** The node type a case measures. */
const typeOf = (name: NodeCase): PackageNode => name.split('.')[0] as PackageNode;

/** Keys the gets, cooldowns and counts go over; URLs ttl-fetch fetches. */
const HOT_KEYS = 1_000;
const FETCH_KEYS = 100;

/** Messages in flight while a node is measured (the sender tops up as messages arrive). */
const WINDOW = 1_000;

export interface NodeResult {
  /**
   * messages/s, null when not measured: the median of the node's rounds, each over the time its main
   * thread ran or waited for I/O (wall time less the time it waited for a core on a busy machine)
   */
  rate: number | null;
  /** the same on the wall clock */
  wallRate?: number | null;
  note: string;
  /** messages/s of each measured round (as `rate`) */
  rounds?: number[];
  /** messages/s of the change-node round before each of this node's rounds */
  changeRounds?: number[];
  /** this node / the change node, one ratio per pair of rounds (as `rate`) */
  ratio?: Spread | null;
  /** the median of the same ratios on the wall clock */
  wallRatio?: number | null;
  /** the share of the rounds' wall time the main thread waited for a core: median and highest */
  wait?: { median: number; max: number } | null;
}

interface RuntimeNode {
  receive(msg: NodeMessage): void;
  on(event: string, handler: (msg: NodeMessage) => void): void;
}

interface RedRuntime {
  init(settings: object): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  nodes: { getNode(id: string): RuntimeNode | null; getType(type: string): unknown };
  runtime: { flows: { setFlows(opts: { flows: { flows: object[] }; deploymentType?: string }): Promise<unknown> } };
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A userDir in which Node-RED finds this package (linked into node_modules, as an install would put it). */
function userDirWithPackage(): string {
  const dir = tempDir('flow-cache-bench-userdir-');
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'node-red-contrib-flow-cache'), 'dir');
  fs.writeFileSync(path.join(dir, 'flows.json'), '[]');
  return dir;
}

async function startNodeRed(userDir: string): Promise<RedRuntime> {
  const line = process.env.NODE_RED_LINE === '5' ? 'node-red5' : 'node-red';
  const RED = require(line) as RedRuntime;
  RED.init({
    userDir,
    flowFile: 'flows.json',
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    credentialSecret: false,
    logging: { console: { level: 'error', metrics: false, audit: false } },
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
    editorTheme: { projects: { enabled: false } },
  });
  await RED.start();
  return RED;
}

async function getNode(RED: RedRuntime, id: string): Promise<RuntimeNode> {
  for (let i = 0; i < 200; i++) {
    const found = RED.nodes.getNode(id);
    if (found) return found;
    await wait(10);
  }
  throw new Error(`node ${id} did not start`);
}

/** An HTTP server on 127.0.0.1 that answers every request with a small JSON body and counts requests. */
async function startUpstream(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const body = JSON.stringify({ path: req.url, ...sampleValue(requests) });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Bench {
  /** Makes message i. */
  message: (i: number) => NodeMessage;
  /** Messages sent before measuring (fills the store, warms the code); not timed. */
  warmup: number;
}

/** Where the messages that passed a node are counted (its sink, second output and catch node). */
interface Sink {
  arrived: number;
  onArrive?: () => void;
}

/** A node under measurement: where messages go in, where they are counted, and the next message number. */
interface Subject {
  name: string;
  target: RuntimeNode;
  sink: Sink;
  message: (i: number) => NodeMessage;
  next: number;
  /** Messages per round, sized from the warm-up so that a round lasts about `roundMs`. */
  count: number;
}

/** How the nodes are measured: `pairs` rounds of the change node and of each node, alternately, each about `roundMs` long. */
export interface NodePlan {
  pairs: number;
  roundMs: number;
  /** Untimed pairs of rounds that warm the code and size the rounds. */
  warmupPairs: number;
}

export function nodePlan(quick: boolean): NodePlan {
  return quick ? { pairs: 5, roundMs: 100, warmupPairs: 2 } : { pairs: 21, roundMs: 200, warmupPairs: 3 };
}

/** Sends `count` messages into `target`, at most WINDOW in flight, and resolves with the milliseconds until all arrived at the sink. */
function pump(target: RuntimeNode, sink: Sink, count: number, message: (i: number) => NodeMessage, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const base = sink.arrived;
    let sent = 0;
    let lastProgress = Date.now();
    const start = process.hrtime.bigint();
    const top = () => {
      while (sent < count && sent - (sink.arrived - base) < WINDOW) target.receive(message(offset + sent++));
    };
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > 10_000) {
        clearInterval(watchdog);
        sink.onArrive = undefined;
        reject(new Error(`stalled: ${sink.arrived - base} of ${count} messages arrived`));
      }
    }, 1_000);
    sink.onArrive = () => {
      lastProgress = Date.now();
      if (sink.arrived - base >= count) {
        clearInterval(watchdog);
        sink.onArrive = undefined;
        resolve(Number(process.hrtime.bigint() - start) / 1e6);
        return;
      }
      top();
    };
    top();
  });
}

const collect = (globalThis as { gc?: () => void }).gc;

/**
 * Milliseconds this process's main thread has spent runnable but waiting for a core (the second
 * field of Linux's /proc/self/schedstat), or null where the kernel does not say.
 */
function runQueueWaitMs(): number | null {
  try {
    const wait = Number(fs.readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(wait) ? wait / 1e6 : null;
  } catch {
    return null;
  }
}

/** One timed round of a node. */
interface Round {
  messages: number;
  wallMs: number;
  /** Of wallMs, the time the main thread waited for a core (0 where not known). */
  waitMs: number;
}

/** Messages per second of the time the main thread ran or waited for its I/O and threads: wall time less its wait for a core. */
const rateOf = (r: Round): number => perSecond(r.messages, r.wallMs - r.waitMs);
/** Messages per second of wall time. */
const wallRateOf = (r: Round): number => perSecond(r.messages, r.wallMs);

/**
 * One timed round: the heap is collected and pending callbacks (status timers, the store's commits)
 * run first, so a round neither pays for the garbage of the one before nor runs beside its leftovers.
 */
async function round(subject: Subject): Promise<Round> {
  collect?.();
  await new Promise((resolve) => setImmediate(resolve));
  const waitBefore = runQueueWaitMs();
  const wallMs = await pump(subject.target, subject.sink, subject.count, subject.message, subject.next);
  const waitAfter = runQueueWaitMs();
  subject.next += subject.count;
  const waitMs = waitBefore === null || waitAfter === null ? 0 : Math.min(waitAfter - waitBefore, wallMs * 0.99);
  return { messages: subject.count, wallMs, waitMs };
}

/** Messages for a round of about `ms` at `rate` messages/s, in whole thousands (at least 2,000). */
function roundSize(rate: number, ms: number): number {
  return Math.max(2, Math.round((rate * ms) / 1000 / 1000)) * 1000;
}

/**
 * Rounds of the change node (a) and of `node` (b), alternately: a b a b ... Each pair's rates are
 * taken a few hundred milliseconds apart, so a change in the machine's load (other processes on a
 * shared machine, frequency scaling) moves both; the ratio is the median of the pairs' ratios.
 * Rounds are sized from the warm-up by the rate without the wait for a core, so a busy machine
 * makes rounds longer, not shorter.
 */
async function alternate(change: Subject, node: Subject, p: NodePlan): Promise<{ a: Round[]; b: Round[] }> {
  for (let w = 0; w < p.warmupPairs; w++) {
    change.count = roundSize(rateOf(await round(change)), p.roundMs);
    node.count = roundSize(rateOf(await round(node)), p.roundMs);
  }
  const a: Round[] = [];
  const b: Round[] = [];
  for (let pair = 0; pair < p.pairs; pair++) {
    a.push(await round(change));
    b.push(await round(node));
  }
  return { a, b };
}

/** A tab of the benchmark flow: the node, a sink for each output and a catch node, all comments that count what arrives. */
function tab(name: string, node: Record<string, unknown>, outputs: number): object[] {
  const z = `tab-${name}`;
  return [
    { id: z, type: 'tab', label: name },
    { ...node, id: `n-${name}`, z, wires: Array.from({ length: outputs }, (_, o) => [o === 0 ? `sink-${name}` : `other-${name}`]) },
    // comment nodes have no input handler of their own: a cheap place to count arrivals
    { id: `sink-${name}`, type: 'comment', z, name: 'sink' },
    { id: `other-${name}`, type: 'comment', z, name: 'second output' },
    { id: `catch-${name}`, type: 'catch', z, scope: null, uncaught: false, wires: [[`errors-${name}`]] },
    { id: `errors-${name}`, type: 'comment', z, name: 'errors' },
  ];
}

/** The node's tab (and what it needs beside it) and how its messages look. */
function benchOf(name: NodeCase, storeFile: string, upstream: string): { flow: object[]; bench: Bench; fill?: number } {
  const redisUrl = process.env.BENCH_REDIS_URL;
  const onRedis = name.endsWith('.redis');
  if (onRedis && !redisUrl) throw new Error('BENCH_REDIS_URL names no Redis server');
  // a Redis store under a prefix of its own per run: nothing left by an earlier case is read back
  const store = onRedis
    ? { id: 'bench-store', type: 'cache-store', name: 'bench', backend: 'redis', redisUrl, redisDb: 0, redisPrefix: `bench-${process.pid}:`, scope: 'flow' }
    : { id: 'bench-store', type: 'cache-store', name: 'bench', path: storeFile, scope: 'flow' };
  const common = { store: store.id, key: 'topic', keyType: 'msg' };
  const hot = (i: number) => `sensor.room_${i % HOT_KEYS}`;
  switch (name) {
    case 'cache-set':
      return {
        flow: [store, ...tab(name, { type: 'cache-set', ...common, operation: 'set', value: 'payload', valueType: 'msg', ttl: 0 }, 1)],
        bench: { message: (i) => ({ topic: `sensor.room_${i % KEYS}`, payload: sampleValue(i) }), warmup: KEYS }, // every key once: the rounds replace values
      };
    case 'cache-get':
      // its keys are written first by a cache-set on the same tab (same namespace)
      return {
        flow: [
          store,
          ...tab(name, { type: 'cache-get', ...common, property: 'payload', defaultType: 'none' }, 2),
          {
            id: 'fill-cache-get',
            type: 'cache-set',
            z: `tab-${name}`,
            ...common,
            operation: 'set',
            value: 'payload',
            valueType: 'msg',
            wires: [['filled-cache-get']],
          },
          { id: 'filled-cache-get', type: 'comment', z: `tab-${name}`, name: 'filled' },
        ],
        bench: { message: (i) => ({ topic: hot(i) }), warmup: HOT_KEYS },
        fill: HOT_KEYS,
      };
    case 'cooldown-gate':
    case 'cooldown-gate.redis':
      // a one-hour cooldown: the warm-up arms every key, the measured messages are held back
      return {
        flow: [store, ...tab(name, { type: 'cooldown-gate', ...common, cooldown: 1, cooldownUnits: 'hours', failOpen: true }, 2)],
        bench: { message: (i) => ({ topic: hot(i), payload: 'on' }), warmup: HOT_KEYS },
      };
    case 'cooldown-gate.limit':
      // 3 passes per key per sliding hour: the warm-up passes each key 3 times, the measured messages are over the limit
      return {
        flow: [store, ...tab(name, { type: 'cooldown-gate', ...common, cooldown: 1, cooldownUnits: 'hours', limit: 3, period: 'sliding', failOpen: true }, 2)],
        bench: { message: (i) => ({ topic: hot(i), payload: 'on' }), warmup: 3 * HOT_KEYS },
      };
    case 'counter':
    case 'counter.redis':
      return {
        flow: [store, ...tab(name, { type: 'counter', ...common, step: 1, initial: 0, resetEvery: 'never' }, 1)],
        bench: { message: (i) => ({ topic: hot(i), payload: 'on' }), warmup: HOT_KEYS },
      };
    case 'ttl-fetch': {
      const node = {
        type: 'ttl-fetch',
        store: store.id,
        key: '',
        keyType: 'msg',
        url: `${upstream}/state/{{topic}}`,
        method: 'GET',
        ttl: 1,
        ttlUnits: 'hours',
        returnType: 'json',
        timeout: 10,
      };
      // one request per URL fills the cache; every measured message is a hit
      return { flow: [store, ...tab(name, node, 1)], bench: { message: (i) => ({ topic: `sensor.room_${i % FETCH_KEYS}` }), warmup: FETCH_KEYS } };
    }
  }
}

/**
 * One node beside the change node, in a Node-RED of its own (a fresh process per node: no node's
 * figure depends on which nodes ran before it, on the code they left optimised for their messages,
 * or on the heap and store files they left). Rounds alternate, change node first.
 */
export async function measureNode(name: NodeCase, quick: boolean): Promise<NodeResult> {
  const p = nodePlan(quick);
  const userDir = userDirWithPackage();
  const upstream = await startUpstream();
  const RED = await startNodeRed(userDir);
  try {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'nodes', `${typeOf(name)}.js`))) return { rate: null, note: 'not built' };
    if (!RED.nodes.getType(typeOf(name))) return { rate: null, note: 'built but not registered by Node-RED (load error)' };
    const { flow, bench, fill } = benchOf(name, path.join(userDir, 'bench-cache.sqlite'), upstream.url);
    const changeTab = tab('change', { type: 'change', rules: [{ t: 'set', p: 'handled', pt: 'msg', to: 'true', tot: 'bool' }] }, 1);
    await RED.runtime.flows.setFlows({ flows: { flows: [...changeTab, ...flow] }, deploymentType: 'full' });

    // each tab's sink counts what passed its node: the first output, the second (a suppressed repeat, a miss) and errors
    const counters = async (tabName: string) => {
      const counted = { sink: { arrived: 0 } as Sink, other: 0, errors: [] as string[] };
      const arrive = () => {
        counted.sink.arrived++;
        counted.sink.onArrive?.();
      };
      (await getNode(RED, `sink-${tabName}`)).on('input', arrive);
      (await getNode(RED, `other-${tabName}`)).on('input', () => {
        counted.other++;
        arrive();
      });
      (await getNode(RED, `errors-${tabName}`)).on('input', (msg) => {
        counted.errors.push(String((msg.error as { message?: string } | undefined)?.message));
        arrive();
      });
      return counted;
    };
    const changeCounts = await counters('change');
    const counts = await counters(name);
    if (fill) {
      const filled: Sink = { arrived: 0 };
      (await getNode(RED, 'filled-cache-get')).on('input', () => {
        filled.arrived++;
        filled.onArrive?.();
      });
      await pump(await getNode(RED, 'fill-cache-get'), filled, fill, (i) => ({ topic: `sensor.room_${i}`, payload: sampleValue(i) }), 0);
    }
    const changeMessage = (i: number): NodeMessage => ({ topic: `sensor.room_${i % KEYS}`, payload: sampleValue(i) });
    const change: Subject = { name: 'change', target: await getNode(RED, 'n-change'), sink: changeCounts.sink, message: changeMessage, next: 0, count: 2_000 };
    const node: Subject = { name, target: await getNode(RED, `n-${name}`), sink: counts.sink, message: bench.message, next: 0, count: 2_000 };
    // the warm-up fills the store (every key written, armed or fetched once) before any round
    const fetchesBefore = upstream.requests();
    await pump(node.target, node.sink, bench.warmup, bench.message, 0);
    node.next = bench.warmup;
    const warmFetches = upstream.requests() - fetchesBefore;
    const otherBefore = counts.other;
    const { a, b } = await profiled(`node-${name}`, () => alternate(change, node, p));
    const measured = node.next - bench.warmup;

    const notes: string[] = [];
    const errors = [...changeCounts.errors, ...counts.errors];
    let valid = errors.length === 0;
    if (errors.length > 0) notes.push(`${errors.length} errors (first: ${errors[0]})`);
    if (name === 'cache-get' && counts.other > otherBefore) {
      notes.push(`${counts.other - otherBefore} misses where every message should hit`);
      valid = false;
    }
    if (name === 'cooldown-gate' || name === 'cooldown-gate.redis') {
      notes.push(`${HOT_KEYS} keys armed in warm-up; ${counts.other - otherBefore} of ${measured} held back`);
      if (counts.other - otherBefore !== measured) valid = false;
    }
    if (name === 'cooldown-gate.limit') {
      notes.push(`${HOT_KEYS} keys at their limit of 3 per hour after the warm-up; ${counts.other - otherBefore} of ${measured} held back`);
      if (counts.other - otherBefore !== measured) valid = false;
    }
    if (name === 'ttl-fetch') {
      const during = upstream.requests() - fetchesBefore - warmFetches;
      notes.push(`${warmFetches} upstream requests to fill, ${during} during ${measured} hits`);
      if (during > 0) valid = false;
    }
    notes.push(
      `${p.pairs} rounds of ${node.count.toLocaleString('en-US')} messages, each after a change-node round of ${change.count.toLocaleString('en-US')}`,
    );
    if (!collect) notes.push('run without --expose-gc: rounds were not preceded by a collection');
    if (runQueueWaitMs() === null) notes.push('no /proc/self/schedstat: rates on the wall clock');
    const waits = [...a, ...b].map((r) => r.waitMs / r.wallMs);
    return {
      rate: valid ? median(b.map(rateOf)) : null,
      wallRate: valid ? median(b.map(wallRateOf)) : null,
      note: notes.join('; '),
      rounds: b.map(rateOf),
      changeRounds: a.map(rateOf),
      ratio: valid ? spread(b.map((r, i) => rateOf(r) / rateOf(a[i]))) : null,
      wallRatio: valid ? median(b.map((r, i) => wallRateOf(r) / wallRateOf(a[i]))) : null,
      wait: { median: median(waits), max: Math.max(...waits) },
    };
  } finally {
    await RED.stop().catch(() => undefined);
    await upstream.close();
  }
}

if (require.main === module) {
  const name = process.argv[2] as NodeCase;
  const quick = process.argv.includes('--quick');
  const outIndex = process.argv.indexOf('--out');
  if (!NODE_CASES.includes(name)) {
    console.error(`usage: node --expose-gc dist/bench/nodes.js <${NODE_CASES.join('|')}> [--quick] [--out <file.json>]`);
    process.exit(2);
  }
  measureNode(name, quick)
    .then((result) => {
      const text = JSON.stringify(result, null, 2);
      if (outIndex > 0) fs.writeFileSync(process.argv[outIndex + 1], text);
      else console.log(text);
      process.exit(0); // Node-RED leaves timers behind
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
}
