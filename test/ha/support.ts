/**
 * Runs an example flow in Node-RED (the test helper, the Node-RED line of NODE_RED_LINE) with this
 * package's nodes and the real Home Assistant nodes (node-red-contrib-home-assistant-websocket),
 * connected to a simulated Home Assistant.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { fireDueAlarms, useManualAlarms } from '../../nodes/red/timers';
import { allNodes, helper, initRuntime, type ManualClock, nodeRedLine, tempDir } from '../support/harness';
import { HaServer, TOKEN } from './ha-server';
import { registerHelperModulesOnce } from './helper-modules';

export { HaServer };

/** One node of an exported flow, as the example files hold it. */
export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  wires?: string[][];
  [property: string]: unknown;
}

/** The id of the server config node the tests add (the examples bring none). */
export const SERVER_ID = 'simulated-home-assistant';

const packageRoot = path.join(__dirname, '..', '..', '..');
export const examplesDir = path.join(packageRoot, 'examples');

/** The Home Assistant nodes' module, as Node-RED loads it (package.json "node-red".nodes). */
const haPackageDir = path.dirname(require.resolve('node-red-contrib-home-assistant-websocket/package.json', { paths: [packageRoot] }));
// an ES module compiled to CommonJS: Node-RED takes its `default` export
const haModule = (require(path.join(haPackageDir, 'dist', 'index.js')) as { default: unknown }).default;
/** The package's connections by server config node id (the same module instance the nodes use). */
const haConnections = (require(path.join(haPackageDir, 'dist', 'homeAssistant', 'index.js')) as { homeAssistantConnections: Map<string, HaClient> })
  .homeAssistantConnections;

interface HaClient {
  isConnected: boolean;
  isHomeAssistantRunning: boolean;
  websocket: { isAllRegistriesLoaded: boolean; connectionState: number };
}

export function readExample(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(examplesDir, name), 'utf8')) as FlowNode[];
}

/** The Home Assistant examples, as "home-assistant/<file>.json". */
export function haExamples(): string[] {
  return fs
    .readdirSync(path.join(examplesDir, 'home-assistant'))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => `home-assistant/${f}`);
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
      for (const match of fs.readFileSync(full, 'utf8').matchAll(/registerType\(\s*["']([^"']+)["']/g)) byType.set(match[1], full);
    }
  }
  return byType;
}

// The test helper loads these itself when a flow holds one (loading them twice registers them twice).
const LOADED_BY_HELPER = new Set(['catch', 'status', 'complete']);
let core: Map<string, string> | undefined;

function modulesFor(flow: FlowNode[]): unknown[] {
  core ??= coreNodeFiles();
  const files = new Set<string>();
  for (const n of flow) {
    const file = core.get(n.type);
    if (file && !LOADED_BY_HELPER.has(n.type)) files.add(file);
  }
  return [...allNodes(), haModule, ...[...files].map((file) => require(file))];
}

/** Polls `condition` every 10 ms until it holds; fails with `what` after `ms`. */
export async function waitFor(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The server config node pointing at the simulated Home Assistant. */
function serverNode(): FlowNode {
  return {
    id: SERVER_ID,
    type: 'server',
    name: 'Simulated Home Assistant',
    version: 5,
    addon: false,
    rejectUnauthorizedCerts: true,
    ha_boolean: 'y|yes|true|on|home|open',
    connectionDelay: false,
    cacheJson: true,
    heartbeat: false,
    heartbeatInterval: '30',
    areaSelector: 'friendlyName',
    deviceSelector: 'friendlyName',
    entitySelector: 'friendlyName',
    statusSeparator: ': ',
    statusYear: 'hidden',
    statusMonth: 'short',
    statusDay: 'numeric',
    statusHourCycle: 'default',
    statusTimeFormat: 'h:m',
    enableGlobalContextStore: false,
  };
}

/**
 * The example as loaded: every Home Assistant node's server set to the simulator (as a user picks it
 * after import), inject nodes firing only when the test says so (unless `keepInjects`), debug nodes
 * replaced by helper nodes that collect what arrives.
 */
export function prepare(example: FlowNode[], options: { keepInjects?: boolean; change?: (n: FlowNode) => void } = {}): FlowNode[] {
  const flow: FlowNode[] = [];
  for (const original of example) {
    const n: FlowNode = JSON.parse(JSON.stringify(original));
    if ('server' in n) n.server = SERVER_ID;
    if (n.type === 'inject' && !options.keepInjects) Object.assign(n, { repeat: '', crontab: '', once: false });
    options.change?.(n);
    if (n.type === 'debug') {
      flow.push({ id: n.id, type: 'helper', z: n.z, name: n.name, wires: [] });
      continue;
    }
    flow.push(n);
  }
  flow.push(serverNode());
  return flow;
}

/** Collects the messages reaching a (debug stand-in) helper node. */
export class Collector {
  readonly received: NodeMessage[] = [];
  constructor(readonly id: string) {
    const n = helper.getNode(id) as { on(event: string, fn: (msg: NodeMessage) => void): void } | null;
    assert.ok(n, `node ${id} is not in the flow`);
    n.on('input', (msg) => this.received.push(msg));
  }
  async until(count: number, ms = 10_000): Promise<NodeMessage[]> {
    await waitFor(() => this.received.length >= count, `${count} messages at ${this.id} (got ${this.received.length})`, ms);
    return this.received;
  }
}

/** One example running against the simulator. */
export class HaRun {
  private collectors = new Map<string, Collector>();
  loaded: FlowNode[] = [];

  constructor(
    readonly name: string,
    readonly ha: HaServer,
    readonly clock: ManualClock,
    readonly example: FlowNode[] = readExample(name),
  ) {}

  /** Loads the flow (a Node-RED start) without waiting for the Home Assistant connection. */
  async start(options: { keepInjects?: boolean; change?: (n: FlowNode) => void } = {}): Promise<void> {
    this.loaded = prepare(this.example, options);
    await helper.load(modulesFor(this.loaded), this.loaded, { [SERVER_ID]: { host: this.ha.url, access_token: TOKEN } });
    this.collectors.clear();
  }

  /** Loads the flow and waits until the Home Assistant nodes are connected and ready. */
  async load(options: { keepInjects?: boolean; change?: (n: FlowNode) => void } = {}): Promise<void> {
    await this.start(options);
    await this.ready();
  }

  /** Stops the flows and starts them again on the same files: a Node-RED restart. */
  async restart(): Promise<void> {
    await helper.unload();
    await this.load();
  }

  /** The package's connection to Home Assistant (for this run's server config node). */
  client(): HaClient | undefined {
    return haConnections.get(SERVER_ID);
  }

  /** Waits until the Home Assistant nodes are connected, Home Assistant runs and states, services and registries are loaded. */
  async ready(ms = 10_000): Promise<void> {
    await waitFor(
      () => this.client()?.websocket.isAllRegistriesLoaded === true && this.client()?.isHomeAssistantRunning === true,
      `${this.name}: Home Assistant ready`,
      ms,
    );
  }

  /** Waits until the Home Assistant nodes have tried to connect (to a server that may not accept yet). */
  async connecting(ms = 10_000): Promise<void> {
    await waitFor(() => this.client()?.websocket.connectionState === 0, `${this.name}: a connection attempt`, ms);
  }

  /** Waits until the Home Assistant nodes have lost the connection. */
  async disconnected(ms = 10_000): Promise<void> {
    await waitFor(() => this.client()?.isConnected === false, `${this.name}: the connection to drop`, ms);
  }

  byName(name: string): FlowNode {
    const found = this.example.filter((n) => n.name === name);
    assert.equal(found.length, 1, `${this.name} has ${found.length} nodes named "${name}"`);
    return found[0];
  }

  /** The messages at a debug node, by name. */
  out(name: string): Collector {
    const id = this.byName(name).id;
    let c = this.collectors.get(id);
    if (!c) {
      c = new Collector(id);
      this.collectors.set(id, c);
    }
    return c;
  }

  /** Clicks an inject node's button. */
  inject(name: string): void {
    const n = helper.getNode(this.byName(name).id) as { receive(msg: NodeMessage): void };
    n.receive({});
  }

  /** Sends a message into a node by name. */
  receive(name: string, msg: NodeMessage): void {
    const n = helper.getNode(this.byName(name).id) as { receive(msg: NodeMessage): void };
    n.receive(msg);
  }

  /** The last status a node showed. */
  status(name: string): { fill?: string; shape?: string; text?: string } {
    const n = helper.getNode(this.byName(name).id) as { status: { lastCall?: { args: unknown[] } } };
    return (n.status.lastCall?.args[0] as { text?: string }) ?? {};
  }

  /** How many times a node has set its status. */
  statusCount(name: string): number {
    return (helper.getNode(this.byName(name).id) as { status: { callCount: number } }).status.callCount;
  }

  /** Moves the clock on and fires the nodes' timers that fell due (summaries, the end of a quiet time). */
  advance(ms: number): void {
    this.clock.advance(ms);
    fireDueAlarms();
  }

  /**
   * Resolves once the node named `name` has finished a message that `which` picks, arriving after this
   * call (Node-RED's own completion of the message: done() called, its store work over).
   */
  handled(name: string, which: (msg: NodeMessage) => boolean, ms = 10_000): Promise<void> {
    const n = helper.getNode(this.byName(name).id) as { _complete(msg: NodeMessage, error?: unknown): unknown };
    const complete = n._complete;
    let seen = false;
    n._complete = function (this: unknown, msg: NodeMessage, error?: unknown) {
      if (which(msg)) seen = true;
      return complete.call(this, msg, error);
    };
    return waitFor(() => seen, `${this.name}: ${name} finishing a message`, ms);
  }

  /**
   * Resolves once a msg.quiet that arrives after this call has reached the gate named `gate` (the gate
   * starts its quiet time again as it takes the message in, before any later message).
   */
  quietRestarted(gate: string, ms = 10_000): Promise<void> {
    const n = helper.getNode(this.byName(gate).id) as { on(event: string, fn: (msg: NodeMessage) => void): void };
    let seen = false;
    n.on('input', (msg) => {
      if (msg.quiet === true) seen = true;
    });
    return waitFor(() => seen, `${this.name}: msg.quiet reaching ${gate}`, ms);
  }

  /** The value of an action call's data field across the calls of `action` that Home Assistant accepted. */
  values(action: string, field = 'value'): unknown[] {
    return this.ha.delivered(action).map((c) => c.data[field]);
  }
}

/**
 * Registers the suite's hooks: the test helper's server for the suite; for each test a fresh userDir
 * (its own store files), a fresh simulated Home Assistant and the clock set to `start`.
 */
export function useHa(clock: ManualClock, options: { start?: string; listen?: boolean } = {}): { ha: HaServer } {
  const ctx = { ha: undefined as unknown as HaServer };
  before(async () => {
    initRuntime();
    registerHelperModulesOnce();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
  });
  beforeEach(async () => {
    helper.settings({ userDir: tempDir('ha-userdir-') });
    clock.set(options.start ?? '2026-06-01T10:00:00Z');
    clock.install();
    useManualAlarms(true);
    ctx.ha = await HaServer.start({ listen: options.listen });
  });
  afterEach(async () => {
    await helper.unload();
    useManualAlarms(false);
    clock.uninstall();
    await ctx.ha.stop();
  });
  return ctx;
}
