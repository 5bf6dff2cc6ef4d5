import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import sqlite3 from 'sqlite3';

const root = path.join(__dirname, '..', '..', '..');
// scripts/userdir.js is plain CommonJS shared with `npm start`; it is not compiled into dist/
export const userdir = require(path.join(root, 'scripts', 'userdir.js')) as {
  prepareUserDir(dir: string, options?: { port?: number; host?: string }): string;
  /** settings.js only (no package link): for a userDir the package is installed into. */
  writeSettings(dir: string, options?: { port?: number; host?: string }): string;
  /** The Node-RED line the processes run: NODE_RED_LINE, '4' (default) or '5'. */
  nodeRedLine(): '4' | '5';
  /** red.js of that line's install in this repository. */
  nodeRedCli(line?: '4' | '5'): string;
  nodeRedPackage(line?: '4' | '5'): { version: string; engines: string };
  /** The node binary that runs Node-RED: NODE_RED_NODE, else this process's; throws if the line does not support it. */
  nodeRedNode(line?: '4' | '5'): string;
  nodeVersion(node: string): string;
};

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An HTTP answer as the tests read it. */
export interface Reply {
  status: number;
  body: string;
}

/** One GET to 127.0.0.1 on its own connection (a killed server cannot leave a stale pooled socket behind). */
export function get(port: number, urlPath: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** One request with a JSON body to 127.0.0.1 (the admin API). */
export function sendJson(port: number, method: string, urlPath: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': data.length, connection: 'close', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** Runs `task` over `items` with at most `limit` at a time. */
export async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** `PRAGMA integrity_check` of a database file through the sqlite3 driver: 'ok' when sound. */
export function integrityCheck(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (openError) => {
      if (openError) return reject(openError);
      db.all('PRAGMA integrity_check', (error, rows: { integrity_check: string }[]) => {
        db.close(() => (error ? reject(error) : resolve(rows.map((r) => r.integrity_check).join('; '))));
      });
    });
  });
}

/** Every row of a database file's keyv table, as stored. */
export function allRows(file: string): Promise<{ key: string; value: string }[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (openError) => {
      if (openError) return reject(openError);
      db.all('SELECT key, value FROM keyv', (error, rows: { key: string; value: string }[]) => {
        db.close(() => (error ? reject(error) : resolve(rows)));
      });
    });
  });
}

export interface NodeRedOptions {
  /** Run Node-RED as this user and group (the userDir must belong to them). */
  uid?: number;
  gid?: number;
}

const running = new Set<NodeRedProcess>();

/**
 * Node-RED as a real child process (its CLI, red.js) on 127.0.0.1, with this package linked into its
 * userDir: Node-RED 4.1 on this process's Node.js unless NODE_RED_LINE / NODE_RED_NODE say otherwise
 * (scripts/userdir.js). Everything it prints is kept in `log`.
 */
export class NodeRedProcess {
  log = '';
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();

  private constructor(
    readonly userDir: string,
    readonly port: number,
    private readonly settings: string,
    private readonly options: NodeRedOptions,
  ) {}

  /** Prepares a userDir (settings.js, the package link, flows.json) on a free port; does not start it. */
  static async prepare(userDir: string, flows: object[], options: NodeRedOptions = {}): Promise<NodeRedProcess> {
    const port = await freePort();
    const settings = userdir.prepareUserDir(userDir, { port, host: '127.0.0.1' });
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows, null, 2));
    return new NodeRedProcess(userDir, port, settings, options);
  }

  /** Starts Node-RED and waits until GET `readyPath` answers 200 (the flows are running). */
  async start(readyPath = '/ready'): Promise<void> {
    if (this.child) throw new Error('already running');
    const child = spawn(userdir.nodeRedNode(), [userdir.nodeRedCli(), '--userDir', this.userDir, '--settings', this.settings], {
      cwd: this.userDir,
      env: { ...process.env, HOME: this.userDir, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      uid: this.options.uid,
      gid: this.options.gid,
    });
    this.child = child;
    running.add(this);
    child.stdout?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    this.exit = new Promise((resolve) => {
      child.on('exit', () => {
        this.child = undefined;
        running.delete(this);
        resolve();
      });
    });
    // polls until the flows answer; the test's own timeout bounds a start that never comes
    for (;;) {
      if (!this.child) throw new Error(`Node-RED exited before it was ready:\n${this.log}`);
      // a node type that failed to load never registers: the flows would wait for it for ever
      if (this.log.includes('Waiting for missing types')) throw new Error(`Node-RED is waiting for node types that did not load:\n${this.log}`);
      try {
        const reply = await get(this.port, readyPath);
        if (reply.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  get alive(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Sends a signal (default SIGKILL) and waits until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.child?.kill(signal);
    await this.exit;
  }

  /** Ends every Node-RED process started here that still runs (for after() hooks). */
  static async killAll(): Promise<void> {
    await Promise.all([...running].map((p) => p.kill('SIGKILL')));
  }
}

function change(id: string, z: string, rules: object[], next: string): object {
  return { id, type: 'change', z, rules, wires: [[next]] };
}

const setPayload = (to: string) => ({ t: 'set', p: 'payload', pt: 'msg', to, tot: 'str' });

/**
 * A flow of HTTP endpoints on every node kind (key from `?k=`, value from `?v=`):
 * /ready, /count (counter), /peek (counter with msg.increment = 0), /set (cache-set; answers the
 * query as JSON), /get (cache-get; 404 when missing), /gate (cooldown-gate, 1 hour, failOpen off;
 * answers "passed" or "suppressed"), /gate-fail-open (the same with failOpen on). Any error reaches a Catch node and answers 500 with its message.
 * `store` is the id of a cache-store config node in `extra` (none: the default store).
 */
export function endpointFlow(options: { store?: string; extra?: object[] } = {}): object[] {
  const z = 'endpoints';
  const store = options.store ?? '';
  const keyed = { store, key: 'req.query.k', keyType: 'msg' };
  return [
    { id: z, type: 'tab', label: 'Endpoints' },
    ...(options.extra ?? []),
    { id: 'readyIn', type: 'http in', z, url: '/ready', method: 'get', wires: [['reply']] },
    { id: 'countIn', type: 'http in', z, url: '/count', method: 'get', wires: [['count1']] },
    { id: 'peekIn', type: 'http in', z, url: '/peek', method: 'get', wires: [['peekZero']] },
    change('peekZero', z, [{ t: 'set', p: 'increment', pt: 'msg', to: '0', tot: 'num' }], 'count1'),
    { id: 'count1', type: 'counter', z, name: 'hits', ...keyed, step: 1, initial: 0, resetEvery: 'never', wires: [['reply']] },
    { id: 'setIn', type: 'http in', z, url: '/set', method: 'get', wires: [['set1']] },
    { id: 'set1', type: 'cache-set', z, ...keyed, operation: 'set', value: 'req.query.v', valueType: 'msg', ttl: 0, wires: [['reply']] },
    { id: 'getIn', type: 'http in', z, url: '/get', method: 'get', wires: [['get1']] },
    { id: 'get1', type: 'cache-get', z, ...keyed, property: 'payload', defaultType: 'none', wires: [['reply'], ['notFound']] },
    change('notFound', z, [{ t: 'set', p: 'statusCode', pt: 'msg', to: '404', tot: 'num' }, setPayload('missing')], 'reply'),
    { id: 'gateIn', type: 'http in', z, url: '/gate', method: 'get', wires: [['gate1']] },
    { id: 'gate1', type: 'cooldown-gate', z, ...keyed, cooldown: 1, cooldownUnits: 'hours', failOpen: false, wires: [['passed'], ['suppressed']] },
    { id: 'gateOpenIn', type: 'http in', z, url: '/gate-fail-open', method: 'get', wires: [['gate2']] },
    { id: 'gate2', type: 'cooldown-gate', z, ...keyed, cooldown: 1, cooldownUnits: 'hours', failOpen: true, wires: [['passed'], ['suppressed']] },
    change('passed', z, [setPayload('passed')], 'reply'),
    change('suppressed', z, [setPayload('suppressed')], 'reply'),
    { id: 'catchAll', type: 'catch', z, scope: null, uncaught: false, wires: [['failed']] },
    change(
      'failed',
      z,
      [
        { t: 'set', p: 'statusCode', pt: 'msg', to: '500', tot: 'num' },
        { t: 'set', p: 'payload', pt: 'msg', to: 'error.message', tot: 'msg' },
      ],
      'reply',
    ),
    { id: 'reply', type: 'http response', z, statusCode: '', headers: {}, wires: [] },
  ];
}

/** Gives a directory tree to a user (lchown: a symlink such as the package link is not followed). */
export function chownTree(dir: string, uid: number, gid: number): void {
  fs.lchownSync(dir, uid, gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(full, uid, gid);
    else fs.lchownSync(full, uid, gid);
  }
}
