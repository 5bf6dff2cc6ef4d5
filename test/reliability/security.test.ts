import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../support/harness';
import { allRows, endpointFlow, get, NodeRedProcess, sendJson } from '../support/node-red-process';

const HEADER_SECRET = 'Bearer header-secret-7Hq2xZ';
const QUERY_SECRET = 'query-secret-Pw9Lk3';
const TIMEOUT = 60_000;
const z = 'secure';

function mode(file: string): string {
  return (fs.statSync(file).mode & 0o777).toString(8).padStart(4, '0');
}

function flow(upstreamPort: number): object[] {
  return [
    { id: z, type: 'tab', label: 'Security' },
    { id: 'nested', type: 'cache-store', name: 'nested store', path: 'private/deeper/cache.sqlite', scope: 'shared', namespace: 'house' },
    { id: 'readyIn', type: 'http in', z, url: '/ready', method: 'get', wires: [['reply']] },
    { id: 'fetchIn', type: 'http in', z, url: '/fetch', method: 'get', wires: [['fetch1']] },
    {
      id: 'fetch1',
      type: 'ttl-fetch',
      z,
      url: `http://127.0.0.1:${upstreamPort}/weather?token=${QUERY_SECRET}`,
      method: 'GET',
      headers: [{ name: 'Accept', value: 'application/json' }],
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
    { id: 'setIn', type: 'http in', z, url: '/set', method: 'get', wires: [['set1']] },
    { id: 'set1', type: 'cache-set', z, store: 'nested', key: 'req.query.k', keyType: 'msg', value: 'req.query.v', valueType: 'msg', wires: [['reply']] },
    { id: 'reply', type: 'http response', z, wires: [] },
  ];
}

describe('files and secrets', () => {
  let upstream: http.Server;
  let upstreamPort: number;
  const seen: { authorization?: string; url?: string }[] = [];
  let proc: NodeRedProcess;
  let umask: number;

  before(async () => {
    upstream = http.createServer((req, res) => {
      seen.push({ authorization: req.headers.authorization, url: req.url });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ temperature: 21.5 }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    // with no umask at all, only the modes the package asks for protect its files
    umask = process.umask(0);
    const userDir = tempDir('secure-');
    proc = await NodeRedProcess.prepare(userDir, [
      { id: z, type: 'tab', label: 'Security' },
      { id: 'readyIn', type: 'http in', z, url: '/ready', method: 'get', wires: [['reply']] },
      { id: 'reply', type: 'http response', z, wires: [] },
    ]);
    await proc.start();
    // deployed as the editor does: the credentials travel with the node and are split off by Node-RED
    const deployed = await sendJson(proc.port, 'POST', '/flows', flow(upstreamPort), { 'node-red-deployment-type': 'full' });
    assert.ok(deployed.status === 200 || deployed.status === 204, `deploy: ${deployed.status} ${deployed.body}`);
    for (;;) {
      // the new flows answer once they are started
      const reply = await get(proc.port, '/set?k=probe&v=1');
      if (reply.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  after(async () => {
    await NodeRedProcess.killAll();
    process.umask(umask);
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('creates the database directory owner-only (0700) and its files owner-only (0600)', { timeout: TIMEOUT }, async () => {
    assert.equal((await get(proc.port, '/fetch')).status, 200);
    assert.equal((await get(proc.port, '/set?k=sensor.door&v=open')).status, 200);
    const defaultDir = path.join(proc.userDir, 'flow-cache');
    assert.equal(mode(defaultDir), '0700');
    const nested = path.join(proc.userDir, 'private', 'deeper');
    assert.equal(mode(path.join(proc.userDir, 'private')), '0700');
    assert.equal(mode(nested), '0700');
    for (const dir of [defaultDir, nested]) {
      const files = fs.readdirSync(dir);
      assert.ok(files.includes('cache.sqlite'), `${dir}: ${files.join(', ')}`);
      for (const name of files) assert.equal(mode(path.join(dir, name)), '0600', `${path.join(dir, name)}`);
    }
  });

  it('keeps the ttl-fetch secret out of flows.json and out of the cache, and stores no URL secret in a key or row', { timeout: TIMEOUT }, async () => {
    const before = seen.length;
    const first = await get(proc.port, '/fetch');
    assert.deepEqual(JSON.parse(first.body), { temperature: 21.5 });
    assert.equal(seen.length, before, 'answered from the cache');
    assert.equal(seen[0].authorization, HEADER_SECRET, 'the secret header reached the upstream server');

    const flowsFile = fs.readFileSync(path.join(proc.userDir, 'flows.json'), 'utf8');
    assert.ok(flowsFile.includes('"ttl-fetch"'));
    assert.ok(!flowsFile.includes('header-secret'), 'flows.json holds no credential');
    const credentials = fs.readFileSync(path.join(proc.userDir, 'flows_cred.json'), 'utf8');
    assert.ok(!credentials.includes('header-secret'), 'flows_cred.json holds the credential encrypted');
    assert.deepEqual(Object.keys(JSON.parse(credentials)), ['$'], 'flows_cred.json is one encrypted blob');

    const file = path.join(proc.userDir, 'flow-cache', 'cache.sqlite');
    const rows = await allRows(file);
    const fetched = rows.filter((r) => r.value.includes('temperature'));
    assert.equal(fetched.length, 1);
    assert.match(fetched[0].key, /:fetch:[0-9a-f]{64}$/, 'the key is a hash of method and URL');
    for (const row of rows) {
      for (const secret of ['header-secret', QUERY_SECRET, 'token=']) {
        assert.ok(!row.key.includes(secret) && !row.value.includes(secret), `row ${row.key} holds ${secret}`);
      }
    }
    await proc.kill('SIGTERM'); // a clean stop checkpoints the WAL into the file
    for (const name of fs.readdirSync(path.dirname(file))) {
      const bytes = fs.readFileSync(path.join(path.dirname(file), name)).toString('latin1');
      for (const secret of ['header-secret', QUERY_SECRET]) assert.ok(!bytes.includes(secret), `${name} holds ${secret}`);
    }
  });
});

describe('a cache-store whose path is a FIFO or a device', () => {
  let proc: NodeRedProcess;
  let fifo: string;

  before(async () => {
    const userDir = tempDir('special-');
    fifo = path.join(userDir, 'pipe.sqlite');
    execFileSync('mkfifo', [fifo]);
    proc = await NodeRedProcess.prepare(
      userDir,
      endpointFlow({
        store: 'fifoStore',
        extra: [
          { id: 'fifoStore', type: 'cache-store', name: 'on a pipe', path: 'pipe.sqlite', scope: 'flow' },
          { id: 'nullStore', type: 'cache-store', name: 'on a device', path: '/dev/null', scope: 'flow' },
        ],
      }),
    );
  });
  after(async () => {
    await NodeRedProcess.killAll();
  });

  it('Node-RED starts and stays responsive; every message on the store fails at once with STORE_FOREIGN_FILE', { timeout: TIMEOUT }, async () => {
    // the old blocking open of the FIFO froze Node-RED before its flows answered: start() never returned
    await proc.start();
    const started = Date.now();
    const set = await get(proc.port, '/set?k=door&v=open');
    assert.equal(set.status, 500, set.body);
    assert.match(set.body, /pipe\.sqlite is not a flow-cache database \(it is a FIFO \(named pipe\)\); it was left untouched/);
    assert.ok(Date.now() - started < 5000, `answered after ${Date.now() - started} ms`);
    for (let i = 0; i < 5; i++) assert.equal((await get(proc.port, '/ready')).status, 200, 'Node-RED answers');
    // the editor's admin API answers too, and names the refused stores
    const stores = await get(proc.port, '/flow-cache/stores');
    assert.equal(stores.status, 200, stores.body);
    const byId = new Map((JSON.parse(stores.body).stores as { id: string; error?: string }[]).map((s) => [s.id, s]));
    assert.match(byId.get('fifoStore')?.error ?? '', /FIFO/);
    assert.match(byId.get('nullStore')?.error ?? '', /\/dev\/null is not a flow-cache database \(it is a character device\)/);
    assert.ok(fs.statSync(fifo).isFIFO(), 'the FIFO is left as it was');
    assert.ok(proc.alive);
  });
});
