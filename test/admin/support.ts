// A real Node-RED for the admin API tests: flows that write through every node kind, a ttl-fetch node
// with a secret in front of a local server that echoes it back, this package's context store, and
// (optionally) adminAuth with a full and a read-only user.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setClock } from '../../nodes/lib/clock';
import { Store } from '../../nodes/lib/store';
import { tempDir } from '../support/harness';
import { get, NodeRedProcess, userdir } from '../support/node-red-process';

export const TAB = 'admin-a';
export const TAB_LABEL = 'Admin A';
export const HEADER_SECRET = 'Bearer hdr-S3cr3t-7Hq2xZ';
export const QUERY_SECRET = 'qry-Pw9Lk3vB';
export const USERS = { admin: 'admin-pass-1', viewer: 'viewer-pass-1' };

const bcrypt = require('bcryptjs') as { hashSync(password: string, rounds: number): string };

/** A local HTTP server answering JSON that repeats the Authorization header it got (as echo services do). */
export async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ temperature: 21.5, youSent: req.headers.authorization ?? null, path: req.url }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const change = (id: string, rules: object[], next: string) => ({ id, type: 'change', z: TAB, rules, wires: [[next]] });
const setPayload = (to: string) => ({ t: 'set', p: 'payload', pt: 'msg', to, tot: 'str' });

/** The flows under test: endpoints for a counter, a cooldown gate, plain values (default, shared and own file), a ttl-fetch and flow context. */
export function adminFlows(upstreamPort: number): object[] {
  const keyed = { key: 'req.query.k', keyType: 'msg' };
  return [
    { id: TAB, type: 'tab', label: TAB_LABEL },
    { id: 'houseStore', type: 'cache-store', name: 'house', scope: 'shared', namespace: 'house' },
    { id: 'otherStore', type: 'cache-store', name: 'other file', path: 'other/cache.sqlite' },
    { id: 'readyIn', type: 'http in', z: TAB, url: '/ready', method: 'get', wires: [['reply']] },
    { id: 'countIn', type: 'http in', z: TAB, url: '/count', method: 'get', wires: [['count1']] },
    { id: 'count1', type: 'counter', z: TAB, store: '', ...keyed, step: 1, initial: 0, resetEvery: 'never', wires: [['reply']] },
    { id: 'gateIn', type: 'http in', z: TAB, url: '/gate', method: 'get', wires: [['gate1']] },
    {
      id: 'gate1',
      type: 'cooldown-gate',
      z: TAB,
      store: '',
      ...keyed,
      cooldown: 1,
      cooldownUnits: 'hours',
      failOpen: false,
      wires: [['passed'], ['suppressed']],
    },
    change('passed', [setPayload('passed')], 'reply'),
    change('suppressed', [setPayload('suppressed')], 'reply'),
    { id: 'setIn', type: 'http in', z: TAB, url: '/set', method: 'get', wires: [['set1']] },
    { id: 'set1', type: 'cache-set', z: TAB, store: '', ...keyed, operation: 'set', value: 'req.query.v', valueType: 'msg', ttl: 0, wires: [['reply']] },
    { id: 'getIn', type: 'http in', z: TAB, url: '/get', method: 'get', wires: [['get1']] },
    { id: 'get1', type: 'cache-get', z: TAB, store: '', ...keyed, property: 'payload', defaultType: 'none', wires: [['reply'], ['missing']] },
    change('missing', [{ t: 'set', p: 'statusCode', pt: 'msg', to: '404', tot: 'num' }, setPayload('missing')], 'reply'),
    { id: 'sharedIn', type: 'http in', z: TAB, url: '/shared-set', method: 'get', wires: [['set2']] },
    {
      id: 'set2',
      type: 'cache-set',
      z: TAB,
      store: 'houseStore',
      ...keyed,
      operation: 'set',
      value: 'req.query.v',
      valueType: 'msg',
      ttl: 0,
      wires: [['reply']],
    },
    { id: 'otherIn', type: 'http in', z: TAB, url: '/other-set', method: 'get', wires: [['set3']] },
    {
      id: 'set3',
      type: 'cache-set',
      z: TAB,
      store: 'otherStore',
      ...keyed,
      operation: 'set',
      value: 'req.query.v',
      valueType: 'msg',
      ttl: 0,
      wires: [['reply']],
    },
    { id: 'fetchIn', type: 'http in', z: TAB, url: '/fetch', method: 'get', wires: [['fetch1']] },
    {
      id: 'fetch1',
      type: 'ttl-fetch',
      z: TAB,
      url: `http://127.0.0.1:${upstreamPort}/weather/today?token=${QUERY_SECRET}`,
      method: 'GET',
      headers: [],
      secretHeader: 'Authorization',
      ttl: 1,
      ttlUnits: 'hours',
      returnType: 'json',
      timeout: 10,
      key: '',
      keyType: 'str',
      credentials: { secret: HEADER_SECRET },
      wires: [['reply']],
    },
    { id: 'ctxIn', type: 'http in', z: TAB, url: '/ctx', method: 'get', wires: [['ctx1']] },
    change('ctx1', [{ t: 'set', p: '#:(fc)::visits', pt: 'flow', to: 'req.query.v', tot: 'msg' }], 'reply'),
    { id: 'catchAll', type: 'catch', z: TAB, scope: null, uncaught: false, wires: [['failed']] },
    change(
      'failed',
      [
        { t: 'set', p: 'statusCode', pt: 'msg', to: '500', tot: 'num' },
        { t: 'set', p: 'payload', pt: 'msg', to: 'error.message', tot: 'msg' },
      ],
      'reply',
    ),
    { id: 'reply', type: 'http response', z: TAB, statusCode: '', headers: {}, wires: [] },
  ];
}

/** A flow of one ready endpoint: what Node-RED starts with before the flows are deployed with their credentials. */
export function readyFlow(): object[] {
  return [
    { id: TAB, type: 'tab', label: TAB_LABEL },
    { id: 'readyIn', type: 'http in', z: TAB, url: '/ready', method: 'get', wires: [['reply']] },
    { id: 'reply', type: 'http response', z: TAB, statusCode: '', headers: {}, wires: [] },
  ];
}

/** The default database file of a userDir. */
export function defaultFile(userDir: string): string {
  return path.join(userDir, 'flow-cache', 'cache.sqlite');
}

/**
 * Writes rows before Node-RED starts: `count` keys of a namespace, written an hour ago with `ttl`
 * seconds (so they are expired now when `ttl` is under an hour).
 */
export async function prepopulate(file: string, rows: { namespace: string; keys: string[]; ttl?: number; hoursAgo?: number }[]): Promise<void> {
  const store = await Store.open(file, { sweepInterval: 0 });
  try {
    for (const { namespace, keys, ttl, hoursAgo = 0 } of rows) {
      const at = Date.now() - hoursAgo * 3_600_000;
      setClock(() => at);
      for (const key of keys) await store.set(namespace, key, { key, n: keys.indexOf(key) }, ttl);
    }
  } finally {
    setClock(undefined);
    await store.close();
  }
}

/** Prepares a Node-RED process with the package's context store as `fc`, and adminAuth if asked. */
export async function adminNodeRed(prefix: string, options: { adminAuth: boolean }): Promise<NodeRedProcess> {
  const userDir = tempDir(prefix);
  const proc = await NodeRedProcess.prepare(userDir, readyFlow());
  const settings = userdir.prepareUserDir(userDir, { port: proc.port, host: '127.0.0.1' });
  // settings.js as a user writes it: the context store named in contextStorage, adminAuth with bcrypt hashes
  const extra = ["module.exports.contextStorage = { default: { module: 'memory' }, fc: { module: require('node-red-contrib-flow-cache/context') } };"];
  if (options.adminAuth) {
    const users = [
      { username: 'admin', password: bcrypt.hashSync(USERS.admin, 8), permissions: '*' },
      { username: 'viewer', password: bcrypt.hashSync(USERS.viewer, 8), permissions: 'read' },
    ];
    extra.push(`module.exports.adminAuth = ${JSON.stringify({ type: 'credentials', users })};`);
  }
  fs.appendFileSync(settings, `${extra.join('\n')}\n`);
  return proc;
}

/** An answer of the admin API. */
export interface Answer {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
}

/** Every answer a test got, to check none holds a secret. */
export const answers: Answer[] = [];

/** One request to the Node-RED under test; `body` is sent as JSON, `raw` as it is (with a JSON content type). */
export function call(
  port: number,
  method: string,
  urlPath: string,
  options: { token?: string; body?: unknown; raw?: string; contentType?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = options.raw !== undefined ? Buffer.from(options.raw) : options.body !== undefined ? Buffer.from(JSON.stringify(options.body)) : undefined;
    const headers: Record<string, string | number> = { connection: 'close' };
    if (data) {
      headers['content-type'] = options.contentType ?? 'application/json';
      headers['content-length'] = data.length;
    }
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const answer = { status: res.statusCode ?? 0, text, headers: res.headers, json };
        answers.push(answer);
        resolve(answer);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A token of an adminAuth user (POST /auth/token, as the editor's login does). */
export async function login(port: number, username: keyof typeof USERS): Promise<string> {
  const reply = await call(port, 'POST', '/auth/token', {
    body: { client_id: 'node-red-editor', grant_type: 'password', scope: '', username, password: USERS[username] },
  });
  if (reply.status !== 200 || !reply.json?.access_token) throw new Error(`login of ${username}: ${reply.status} ${reply.text}`);
  return reply.json.access_token as string;
}

/** Deploys flows (with their credentials, as the editor sends them) and waits until they answer. */
export async function deploy(proc: NodeRedProcess, flows: object[], token?: string): Promise<void> {
  const reply = await call(proc.port, 'POST', '/flows', { body: flows, token });
  if (reply.status !== 200 && reply.status !== 204) throw new Error(`deploy: ${reply.status} ${reply.text}`);
  for (let tries = 0; ; tries++) {
    // the new flows' cache-get answers 404 "missing"; until they run, Node-RED's own 404 answers
    const ready = await get(proc.port, '/get?k=__deployed');
    if (ready.body === 'missing') return;
    if (tries > 200) throw new Error(`the deployed flows never answered: ${ready.status} ${ready.body}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A GET to a flow endpoint that must answer 200; its body. */
export async function flow(proc: NodeRedProcess, urlPath: string): Promise<string> {
  const reply = await get(proc.port, urlPath);
  if (reply.status !== 200) throw new Error(`GET ${urlPath}: ${reply.status} ${reply.body}`);
  return reply.body;
}

export function hex(name: string): string {
  return Buffer.from(name, 'utf8').toString('hex');
}
