// Messages per second through one node in a running Node-RED (the embedded runtime, no editor).
// Run by bench/run.js in a child process: `node dist/bench/nodes.js [--quick] --out <file.json>`.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { NodeMessage } from '../nodes/red/api';
import { StatusReporter } from '../nodes/red/status';
import { KEYS, median, perSecond, profiled, ROOT, sampleValue, tempDir } from './lib';

/** Message types the package may provide; a type is measured only if its compiled file exists and Node-RED registered it. */
export const PACKAGE_NODES = ['cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'] as const;

/** Messages in flight while a node is measured (the sender tops up as messages arrive). */
const WINDOW = 1_000;

export interface NodeResult {
  /** messages/s, null when not measured */
  rate: number | null;
  note: string;
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
  /** Node id messages are sent into. */
  target: string;
  /** Makes message i. */
  message: (i: number) => NodeMessage;
  /** Messages sent before measuring (fills the store, warms the code); not timed. */
  warmup: number;
}

/** Sends `count` messages into `target`, at most WINDOW in flight, and resolves with messages/s once all arrived at the sink. */
function pump(target: RuntimeNode, sink: { arrived: number; onArrive?: () => void }, count: number, message: (i: number) => NodeMessage, offset: number): Promise<number> {
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
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        clearInterval(watchdog);
        sink.onArrive = undefined;
        resolve(perSecond(count, ms));
        return;
      }
      top();
    };
    top();
  });
}

export async function measureNodes(quick: boolean): Promise<Record<string, NodeResult>> {
  StatusReporter.intervalMs = 250; // the default: status updates throttled as in production
  const messages = quick ? 3_000 : 10_000;
  const repeats = 3;
  const userDir = userDirWithPackage();
  const dbFile = path.join(userDir, 'bench-cache.sqlite');
  const upstream = await startUpstream();
  const RED = await startNodeRed(userDir);
  const results: Record<string, NodeResult> = {};
  try {
    const built = PACKAGE_NODES.filter((type) => fs.existsSync(path.join(ROOT, 'dist', 'nodes', `${type}.js`)));
    const registered = built.filter((type) => RED.nodes.getType(type));
    for (const type of PACKAGE_NODES) {
      if (!built.includes(type)) results[type] = { rate: null, note: 'not built' };
      else if (!registered.includes(type)) results[type] = { rate: null, note: 'built but not registered by Node-RED (load error)' };
    }
    const store = { id: 'benchStore', type: 'cache-store', name: 'bench', path: dbFile, scope: 'flow' };
    const common = { store: 'benchStore', key: 'topic', keyType: 'msg' };
    const hotKeys = 1_000;
    const fetchKeys = 100;
    const flow: object[] = [store];
    const benches: Record<string, Bench> = {};
    const add = (name: string, node: Record<string, unknown>, outputs: number, bench: Omit<Bench, 'target'>) => {
      const tab = `tab-${name}`;
      flow.push(
        { id: tab, type: 'tab', label: name },
        { ...node, id: `n-${name}`, z: tab, wires: Array.from({ length: outputs }, (_, o) => [o === 0 ? `sink-${name}` : `other-${name}`]) },
        // comment nodes have no input handler of their own: a cheap place to count arrivals
        { id: `sink-${name}`, type: 'comment', z: tab, name: 'sink' },
        { id: `other-${name}`, type: 'comment', z: tab, name: 'second output' },
        { id: `catch-${name}`, type: 'catch', z: tab, scope: null, uncaught: false, wires: [[`errors-${name}`]] },
        { id: `errors-${name}`, type: 'comment', z: tab, name: 'errors' },
      );
      benches[name] = { target: `n-${name}`, ...bench };
    };
    const event = (i: number): NodeMessage => ({ topic: `sensor.room_${i % KEYS}`, payload: sampleValue(i) });
    add('change', { type: 'change', rules: [{ t: 'set', p: 'handled', pt: 'msg', to: 'true', tot: 'bool' }] }, 1, { message: event, warmup: messages });
    if (registered.includes('cache-set')) {
      add('cache-set', { type: 'cache-set', ...common, operation: 'set', value: 'payload', valueType: 'msg', ttl: 0 }, 1, {
        message: event,
        warmup: Math.min(KEYS, messages),
      });
    }
    if (registered.includes('cache-get')) {
      // its 1,000 keys are written first by a cache-set on the same tab (same namespace)
      add('cache-get', { type: 'cache-get', ...common, property: 'payload', defaultType: 'none' }, 2, {
        message: (i) => ({ topic: `sensor.room_${i % hotKeys}` }),
        warmup: messages >> 2,
      });
      flow.push(
        { id: 'fill-cache-get', type: 'cache-set', z: 'tab-cache-get', ...common, operation: 'set', value: 'payload', valueType: 'msg', wires: [['filled-cache-get']] },
        { id: 'filled-cache-get', type: 'comment', z: 'tab-cache-get', name: 'filled' },
      );
    }
    if (registered.includes('cooldown-gate')) {
      // 1,000 keys with a one-hour cooldown: the warm-up arms every key, the measured messages are held back
      add('cooldown-gate', { type: 'cooldown-gate', ...common, cooldown: 1, cooldownUnits: 'hours', failOpen: true }, 2, {
        message: (i) => ({ topic: `sensor.room_${i % hotKeys}`, payload: 'on' }),
        warmup: hotKeys,
      });
    }
    if (registered.includes('counter')) {
      add('counter', { type: 'counter', ...common, step: 1, initial: 0, resetEvery: 'never' }, 1, {
        message: (i) => ({ topic: `sensor.room_${i % hotKeys}`, payload: 'on' }),
        warmup: hotKeys,
      });
    }
    if (registered.includes('ttl-fetch')) {
      add('ttl-fetch', { type: 'ttl-fetch', store: 'benchStore', key: '', keyType: 'msg', url: `${upstream.url}/state/{{topic}}`, method: 'GET', ttl: 1, ttlUnits: 'hours', returnType: 'json', timeout: 10 }, 1, {
        message: (i) => ({ topic: `sensor.room_${i % fetchKeys}` }),
        warmup: fetchKeys, // one request per URL fills the cache; every measured message is a hit
      });
    }
    await RED.runtime.flows.setFlows({ flows: { flows: flow }, deploymentType: 'full' });

    const only = process.env.BENCH_ONLY?.split(',');
    for (const [name, bench] of Object.entries(benches)) {
      if (only && !only.includes(name)) continue;
      const target = await getNode(RED, bench.target);
      const sink = { arrived: 0, onArrive: undefined as (() => void) | undefined };
      const other = { arrived: 0 };
      const errors: string[] = [];
      (await getNode(RED, `sink-${name}`)).on('input', () => {
        sink.arrived++;
        sink.onArrive?.();
      });
      (await getNode(RED, `other-${name}`)).on('input', () => {
        other.arrived++;
        sink.arrived++; // a message on the second output has passed the node too (a suppressed repeat, a miss)
        sink.onArrive?.();
      });
      (await getNode(RED, `errors-${name}`)).on('input', (msg) => {
        errors.push(String((msg.error as { message?: string } | undefined)?.message));
        sink.arrived++;
        sink.onArrive?.();
      });
      process.stderr.write(`  node ${name} ...`);
      try {
        if (name === 'cache-get') {
          const filled = { arrived: 0, onArrive: undefined as (() => void) | undefined };
          (await getNode(RED, 'filled-cache-get')).on('input', () => {
            filled.arrived++;
            filled.onArrive?.();
          });
          await pump(await getNode(RED, 'fill-cache-get'), filled, hotKeys, (i) => ({ topic: `sensor.room_${i}`, payload: sampleValue(i) }), 0);
        }
        const fetchesBefore = upstream.requests();
        await pump(target, sink, bench.warmup, bench.message, 0);
        const warmFetches = upstream.requests() - fetchesBefore;
        const otherBefore = other.arrived;
        const rates: number[] = [];
        await profiled(`node-${name}`, async () => {
          for (let r = 0; r < repeats; r++) rates.push(await pump(target, sink, messages, bench.message, bench.warmup + r * messages));
        });
        const rate = median(rates);
        const notes: string[] = [];
        let valid = errors.length === 0;
        if (errors.length > 0) notes.push(`${errors.length} errors (first: ${errors[0]})`);
        if (name === 'cache-get' && other.arrived > otherBefore) {
          notes.push(`${other.arrived - otherBefore} misses where every message should hit`);
          valid = false;
        }
        if (name === 'cooldown-gate') notes.push(`${hotKeys} keys armed in warm-up; ${other.arrived - otherBefore} of ${messages * repeats} measured held back`);
        if (name === 'ttl-fetch') {
          const during = upstream.requests() - fetchesBefore - warmFetches;
          notes.push(`${warmFetches} upstream requests to fill, ${during} during ${messages * repeats} hits`);
          if (during > 0) valid = false;
        }
        results[name] = { rate: valid ? rate : null, note: notes.join('; ') };
        process.stderr.write(` ${Math.round(rate)}/s\n`);
      } catch (error) {
        results[name] = { rate: null, note: `failed: ${(error as Error).message}` };
        process.stderr.write(` failed: ${(error as Error).message}\n`);
      }
    }
  } finally {
    await RED.stop().catch(() => undefined);
    await upstream.close();
  }
  return results;
}

if (require.main === module) {
  const quick = process.argv.includes('--quick');
  const outIndex = process.argv.indexOf('--out');
  measureNodes(quick)
    .then((results) => {
      const text = JSON.stringify(results, null, 2);
      if (outIndex > 0) fs.writeFileSync(process.argv[outIndex + 1], text);
      else console.log(text);
      process.exit(0); // Node-RED leaves timers behind
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
}
