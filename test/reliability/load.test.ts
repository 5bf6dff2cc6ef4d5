import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { NodeMessage } from '../../nodes/red/api';
import { StatusReporter } from '../../nodes/red/status';
import { allNodes, helper, initRuntime, node, tempDir } from '../support/harness';
import { integrityCheck } from '../support/node-red-process';

const MESSAGES = Number(process.env.LOAD_MESSAGES) || 100_000;
const KEYS = 100;
const BATCH = 1_000;
const WARM_UP = 10_000;
// generous: the read cache alone may hold 10,000 entries; a leak of one message's worth per message is far above it
const HEAP_GROWTH_LIMIT = 64 * 1024 * 1024;
const RSS_GROWTH_LIMIT = 256 * 1024 * 1024;
const TIMEOUT = 600_000;

/** A garbage collection, if this process can ask for one (node --expose-gc, or the flag set at run time). */
function collector(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

function builtNode(type: string): boolean {
  return fs.existsSync(path.join(__dirname, '..', '..', 'nodes', `${type}.js`));
}

describe('load: 100,000 messages through a flow of every node', () => {
  const complete = ['counter', 'cooldown-gate', 'ttl-fetch'].every(builtNode);
  let upstream: http.Server;
  let upstreamPort: number;
  let upstreamRequests = 0;
  let file: string;

  before(async () => {
    upstream = http.createServer((req, res) => {
      upstreamRequests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ state: 'on', path: req.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    initRuntime();
    StatusReporter.intervalMs = 250; // as in production: a burst does not flood the editor with status events
    await helper.startServer();
    file = path.join(tempDir('load-'), 'cache.sqlite');
  });
  after(async () => {
    await helper.unload();
    await helper.stopServer();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('accounts for every message, makes one upstream request per key and keeps memory bounded', { timeout: TIMEOUT }, async (t) => {
    if (!complete) return t.skip('counter, cooldown-gate and ttl-fetch are not all built yet');
    const z = 'loadTab';
    const store = { store: 'store1', key: 'topic', keyType: 'msg' };
    await helper.load(allNodes(), [
      { id: z, type: 'tab', label: 'Load' },
      { id: 'store1', type: 'cache-store', name: 'load store', path: file, scope: 'flow' },
      { id: 'count1', type: 'counter', z, ...store, step: 1, initial: 0, resetEvery: 'never', wires: [['gate1']] },
      { id: 'gate1', type: 'cooldown-gate', z, ...store, cooldown: 1, cooldownUnits: 'hours', failOpen: false, wires: [['fetch1', 'passedOut'], ['fetch1']] },
      { id: 'passedOut', type: 'helper', z },
      {
        id: 'fetch1',
        type: 'ttl-fetch',
        z,
        store: 'store1',
        url: `http://127.0.0.1:${upstreamPort}/states/{{topic}}`,
        method: 'GET',
        ttl: 1,
        ttlUnits: 'hours',
        returnType: 'json',
        timeout: 30,
        key: '',
        keyType: 'str',
        wires: [['set1']],
      },
      { id: 'set1', type: 'cache-set', z, ...store, operation: 'set', value: 'payload', valueType: 'msg', ttl: 0, wires: [['get1']] },
      { id: 'get1', type: 'cache-get', z, ...store, property: 'stored', defaultType: 'none', wires: [['sink'], ['lost']] },
      { id: 'sink', type: 'helper', z },
      { id: 'lost', type: 'helper', z },
      { id: 'catch1', type: 'catch', z, scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z },
    ]);

    // the test helper wraps every node's send/status/log in a recording spy: put the runtime's own methods back
    // (its unload restores them again) and forget anything recorded, so that only the runtime is measured
    type Spied = Record<string, { wrappedMethod?: unknown }>;
    const internals = helper as unknown as { _sandbox?: { resetHistory(): void }; _NodePrototype?: Spied; _log?: Spied };
    const unwrap = (target: Spied | undefined, method: string) => {
      const original = target?.[method]?.wrappedMethod;
      if (target && typeof original === 'function') target[method] = original as Spied[string];
    };
    for (const method of ['log', 'status', 'warn', 'error', 'debug', 'trace', 'send']) unwrap(internals._NodePrototype, method);
    unwrap(internals._log, 'log');
    const sandbox = internals._sandbox;
    let arrived = 0;
    let lost = 0;
    let failed = 0;
    let passed = 0;
    const highest = new Map<string, number>();
    const errors: string[] = [];
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    node('sink').on('input', (msg: NodeMessage) => {
      arrived++;
      const count = (msg.counter as { count: number }).count;
      const topic = msg.topic as string;
      if (count > (highest.get(topic) ?? 0)) highest.set(topic, count);
      assert.deepEqual(msg.stored, { state: 'on', path: `/states/${topic}` });
      notify();
    });
    node('passedOut').on('input', () => {
      passed++;
    });
    node('lost').on('input', () => {
      lost++;
      notify();
    });
    node('caught').on('input', (msg: NodeMessage) => {
      failed++;
      if (errors.length < 5) errors.push(String((msg.error as { message: string }).message));
      notify();
    });
    const ended = () => arrived + lost + failed;
    const gc = collector();
    const memory = () => {
      gc?.();
      gc?.();
      return gc ? process.memoryUsage().heapUsed : process.memoryUsage().rss;
    };

    let sent = 0;
    let baseline = 0;
    const started = process.hrtime.bigint();
    while (sent < MESSAGES) {
      const size = Math.min(BATCH, MESSAGES - sent);
      for (let i = 0; i < size; i++, sent++) node('count1').receive({ topic: `sensor.${sent % KEYS}`, payload: sent });
      while (ended() < sent) {
        // polls for the batch's last message; the test's timeout ends a hang
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1_000).unref();
        });
      }
      sandbox?.resetHistory();
      if (sent === WARM_UP) baseline = memory();
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const growth = memory() - baseline;

    assert.deepEqual(errors, []);
    assert.equal(arrived + lost + failed, MESSAGES, 'every message is accounted for');
    assert.equal(arrived, MESSAGES);
    assert.equal(passed, KEYS, 'the gate passes the first message per key and holds back the rest');
    assert.equal(highest.size, KEYS);
    for (const [topic, count] of highest) assert.equal(count, MESSAGES / KEYS, `${topic} counted every message`);
    assert.equal(upstreamRequests, KEYS, 'one upstream request per key; every other message is a cache hit');
    const limit = gc ? HEAP_GROWTH_LIMIT : RSS_GROWTH_LIMIT;
    t.diagnostic(
      `${MESSAGES} messages in ${seconds.toFixed(1)} s (${Math.round(MESSAGES / seconds)} msg/s through 5 store nodes); ` +
        `${gc ? 'heapUsed' : 'RSS'} grew ${(growth / 1024 / 1024).toFixed(1)} MB after the first ${WARM_UP} messages`,
    );
    assert.ok(growth < limit, `memory grew ${(growth / 1024 / 1024).toFixed(1)} MB over ${MESSAGES - WARM_UP} messages`);

    await helper.unload();
    assert.equal(await integrityCheck(file), 'ok');
  });
});
