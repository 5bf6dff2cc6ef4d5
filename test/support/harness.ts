import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import helper from 'node-red-node-test-helper';
import { setClock } from '../../nodes/lib/clock';
import type { NodeMessage } from '../../nodes/red/api';
import { StatusReporter } from '../../nodes/red/status';

export { helper };

/** Which Node-RED line the runtime suites run against: NODE_RED_LINE=4 (default) or 5. */
export const nodeRedLine = process.env.NODE_RED_LINE === '5' ? '5' : '4';

/** Points the test helper at the chosen Node-RED install and a fresh userDir; returns that userDir. */
export function initRuntime(): string {
  const runtime = require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red');
  const dir = tempDir('userdir-');
  helper.init(runtime, { userDir: dir });
  StatusReporter.intervalMs = 0; // every status shows at once, so tests can read it synchronously
  return dir;
}

/** What deploy() needs of the test helper beyond its typed interface. */
interface HelperRuntime {
  _events: { once(event: string, listener: () => void): void };
  _redNodes: { setFlows(flow: object[], credentials: object, type: string): Promise<unknown> };
}

/**
 * Deploys `flow` to the running test runtime and resolves once Node-RED has started it. Node-RED's
 * setFlows resolves before the flows have started; the test helper's own setFlows listens for
 * "flows:started" only after that, so it can miss the event, and gives up after 300 ms on a busy
 * machine. This listens first and waits as long as the test may.
 */
export async function deploy(flow: object[], type: 'full' | 'flows' | 'nodes' = 'full', credentials: object = {}): Promise<void> {
  const red = helper as unknown as HelperRuntime;
  const started = new Promise<void>((resolve) => red._events.once('flows:started', () => resolve()));
  await red._redNodes.setFlows(flow, credentials, type);
  await started;
}

/** A runtime suite's test directory and database file, fresh for every test. */
export interface RuntimeFiles {
  dir: string;
  file: string;
}

/**
 * Registers the hooks of a runtime suite: the test helper's server for the whole suite; for each
 * test a fresh directory, the clock set to `start` and installed; after it, the flow unloaded.
 */
export function useRuntime(clock: ManualClock, start = '2026-06-01T10:00:00Z'): RuntimeFiles {
  const files: RuntimeFiles = { dir: '', file: '' };
  before(async () => {
    initRuntime();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
  });
  beforeEach(() => {
    files.dir = tempDir();
    files.file = path.join(files.dir, 'cache.sqlite');
    clock.set(start);
    clock.install();
  });
  afterEach(async () => {
    await helper.unload();
    clock.uninstall();
  });
  return files;
}

/** The package's root directory (dist/test/support/ is three levels below it). */
const packageRoot = path.join(__dirname, '..', '..', '..');

/** The node files package.json registers with Node-RED, by node type. */
export function nodeFiles(): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
  return pkg['node-red'].nodes;
}

/**
 * Every node type package.json registers, ready for helper.load. A node file that is missing is an
 * error, never a node quietly left out of the suite.
 */
export function allNodes(): unknown[] {
  return Object.entries(nodeFiles()).map(([type, file]) => {
    const full = path.join(packageRoot, file);
    if (!fs.existsSync(full)) throw new Error(`node ${type}: ${file} is missing (npm run build makes it)`);
    return require(full);
  });
}

/** A new empty directory under the OS temp dir (removed when the process exits). */
export function tempDir(prefix = 'flow-cache-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock the test moves by hand; installed for the store and every node. */
export class ManualClock {
  constructor(public ms = Date.parse('2026-06-01T10:00:00Z')) {}
  install(): this {
    setClock(() => this.ms);
    return this;
  }
  uninstall(): void {
    setClock(undefined);
  }
  set(iso: string): void {
    this.ms = Date.parse(iso);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

type AnyNode = {
  on(event: string, handler: (...args: any[]) => void): void;
  receive(msg: NodeMessage): void;
  status: { lastCall?: { args: unknown[] } };
};

export function node(id: string): AnyNode {
  const found = helper.getNode(id) as AnyNode | null;
  if (!found) throw new Error(`node ${id} is not in the flow`);
  return found;
}

/** Collects every message arriving at helper node `id`; `next(n)` resolves with the next n of them. */
export function collect(id: string) {
  const received: NodeMessage[] = [];
  const waiters: { count: number; resolve: (msgs: NodeMessage[]) => void }[] = [];
  node(id).on('input', (msg: NodeMessage) => {
    received.push(msg);
    for (const w of [...waiters]) {
      if (received.length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(received.slice(0, w.count));
      }
    }
  });
  return {
    received,
    /** Resolves once `count` messages in total have arrived (rejects after `ms` of waiting). */
    until(count: number, ms = 5000): Promise<NodeMessage[]> {
      if (received.length >= count) return Promise.resolve(received.slice(0, count));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${count} messages at ${id}, got ${received.length}`)), ms);
        waiters.push({
          count,
          resolve: (msgs) => {
            clearTimeout(timer);
            resolve(msgs);
          },
        });
      });
    },
  };
}

/** The last status a node showed ({} when none). */
export function lastStatus(id: string): { fill?: string; shape?: string; text?: string } {
  const call = node(id).status.lastCall;
  return (call?.args[0] as { fill?: string; text?: string }) ?? {};
}

/** Catch and Complete nodes for a test flow: errors of any node go to helper "caught", finished messages of `ids` to helper "completed". */
export function catchAndComplete(tab: string, ids: string[]): object[] {
  return [
    { id: 'catch-all', type: 'catch', z: tab, scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: tab },
    { id: 'complete-all', type: 'complete', z: tab, scope: ids, uncaught: false, wires: [['completed']] },
    { id: 'completed', type: 'helper', z: tab },
  ];
}
