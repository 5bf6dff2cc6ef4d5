import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { registerHelperModulesOnce } from '../ha/helper-modules';
import { allNodes, collect, helper, initRuntime, ManualClock, node, nodeRedLine } from '../support/harness';
import { RedisServer } from '../support/redis-server';

/** One node of an exported flow, as the example files hold it. */
interface FlowNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  wires?: string[][];
  [property: string]: unknown;
}

const OUR_TYPES = ['cache-store', 'cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'];
/** Home Assistant node types that start a flow (replaced by a helper the test sends from). */
const HA_INPUTS = new Set(['server-state-changed', 'poll-state', 'trigger-state', 'server-events', 'ha-time', 'ha-webhook']);
/** Home Assistant node types a flow ends in or passes through (replaced by a helper that collects). */
const HA_OUTPUTS = new Set([
  'api-call-service',
  'api-current-state',
  'api-render-template',
  'ha-api',
  'ha-fire-event',
  'ha-sensor',
  'ha-button',
  'ha-get-entities',
]);
const HA_TYPES = new Set(['server', ...HA_INPUTS, ...HA_OUTPUTS]);
/**
 * Exactly the node types each Home Assistant example leaves unknown when that package is not installed
 * (no `server` among them: the examples bring no server config, their nodes take the user's own).
 */
const HA_UNKNOWN: Record<string, string[]> = {
  'home-assistant/cached-weather.json': ['api-call-service'],
  'home-assistant/daily-counter.json': ['server-state-changed', 'api-call-service'],
  'home-assistant/deferred-store.json': ['server-state-changed', 'api-call-service'],
  'home-assistant/energy-stats.json': ['poll-state', 'api-call-service'],
  'home-assistant/expiring-entries.json': ['server-state-changed', 'api-call-service'],
  'home-assistant/leak-notification.json': ['server-state-changed', 'api-call-service'],
  'home-assistant/leak-alarm-quiet-start-summary.json': ['server-state-changed', 'api-call-service', 'server-events'],
  'home-assistant/presence-on-change.json': ['server-state-changed', 'api-call-service', 'server-events', 'ha-get-entities'],
  'home-assistant/sms-budget.json': ['server-state-changed', 'api-call-service'],
  'home-assistant/motion-counter.json': ['server-state-changed', 'api-call-service'],
};

const HOUR = 3_600_000;
const MINUTE = 60_000;

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'examples'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no examples/ folder above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

const examplesDir = path.join(repoRoot(), 'examples');

/** Every example file, as "<folder>/<file>.json", found on disk when the tests run. */
function discoverExamples(): string[] {
  const found: string[] = [];
  for (const folder of fs.readdirSync(examplesDir, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    for (const file of fs.readdirSync(path.join(examplesDir, folder.name))) {
      if (file.endsWith('.json')) found.push(`${folder.name}/${file}`);
    }
  }
  return found.sort();
}

function readExample(name: string): FlowNode[] {
  const flow = JSON.parse(fs.readFileSync(path.join(examplesDir, name), 'utf8')) as FlowNode[];
  assert.ok(Array.isArray(flow), `${name} is not a JSON array of nodes`);
  return flow;
}

/** Which core node module (of the Node-RED install in use) registers each type. */
function coreNodeFiles(): Map<string, string> {
  const runtime = require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red');
  const nodesPackage = require.resolve('@node-red/nodes/package.json', { paths: [path.dirname(runtime)] });
  const core = path.join(path.dirname(nodesPackage), 'core');
  const byType = new Map<string, string>();
  for (const group of fs.readdirSync(core, { withFileTypes: true })) {
    if (!group.isDirectory()) continue;
    for (const file of fs.readdirSync(path.join(core, group.name))) {
      if (!file.endsWith('.js')) continue;
      const full = path.join(core, group.name, file);
      const source = fs.readFileSync(full, 'utf8');
      for (const match of source.matchAll(/registerType\(\s*["']([^"']+)["']/g)) byType.set(match[1], full);
    }
  }
  return byType;
}

// The test helper loads these itself when a flow holds one (loading them twice registers them twice).
const LOADED_BY_HELPER = new Set(['catch', 'status', 'complete']);

/** Our node modules plus the core modules a flow's types need. */
function modulesFor(flow: FlowNode[], core: Map<string, string>): unknown[] {
  const files = new Set<string>();
  for (const n of flow) {
    const file = core.get(n.type);
    if (file && !LOADED_BY_HELPER.has(n.type)) files.add(file);
  }
  return [...allNodes(), ...[...files].map((file) => require(file))];
}

/** Replaces the scheme, host and port of every http(s) URL in a node's settings by the local server. */
function localUrls(value: unknown, base: string): unknown {
  if (typeof value === 'string') return value.replace(/^https?:\/\/[^/?#]+/i, base);
  if (Array.isArray(value)) return value.map((v) => localUrls(v, base));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, localUrls(v, base)]));
  }
  return value;
}

interface Prepared {
  flow: object[];
  /** Ids of helper nodes that stand for debug nodes and Home Assistant output nodes. */
  outputs: string[];
}

/**
 * The example as the runtime gets it (its own tab included): inject nodes that fire only when the test
 * says so, every URL pointing at the local server; with `stubs`, debug and Home Assistant nodes become
 * helper nodes (same id and wires).
 */
/** The redis-server the examples with a Redis store run on (started only if one has such a store). */
let redis: RedisServer | undefined;
let redisRuns = 0;

function prepare(example: FlowNode[], base: string, stubs: boolean): Prepared {
  const flow: object[] = [];
  const outputs: string[] = [];
  for (const original of example) {
    const n: FlowNode = { ...original };
    // a Redis store goes to the test's server, under a prefix of its own per run (nothing read back from an earlier one)
    if (n.type === 'cache-store' && n.backend === 'redis' && redis) Object.assign(n, { redisUrl: redis.url, redisPrefix: `examples-${++redisRuns}:` });
    if (n.type === 'inject') Object.assign(n, { repeat: '', crontab: '', once: false });
    if (n.type !== 'comment' && n.type !== 'tab') {
      for (const [k, v] of Object.entries(n)) if (k !== 'info' && k !== 'name') n[k] = localUrls(v, base);
    }
    if (stubs && (n.type === 'debug' || HA_OUTPUTS.has(n.type))) {
      flow.push({ id: n.id, type: 'helper', z: n.z, name: n.name, wires: n.type === 'debug' ? [] : (n.wires ?? []) });
      outputs.push(n.id);
      continue;
    }
    if (stubs && HA_INPUTS.has(n.type)) {
      flow.push({ id: n.id, type: 'helper', z: n.z, name: n.name, wires: n.wires ?? [] });
      continue;
    }
    flow.push(n);
  }
  return { flow, outputs };
}

/** A local HTTP server standing in for every web API the examples call. */
class LocalApi {
  requests: string[] = [];
  private server = http.createServer((req, res) => {
    this.requests.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ current: { temperature_2m: 21.5, time: '2026-06-01T10:00' }, path: req.url }));
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }
}

type Collector = ReturnType<typeof collect>;

/** What a scenario works with: the example, its nodes by name, the clock and the local API. */
class Run {
  private outs = new Map<string, Collector>();

  constructor(
    readonly name: string,
    readonly example: FlowNode[],
    readonly prepared: Prepared,
    readonly nodes: unknown[],
    readonly clock: ManualClock,
    readonly api: LocalApi,
  ) {}

  async load(): Promise<void> {
    await helper.load(this.nodes, this.prepared.flow);
    this.outs = new Map(this.prepared.outputs.map((id) => [id, collect(id)]));
  }

  /** Stops the flows and starts them again on the same files: what a Node-RED restart does. */
  async restart(): Promise<void> {
    await helper.unload();
    await this.load();
  }

  byName(name: string): FlowNode {
    // a name marked ✎ (an entity or action to change) is found with or without the mark
    const found = this.example.filter((n) => n.name === name || n.name === `✎ ${name}`);
    assert.equal(found.length, 1, `${this.name} has ${found.length} nodes named "${name}"`);
    return found[0];
  }

  /** Clicks the button of an inject node (its configured properties, plus `extra`). */
  inject(name: string, extra: NodeMessage = {}): void {
    const inject = this.byName(name);
    assert.equal(inject.type, 'inject');
    node(inject.id).receive({ ...extra });
  }

  /** Sends a message out of a (stubbed) Home Assistant input node. */
  send(name: string, msg: NodeMessage): void {
    const input = this.byName(name);
    assert.ok(HA_INPUTS.has(input.type), `${name} is a ${input.type}, not a Home Assistant input node`);
    (node(input.id) as unknown as { send(msg: NodeMessage): void }).send(msg);
  }

  /** The messages collected at a debug (or Home Assistant output) node, by name. */
  out(name: string): Collector {
    const collector = this.outs.get(this.byName(name).id);
    assert.ok(collector, `${name} is not an output of ${this.name}`);
    return collector;
  }

  /** Resolves when the named node shows its next status: the nodes of this package show one once a message is handled. */
  nextStatus(name: string): Promise<void> {
    const id = this.byName(name).id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: ${name} showed no status`)), 5000);
      node(id).on('call:status', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The debug and output nodes reachable by wires from a node. */
  reachableOutputs(id: string): string[] {
    const byId = new Map(this.example.map((n) => [n.id, n]));
    const seen = new Set<string>();
    const queue = [id];
    while (queue.length) {
      const next = byId.get(queue.shift() as string);
      for (const target of (next?.wires ?? []).flat()) {
        if (seen.has(target)) continue;
        seen.add(target);
        queue.push(target);
      }
    }
    return [...seen].filter((target) => this.outs.has(target));
  }

  /** Resolves when any of `ids` receives its next message. */
  nextAt(ids: string[], what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: no message reached ${ids.join(', ')}`)), 5000);
      for (const id of ids) {
        node(id).on('input', () => {
          clearTimeout(timer);
          resolve();
        });
      }
    });
  }
}

/** The action node of an example that writes an input_number (named after the helper to change). */
function setter(run: Run): string {
  const actions = run.example.filter((n) => n.type === 'api-call-service' && n.action === 'input_number.set_value');
  assert.equal(actions.length, 1, `${run.name} has ${actions.length} input_number actions`);
  return actions[0].name as string;
}

function payloadOf<T>(msg: NodeMessage): T {
  return msg.payload as T;
}

function cacheOf(msg: NodeMessage) {
  return msg.cache as { key: string; hit: boolean; storedAt: string | null; expiresAt: string | null; age: number | null; stale?: boolean };
}

function haEvent(entity: string, state: string | number): NodeMessage {
  return {
    payload: state,
    topic: entity,
    data: { entity_id: entity, old_state: null, new_state: { entity_id: entity, state: String(state), attributes: { friendly_name: entity } } },
  };
}

interface Stats {
  total_kwh: number;
  peak_usage: number;
  last_updated: string | null;
}

/** What each example is expected to do; an example without one gets the generic run (every inject reaches a debug). */
const scenarios: Record<string, (run: Run) => Promise<void>> = {
  async 'expiring-entries/entry-with-ttl.json'(run) {
    const stored = run.out('stored: msg.cache');
    const found = run.out('found: value, expiresAt, age');
    const fresh = run.out('fresh');
    const older = run.out('older than 30 min');
    const missing = run.out('missing or expired');

    run.inject('weather, 1 hour');
    const [set1] = await stored.until(1);
    const storedAt = run.clock.ms;
    assert.equal(Date.parse(cacheOf(set1).expiresAt ?? ''), storedAt + HOUR);

    run.clock.advance(MINUTE);
    run.inject('read weather_data');
    const [hit] = await found.until(1);
    assert.deepEqual(hit.payload, { temperature: 18.5, condition: 'cloudy' });
    assert.equal(cacheOf(hit).hit, true);
    assert.equal(cacheOf(hit).age, MINUTE);
    assert.equal(Date.parse(cacheOf(hit).expiresAt ?? ''), storedAt + HOUR);
    await fresh.until(1);

    run.clock.advance(30 * MINUTE);
    run.inject('read weather_data');
    await found.until(2);
    await older.until(1);

    run.clock.set(new Date(storedAt + HOUR).toISOString());
    run.inject('read weather_data');
    const [gone] = await missing.until(1);
    assert.equal(cacheOf(gone).hit, false);

    run.inject('weather, msg.ttl = 10 s');
    const [, set2] = await stored.until(2);
    assert.equal(Date.parse(cacheOf(set2).expiresAt ?? ''), run.clock.ms + 10_000);
    run.clock.advance(9_999);
    run.inject('read weather_data');
    const [, , shortHit] = await found.until(3);
    assert.deepEqual(shortHit.payload, { temperature: 19, condition: 'sunny' });
    run.clock.advance(1);
    run.inject('read weather_data');
    await missing.until(2);
    assert.equal(found.received.length, 3);
  },

  async 'structured-data/energy-stats.json'(run) {
    const saved = run.out('saved stats');
    const errors = run.out('error: stats unchanged');
    const current = run.out('current stats');
    const none = run.out('no stats yet');

    run.inject('show stats');
    await none.until(1);

    run.inject('1.2 kWh');
    const [first] = await saved.until(1);
    assert.equal(payloadOf<Stats>(first).total_kwh, 1.2);
    assert.equal(payloadOf<Stats>(first).peak_usage, 1.2);
    assert.ok(!Number.isNaN(Date.parse(payloadOf<Stats>(first).last_updated ?? '')), 'last_updated is an ISO timestamp');

    run.inject('3.4 kWh');
    const [, second] = await saved.until(2);
    assert.deepEqual({ ...payloadOf<Stats>(second), last_updated: null }, { total_kwh: 4.6, peak_usage: 3.4, last_updated: null });

    run.inject('bad reading: unavailable');
    const [err] = await errors.until(1);
    assert.match((err.error as { message: string }).message, /bad reading "unavailable"/);

    run.inject('show stats');
    const [shown] = await current.until(1);
    // The saved object was built in the Function node's sandbox (another realm): compare its contents.
    assert.deepEqual(shown.payload, { ...payloadOf<Stats>(second) }, 'the stored stats are intact after the bad reading');
    assert.equal(saved.received.length, 2);
  },

  async 'load-once-write-on-shutdown/deferred-store.json'(run) {
    const written = run.out('latest written');
    const latest = run.out('latest value');

    run.inject('power reading every second');
    run.inject('power reading every second');
    const [, last] = await written.until(2);
    assert.equal(typeof last.payload, 'number');

    run.inject('read latest');
    const [read] = await latest.until(1);
    assert.equal(read.payload, last.payload);

    await run.restart();
    run.inject('read latest');
    const [afterRestart] = await run.out('latest value').until(1);
    assert.equal(afterRestart.payload, last.payload, 'the deferred write was flushed when the flow stopped');
    assert.ok(fs.existsSync(path.join((helper.settings() as { userDir: string }).userDir, 'flow-cache', 'deferred.sqlite')));
  },

  async 'cooldown-gate/water-leak-notification.json'(run) {
    const notify = run.out('notification sent');
    const held = run.out('held back (msg.cooldown)');
    const failed = run.out('notify failed (msg.error)');
    run.inject('kitchen leak: on');
    const [first] = await notify.until(1);
    assert.deepEqual(first.payload, { title: 'Alert', message: 'Water leak detected: binary_sensor.kitchen_leak' });
    run.clock.advance(MINUTE);
    run.inject('kitchen leak: on again');
    const [again] = await held.until(1);
    assert.equal((again.cooldown as { remaining: number }).remaining, 4 * HOUR - MINUTE);
    run.inject('bathroom leak: on');
    await notify.until(2);
    const reset = run.nextStatus('once per 4 h per sensor');
    run.inject('leak fixed: reset kitchen');
    await reset;
    run.inject('kitchen leak: on');
    await notify.until(3);
    assert.equal(held.received.length, 1);

    // a notification that fails releases its pass: the next trigger notifies at once
    run.inject('leak fixed: reset kitchen');
    const released = run.nextStatus('once per 4 h per sensor');
    run.inject('kitchen leak: on, notify fails');
    await failed.until(1);
    await released;
    run.clock.advance(MINUTE);
    run.inject('kitchen leak: on again');
    await notify.until(4);
    assert.equal(held.received.length, 1, 'the failed notification did not start the cooldown');
    run.inject('kitchen leak: on again');
    await held.until(2);
  },

  async 'counter/motion-counter.json'(run) {
    const total = run.out('total motion events');
    run.inject('motion: on');
    await total.until(1);
    run.inject('motion: on');
    const [, two] = await total.until(2);
    assert.equal(two.payload, 2);
    run.inject('on start: show the count');
    const [, , shown] = await total.until(3);
    assert.equal(shown.payload, 2, 'showing the count adds nothing');

    await run.restart();
    const afterRestart = run.out('total motion events');
    run.inject('on start: show the count');
    assert.equal((await afterRestart.until(1))[0].payload, 2, 'the count survives a restart');
    run.inject('reset the count');
    assert.equal((await afterRestart.until(2))[1].payload, 0);
    run.inject('motion: on');
    assert.equal((await afterRestart.until(3))[2].payload, 1);
  },

  async 'redis/shared-counter.json'(run) {
    const count = run.out('count');
    const notify = run.out('notification sent');
    const held = run.out('held back (msg.cooldown)');
    run.inject('doorbell pressed');
    await count.until(1);
    run.inject('doorbell pressed');
    const [one, two] = await count.until(2);
    assert.deepEqual([one.payload, two.payload], [1, 2]);
    run.inject('leak detected');
    await notify.until(1);
    run.inject('leak detected');
    const [again] = await held.until(1);
    assert.equal((again.cooldown as { reason?: string; remaining: number }).remaining > 0, true);
    assert.equal(notify.received.length, 1);
  },

  async 'counter/daily-counter.json'(run) {
    const text = run.out("today's count");
    const counter = run.out('msg.counter');
    run.inject('doorbell pressed');
    await text.until(1);
    run.inject('doorbell pressed');
    const [, two] = await text.until(2);
    assert.equal(two.payload, 'Doorbell pressed 2 times today');
    run.inject("23:59: today's total");
    const [, , total] = await counter.until(3);
    assert.equal((total.counter as { count: number }).count, 2);

    run.clock.advance(26 * HOUR);
    run.inject('doorbell pressed');
    const [, , , nextDay] = await text.until(4);
    assert.equal(nextDay.payload, 'Doorbell pressed 1 time today');
  },

  async 'ttl-fetch/weather-api-cache.json'(run) {
    const temperature = run.out('temperature (°C)');
    const info = run.out('cache info (hit, age)');
    run.inject('every minute');
    assert.equal((await temperature.until(1))[0].payload, 21.5);
    assert.equal(cacheOf((await info.until(1))[0]).hit, false);
    run.clock.advance(MINUTE);
    run.inject('every minute');
    assert.equal(cacheOf((await info.until(2))[1]).hit, true);
    assert.equal(run.api.requests.length, 1);
    run.clock.advance(30 * MINUTE);
    run.inject('every minute');
    await info.until(3);
    assert.equal(run.api.requests.length, 2);
  },

  async 'ttl-fetch/cache-around-any-flow.json'(run) {
    const weather = run.out('weather (cached or fresh)');
    run.inject('get the weather');
    const [fresh] = await weather.until(1);
    assert.equal((fresh.payload as { current: { temperature_2m: number } }).current.temperature_2m, 21.5);
    run.clock.advance(MINUTE);
    run.inject('get the weather');
    const [, cached] = await weather.until(2);
    assert.deepEqual(cached.payload, fresh.payload);
    assert.equal(cacheOf(cached).hit, true);
    assert.equal(run.api.requests.length, 1);
    run.clock.advance(30 * MINUTE);
    run.inject('get the weather');
    await weather.until(3);
    assert.equal(run.api.requests.length, 2);
  },

  async 'home-assistant/leak-notification.json'(run) {
    const notify = run.out('✎ notify.mobile_app_your_phone');
    const held = run.out('held back');
    run.send('✎ binary_sensor.water_leak: on', haEvent('binary_sensor.water_leak', 'on'));
    const [sent] = await notify.until(1);
    assert.equal(sent.topic, 'binary_sensor.water_leak');

    run.clock.advance(10 * MINUTE);
    run.send('✎ binary_sensor.water_leak: on', haEvent('binary_sensor.water_leak', 'on'));
    const [heldMsg] = await held.until(1);
    assert.equal((heldMsg.cooldown as { remaining: number }).remaining, 4 * HOUR - 10 * MINUTE);

    run.clock.advance(4 * HOUR);
    run.send('✎ binary_sensor.water_leak: on', haEvent('binary_sensor.water_leak', 'on'));
    await notify.until(2);
    assert.equal(held.received.length, 1);
  },

  async 'home-assistant/motion-counter.json'(run) {
    const service = run.out(setter(run));
    for (let i = 0; i < 3; i++) run.send('motion: on', haEvent('binary_sensor.motion', 'on'));
    const msgs = await service.until(3);
    assert.deepEqual(
      msgs.map((m) => m.payload as number).sort((a, b) => a - b),
      [1, 2, 3],
    );

    await run.restart();
    run.send('motion: on', haEvent('binary_sensor.motion', 'on'));
    const [afterRestart] = await run.out(setter(run)).until(1);
    assert.equal(afterRestart.payload, 4, 'the count survives a restart');
  },

  async 'home-assistant/daily-counter.json'(run) {
    const service = run.out(setter(run));
    run.send('front door: on', haEvent('binary_sensor.front_door', 'on'));
    await service.until(1);
    run.send('front door: on', haEvent('binary_sensor.front_door', 'on'));
    const [, second] = await service.until(2);
    assert.equal(second.payload, 2);

    run.clock.advance(26 * HOUR);
    run.send('front door: on', haEvent('binary_sensor.front_door', 'on'));
    const [, , nextDay] = await service.until(3);
    assert.equal(nextDay.payload, 1, 'the count starts again on the next day');
  },

  async 'home-assistant/cached-weather.json'(run) {
    const service = run.out('✎ input_number.outdoor_temperature');
    const response = run.out('show response');
    run.inject('every minute');
    const [first] = await service.until(1);
    assert.equal((first.payload as { current: { temperature_2m: number } }).current.temperature_2m, 21.5);
    assert.equal(cacheOf(first).hit, false);

    run.clock.advance(MINUTE);
    run.inject('every minute');
    const [, second] = await response.until(2);
    assert.equal(cacheOf(second).hit, true);
    assert.equal(run.api.requests.length, 1, 'the second minute is answered from the cache');

    run.clock.advance(30 * MINUTE);
    run.inject('every minute');
    await response.until(3);
    assert.equal(run.api.requests.length, 2, 'after 30 minutes the API is asked again');
  },

  async 'home-assistant/expiring-entries.json'(run) {
    const light = run.out('hall light on');
    const notify = run.out('notify: door opened');

    run.send('front door: on', haEvent('binary_sensor.front_door', 'on'));
    await notify.until(1);

    const written = run.nextStatus('arrived recently (600 s)');
    run.send('Alice: home', haEvent('person.alice', 'home'));
    await written;
    run.clock.advance(5 * MINUTE);
    run.send('front door: on', haEvent('binary_sensor.front_door', 'on'));
    const [lit] = await light.until(1);
    assert.equal(cacheOf(lit).age, 5 * MINUTE);

    run.clock.advance(5 * MINUTE);
    run.send('front door: on', haEvent('binary_sensor.front_door', 'on'));
    await notify.until(2);
    assert.equal(light.received.length, 1);
  },

  async 'home-assistant/energy-stats.json'(run) {
    const service = run.out('✎ input_number.energy_total_kwh');
    const errors = run.out('error: stats unchanged');
    run.send('power usage (hourly)', haEvent('sensor.power_usage', '1.25'));
    await service.until(1);
    run.send('power usage (hourly)', haEvent('sensor.power_usage', 'unavailable'));
    await errors.until(1);
    run.send('power usage (hourly)', haEvent('sensor.power_usage', '2'));
    const [first, second] = await service.until(2);
    assert.equal(payloadOf<Stats>(first).total_kwh, 1.25);
    assert.deepEqual({ ...payloadOf<Stats>(second), last_updated: null }, { total_kwh: 3.25, peak_usage: 2, last_updated: null });
  },

  async 'home-assistant/deferred-store.json'(run) {
    const service = run.out(setter(run));
    for (const watts of [1500, 1720]) {
      const written = run.nextStatus('keep latest');
      run.send('grid power', haEvent('sensor.grid_power', watts));
      await written;
    }
    run.inject('every 5 minutes');
    const [msg] = await service.until(1);
    assert.equal(msg.payload, 1720);
  },
};

/** For an example without a scenario: every inject (top to bottom) makes a message reach a debug node it is wired to. */
async function genericRun(run: Run): Promise<void> {
  const starts = run.example.filter((n) => n.type === 'inject' || HA_INPUTS.has(n.type));
  starts.sort((a, b) => Number(a.y) - Number(b.y) || Number(a.x) - Number(b.x));
  let reached = 0;
  for (const start of starts) {
    let targets = run.reachableOutputs(start.id);
    // A message with msg.fail = true fails at the notify stand-in: what it reaches is a Catch node's debug.
    if (Array.isArray(start.props) && start.props.some((p: { p?: string }) => p.p === 'fail')) {
      targets = [...targets, ...run.example.filter((n) => n.type === 'catch').flatMap((n) => run.reachableOutputs(n.id))];
    }
    // A cooldown-gate sends nothing for msg.reset, msg.quiet or msg.release: such an inject is clicked without waiting,
    // and so is an events: all node (what it sends restarts a gate's quiet time).
    const resets =
      start.type === 'server-events' ||
      (Array.isArray(start.props) && start.props.some((p: { p?: string }) => ['reset', 'quiet', 'release'].includes(p.p ?? '')));
    const arrived = targets.length && !resets ? run.nextAt(targets, `${run.name}: ${start.name || start.id}`) : undefined;
    if (start.type === 'inject') node(start.id).receive({});
    else run.send(start.name as string, haEvent('binary_sensor.example', 'on'));
    if (arrived) {
      await arrived;
      reached++;
    }
  }
  assert.ok(reached > 0, `${run.name}: no inject reaches a debug node`);
}

/**
 * Examples with a Redis store need a redis-server: they run in `npm run test:redis`
 * (test/redis/examples.test.ts sets FLOW_CACHE_EXAMPLES=redis), the others here, so `npm test` needs none.
 */
const onRedis = process.env.FLOW_CACHE_EXAMPLES === 'redis';
const usesRedis = (name: string) => readExample(name).some((n) => n.type === 'cache-store' && n.backend === 'redis');

describe(onRedis ? 'examples with a Redis store' : 'examples', () => {
  const examples = discoverExamples().filter((name) => usesRedis(name) === onRedis);
  const core = coreNodeFiles();
  const api = new LocalApi();
  let base = '';
  let clock: ManualClock;

  before(async () => {
    initRuntime();
    registerHelperModulesOnce();
    await helper.startServer();
    base = await api.start();
    if (onRedis) redis = await RedisServer.start();
  });
  after(async () => {
    await helper.stopServer();
    await api.stop();
    await redis?.stop();
  });
  beforeEach(() => {
    clock = new ManualClock().install();
    api.requests = [];
  });
  afterEach(async () => {
    await helper.unload();
    clock.uninstall();
  });

  it(onRedis ? 'include an example with a Redis store' : 'include the pattern examples and the Home Assistant set', () => {
    if (onRedis) {
      assert.ok(examples.length > 0, 'no example has a Redis store');
      return;
    }
    // Scenarios of the other folders follow their files (an example without one gets the generic run).
    const documented = Object.keys(scenarios).filter((name) => /^(expiring-entries|structured-data|load-once-write-on-shutdown|home-assistant)\//.test(name));
    for (const name of documented) assert.ok(examples.includes(name), `${name} is missing`);
  });

  for (const name of examples) {
    const isHa = name.startsWith('home-assistant/');

    it(`${name}: is one importable flow on its own tab, with x/y and a comment`, () => {
      const flow = readExample(name);
      const tabs = flow.filter((n) => n.type === 'tab');
      assert.equal(tabs.length, 1, `${name} holds ${tabs.length} tab nodes`);
      const onOther = flow.filter((n) => n.z !== undefined && n.z !== tabs[0].id);
      assert.deepEqual(
        onOther.map((n) => n.id),
        [],
        `${name}: nodes on another tab than its own`,
      );
      assert.ok(
        flow.some((n) => n.type === 'comment'),
        `${name} has no comment node`,
      );
      const ids = new Set<string>();
      for (const n of flow) {
        assert.ok(typeof n.id === 'string' && n.id !== '' && typeof n.type === 'string', `${name}: a node without id or type`);
        assert.ok(!ids.has(n.id), `${name}: id ${n.id} is used twice`);
        ids.add(n.id);
        if (n.z !== undefined && n.type !== 'tab') {
          assert.ok(Number.isFinite(n.x) && Number.isFinite(n.y), `${name}: ${n.type} ${n.id} has no x/y`);
        }
      }
      for (const n of flow) {
        for (const target of (n.wires ?? []).flat()) assert.ok(ids.has(target), `${name}: ${n.id} is wired to a missing node ${target}`);
        for (const ref of ['store', 'server'] as const) {
          const id = n[ref];
          if (typeof id === 'string' && id !== '') assert.ok(ids.has(id), `${name}: ${n.id} refers to a ${ref} config node ${id} the file does not hold`);
        }
      }
    });

    it(`${name}: loads with every node type known${isHa ? ' except the Home Assistant ones' : ''}`, async () => {
      const flow = readExample(name);
      const missing: string[] = [];
      const events = (helper as unknown as { _events: NodeJS.EventEmitter })._events;
      const onEvent = (event: { payload?: { error?: string; types?: string[] } }) => {
        if (event.payload?.error === 'missing-types') missing.push(...(event.payload.types ?? []));
      };
      events.on('runtime-event', onEvent);
      try {
        await helper.load(modulesFor(flow, core), prepare(flow, base, false).flow);
      } finally {
        events.off('runtime-event', onEvent);
      }
      if (!isHa) {
        assert.deepEqual(missing, [], `${name} uses unknown node types`);
        for (const n of flow.filter((n) => OUR_TYPES.includes(n.type))) {
          assert.ok(helper.getNode(n.id), `${name}: ${n.type} ${n.id} did not start`);
        }
        return;
      }
      const expected = HA_UNKNOWN[name];
      if (expected) assert.deepEqual([...missing].sort(), [...expected].sort());
      else for (const type of missing) assert.ok(HA_TYPES.has(type), `${name}: ${type} is unknown and not a Home Assistant type`);
    });

    it(`${name}: runs${scenarios[name] ? '' : ' (every inject reaches a debug node)'}`, async () => {
      const example = readExample(name);
      const prepared = prepare(example, base, true);
      const run = new Run(name, example, prepared, modulesFor(example, core), clock, api);
      await run.load();
      await (scenarios[name] ?? genericRun)(run);
    });
  }
});
