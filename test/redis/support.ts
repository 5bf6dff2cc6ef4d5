// Two real Node-RED processes on one real Redis server: the flows they run (endpointFlow on a
// cache-store with backend redis, plus a ttl-fetch endpoint, a status collector and an arrival
// count), a local upstream that counts the requests it gets and can hold its answers, and helpers
// that read what the processes report.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createClient } from '@redis/client';
import { readyFlow } from '../admin/support';
import { tempDir } from '../support/harness';
import { endpointFlow, get, NodeRedProcess, type Reply, sendJson } from '../support/node-red-process';

export const STORE_ID = 'redisStore';
const Z = 'endpoints';

/** What the cache-store of the flows names: the server, and the password given as the node's credential. */
export interface RedisTarget {
  url: string;
  password?: string;
  prefix?: string;
  /** The database (SELECT), 0 when absent. */
  database?: number;
}

/**
 * endpointFlow on a Redis cache-store (flow scope: the same tab in both processes is one namespace),
 * and more endpoints:
 * - /fetch?p=<path>: ttl-fetch of http://127.0.0.1:<upstream>/<path>, answers {body, hit, stale};
 *   each message that reaches it first adds 1 to flow.arrived (read with /arrived).
 * - /status: every node's latest status text by node id (a Status node watching the whole tab).
 */
export function redisFlows(target: RedisTarget, upstreamPort: number): object[] {
  const store: Record<string, unknown> = {
    id: STORE_ID,
    type: 'cache-store',
    name: 'shared redis',
    backend: 'redis',
    redisUrl: target.url,
    redisDb: target.database ?? 0,
    redisPrefix: target.prefix ?? 'nr-test:',
    scope: 'flow',
    namespace: '',
    defaultTtl: 0,
  };
  // as the editor sends a config node's credentials on deploy: Node-RED moves them to flows_cred.json
  if (target.password !== undefined) store.credentials = { password: target.password };
  const extra = [
    store,
    { id: 'fetchIn', type: 'http in', z: Z, url: '/fetch', method: 'get', wires: [['arrive']] },
    {
      id: 'arrive',
      type: 'function',
      z: Z,
      func: `flow.set('arrived', (flow.get('arrived') || 0) + 1);\nmsg.url = 'http://127.0.0.1:${upstreamPort}/' + msg.req.query.p;\nreturn msg;`,
      outputs: 1,
      wires: [['fetch1']],
    },
    {
      id: 'fetch1',
      type: 'ttl-fetch',
      z: Z,
      store: STORE_ID,
      url: '',
      method: 'GET',
      headers: [],
      ttl: 1,
      ttlUnits: 'hours',
      returnType: 'json',
      timeout: 30,
      key: '',
      keyType: 'str',
      wires: [['fetched']],
    },
    {
      id: 'fetched',
      type: 'function',
      z: Z,
      func: 'msg.payload = { body: msg.payload, hit: msg.cache.hit, stale: msg.cache.stale };\nreturn msg;',
      outputs: 1,
      wires: [['reply']],
    },
    { id: 'arrivedIn', type: 'http in', z: Z, url: '/arrived', method: 'get', wires: [['arrivedOut']] },
    {
      id: 'arrivedOut',
      type: 'change',
      z: Z,
      rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '$number($flowContext("arrived") ? $flowContext("arrived") : 0)', tot: 'jsonata' }],
      wires: [['reply']],
    },
    { id: 'watch', type: 'status', z: Z, scope: null, wires: [['remember']] },
    {
      id: 'remember',
      type: 'function',
      z: Z,
      func: "const all = flow.get('statuses') || {};\nall[msg.status.source.id] = msg.status.text || '';\nflow.set('statuses', all);\nreturn null;",
      outputs: 0,
      wires: [],
    },
    { id: 'statusIn', type: 'http in', z: Z, url: '/status', method: 'get', wires: [['statusOut']] },
    {
      id: 'statusOut',
      type: 'change',
      z: Z,
      rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '$flowContext("statuses") ? $flowContext("statuses") : {}', tot: 'jsonata' }],
      wires: [['reply']],
    },
  ];
  return endpointFlow({ store: STORE_ID, extra });
}

/** A local HTTP server answering JSON {path, n}; counts requests per path and can hold every answer until released. */
export class Upstream {
  readonly requests = new Map<string, number>();
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  private readonly firstSeen = new Map<string, () => void>();
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<Upstream> {
    let self: Upstream | undefined;
    const server = http.createServer((req, res) => self?.answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new Upstream(server, (server.address() as AddressInfo).port);
    return self;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const at = req.url ?? '/';
    const n = (this.requests.get(at) ?? 0) + 1;
    this.requests.set(at, n);
    this.firstSeen.get(at)?.();
    await this.gate;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: at, n }));
  }

  count(urlPath: string): number {
    return this.requests.get(urlPath) ?? 0;
  }

  /** From now on answers wait for `release()`. */
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open();
  }

  /** Resolves when the first request for `urlPath` arrives (at once if one has). */
  requested(urlPath: string): Promise<void> {
    if (this.count(urlPath) > 0) return Promise.resolve();
    return new Promise((resolve) => this.firstSeen.set(urlPath, resolve));
  }

  close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A Node-RED process started with one ready endpoint; the Redis flows come by deploy, with their credentials. */
export async function startNodeRed(name: string): Promise<NodeRedProcess> {
  const proc = await NodeRedProcess.prepare(tempDir(`flow-cache-redis-${name}-`), readyFlow());
  await proc.start();
  return proc;
}

/** Deploys flows through the admin API (a full deploy, credentials included) and waits until `/arrived` of the new flows answers. */
export async function deployFlows(proc: NodeRedProcess, flows: object[]): Promise<void> {
  const reply = await sendJson(proc.port, 'POST', '/flows', flows, { 'Node-RED-Deployment-Type': 'full' });
  assert.ok(reply.status >= 200 && reply.status < 300, `deploy answered ${reply.status}: ${reply.body}`);
  // /arrived touches no store: it answers once the new flows run, whether Redis is up or not
  await until(proc, async () => {
    const answer = await get(proc.port, '/arrived');
    return answer.status === 200 && /^\d+$/.test(answer.body);
  });
}

/**
 * Polls `check` every 50 ms until it holds; fails at once when the process has exited. No time
 * limit of its own: the test's timeout ends a wait that never comes true.
 */
export async function until(proc: NodeRedProcess | NodeRedProcess[], check: () => Promise<boolean>): Promise<void> {
  const procs = Array.isArray(proc) ? proc : [proc];
  for (;;) {
    for (const p of procs) assert.ok(p.alive, `Node-RED exited:\n${p.log.slice(-3000)}`);
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every node's latest status text in a process, by node id. */
export async function statuses(proc: NodeRedProcess): Promise<Record<string, string>> {
  const reply = await get(proc.port, '/status');
  assert.equal(reply.status, 200, reply.body);
  return JSON.parse(reply.body) as Record<string, string>;
}

/** How many messages have reached the ttl-fetch endpoint of a process so far. */
export async function arrived(proc: NodeRedProcess): Promise<number> {
  const reply = await get(proc.port, '/arrived');
  assert.equal(reply.status, 200, reply.body);
  return Number(reply.body);
}

/** A GET that must answer 200; its body. */
export async function ok(proc: NodeRedProcess, urlPath: string): Promise<string> {
  const reply = await get(proc.port, urlPath);
  assert.equal(reply.status, 200, `GET ${urlPath}: ${reply.status} ${reply.body}`);
  return reply.body;
}

/** Whether a process's log shows an error that escaped the flows (an unhandled rejection or uncaught exception). */
export function escaped(log: string): string[] {
  return log.split('\n').filter((line) => /unhandled|uncaught|UnhandledPromiseRejection|triggerUncaughtException/i.test(line));
}

/** The keys under `prefix` in each database of a server, by database number, as another client sees them. */
export async function keysByDatabase(url: string, password: string, prefix: string, databases: number[]): Promise<Record<number, string[]>> {
  const found: Record<number, string[]> = {};
  for (const database of databases) {
    const client = createClient({ url, password, database });
    client.on('error', () => undefined);
    await client.connect();
    try {
      found[database] = (await client.keys(`${prefix}*`)).map(String).sort();
    } finally {
      client.destroy();
    }
  }
  return found;
}

/** The first reply line of a server to an inline command sent without logging in (e.g. PING). */
export function anonymousReply(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\r\n')) {
        socket.destroy();
        resolve(text.slice(0, text.indexOf('\r\n')));
      }
    });
    socket.on('error', reject);
  });
}

export type { Reply };
