import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { NodeMessage } from '../../nodes/red/api';
import { allNodes, catchAndComplete, collect, deploy, helper, initRuntime, lastStatus, ManualClock, node, nodeRedLine, tempDir } from '../support/harness';

const nodes = allNodes();
const MINUTE = 60_000;

interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** performance.now() when the connection of a request left unanswered ('hang') closed. */
  closedAt?: number;
}

/** A real HTTP server on 127.0.0.1 that counts requests; `mode` makes it fail or hang. */
interface Upstream {
  base: string;
  seen: SeenRequest[];
  mode: 'ok' | 'error500' | 'hang';
  /** Resolves once the server has seen `count` requests in total. */
  requests(count: number): Promise<void>;
  /** Resolves with `closedAt` of unanswered request `index` once its connection closed; rejects after `ms` of waiting. */
  closed(index: number, ms: number): Promise<number>;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const closeWaiters = new Map<SeenRequest, () => void>();
  const server = http.createServer((req, res) => {
    const request: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    seen.push(request);
    for (const w of [...waiters]) if (seen.length >= w.count) w.resolve();
    if (upstream.mode === 'hang') {
      // never answers: the request ends only when the client closes the connection
      req.socket.once('close', () => {
        request.closedAt = performance.now();
        closeWaiters.get(request)?.();
      });
      return;
    }
    if (upstream.mode === 'error500') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream broke');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const version = seen.filter((r) => new URL(r.url, 'http://localhost').pathname === url.pathname).length;
    switch (url.pathname) {
      case '/weather':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ city: url.searchParams.get('city'), version }));
        return;
      case '/v1/forecast':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ current: { temperature_2m: 21.5 }, version }));
        return;
      case '/text':
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`hello ${version}`);
        return;
      case '/bytes':
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from([0, 1, 2, 255, version]));
        return;
      case '/html':
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
        return;
      case '/echo':
        req.setEncoding('utf8');
        req.on('data', () => undefined);
        req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version })));
        return;
      case '/account': // answers with the credential it was sent, as an API answers with the data of that account
        // (the name before the first '-' of the key: the key itself must not end up in the cached body)
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ account: String(req.headers['x-api-key'] ?? '').split('-')[0] || null, version }));
        return;
      case '/redirect': {
        const to = url.searchParams.get('to') ?? '/weather?city=Redirected';
        res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: to }).end('moved');
        return;
      }
      case '/loop':
        res.writeHead(302, { location: '/loop' }).end();
        return;
      case '/mirror': {
        // an upstream that repeats the key it was sent and its query, in the forms servers write them:
        // JSON-escaped as PHP's json_encode writes '/' (\/), as \u escapes, percent-encoded in either case
        const key = String(req.headers['x-api-key'] ?? '');
        const slash = (with_: string) => key.replaceAll('/', with_);
        const body = `{"plain":${JSON.stringify(key)},"php":"${slash('\\/')}","lower":"${slash('\\u002f')}","upper":"${slash('\\u002F')}","pctLower":"${encodeURIComponent(key).replaceAll('%2F', '%2f')}","pctUpper":"${encodeURIComponent(key)}","asked":${JSON.stringify(req.url)},"appidEscaped":"${String(url.searchParams.get('appid')).replace(/^./, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)}","city":${JSON.stringify(url.searchParams.get('city'))}}`;
        res.writeHead(200, { 'content-type': url.searchParams.get('as') === 'text' ? 'text/plain' : 'application/json' }).end(body);
        return;
      }
      case '/reflect': // an upstream that puts what it was sent into its status line
        res.writeHead(500, `rejected key ${req.headers['x-api-key']}`, { 'content-type': 'text/plain' }).end('no');
        return;
      case '/big': {
        // ?bytes=N of JSON text; ?declared=0 sends it chunked, without a content-length
        const bytes = Number(url.searchParams.get('bytes'));
        const body = Buffer.from(`"${'x'.repeat(bytes - 2)}"`);
        const head: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
        if (url.searchParams.get('declared') !== '0') head['content-length'] = body.length;
        res.writeHead(200, head);
        for (let i = 0; i < body.length; i += 16_384) res.write(body.subarray(i, i + 16_384));
        res.end();
        return;
      }
      case '/endless': {
        // a body that never ends: 16 KB every 5 ms, until the client goes away
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('[');
        const chunk = `${'"0123456789abcdef",'.repeat(862)}`;
        const timer = setInterval(() => res.write(chunk), 5);
        res.on('close', () => clearInterval(timer));
        return;
      }
      default: {
        if (url.pathname.startsWith('/bot')) {
          // a Telegram-style URL: the token is a path segment; this bot API is down
          res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
          return;
        }
        const status = /^\/status\/(\d{3})$/.exec(url.pathname);
        res.writeHead(status ? Number(status[1]) : 404, { 'content-type': 'text/plain' }).end('no');
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const upstream: Upstream = {
    base: `http://127.0.0.1:${port}`,
    seen,
    mode: 'ok',
    requests(count) {
      if (seen.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    closed(index, ms) {
      const request = seen[index];
      if (!request) return Promise.reject(new Error(`the upstream has seen no request ${index}`));
      if (request.closedAt !== undefined) return Promise.resolve(request.closedAt);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the connection of request ${index} (${request.url}) was still open ${ms} ms later`)), ms);
        closeWaiters.set(request, () => {
          clearTimeout(timer);
          resolve(request.closedAt as number);
        });
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return upstream;
}

function storeConfig(file: string) {
  return { id: 'store', type: 'cache-store', name: 'test store', path: file, scope: 'flow' };
}

function fetchNode(base: string, props: object = {}, id = 'fetcher') {
  return {
    id,
    type: 'ttl-fetch',
    z: 'tab1',
    store: 'store',
    key: '',
    keyType: 'msg',
    url: `${base}/weather?city={{payload}}`,
    method: 'GET',
    headers: [],
    secretHeader: 'Authorization',
    ttl: 30,
    ttlUnits: 'minutes',
    returnType: 'json',
    staleIfError: true,
    timeout: 5,
    wires: [['out']],
    ...props,
  };
}

function fetchFlow(file: string, base: string, props: object = {}, extra: object[] = []) {
  const fetchers = [fetchNode(base, props), ...extra];
  return [
    { id: 'tab1', type: 'tab', label: 'Flow 1' },
    storeConfig(file),
    ...fetchers,
    { id: 'out', type: 'helper', z: 'tab1' },
    ...catchAndComplete(
      'tab1',
      fetchers.map((n) => (n as { id: string }).id),
    ),
  ];
}

type CacheInfo = { key: string; hit: boolean; stale: boolean; storedAt: string; age: number; contentType: string | null };
const info = (msg: NodeMessage) => msg.cache as CacheInfo;
const errorOf = (msg: NodeMessage) => msg.error as { message: string; code?: string };

/** Warnings a node logged (node.warn) since the flow was loaded. */
function warnings(id: string): string[] {
  return helper
    .log()
    .getCalls()
    .map((c) => c.args[0] as { level?: number; id?: string; msg?: unknown })
    .filter((e) => e.level === 30 && e.id === id)
    .map((e) => String(e.msg));
}

/** Every byte of the database (main file and write-ahead log) as text, to search for secrets. */
function databaseText(file: string): string {
  return [file, `${file}-wal`]
    .filter((f) => fs.existsSync(f))
    .map((f) => fs.readFileSync(f).toString('latin1'))
    .join('\n');
}

/** Core nodes (inject, http request, ...) from the Node-RED line under test, for the examples. */
function coreNodes(): unknown[] {
  const runtimeDir = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
  return ['common/20-inject.js', 'common/90-comment.js', 'function/10-switch.js', 'function/15-change.js', 'network/21-httprequest.js'].map((f) =>
    require(require.resolve(`@node-red/nodes/core/${f}`, { paths: [runtimeDir] })),
  );
}

/** An example flow, put on tab1 with its debug nodes turned into helper nodes and its inject left to the test. */
function exampleFlow(name: string, base: string): object[] {
  const file = path.join(__dirname, '..', '..', '..', 'examples', 'ttl-fetch', name);
  const text = fs.readFileSync(file, 'utf8').replaceAll('https://api.open-meteo.com', base);
  return (JSON.parse(text) as { type: string; z?: string }[]).map((n) => {
    const copy: Record<string, unknown> = { ...n, z: 'tab1' };
    if (n.type === 'debug') return { id: copy.id, type: 'helper', z: 'tab1' };
    if (n.type === 'inject') Object.assign(copy, { once: false, repeat: '' });
    return copy;
  });
}

describe(`ttl-fetch (Node-RED ${nodeRedLine})`, () => {
  let file: string;
  let upstream: Upstream;
  const clock = new ManualClock();

  before(() => {
    initRuntime();
  });
  beforeEach(async () => {
    file = path.join(tempDir(), 'cache.sqlite');
    upstream = await startUpstream();
    clock.install();
  });
  afterEach(async () => {
    await helper.unload();
    await upstream.close();
    clock.uninstall();
  });

  it('fetches on a miss, then answers from the cache without a network call', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base));
    const out = collect('out');
    const completed = collect('completed');
    node('fetcher').receive({ payload: 'Berlin' });
    const [first] = await out.until(1);
    assert.deepEqual(first.payload, { city: 'Berlin', version: 1 });
    assert.equal(first.statusCode, 200);
    assert.equal(info(first).hit, false);
    assert.equal(info(first).stale, false);
    assert.equal(info(first).age, 0);
    assert.equal(Date.parse(info(first).storedAt), clock.ms);
    assert.equal(info(first).contentType, 'application/json');
    assert.match(info(first).key, /^fetch:[0-9a-f]{64}$/);
    assert.match(lastStatus('fetcher').text ?? '', /fetched 200/);

    clock.advance(5 * MINUTE);
    node('fetcher').receive({ payload: 'Berlin' });
    const [, second] = await out.until(2);
    assert.deepEqual(second.payload, { city: 'Berlin', version: 1 });
    assert.equal(second.statusCode, 200);
    assert.deepEqual({ ...info(second), storedAt: undefined }, { ...info(first), hit: true, age: 5 * MINUTE, storedAt: undefined });
    assert.equal(upstream.seen.length, 1);
    assert.match(lastStatus('fetcher').text ?? '', /hit \(1 hit \/ 1 miss\)/);

    node('fetcher').receive({ payload: 'Paris' });
    const [, , other] = await out.until(3);
    assert.deepEqual(other.payload, { city: 'Paris', version: 2 });
    assert.notEqual(info(other).key, info(first).key);
    await completed.until(3);
  });

  it('fetches again once the TTL has passed', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { ttl: 30, ttlUnits: 'minutes' }));
    const out = collect('out');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    clock.advance(30 * MINUTE - 1);
    node('fetcher').receive({ payload: 'Berlin' });
    const [, stillFresh] = await out.until(2);
    assert.equal(info(stillFresh).hit, true);
    assert.equal(upstream.seen.length, 1);
    clock.advance(1);
    node('fetcher').receive({ payload: 'Berlin' });
    const [, , refetched] = await out.until(3);
    assert.equal(info(refetched).hit, false);
    assert.deepEqual(refetched.payload, { city: 'Berlin', version: 2 });
    assert.equal(upstream.seen.length, 2);
  });

  it('makes one upstream request for 50 concurrent messages for the same URL', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base));
    const out = collect('out');
    for (let i = 0; i < 50; i++) node('fetcher').receive({ payload: 'Berlin', n: i });
    const msgs = await out.until(50);
    assert.equal(upstream.seen.length, 1);
    assert.deepEqual(new Set(msgs.map((m) => m.n)).size, 50);
    for (const msg of msgs) {
      assert.deepEqual(msg.payload, { city: 'Berlin', version: 1 });
      assert.equal(msg.statusCode, 200);
    }
    // every message has its own copy of the body
    (msgs[0].payload as { city: string }).city = 'changed';
    assert.equal((msgs[1].payload as { city: string }).city, 'Berlin');
  });

  it('gives every cache hit its own copy: a flow changing one hit changes neither the store nor the next hit', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base));
    const out = collect('out');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    node('fetcher').receive({ payload: 'Berlin' });
    const [, first] = await out.until(2);
    assert.equal(info(first).hit, true);
    (first.payload as { city: string }).city = 'changed';
    node('fetcher').receive({ payload: 'Berlin' });
    const [, , second] = await out.until(3);
    assert.equal(info(second).hit, true);
    assert.deepEqual(second.payload, { city: 'Berlin', version: 1 });
    assert.equal(upstream.seen.length, 1);
  });

  it('sends the stale copy when the upstream answers 500 or 429, with a warning', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base));
    const out = collect('out');
    const caught = collect('caught');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    clock.advance(45 * MINUTE);
    upstream.mode = 'error500';
    node('fetcher').receive({ payload: 'Berlin' });
    const [, stale] = await out.until(2);
    assert.deepEqual(stale.payload, { city: 'Berlin', version: 1 });
    assert.equal(stale.statusCode, 200);
    assert.equal(info(stale).hit, true);
    assert.equal(info(stale).stale, true);
    assert.equal(info(stale).age, 45 * MINUTE);
    assert.equal(upstream.seen.length, 2);
    assert.deepEqual(lastStatus('fetcher'), { fill: 'yellow', shape: 'ring', text: 'stale: 500 (1 hit / 1 miss)' });
    assert.ok(warnings('fetcher').some((w) => /answered 500/.test(w) && /2700 s ago/.test(w)));

    // with nothing cached for a URL, the failure ends the message with an error carrying the status
    node('fetcher').receive({ payload: 'Oslo' });
    const [failed] = await caught.until(1);
    assert.match(errorOf(failed).message, /\/weather answered 500/);
    assert.equal(errorOf(failed).code, 'UPSTREAM_HTTP');
    assert.equal(failed.statusCode, 500);
    assert.equal(lastStatus('fetcher').fill, 'red');

    upstream.mode = 'ok';
    await helper.unload();
    await helper.load(nodes, fetchFlow(file, upstream.base, { url: `${upstream.base}/status/429` }));
    const out2 = collect('out');
    const caught2 = collect('caught');
    node('fetcher').receive({});
    const [rateLimited] = await caught2.until(1);
    assert.equal(rateLimited.statusCode, 429);
    assert.equal(out2.received.length, 0);
  });

  it('ends the message with an error instead when staleIfError is off', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { staleIfError: false }));
    const out = collect('out');
    const caught = collect('caught');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    clock.advance(31 * MINUTE);
    upstream.mode = 'error500';
    node('fetcher').receive({ payload: 'Berlin' });
    const [failed] = await caught.until(1);
    assert.equal(failed.statusCode, 500);
    assert.equal(out.received.length, 1);
  });

  it('sends the stale copy when the server is gone, and an error when nothing is cached', async () => {
    const gone = await startUpstream();
    await helper.load(nodes, fetchFlow(file, gone.base));
    const out = collect('out');
    const caught = collect('caught');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    await gone.close();
    clock.advance(2 * 60 * MINUTE);
    node('fetcher').receive({ payload: 'Berlin' });
    const [, stale] = await out.until(2);
    assert.equal(info(stale).stale, true);
    assert.deepEqual(stale.payload, { city: 'Berlin', version: 1 });
    // the exact reason depends on timing (connection refused, or a kept-alive socket found closed)
    assert.ok(
      warnings('fetcher').some((w) => /\/weather failed: /.test(w)),
      warnings('fetcher').join('\n'),
    );

    node('fetcher').receive({ payload: 'Rome', statusCode: 200 });
    const [failed] = await caught.until(1);
    assert.equal(errorOf(failed).code, 'UPSTREAM_UNREACHABLE');
    assert.match(errorOf(failed).message, /\/weather failed: /);
    assert.equal(failed.statusCode, undefined);
  });

  it('gives up after the timeout: stale copy if there is one, else an error', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { timeout: 0.2 }));
    const out = collect('out');
    const caught = collect('caught');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    clock.advance(31 * MINUTE);
    upstream.mode = 'hang';
    node('fetcher').receive({ payload: 'Berlin' });
    const [, stale] = await out.until(2);
    assert.equal(info(stale).stale, true);
    assert.ok(warnings('fetcher').some((w) => /timed out after 0\.2 s/.test(w)));
    node('fetcher').receive({ payload: 'Madrid' });
    const [failed] = await caught.until(1);
    assert.equal(errorOf(failed).code, 'UPSTREAM_TIMEOUT');
    assert.match(errorOf(failed).message, /\/weather timed out after 0\.2 s/);
  });

  it('does not store 4xx answers and ends the message with the status code', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { url: `${upstream.base}/status/404` }));
    const caught = collect('caught');
    const out = collect('out');
    node('fetcher').receive({});
    const [first] = await caught.until(1);
    assert.equal(first.statusCode, 404);
    assert.equal(errorOf(first).code, 'UPSTREAM_HTTP');
    assert.match(errorOf(first).message, /answered 404/);
    node('fetcher').receive({});
    await caught.until(2);
    assert.equal(upstream.seen.length, 2); // nothing was stored: the second message asked again
    assert.equal(out.received.length, 0);
  });

  it('bypasses a fresh entry when msg.refresh is true', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base));
    const out = collect('out');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    clock.advance(MINUTE);
    node('fetcher').receive({ payload: 'Berlin', refresh: true });
    const [, refreshed] = await out.until(2);
    assert.equal(info(refreshed).hit, false);
    assert.deepEqual(refreshed.payload, { city: 'Berlin', version: 2 });
    node('fetcher').receive({ payload: 'Berlin' });
    const [, , cached] = await out.until(3);
    assert.equal(info(cached).hit, true);
    assert.deepEqual(cached.payload, { city: 'Berlin', version: 2 });
    assert.equal(upstream.seen.length, 2);
  });

  it('keeps the secret header out of the flow and secrets of the URL out of the database', async () => {
    const secret = 'Bearer top-secret-token-7731';
    const apiKey = 'QUERY-SECRET-4412';
    await helper.load(nodes, [{ id: 'tab1', type: 'tab', label: 'Flow 1' }, ...catchAndComplete('tab1', [])]);
    // the editor deploys credentials inside the node; the runtime must take them out of the flow
    const queryKey = 'QUERY-CREDENTIAL-5823';
    const flow = fetchFlow(
      file,
      upstream.base,
      {
        url: `${upstream.base}/weather?apikey=${apiKey}&city={{payload}}`,
        headers: [{ name: 'X-Client', value: 'flow-cache' }],
        secretHeader: 'Authorization',
        credentials: { secret },
      },
      [fetchNode(upstream.base, { url: `${upstream.base}/weather?appid={{secret}}&city={{payload}}`, credentials: { secret: queryKey } }, 'fetchKeyed')],
    );
    await deploy(flow, 'full');
    const out = collect('out');
    node('fetcher').receive({ payload: 'Berlin' });
    const [msg] = await out.until(1);
    assert.deepEqual(msg.payload, { city: 'Berlin', version: 1 });
    assert.equal(upstream.seen[0].headers.authorization, secret);
    assert.equal(upstream.seen[0].headers['x-client'], 'flow-cache');
    // {{secret}} in the URL: the credential goes into the query string, and no header carries it
    node('fetchKeyed').receive({ payload: 'Berlin' });
    const [, keyed] = await out.until(2);
    assert.equal(upstream.seen[1].url, `/weather?appid=${queryKey}&city=Berlin`);
    assert.equal(upstream.seen[1].headers.authorization, undefined);
    assert.equal(info(keyed).hit, false);

    const deployed = JSON.stringify((helper as unknown as { _redNodes: { getFlows(): unknown } })._redNodes.getFlows());
    assert.ok(deployed.includes('"type":"ttl-fetch"'));
    assert.ok(!deployed.includes('top-secret-token'), 'the secret header is in the deployed flow');
    assert.ok(!deployed.includes(queryKey), 'the secret of the URL is in the deployed flow');
    for (const m of [msg, keyed]) assert.ok(!info(m).key.includes(apiKey) && !info(m).key.includes(queryKey));

    await helper.unload(); // closes (and flushes) the store
    const stored = databaseText(file);
    assert.ok(stored.includes('Berlin'), 'the response is in the database');
    assert.ok(!stored.includes('top-secret-token'), 'the secret header is in the database');
    assert.ok(!stored.includes(apiKey), 'the API key of the URL is in the database');
    assert.ok(!stored.includes(queryKey), 'the secret of the URL is in the database');
    await helper.load(nodes, [{ id: 'tab1', type: 'tab', label: 'Flow 1' }]);
  });

  it('still serves a cached answer after a restart', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base));
    let out = collect('out');
    node('fetcher').receive({ payload: 'Berlin' });
    await out.until(1);
    await helper.unload();
    clock.advance(10 * MINUTE);
    await helper.load(nodes, fetchFlow(file, upstream.base));
    out = collect('out');
    node('fetcher').receive({ payload: 'Berlin' });
    const [msg] = await out.until(1);
    assert.equal(info(msg).hit, true);
    assert.equal(info(msg).age, 10 * MINUTE);
    assert.deepEqual(msg.payload, { city: 'Berlin', version: 1 });
    assert.equal(upstream.seen.length, 1);
  });

  it('returns text or a buffer, and rejects a body that is not JSON when JSON is asked for', async () => {
    const flow = fetchFlow(file, upstream.base, { url: `${upstream.base}/text`, returnType: 'text' }, [
      fetchNode(upstream.base, { url: `${upstream.base}/bytes`, returnType: 'buffer' }, 'fetchBytes'),
      fetchNode(upstream.base, { url: `${upstream.base}/html`, returnType: 'json' }, 'fetchHtml'),
      fetchNode(upstream.base, { url: `${upstream.base}/text`, method: 'HEAD', returnType: 'text' }, 'fetchHead'),
    ]);
    await helper.load(nodes, flow);
    const out = collect('out');
    const caught = collect('caught');
    node('fetcher').receive({});
    const [text] = await out.until(1);
    assert.equal(text.payload, 'hello 1');
    assert.equal(info(text).contentType, 'text/plain; charset=utf-8');
    node('fetchBytes').receive({});
    const [, bytes] = await out.until(2);
    assert.deepEqual(bytes.payload, Buffer.from([0, 1, 2, 255, 1]));
    node('fetchBytes').receive({});
    const [, , cachedBytes] = await out.until(3);
    assert.ok(Buffer.isBuffer(cachedBytes.payload));
    assert.equal(info(cachedBytes).hit, true);
    node('fetchHead').receive({});
    const [, , , head] = await out.until(4);
    assert.equal(head.payload, '');
    assert.equal(head.statusCode, 200);
    assert.equal(upstream.seen.at(-1)?.method, 'HEAD');
    node('fetchHtml').receive({});
    const [notJson] = await caught.until(1);
    assert.equal(errorOf(notJson).code, 'UPSTREAM_NOT_JSON');
    assert.match(errorOf(notJson).message, /not JSON/);
  });

  it('uses a given key as it is, and msg.url instead of the configured URL', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { key: 'weather:{{topic}}', keyType: 'str' }));
    const out = collect('out');
    node('fetcher').receive({ topic: 'home', payload: 'Berlin' });
    const [first] = await out.until(1);
    assert.equal(info(first).key, 'weather:home');
    node('fetcher').receive({ topic: 'home', url: `${upstream.base}/weather?city=Elsewhere` });
    const [, second] = await out.until(2);
    assert.equal(info(second).hit, true, 'same key, same entry');
    assert.deepEqual(second.payload, { city: 'Berlin', version: 1 });
    node('fetcher').receive({ topic: 'away', url: `${upstream.base}/weather?city=Elsewhere` });
    const [, , third] = await out.until(3);
    assert.deepEqual(third.payload, { city: 'Elsewhere', version: 2 });
  });

  it('POSTs msg.payload and keys the cache by the body too', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { method: 'POST', url: `${upstream.base}/echo` }));
    const out = collect('out');
    node('fetcher').receive({ payload: { query: 'a' } });
    await out.until(1);
    node('fetcher').receive({ payload: { query: 'b' } });
    await out.until(2);
    node('fetcher').receive({ payload: { query: 'a' } });
    const [a, b, againA] = await out.until(3);
    assert.notEqual(info(a).key, info(b).key);
    assert.equal(info(againA).key, info(a).key);
    assert.equal(info(againA).hit, true);
    assert.equal(upstream.seen.length, 2);
    assert.equal(upstream.seen[0].method, 'POST');
    assert.equal(upstream.seen[0].headers['content-type'], 'application/json');
  });

  it('rejects bad URLs and bad settings with a clear error and fetches nothing', async () => {
    const bad = (id: string, props: object) => fetchNode(upstream.base, props, id);
    const flow = fetchFlow(file, upstream.base, {}, [
      bad('badMethod', { method: 'DELETE' }),
      bad('badTtl', { ttl: 0 }),
      bad('negativeTtl', { ttl: -5 }),
      bad('badUnits', { ttlUnits: 'fortnights' }),
      bad('badReturn', { returnType: 'xml' }),
      bad('badTimeout', { timeout: 0 }),
      bad('badHeader', { headers: [{ name: 'bad header', value: 'x' }] }),
      bad('noUrl', { url: '' }),
      bad('noSecret', { url: `${upstream.base}/weather?appid={{secret}}` }),
    ]);
    await helper.load(nodes, flow);
    const caught = collect('caught');
    const cases: [string, NodeMessage, RegExp][] = [
      ['fetcher', { url: 'not a url' }, /malformed URL "not a url"/],
      ['fetcher', { url: 'ftp://example.com/file' }, /only http:\/\/ and https:\/\/ URLs/],
      ['fetcher', { url: 'file:///etc/passwd' }, /only http:\/\/ and https:\/\/ URLs/],
      ['fetcher', { url: `http://user:pw@127.0.0.1:1/x` }, /must not hold a user name or password/],
      ['fetcher', { url: 42 }, /msg\.url must be a string/],
      ['fetcher', {}, /URL placeholder \{\{payload\}\}: msg\.payload is not set/],
      ['badMethod', { payload: 'x' }, /method must be one of GET, HEAD, POST, got "DELETE"/],
      ['badTtl', { payload: 'x' }, /TTL must be a number > 0, got 0/],
      ['negativeTtl', { payload: 'x' }, /TTL must be a number > 0, got -5/],
      ['badUnits', { payload: 'x' }, /TTL units must be one of seconds, minutes, hours, days, got "fortnights"/],
      ['badReturn', { payload: 'x' }, /return type must be one of json, text, buffer, got "xml"/],
      ['badTimeout', { payload: 'x' }, /timeout must be a number of seconds > 0/],
      ['badHeader', { payload: 'x' }, /header name "bad header" is not valid/],
      ['noUrl', { payload: 'x' }, /no URL: set the URL of the node or send msg\.url/],
      ['noSecret', { payload: 'x' }, /the URL holds \{\{secret\}\} but the node has no secret/],
    ];
    for (const [i, [id, msg, expected]] of cases.entries()) {
      node(id).receive(msg);
      const errors = await caught.until(i + 1);
      assert.match(errorOf(errors[i]).message, expected, `${id} ${JSON.stringify(msg)}`);
      assert.equal(lastStatus(id).fill, 'red');
    }
    assert.equal(upstream.seen.length, 0);
  });

  it('cancels a pending request when the flow stops', async () => {
    await helper.load(nodes, fetchFlow(file, upstream.base, { timeout: 600 }));
    upstream.mode = 'hang';
    node('fetcher').receive({ payload: 'Berlin' });
    await upstream.requests(1);
    assert.equal(upstream.seen[0].closedAt, undefined, 'the request is pending when the flow stops');
    const stoppedAt = performance.now();
    await helper.unload(); // returns without waiting for the 600 s timeout
    // the upstream sees the request end: its connection closes soon after the stop, not at the timeout
    const closedAt = await upstream.closed(0, 2_000);
    const after = closedAt - stoppedAt;
    assert.ok(after >= 0 && after < 1_000, `the upstream saw the request end ${Math.round(after)} ms after the flow stopped`);
    await helper.load(nodes, [{ id: 'tab1', type: 'tab', label: 'Flow 1' }]);
  });

  it('runs the weather example: one API call for many polls', async () => {
    await helper.load([...coreNodes(), ...nodes], [{ id: 'tab1', type: 'tab', label: 'Weather' }, ...exampleFlow('weather-api-cache.json', upstream.base)]);
    const temperature = collect('7a3e51c0d2b94f05');
    const cacheInfo = collect('7a3e51c0d2b94f06');
    node('7a3e51c0d2b94f02').receive({});
    assert.equal((await temperature.until(1))[0].payload, 21.5);
    clock.advance(MINUTE);
    node('7a3e51c0d2b94f02').receive({});
    const [, second] = await temperature.until(2);
    assert.equal(second.payload, 21.5);
    assert.equal(second.topic, 'sensor.weather_forecast');
    const infos = await cacheInfo.until(2);
    assert.deepEqual(
      infos.map((m) => info(m).hit),
      [false, true],
    );
    assert.equal(upstream.seen.length, 1);
    assert.match(upstream.seen[0].url, /^\/v1\/forecast\?latitude=52\.52&longitude=13\.41&current=temperature_2m$/);
  });

  it('runs the cache-around-any-flow example: cache get, http request, cache set', async () => {
    await helper.load([...coreNodes(), ...nodes], [{ id: 'tab1', type: 'tab', label: 'Around' }, ...exampleFlow('cache-around-any-flow.json', upstream.base)]);
    const result = collect('3b8d20f6a4c15e07');
    node('3b8d20f6a4c15e02').receive({});
    const [fresh] = await result.until(1);
    assert.deepEqual(fresh.payload, { current: { temperature_2m: 21.5 }, version: 1 });
    assert.equal(fresh.statusCode, 200);
    node('3b8d20f6a4c15e02').receive({});
    const [, cached] = await result.until(2);
    assert.deepEqual(cached.payload, fresh.payload);
    assert.equal((cached.cache as { hit: boolean }).hit, true);
    assert.equal(upstream.seen.length, 1);
  });
  /** Deploys a flow as the editor does, credentials inside the nodes (Node-RED takes them out of the flow). */
  async function deployAsEditor(flow: object[]): Promise<void> {
    await helper.load(nodes, [{ id: 'tab1', type: 'tab', label: 'Flow 1' }, ...catchAndComplete('tab1', [])]);
    await deploy(flow, 'full');
  }

  describe('secrets', () => {
    const TOKEN = '123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0';
    const API_KEY = 'k3y-Zq8RwT5vLm2Nx';

    /** Every text the node showed: errors that reached the Catch node (message and stack), statuses, log lines. */
    function shownTexts(id: string, caught: NodeMessage[]): string {
      const statuses = (node(id).status as unknown as { getCalls(): { args: unknown[] }[] }).getCalls().map((c) => c.args[0]);
      const log = helper
        .log()
        .getCalls()
        .map((c) => c.args[0]);
      return JSON.stringify([caught.map((m) => m.error), statuses, log]);
    }

    it('never shows a token of the URL path or query in errors, statuses or the log, nor stores it', async () => {
      const flow = fetchFlow(file, upstream.base, { url: `${upstream.base}/bot${TOKEN}/sendMessage?chat_id=42&key=QUERY-VALUE-9917` }, [
        fetchNode(upstream.base, { url: `${upstream.base}/bot{{secret}}/getUpdates`, credentials: { secret: TOKEN } }, 'fetchSecretPath'),
        fetchNode(upstream.base, { url: `${upstream.base}/bot{{token}}/getMe` }, 'fetchPlaceholder'),
        fetchNode(upstream.base, { url: `${upstream.base}/bot${TOKEN}/slow`, timeout: 0.2 }, 'fetchTimeout'),
      ]);
      await deployAsEditor(flow);
      const caught = collect('caught');
      node('fetcher').receive({});
      node('fetchSecretPath').receive({});
      node('fetchPlaceholder').receive({ token: TOKEN });
      node('fetcher').receive({ url: `${upstream.base}/bot${TOKEN}/sendPhoto` });
      node('fetcher').receive({ url: `htps//api.telegram.org/bot${TOKEN}/sendMessage` });
      const errors = await caught.until(5);
      const messages = errors.map((m) => errorOf(m).message).sort();
      // origin and the plain parts of the path stay readable: which API, which method
      assert.deepEqual(messages, [
        'InputError: malformed URL "htps//api.telegram.org/…/sendMessage": give an absolute http:// or https:// URL',
        ...['getMe', 'getUpdates', 'sendMessage', 'sendPhoto'].map((m) => `UpstreamError: ${upstream.base}/…/${m} answered 502 Bad Gateway`),
      ]);
      upstream.mode = 'hang';
      node('fetchTimeout').receive({});
      const [, , , , , timedOut] = await caught.until(6);
      assert.equal(errorOf(timedOut).code, 'UPSTREAM_TIMEOUT');
      assert.equal(errorOf(timedOut).message, `UpstreamError: request to ${upstream.base}/…/slow timed out after 0.2 s`);
      upstream.mode = 'ok';
      const gone = await startUpstream();
      await gone.close();
      node('fetcher').receive({ url: `${gone.base}/bot${TOKEN}/sendMessage?key=QUERY-VALUE-9917` });
      const [unreachable] = (await caught.until(7)).slice(6);
      assert.equal(errorOf(unreachable).code, 'UPSTREAM_UNREACHABLE');
      assert.match(errorOf(unreachable).message, new RegExp(`^UpstreamError: request to ${gone.base}/…/sendMessage failed: `));

      const texts = shownTexts('fetcher', errors) + shownTexts('fetchSecretPath', []) + shownTexts('fetchPlaceholder', []);
      for (const secret of [TOKEN, TOKEN.split(':')[1], 'QUERY-VALUE-9917', encodeURIComponent(TOKEN)]) {
        assert.ok(!texts.includes(secret), `${secret} was shown: ${texts}`);
      }
      const withToken = upstream.seen.filter((r) => r.url.startsWith(`/bot${TOKEN}/`) || r.url.startsWith(`/bot${encodeURIComponent(TOKEN)}/`));
      assert.equal(withToken.length, 5, 'the requests went out with the token');
    });

    it('never shows the token in the warning when a stale copy is sent, nor stores it', async () => {
      await helper.load(nodes, fetchFlow(file, upstream.base, { url: `${upstream.base}/weather?city=Oslo&token=${TOKEN}` }));
      const out = collect('out');
      node('fetcher').receive({});
      await out.until(1);
      clock.advance(31 * MINUTE);
      upstream.mode = 'error500';
      const caught = collect('caught');
      node('fetcher').receive({ url: `${upstream.base}/bot${TOKEN}/weather?city=Oslo` });
      const [failed] = await caught.until(1);
      assert.equal(errorOf(failed).message, `UpstreamError: ${upstream.base}/…/weather answered 500 Internal Server Error`);
      node('fetcher').receive({});
      const [, stale] = await out.until(2);
      assert.equal(info(stale).stale, true);
      const texts = shownTexts('fetcher', [failed]);
      assert.match(texts, /\/weather answered 500/);
      assert.ok(!texts.includes(TOKEN) && !texts.includes(TOKEN.split(':')[1]), texts);
      await helper.unload();
      assert.ok(!databaseText(file).includes(TOKEN.split(':')[1]), 'the token is in the database');
    });

    it('stores an answer that repeats the secret or the URL credential without them, in every form, and with its URL cleaned', async () => {
      const KEY = 'Sup3r/S3cret-77Qx';
      const APPID = '0123456789abcdef0123456789abcdef';
      const mirror = (returnType: string, id: string) =>
        fetchNode(
          upstream.base,
          { url: `${upstream.base}/mirror?appid=${APPID}&city=Oslo&as=${returnType}`, secretHeader: 'X-Api-Key', credentials: { secret: KEY }, returnType },
          id,
        );
      await deployAsEditor(fetchFlow(file, upstream.base, {}, [mirror('json', 'fetchJson'), mirror('text', 'fetchText'), mirror('buffer', 'fetchBytes')]));
      const out = collect('out');
      for (const id of ['fetchJson', 'fetchText', 'fetchBytes']) node(id).receive({});
      const fetched = await out.until(3);
      for (const id of ['fetchJson', 'fetchText', 'fetchBytes']) node(id).receive({});
      const cached = (await out.until(6)).slice(3);
      assert.equal(upstream.seen.length, 3, 'the second round came from the cache');
      assert.equal(upstream.seen[0].headers['x-api-key'], KEY);
      // json, text, buffer, in whatever order the answers came
      const byKind = (msgs: NodeMessage[]) => [
        msgs.find((m) => typeof m.payload === 'object' && !Buffer.isBuffer(m.payload))?.payload,
        msgs.find((m) => typeof m.payload === 'string')?.payload,
        (msgs.find((m) => Buffer.isBuffer(m.payload))?.payload as Buffer | undefined)?.toString('utf8'),
      ];
      const [json, text, bytes] = byKind(fetched);
      // the flow gets the answer as stored, fresh or cached: the same, without the secret
      assert.deepEqual(byKind(cached), [json, text, bytes]);
      assert.deepEqual(json, {
        plain: '…',
        php: '…',
        lower: '…',
        upper: '…',
        pctLower: '…',
        pctUpper: '…',
        asked: '/mirror?appid=…&city=Oslo&as=json',
        appidEscaped: '…',
        city: 'Oslo',
      });
      for (const shown of [text, bytes]) {
        assert.match(String(shown), /"php":"…","lower":"…","upper":"…","pctLower":"…","pctUpper":"…","asked":"\/mirror\?appid=…&city=Oslo&as=/);
        assert.match(String(shown), /"city":"Oslo"/);
      }
      await helper.unload();
      const stored = databaseText(file);
      for (const form of [KEY, 'S3cret-77Qx', 'Sup3r', APPID, APPID.slice(1)]) assert.ok(!stored.includes(form), `${form} is in the database`);
      // the URL written with each answer is the one asked for, origin and plain path only: no node is needed to explain it
      const { Store } = await import('../../nodes/lib/store.js');
      const store = await Store.open(file, { sweepInterval: 0 });
      try {
        const entries = await store.entries('flow:tab1');
        assert.deepEqual(
          entries.map(([, entry]) => (entry.value as { url?: string }).url),
          [`${upstream.base}/mirror`, `${upstream.base}/mirror`, `${upstream.base}/mirror`],
        );
      } finally {
        await store.close();
      }
    });

    it("a deleted node's cached answer shows, to every reader of the admin API, its cleaned URL and no secret", async () => {
      const KEY = 'Sup3r/S3cret-88Qy';
      const APPID = 'fedcba9876543210fedcba9876543210';
      // the admin API lives on the runtime's admin app: started before the flows
      await helper.startServer();
      try {
        await deployAsEditor(
          fetchFlow(file, upstream.base, {
            url: `${upstream.base}/mirror?appid=${APPID}&city=Oslo&as=text`,
            secretHeader: 'X-Api-Key',
            credentials: { secret: KEY },
            returnType: 'text',
          }),
        );
        const out = collect('out');
        node('fetcher').receive({});
        const [{ cache }] = await out.until(1);
        // the node is deleted: only the store stays
        await deploy([{ id: 'tab1', type: 'tab', label: 'Flow 1' }, storeConfig(file)], 'full');
        const entryPath = `/flow-cache/stores/store/namespaces/${Buffer.from('flow:tab1').toString('hex')}/entries/${encodeURIComponent((cache as CacheInfo).key)}`;
        const shown = await helper.request().get(entryPath).expect(200);
        assert.equal(shown.body.entry.fetch.url, `${upstream.base}/mirror`);
        const download = await helper.request().get(`${entryPath}?download=1`).expect(200);
        for (const answer of [JSON.stringify(shown.body), download.text]) {
          for (const form of ['S3cret-88Qy', APPID, APPID.slice(1), encodeURIComponent(KEY)]) assert.ok(!answer.includes(form), `${form} is shown: ${answer}`);
          assert.match(answer, /Oslo/);
        }
      } finally {
        await helper.unload();
        await helper.stopServer();
      }
    });

    it('never shows the secret header value, even when the upstream repeats it in its status line', async () => {
      await deployAsEditor(fetchFlow(file, upstream.base, { url: `${upstream.base}/reflect`, secretHeader: 'X-Api-Key', credentials: { secret: API_KEY } }));
      const caught = collect('caught');
      node('fetcher').receive({});
      const [failed] = await caught.until(1);
      assert.equal(upstream.seen[0].headers['x-api-key'], API_KEY);
      assert.equal(errorOf(failed).message, `UpstreamError: ${upstream.base}/reflect answered 500 rejected key …`);
      assert.ok(!shownTexts('fetcher', [failed]).includes(API_KEY));
    });

    it('sends the secret header only to the configured origin: not to a msg.url elsewhere, not after a redirect elsewhere', async () => {
      const other = await startUpstream();
      try {
        const flow = fetchFlow(file, upstream.base, {
          url: `${upstream.base}/account`,
          secretHeader: 'X-Api-Key',
          headers: [
            { name: 'Authorization', value: 'Basic bm90OnNlY3JldA==' },
            { name: 'X-Client', value: 'flow-cache' },
          ],
          credentials: { secret: API_KEY },
        });
        await deployAsEditor(flow);
        const out = collect('out');
        const send = async (msg: NodeMessage, n: number) => {
          node('fetcher').receive(msg);
          return (await out.until(n))[n - 1];
        };
        const own = await send({}, 1);
        assert.deepEqual(own.payload, { account: 'k3y', version: 1 });
        // msg.url on the same origin: with the secret
        await send({ url: `${upstream.base}/weather?city=Same` }, 2);
        assert.equal(upstream.seen.at(-1)?.headers['x-api-key'], API_KEY);
        // msg.url on another origin (another port): without it
        const elsewhere = await send({ url: `${other.base}/account` }, 3);
        assert.deepEqual(elsewhere.payload, { account: null, version: 1 });
        assert.equal(other.seen.at(-1)?.headers['x-api-key'], undefined);
        assert.equal(other.seen.at(-1)?.headers['x-client'], 'flow-cache', 'headers that are not secret go everywhere');
        // a redirect to another origin: the secret and Authorization stay behind, the answer is the target's
        const redirected = await send({ url: `${upstream.base}/redirect?to=${encodeURIComponent(`${other.base}/account`)}` }, 4);
        assert.deepEqual(redirected.payload, { account: null, version: 2 });
        assert.equal(upstream.seen.at(-1)?.headers['x-api-key'], API_KEY, 'the first request had it');
        assert.equal(other.seen.at(-1)?.headers['x-api-key'], undefined);
        assert.equal(other.seen.at(-1)?.headers.authorization, undefined);
        // 301, 303, 307 and 308 alike: once the exchange has left the configured origin, the secret is not sent again, even back
        // there (the other origin would choose what is requested with it); nor when a msg.url elsewhere redirects there
        for (const [i, status] of [301, 303, 307, 308].entries()) {
          const back = encodeURIComponent(`${upstream.base}/account`);
          const away = encodeURIComponent(`${other.base}/redirect?status=${status}&to=${back}`);
          const roundTrip = await send({ url: `${upstream.base}/redirect?status=${status}&to=${away}` }, 5 + 2 * i);
          assert.equal((roundTrip.payload as { account: string | null }).account, null, `${status}`);
          assert.equal(upstream.seen.at(-2)?.headers['x-api-key'], API_KEY, `${status}: the first request had it`);
          assert.equal(upstream.seen.at(-1)?.headers['x-api-key'], undefined, `${status}: the request after the round trip had not`);
          const inbound = await send({ url: `${other.base}/redirect?status=${status}&to=${back}`, refresh: true }, 6 + 2 * i);
          assert.equal((inbound.payload as { account: string | null }).account, null, `${status}`);
        }
        assert.ok(
          other.seen.every((r) => r.headers['x-api-key'] === undefined),
          'the other origin never saw the secret',
        );
      } finally {
        await other.close();
      }
    });

    it('follows redirects as fetch does: a POST turns into a GET on 303, and a loop ends with an error', async () => {
      const flow = fetchFlow(file, upstream.base, { method: 'POST', url: `${upstream.base}/redirect?status=303&to=%2Fweather%3Fcity%3DSeen` }, [
        fetchNode(upstream.base, { method: 'POST', url: `${upstream.base}/redirect?status=307&to=%2Fecho` }, 'fetch307'),
        fetchNode(upstream.base, { url: `${upstream.base}/loop` }, 'fetchLoop'),
      ]);
      await helper.load(nodes, flow);
      const out = collect('out');
      const caught = collect('caught');
      node('fetcher').receive({ payload: { q: 1 } });
      const [seeOther] = await out.until(1);
      assert.deepEqual(seeOther.payload, { city: 'Seen', version: 1 });
      assert.deepEqual(
        upstream.seen.map((r) => r.method),
        ['POST', 'GET'],
      );
      node('fetch307').receive({ payload: { q: 2 } });
      await out.until(2);
      assert.deepEqual(
        upstream.seen.slice(2).map((r) => `${r.method} ${r.url.split('?')[0]} ${r.headers['content-type']}`),
        ['POST /redirect application/json', 'POST /echo application/json'],
      );
      node('fetchLoop').receive({});
      const [loop] = await caught.until(1);
      assert.equal(errorOf(loop).code, 'UPSTREAM_UNREACHABLE');
      assert.match(errorOf(loop).message, /failed: more than 10 redirects/);
    });

    it('never gives an answer fetched with one secret to a node with another secret or none', async () => {
      const account = (id: string, secret: string | undefined, props: object = {}) =>
        fetchNode(upstream.base, { url: `${upstream.base}/account`, secretHeader: 'X-Api-Key', ...(secret ? { credentials: { secret } } : {}), ...props }, id);
      const flow = fetchFlow(file, upstream.base, { url: `${upstream.base}/account`, secretHeader: 'X-Api-Key', credentials: { secret: 'alice-key-1111' } }, [
        account('bob', 'bob-key-2222'),
        account('anonymous', undefined),
        account('aliceKeyed', 'alice-key-1111', { key: 'account', keyType: 'str' }),
        account('bobKeyed', 'bob-key-2222', { key: 'account', keyType: 'str' }),
      ]);
      await deployAsEditor(flow);
      const out = collect('out');
      const ask = async (id: string, n: number) => {
        node(id).receive({});
        return (await out.until(n))[n - 1];
      };
      const alice = await ask('fetcher', 1);
      const bob = await ask('bob', 2);
      const anonymous = await ask('anonymous', 3);
      assert.equal((alice.payload as { account: string }).account, 'alice');
      assert.equal((bob.payload as { account: string }).account, 'bob');
      assert.equal((anonymous.payload as { account: null }).account, null);
      assert.equal(info(bob).hit, false);
      assert.equal(new Set([alice, bob, anonymous].map((m) => info(m).key)).size, 3);
      // each one's own answer is cached for it
      assert.equal(info(await ask('bob', 4)).hit, true);
      assert.equal(((await ask('fetcher', 5)).payload as { account: string }).account, 'alice');
      // a key given in the node is kept as it is, but an answer is only given for the credential it was fetched with
      const aliceKeyed = await ask('aliceKeyed', 6);
      const bobKeyed = await ask('bobKeyed', 7);
      assert.equal(info(bobKeyed).key, 'account');
      assert.equal(info(bobKeyed).hit, false);
      assert.equal((aliceKeyed.payload as { account: string }).account, 'alice');
      assert.equal((bobKeyed.payload as { account: string }).account, 'bob');
      // with the upstream down, bob's stale copy is never alice's answer
      upstream.mode = 'error500';
      clock.advance(31 * MINUTE);
      node('aliceKeyed').receive({});
      const [failed] = await collect('caught').until(1);
      assert.equal(failed.statusCode, 500, 'no stale copy of another account');
      await helper.unload();
      const stored = databaseText(file);
      for (const secret of ['alice-key-1111', 'bob-key-2222']) assert.ok(!stored.includes(secret), `${secret} is in the database`);
    });

    it('refuses a secret without a fixed origin to send it to', async () => {
      const flow = fetchFlow(file, upstream.base, { url: '', credentials: { secret: API_KEY } }, [
        fetchNode(upstream.base, { url: 'http://{{topic}}/x', credentials: { secret: API_KEY } }, 'dynamicHost'),
        fetchNode(upstream.base, { url: `${upstream.base.replace(/\d+$/, '{{port}}')}/x`, credentials: { secret: API_KEY } }, 'dynamicPort'),
        fetchNode(upstream.base, { url: '', credentials: {} }, 'noSecretNoUrl'),
      ]);
      await deployAsEditor(flow);
      const caught = collect('caught');
      const out = collect('out');
      node('fetcher').receive({ url: `${upstream.base}/account` });
      node('dynamicHost').receive({ topic: `127.0.0.1:${new URL(upstream.base).port}` });
      node('dynamicPort').receive({ port: new URL(upstream.base).port });
      const errors = await caught.until(3);
      assert.match(errorOf(errors[0]).message, /the node has a secret but no URL/);
      assert.match(errorOf(errors[1]).message, /scheme, host or port of its URL is a placeholder/);
      assert.match(errorOf(errors[2]).message, /scheme, host or port of its URL is a placeholder/);
      node('noSecretNoUrl').receive({ url: `${upstream.base}/account` });
      await out.until(1);
      assert.equal(upstream.seen.length, 1);
      assert.equal(upstream.seen[0].headers['x-api-key'], undefined);
    });
  });

  describe('time and size limits', () => {
    it('aborts a response larger than the limit with UPSTREAM_TOO_LARGE, with or without a declared length', async () => {
      const limited = { maxResponseMb: 0.0625 }; // 65,536 bytes
      const flow = fetchFlow(file, upstream.base, { ...limited, url: `${upstream.base}/big?bytes=65536` }, [
        fetchNode(upstream.base, { ...limited, url: `${upstream.base}/big?bytes=100000` }, 'declared'),
        fetchNode(upstream.base, { ...limited, url: `${upstream.base}/big?bytes=200000&declared=0` }, 'chunked'),
        fetchNode(upstream.base, { url: `${upstream.base}/big?bytes=${6 * 1024 * 1024}&declared=0` }, 'byDefault'),
      ]);
      await helper.load(nodes, flow);
      const out = collect('out');
      const caught = collect('caught');
      node('fetcher').receive({});
      const [fits] = await out.until(1);
      assert.equal((fits.payload as string).length, 65_534);
      node('declared').receive({});
      node('chunked').receive({});
      node('byDefault').receive({});
      const errors = await caught.until(3);
      const byId = new Map(errors.map((m) => [(m.error as { source: { id: string } }).source.id, errorOf(m)]));
      assert.equal(byId.get('declared')?.code, 'UPSTREAM_TOO_LARGE');
      assert.match(byId.get('declared')?.message ?? '', /\/big is 97\.7 KB, over the limit of 64\.0 KB/);
      assert.equal(byId.get('chunked')?.code, 'UPSTREAM_TOO_LARGE');
      assert.match(byId.get('chunked')?.message ?? '', /\/big is more than 64\.0 KB, over the limit of 64\.0 KB \(raise "Size limit"/);
      assert.equal(byId.get('byDefault')?.code, 'UPSTREAM_TOO_LARGE');
      assert.match(byId.get('byDefault')?.message ?? '', /over the limit of 5\.0 MB/);
      assert.equal(lastStatus('chunked').fill, 'red');
      assert.equal(out.received.length, 1, 'nothing too large was sent on');
    });

    it('rejects a bad size limit', async () => {
      const bad = (id: string, maxResponseMb: unknown) => fetchNode(upstream.base, { maxResponseMb }, id);
      await helper.load(nodes, fetchFlow(file, upstream.base, {}, [bad('zero', 0), bad('negative', -1), bad('huge', 2048), bad('text', 'lots')]));
      const caught = collect('caught');
      for (const [i, id] of ['zero', 'negative', 'huge', 'text'].entries()) {
        node(id).receive({ payload: 'x' });
        const errors = await caught.until(i + 1);
        assert.match(errorOf(errors[i]).message, /size limit must be a number of MB > 0 and <= 1024/, id);
      }
      assert.equal(upstream.seen.length, 0);
    });

    it('ends an endless body at the timeout, also while garbage collection runs, and later messages for it too', async () => {
      // what a busy Node-RED does all the time; a timeout signal held only by AbortSignal.any() could be collected and never fire
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      const collector = setInterval(gc, 100);
      try {
        await helper.load(nodes, fetchFlow(file, upstream.base, { url: `${upstream.base}/endless`, timeout: 0.5, maxResponseMb: 100 }));
        const caught = collect('caught');
        const started = performance.now();
        node('fetcher').receive({ n: 0 });
        await upstream.requests(1);
        for (let n = 1; n <= 3; n++) node('fetcher').receive({ n });
        const errors = await caught.until(4, 10_000);
        const elapsed = performance.now() - started;
        for (const msg of errors) {
          assert.equal(errorOf(msg).code, 'UPSTREAM_TIMEOUT');
          assert.equal(errorOf(msg).message, `UpstreamError: request to ${upstream.base}/endless timed out after 0.5 s`);
        }
        assert.equal(upstream.seen.length, 1, 'one request for all four messages');
        assert.ok(elapsed < 5_000, `${Math.round(elapsed)} ms`);
      } finally {
        clearInterval(collector);
      }
    });

    it('does not keep a message waiting for another message’s request past its own timeout', async () => {
      // the request is answered, but storing the answer stalls (a database that does not answer)
      const registry = require('../../nodes/lib/registry') as typeof import('../../nodes/lib/registry');
      const original = registry.CacheNamespace.prototype.set;
      let release: () => void = () => undefined;
      const stalled = new Promise<void>((resolve) => {
        release = resolve;
      });
      registry.CacheNamespace.prototype.set = async function (this: InstanceType<typeof registry.CacheNamespace>, ...args: Parameters<typeof original>) {
        await stalled;
        return original.apply(this, args);
      };
      try {
        await helper.load(nodes, fetchFlow(file, upstream.base, { timeout: 0.3 }));
        const caught = collect('caught');
        const out = collect('out');
        node('fetcher').receive({ payload: 'Berlin', n: 0 });
        await upstream.requests(1);
        node('fetcher').receive({ payload: 'Berlin', n: 1 });
        const [late] = await caught.until(1, 3_000);
        assert.equal(late.n, 1);
        assert.equal(errorOf(late).code, 'UPSTREAM_TIMEOUT');
        assert.equal(upstream.seen.length, 1);
        release();
        const [first] = await out.until(1);
        assert.equal(first.n, 0);
      } finally {
        registry.CacheNamespace.prototype.set = original;
        release();
      }
    });
  });

  describe('clock moved back', () => {
    it('treats an answer stamped in the future as stale: fetches again, or sends it as stale when the upstream fails', async () => {
      await helper.load(nodes, fetchFlow(file, upstream.base, { ttl: 30, ttlUnits: 'minutes' }));
      const out = collect('out');
      clock.set('2027-06-01T10:00:00Z'); // a year ahead (a board without a clock, a wrong time)
      node('fetcher').receive({ payload: 'Berlin' });
      await out.until(1);
      clock.set('2026-06-01T10:00:00Z'); // NTP corrects it
      node('fetcher').receive({ payload: 'Berlin' });
      const [, again] = await out.until(2);
      assert.equal(info(again).hit, false);
      assert.deepEqual(again.payload, { city: 'Berlin', version: 2 });
      assert.equal(Date.parse(info(again).storedAt), clock.ms);

      node('fetcher').receive({ payload: 'Paris' });
      await out.until(3);
      clock.set('2026-01-01T00:00:00Z');
      upstream.mode = 'error500';
      node('fetcher').receive({ payload: 'Paris' });
      const [, , , stale] = await out.until(4);
      assert.equal(info(stale).hit, true);
      assert.equal(info(stale).stale, true);
      assert.equal(info(stale).age, 0);
      assert.equal(lastStatus('fetcher').text, 'stale: 500 (1 hit / 3 miss)');
    });
  });
});
