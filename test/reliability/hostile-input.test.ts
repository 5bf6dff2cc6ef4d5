import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Store } from '../../nodes/lib/store';
import type { NodeMessage } from '../../nodes/red/api';
import { allNodes, helper, initRuntime, ManualClock, node, tempDir } from '../support/harness';
import { integrityCheck } from '../support/node-red-process';

// Batches of cache-set/get/delete (up to ~50 messages each); the other nodes get 2.5 times as many
// smaller batches. HOSTILE_RUNS raises it for a longer soak.
const RUNS = Number(process.env.HOSTILE_RUNS) || 60;
const SMALL_BATCH_RUNS = Math.round(RUNS * 2.5);
const TIMEOUT = 300_000;
/** Every error a node raises on purpose carries one of these names (Node-RED shows `Name: message`). */
const OUR_ERRORS = /^(InputError|CacheError|UnstorableValueError|StoreIOError|StoreFullError|UpstreamError): /;
const COOLDOWN_MS = 10_000;
const MAX_KEY = 1024;

// ---------------------------------------------------------------- what a message ends with

interface Track {
  ends: number;
  error?: string;
  outputs: { port: string; msg: NodeMessage }[];
}

/** Follows every message by an id (msg._hid) to its end: the Complete node (done) or the Catch node (error). */
class Ledger {
  private static seq = 0;
  readonly tracks = new Map<number, Track>();
  sent = 0;
  completed = 0;
  caught = 0;
  private wake: (() => void) | undefined;

  constructor(outputs: string[]) {
    node('done').on('input', (msg: NodeMessage) => {
      const t = this.track(msg);
      t.ends++;
      this.completed++;
      this.notify();
    });
    node('caught').on('input', (msg: NodeMessage) => {
      const t = this.track(msg);
      t.ends++;
      t.error = String((msg.error as { message?: unknown } | undefined)?.message);
      this.caught++;
      this.notify();
    });
    for (const port of outputs) {
      node(port).on('input', (msg: NodeMessage) => {
        this.track(msg).outputs.push({ port, msg });
        this.notify();
      });
    }
  }

  /** Sends a message into a node; returns its id. */
  send(target: string, msg: NodeMessage): number {
    const id = ++Ledger.seq;
    msg._hid = id;
    this.tracks.set(id, { ends: 0, outputs: [] });
    this.sent++;
    node(target).receive(msg);
    return id;
  }

  /** Waits until every message ended and every completed one sent `outputs(id)` messages. */
  async settle(ids: number[], outputs: (id: number) => number): Promise<Map<number, Track>> {
    const pending = () =>
      ids.filter((id) => {
        const t = this.tracks.get(id)!;
        return t.ends === 0 || (t.error === undefined && t.outputs.length < outputs(id));
      });
    while (pending().length > 0) {
      let timer: NodeJS.Timeout | undefined;
      // a message that never ends is a failure; this only turns a hang into a readable one
      const woke = await Promise.race([
        new Promise<boolean>((resolve) => {
          this.wake = () => resolve(true);
        }),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), 60_000);
        }),
      ]);
      clearTimeout(timer);
      if (!woke) assert.fail(`messages never ended: ${pending().join(', ')}`);
    }
    return new Map(ids.map((id) => [id, this.tracks.get(id)!]));
  }

  /** Every message ended exactly once, with Complete or Catch: completed + caught == sent. */
  assertAccounted(): void {
    for (const [id, t] of this.tracks) assert.equal(t.ends, 1, `message ${id} ended ${t.ends} times`);
    assert.equal(this.completed + this.caught, this.sent);
  }

  /** Counts since the last call, for the test's diagnostics. */
  tally(): string {
    const line = `${this.sent - this.mark.sent} messages: ${this.completed - this.mark.completed} completed, ${this.caught - this.mark.caught} errors`;
    this.mark = { sent: this.sent, completed: this.completed, caught: this.caught };
    return line;
  }
  private mark = { sent: 0, completed: 0, caught: 0 };

  private track(msg: NodeMessage): Track {
    const t = this.tracks.get(msg._hid as number);
    assert.ok(t, `a message nobody sent arrived: ${String(msg._hid)}`);
    return t;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** fc.assert, with the assertion that failed at the top of the report (the counterexample can be megabytes long). */
async function check<T>(arbitrary: fc.Arbitrary<T>, property: (value: T) => Promise<void>, runs = RUNS): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(arbitrary, property), { numRuns: runs, endOnFailure: true });
  } catch (error) {
    const cause = (error as { cause?: Error }).cause;
    const report = (error as Error).message;
    throw new Error(`${cause?.message ?? 'property failed'}\n${report.length > 3000 ? `${report.slice(0, 3000)}...` : report}`);
  }
}

/** A short text for any value, for failure messages (String() throws on a null-prototype object or a symbol in a template). */
function show(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'symbol' ? value.toString() : String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function resetSpies(): void {
  // the test helper spies on every send/status/log call and keeps their arguments; forget them between batches
  (helper as unknown as { _sandbox?: { resetHistory(): void } })._sandbox?.resetHistory();
}

function assertOurError(track: Track, what: string): void {
  assert.ok(track.error !== undefined, `${what}: expected an error, but it completed with ${track.outputs.length} output(s)`);
  assert.match(track.error, OUR_ERRORS, `${what}: an error the node did not mean to raise`);
}

function assertCompleted(track: Track, what: string): void {
  assert.equal(track.error, undefined, `${what}: expected an output, got the error ${track.error}`);
}

// ---------------------------------------------------------------- generators

const HUGE = 'h'.repeat(2_000_000);
const SPECIAL_TEXT = [
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'valueOf',
  '__defineGetter__',
  'constructor.prototype',
  '__proto__.polluted',
  'a:b',
  '%',
  '_',
  ' ',
  '\u0000',
  'é',
  '💥',
  "'; DROP TABLE keyv; --",
  'cooldown:x',
  'fetch:abc',
  '$t',
];
const LONE_SURROGATES = ['\uD800', '\uDC00', 'a\uDBFF', '\uDFFFz'];
const KEY_POOL = ['sensor.kitchen', 'sensor.door', '__proto__', 'constructor', '💥', 'light.hall', 'a:b', '%'];

const validKey = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KEY_POOL) },
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 30, unit: 'binary' }) },
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL_TEXT) },
  { weight: 1, arbitrary: fc.constant('k'.repeat(MAX_KEY)) },
);
const badKey = fc.oneof(
  fc.constantFrom<unknown>('', 'k'.repeat(MAX_KEY + 1), HUGE, undefined, null, true, false, 0, -0, Number.NaN, Infinity, -Infinity, 1n),
  fc.constantFrom(...LONE_SURROGATES),
  fc.double(),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
  fc.constant(() => 'a function'),
  fc.constant(Symbol('key')),
  fc.constant(new Date(0)),
  fc.constant(Buffer.from('key')),
);
const anyKey = fc.oneof({ weight: 3, arbitrary: validKey }, { weight: 1, arbitrary: badKey });

function isValidKey(key: unknown): key is string {
  return (
    typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY && !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(key)
  );
}

/** An object with the given own properties, set as data (so "__proto__" is a key, not the prototype). */
function ownProperties(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { d: value };
  return value;
}

/** Values the store keeps exactly (read back deep-equal). */
const storable = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue() },
  { weight: 2, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.bigInt() },
  { weight: 1, arbitrary: fc.date({ noInvalidDate: true }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.jsonValue(), fc.jsonValue()), { maxLength: 5 }).map((e) => new Map(e)) },
  { weight: 1, arbitrary: fc.array(fc.jsonValue(), { maxLength: 5 }).map((a) => new Set(a)) },
  { weight: 2, arbitrary: fc.array(fc.tuple(fc.constantFrom(...SPECIAL_TEXT, 'v'), fc.jsonValue()), { maxLength: 6 }).map(ownProperties) },
  { weight: 1, arbitrary: fc.constant(null).map(() => JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}')) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 300 }).map(nested) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(HUGE, '', '\u0000', '\uD800', '💥', -0, Number.NaN, Infinity, -Infinity) },
);

class Thing {
  x = 1;
}

/** Values that cannot be stored: the message must end with an error and nothing written. */
const unstorable = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue().map((v) => {
    const o: Record<string, unknown> = { v };
    o.self = o;
    return o;
  }),
  fc.constant(null).map(() => {
    const a: unknown[] = [1];
    a.push({ back: a });
    return a;
  }),
  fc.constantFrom<unknown>(
    { fn: () => 1 },
    { s: Symbol('x') },
    new Thing(),
    new Uint8Array([1, 2]),
    { [Symbol('k')]: 1 },
    // biome-ignore lint/suspicious/noSparseArray: a sparse array is the point
    [1, , 3],
    new Date(Number.NaN),
    { deep: { list: [new WeakMap()] } },
  ),
);

/** Anything at all: the message must be accounted for; what it does is not predicted. */
const anything = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withMap: true,
  withSet: true,
  withDate: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withObjectString: true,
  withBoxedValues: true,
});

type Category = 'ok' | 'bad' | 'unknown';
const payload = fc.oneof(
  { weight: 6, arbitrary: storable.map((value) => ({ value, category: 'ok' as Category })) },
  { weight: 2, arbitrary: unstorable.map((value) => ({ value, category: 'bad' as Category })) },
  { weight: 2, arbitrary: anything.map((value) => ({ value, category: 'unknown' as Category })) },
);

/** A hostile number field: mostly absent, else every kind of number, numeric text and non-number. */
const numberField = fc.oneof(
  { weight: 5, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
  { weight: 2, arbitrary: fc.double() },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(0, -0, Number.NaN, Infinity, -Infinity, 1e306, -1e306, Number.MAX_VALUE, Number.MIN_VALUE, 1e13, 0.0001, 2 ** 53),
  },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(' 7 ', '0x1f', '1e3', '-5', '', ' ', 'abc', 'Infinity', '-Infinity', 'NaN', '1e400', '__proto__') },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, [], [5], {}, { valueOf: () => 3 }, 1n, Symbol('n')) },
);

/** Extra top-level message fields a hostile sender might add. */
const extras = fc.option(
  fc.constantFrom<[string, unknown][]>(
    [['__proto__', { polluted: 'msg' }]],
    [['constructor', { prototype: { polluted: 'msg' } }]],
    [['prototype', { polluted: 'msg' }]],
    [['cache', 'not an object']],
    [['counter', 42]],
  ),
  { nil: undefined },
);

function message(fields: Record<string, unknown>, extra?: [string, unknown][]): NodeMessage {
  const msg = ownProperties(extra ?? []);
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) msg[k] = v;
  return msg as NodeMessage;
}

/** Numeric text or a number, as the nodes read msg.ttl / msg.increment / msg.count; undefined if not a finite number. */
function finite(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

// ---------------------------------------------------------------- the flow

const TAB = 'hostile';
/** One shared namespace per node under test, all in one database file, so their keys never meet. */
const NAMESPACES = ['set', 'tpl', 'gate', 'count', 'fetch'];
const UNDER_TEST = ['setMsg', 'getMsg', 'delMsg', 'setTpl', 'gate1', 'count1', 'fetch1'];
const OUTPUTS = ['setOut', 'getFound', 'getMissing', 'delOut', 'tplOut', 'gatePass', 'gateHold', 'countOut', 'fetchOut'];

// The test helper loads a core node's module once per node of that type, so the flow has one Catch and one Complete node.
function flow(file: string, upstreamPort: number): object[] {
  const z = TAB;
  const keyed = (ns: string) => ({ store: `store-${ns}`, key: 'topic', keyType: 'msg' });
  return [
    { id: z, type: 'tab', label: 'Hostile input' },
    ...NAMESPACES.map((ns) => ({ id: `store-${ns}`, type: 'cache-store', name: ns, path: file, scope: 'shared', namespace: ns })),
    { id: 'catch1', type: 'catch', z, scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z },
    { id: 'complete1', type: 'complete', z, scope: UNDER_TEST, uncaught: false, wires: [['done']] },
    { id: 'done', type: 'helper', z },
    ...OUTPUTS.map((id) => ({ id, type: 'helper', z })),
    { id: 'setMsg', type: 'cache-set', z, ...keyed('set'), operation: 'set', value: 'payload', valueType: 'msg', ttl: 0, wires: [['setOut']] },
    { id: 'getMsg', type: 'cache-get', z, ...keyed('set'), property: 'payload', defaultType: 'none', wires: [['getFound'], ['getMissing']] },
    { id: 'delMsg', type: 'cache-set', z, ...keyed('set'), operation: 'delete', wires: [['delOut']] },
    {
      id: 'setTpl',
      type: 'cache-set',
      z,
      ...keyed('tpl'),
      key: 'item:{{topic}}',
      keyType: 'str',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      wires: [['tplOut']],
    },
    {
      id: 'gate1',
      type: 'cooldown-gate',
      z,
      ...keyed('gate'),
      cooldown: COOLDOWN_MS / 1000,
      cooldownUnits: 'seconds',
      failOpen: false,
      wires: [['gatePass'], ['gateHold']],
    },
    { id: 'count1', type: 'counter', z, ...keyed('count'), step: 1, initial: 0, resetEvery: 'never', wires: [['countOut']] },
    {
      id: 'fetch1',
      type: 'ttl-fetch',
      z,
      store: 'store-fetch',
      url: `http://127.0.0.1:${upstreamPort}/item/{{topic}}`,
      method: 'GET',
      ttl: 1,
      ttlUnits: 'minutes',
      returnType: 'json',
      timeout: 10,
      key: '',
      keyType: 'str',
      wires: [['fetchOut']],
    },
  ];
}

// ---------------------------------------------------------------- the tests

describe('hostile input: thousands of random messages into every node', () => {
  const nodes = allNodes();
  const has = (type: string) => fs.existsSync(path.join(__dirname, '..', '..', 'nodes', `${type}.js`));
  const clock = new ManualClock();
  let file: string;
  let upstream: http.Server;
  let upstreamPort: number;
  let upstreamRequests = 0;
  let ledger: Ledger;
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  before(async () => {
    process.on('uncaughtExceptionMonitor', onUncaught);
    process.on('unhandledRejection', onUncaught);
    upstream = http.createServer((req, res) => {
      upstreamRequests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    initRuntime();
    await helper.startServer();
    clock.install();
    file = path.join(tempDir('hostile-'), 'cache.sqlite');
    const present = flow(file, upstreamPort).filter((n) => {
      const type = (n as { type: string }).type;
      return !['cooldown-gate', 'counter', 'ttl-fetch'].includes(type) || has(type);
    });
    await helper.load(nodes, present);
    ledger = new Ledger(OUTPUTS.filter((id) => helper.getNode(id)));
  });

  after(async () => {
    await helper.unload();
    await helper.stopServer();
    clock.uninstall();
    await new Promise((resolve) => upstream.close(resolve));
    process.off('uncaughtExceptionMonitor', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  it('cache-set / cache-get / delete: a valid write reads back exactly, a bad one is an error that writes nothing', { timeout: TIMEOUT }, async (t) => {
    type Known = { value: unknown; expiresAt: number | null } | 'unknown';
    const model = new Map<string, Known>();
    const live = (k: Known | undefined) => (k === undefined ? false : k === 'unknown' ? undefined : k.expiresAt === null || k.expiresAt > clock.ms);

    const setMessage = fc.record({ topic: anyKey, payload, ttl: numberField, extra: extras });
    const batch = fc.record({
      sets: fc.array(setMessage, { minLength: 5, maxLength: 25, size: 'max' }),
      gets: fc.array(anyKey, { maxLength: 10 }),
      deletes: fc.array(fc.oneof(fc.constantFrom(...KEY_POOL), badKey), { maxLength: 6 }),
      advance: fc.integer({ min: 0, max: 5_000 }),
    });

    await check(batch, async ({ sets, gets, deletes, advance }) => {
      clock.advance(advance);
      // 1. writes, all at once
      const sent = sets.map((s) => ({ s, id: ledger.send('setMsg', message({ topic: s.topic, payload: s.payload.value, ttl: s.ttl }, s.extra)) }));
      const setResults = await ledger.settle(
        sent.map((x) => x.id),
        () => 1,
      );
      for (const { s, id } of sent) {
        const track = setResults.get(id)!;
        const ttl = s.ttl === undefined ? 0 : finite(s.ttl);
        const expiresAt = ttl ? clock.ms + Math.round(ttl * 1000) : null;
        const ttlOk = ttl !== undefined && ttl >= 0 && (expiresAt === null || expiresAt <= 8.64e15);
        const what = `cache-set topic=${show(s.topic)} ttl=${show(s.ttl)} (${s.payload.category})`;
        if (!isValidKey(s.topic) || !ttlOk || s.payload.category === 'bad') {
          assertOurError(track, what);
          continue;
        }
        if (s.payload.category === 'unknown') {
          if (track.error === undefined) model.set(s.topic, 'unknown');
          else assert.match(track.error, OUR_ERRORS, what);
          continue;
        }
        assertCompleted(track, what);
        assert.equal(track.outputs.length, 1);
        assert.equal((track.outputs[0].msg.cache as { key: string }).key, s.topic);
        model.set(s.topic, { value: s.payload.value, expiresAt });
      }

      // 2. reads of every key the model knows, plus hostile ones
      const keys: unknown[] = [...model.keys(), ...gets];
      const reads = keys.map((key) => ({ key, id: ledger.send('getMsg', message({ topic: key })) }));
      const readResults = await ledger.settle(
        reads.map((r) => r.id),
        () => 1,
      );
      for (const { key, id } of reads) {
        const track = readResults.get(id)!;
        const what = `cache-get topic=${show(key)}`;
        if (!isValidKey(key)) {
          assertOurError(track, what);
          continue;
        }
        assertCompleted(track, what);
        assert.equal(track.outputs.length, 1);
        const known = model.get(key);
        const expected = live(known);
        if (expected === undefined) continue;
        const [out] = track.outputs;
        assert.equal(out.port, expected ? 'getFound' : 'getMissing', `${what}: expected ${expected ? 'a hit' : 'a miss'}`);
        if (expected) assert.deepStrictEqual(out.msg.payload, (known as { value: unknown }).value, what);
      }

      // 3. deletes
      const dels = deletes.map((key) => ({ key, id: ledger.send('delMsg', message({ topic: key })) }));
      const delResults = await ledger.settle(
        dels.map((d) => d.id),
        () => 1,
      );
      for (const { key, id } of dels) {
        const track = delResults.get(id)!;
        const what = `delete topic=${show(key)}`;
        if (!isValidKey(key)) {
          assertOurError(track, what);
          continue;
        }
        assertCompleted(track, what);
        const existed = live(model.get(key));
        if (existed !== undefined) assert.equal((track.outputs[0].msg.cache as { hit: boolean }).hit, existed, `${what}: hit`);
        model.delete(key);
      }
      resetSpies();
    });
    ledger.assertAccounted();
    t.diagnostic(ledger.tally());
  });

  it('cache-set with a {{topic}} key: placeholders take text, numbers and booleans only', { timeout: TIMEOUT }, async (t) => {
    const topic = fc.oneof(validKey, badKey, fc.integer(), fc.boolean(), fc.double());
    await check(
      fc.array(fc.record({ topic, extra: extras }), { minLength: 10, maxLength: 30, size: 'max' }),
      async (msgs) => {
        const sent = msgs.map((m) => ({ m, id: ledger.send('setTpl', message({ topic: m.topic, payload: 'value' }, m.extra)) }));
        const results = await ledger.settle(
          sent.map((x) => x.id),
          () => 1,
        );
        for (const { m, id } of sent) {
          const t = m.topic;
          const scalar = (typeof t === 'string' && t !== '') || typeof t === 'number' || typeof t === 'boolean';
          const key = scalar ? `item:${String(t)}` : undefined;
          const what = `{{topic}} = ${show(t)}`;
          if (!scalar || !isValidKey(key)) {
            assertOurError(results.get(id)!, what);
            continue;
          }
          assertCompleted(results.get(id)!, what);
          assert.equal((results.get(id)!.outputs[0].msg.cache as { key: string }).key, key, what);
        }
        resetSpies();
      },
      SMALL_BATCH_RUNS,
    );
    ledger.assertAccounted();
    t.diagnostic(ledger.tally());
  });

  it('cooldown-gate: passes, holds back or resets exactly as its cooldown says', { timeout: TIMEOUT }, async (t) => {
    if (!has('cooldown-gate')) return t.skip('cooldown-gate is not built');
    const lastPassed = new Map<string, number>();
    const reset = fc.oneof(
      { weight: 5, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(true, false, 'true', 1, {}, null) },
    );
    const gateKey = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KEY_POOL) }, { weight: 1, arbitrary: anyKey });
    const batch = fc.record({
      msgs: fc.array(fc.record({ topic: gateKey, reset, payload: anything, extra: extras }), { minLength: 10, maxLength: 30, size: 'max' }),
      advance: fc.integer({ min: 0, max: 2 * COOLDOWN_MS }),
    });
    await check(
      batch,
      async ({ msgs, advance }) => {
        clock.advance(advance);
        const expected: ('error' | 'reset' | 'gatePass' | 'gateHold')[] = [];
        for (const m of msgs) {
          if (!isValidKey(m.topic)) expected.push('error');
          else if (m.reset === true) {
            lastPassed.delete(m.topic);
            expected.push('reset');
          } else {
            const last = lastPassed.get(m.topic);
            if (last !== undefined && clock.ms - last < COOLDOWN_MS) expected.push('gateHold');
            else {
              lastPassed.set(m.topic, clock.ms);
              expected.push('gatePass');
            }
          }
        }
        const ids = msgs.map((m) => ledger.send('gate1', message({ topic: m.topic, reset: m.reset, payload: m.payload }, m.extra)));
        const results = await ledger.settle(ids, (id) => (expected[ids.indexOf(id)] === 'reset' ? 0 : 1));
        for (const [i, id] of ids.entries()) {
          const track = results.get(id)!;
          const what = `gate topic=${show(msgs[i].topic)} reset=${show(msgs[i].reset)}`;
          if (expected[i] === 'error') {
            assertOurError(track, what);
            continue;
          }
          assertCompleted(track, what);
          assert.deepEqual(
            track.outputs.map((o) => o.port),
            expected[i] === 'reset' ? [] : [expected[i]],
            what,
          );
        }
        resetSpies();
      },
      SMALL_BATCH_RUNS,
    );
    ledger.assertAccounted();
    t.diagnostic(ledger.tally());
  });

  it('counter: counts, sets and resets exactly; a bad number is an error that changes nothing', { timeout: TIMEOUT }, async (t) => {
    if (!has('counter')) return t.skip('counter is not built');
    const counts = new Map<string, number>();
    const reset = fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(true, false, 'true', 1, null) });
    const countKey = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KEY_POOL) }, { weight: 1, arbitrary: anyKey });
    const count = fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: numberField });
    const msgArb = fc.record({ topic: countKey, increment: numberField, count, reset, extra: extras });
    await check(
      fc.array(msgArb, { minLength: 10, maxLength: 30, size: 'max' }),
      async (msgs) => {
        const expected: (number | 'error')[] = [];
        const previous: (number | null)[] = [];
        for (const m of msgs) {
          if (!isValidKey(m.topic)) {
            expected.push('error');
            previous.push(null);
            continue;
          }
          const before = counts.get(m.topic);
          let next: number | undefined;
          if (m.count !== undefined) next = finite(m.count);
          else if (m.reset === true) next = 0;
          else {
            const amount = m.increment === undefined ? 1 : finite(m.increment);
            next = amount === undefined ? undefined : (before ?? 0) + amount;
          }
          if (next === undefined || !Number.isFinite(next)) {
            expected.push('error');
            previous.push(null);
            continue;
          }
          counts.set(m.topic, next);
          expected.push(next);
          previous.push(before ?? null);
        }
        const ids = msgs.map((m) => ledger.send('count1', message({ topic: m.topic, increment: m.increment, count: m.count, reset: m.reset }, m.extra)));
        const results = await ledger.settle(ids, () => 1);
        for (const [i, id] of ids.entries()) {
          const track = results.get(id)!;
          const m = msgs[i];
          const what = `counter topic=${show(m.topic)} increment=${show(m.increment)} count=${show(m.count)} reset=${show(m.reset)}`;
          if (expected[i] === 'error') {
            assertOurError(track, what);
            continue;
          }
          assertCompleted(track, what);
          assert.equal(track.outputs[0].msg.payload, expected[i], what);
          assert.equal((track.outputs[0].msg.counter as { previous: number | null }).previous, previous[i], `${what}: previous`);
        }
        resetSpies();
      },
      SMALL_BATCH_RUNS,
    );
    ledger.assertAccounted();
    t.diagnostic(ledger.tally());
  });

  it('ttl-fetch: fetches only well-formed http URLs, answers each with the right body', { timeout: TIMEOUT }, async (t) => {
    if (!has('ttl-fetch')) return t.skip('ttl-fetch is not built');
    const local = `http://127.0.0.1:${upstreamPort}`;
    const topic = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...KEY_POOL, '?q=1', '#frag', '../../etc/passwd', '@evil.example/x', '\\..\\x', '%zz', 'a b') },
      { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
      { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.double()) },
      { weight: 2, arbitrary: badKey },
    );
    const url = fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map((p) => `${local}/direct/${encodeURIComponent(p)}`) },
      {
        weight: 2,
        arbitrary: fc.constantFrom<unknown>(
          '',
          null,
          'ftp://127.0.0.1/x',
          'javascript:alert(1)',
          'file:///etc/passwd',
          'data:text/plain,hi',
          'not a url',
          `http://user:pw@127.0.0.1:${upstreamPort}/x`,
          42,
          {},
          [local],
          true,
        ),
      },
    );
    const refresh = fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(true, 'true', 1, {}) });
    await check(
      fc.array(fc.record({ topic, url, refresh, extra: extras }), { minLength: 10, maxLength: 30, size: 'max' }),
      async (msgs) => {
        const expected = msgs.map((m): string | 'error' | 'either' => {
          let target: string;
          if (m.url !== undefined && m.url !== null && m.url !== '') {
            if (typeof m.url !== 'string' || !m.url.startsWith(`${local}/`)) return 'error';
            target = m.url;
          } else {
            const scalar = (typeof m.topic === 'string' && m.topic !== '') || typeof m.topic === 'number' || typeof m.topic === 'boolean';
            if (!scalar) return 'error';
            target = `${local}/item/${String(m.topic)}`;
          }
          if (target.length > 4000) return 'either'; // past what the local server accepts in a request line
          const u = new URL(target);
          return u.pathname + u.search;
        });
        const ids = msgs.map((m) => ledger.send('fetch1', message({ topic: m.topic, url: m.url, refresh: m.refresh }, m.extra)));
        const results = await ledger.settle(ids, () => 1);
        for (const [i, id] of ids.entries()) {
          const track = results.get(id)!;
          const what = `ttl-fetch topic=${show(msgs[i].topic)} url=${show(msgs[i].url)}`;
          if (expected[i] === 'error') assertOurError(track, what);
          else if (expected[i] === 'either') assert.ok(track.error === undefined || OUR_ERRORS.test(track.error), `${what}: ${track.error}`);
          else {
            assertCompleted(track, what);
            assert.deepEqual(track.outputs[0].msg.payload, { path: expected[i] }, what);
            assert.match((track.outputs[0].msg.cache as { key: string }).key, /^fetch:[0-9a-f]{64}$/);
          }
        }
        resetSpies();
      },
      SMALL_BATCH_RUNS,
    );
    ledger.assertAccounted();
    t.diagnostic(`${ledger.tally()}; ${upstreamRequests} upstream requests`);
  });

  it('keys that differ only in a lone surrogate never share an entry; a huge TTL never leaves an unreadable entry', async () => {
    const get = async (topic: string) => {
      const id = ledger.send('getMsg', message({ topic }));
      return (await ledger.settle([id], () => 1)).get(id)!;
    };
    const set = async (topic: string, payload: unknown, ttl?: unknown) => {
      const id = ledger.send('setMsg', message({ topic, payload, ttl }));
      return (await ledger.settle([id], () => 1)).get(id)!;
    };
    for (const [written, other] of [
      ['pair\uD800', 'pair\uDC00'],
      ['pair\uDBFFx', 'pair\uD83Dx'],
    ]) {
      const stored = await set(written, 'written');
      const read = await get(other);
      if (stored.error === undefined) {
        assert.ok(read.error !== undefined || read.outputs[0].port === 'getMissing', `${show(other)} reads the entry of ${show(written)}`);
      }
    }
    for (const ttl of [1e306, Number.MAX_VALUE, 1e20, '1e300']) {
      const key = `huge-ttl-${ttl}`;
      const stored = await set(key, 'kept', ttl);
      const read = await get(key);
      assertCompleted(read, `reading ${key} after a write with msg.ttl = ${ttl}`);
      assert.equal(read.outputs[0].port, stored.error === undefined ? 'getFound' : 'getMissing', `msg.ttl = ${ttl}: ${stored.error ?? 'stored'}`);
    }
    ledger.assertAccounted();
  });

  it('leaves Object.prototype clean, raised no uncaught exception, and the store stays readable', async () => {
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(([] as unknown as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(uncaught, []);

    await helper.unload(); // closes the store
    assert.equal(await integrityCheck(file), 'ok');
    const store = await Store.open(file);
    try {
      let read = 0;
      for (const ns of NAMESPACES) {
        for (const key of await store.keys(`shared:${ns}`)) {
          await store.get(`shared:${ns}`, key); // throws if a row cannot be read back
          read++;
        }
      }
      assert.ok(read > 0);
    } finally {
      await store.close();
    }
    await helper.load(nodes, []); // after() unloads again
  });
});
