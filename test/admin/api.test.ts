// The admin API over real HTTP against a running Node-RED (4.1, or 5 with NODE_RED_LINE=5): who may read
// and change, what it shows of what flows wrote, that its changes are what the flows see next, that no
// answer holds the ttl-fetch secret, that no request names a file, and that bad input gets a 4xx with a
// message.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeRedProcess } from '../support/node-red-process';
import {
  adminFlows,
  adminNodeRed,
  answers,
  call,
  defaultFile,
  deploy,
  echoServer,
  flow,
  HEADER_SECRET,
  hex,
  login,
  prepopulate,
  QUERY_SECRET,
  TAB,
  TAB_LABEL,
} from './support';

const TIMEOUT = 120_000;
const FLOW_NS = hex(`flow:${TAB}`);
const ORPHAN_NS = hex('flow:deleted-tab');
const SHARED_NS = hex('shared:house');
const base = (store: string, ns: string) => `/flow-cache/stores/${store}/namespaces/${ns}`;
const entry = (ns: string, key: string, store = 'default') => `${base(store, ns)}/entries/${encodeURIComponent(key)}`;

describe('admin API with adminAuth', { timeout: TIMEOUT }, () => {
  let proc: NodeRedProcess;
  let upstream: Awaited<ReturnType<typeof echoServer>>;
  let admin: string;
  let viewer: string;

  before(async () => {
    upstream = await echoServer();
    proc = await adminNodeRed('admin-api-', { adminAuth: true });
    // written before the start: a namespace whose tab is gone, 120 items to page through, two entries expired an hour ago
    await prepopulate(defaultFile(proc.userDir), [
      { namespace: 'flow:deleted-tab', keys: ['left:1', 'left:2', 'left:3'] },
      { namespace: `flow:${TAB}`, keys: Array.from({ length: 120 }, (_, i) => `item:${String(i).padStart(3, '0')}`) },
      { namespace: `flow:${TAB}`, keys: ['old:1', 'old:2'], ttl: 60, hoursAgo: 1 },
    ]);
    await proc.start();
    admin = await login(proc.port, 'admin');
    viewer = await login(proc.port, 'viewer');
    await deploy(proc, adminFlows(upstream.port), admin);
    await flow(proc, '/count?k=kitchen');
    await flow(proc, '/count?k=kitchen');
    assert.equal(await flow(proc, '/gate?k=door'), 'passed');
    await flow(proc, '/set?k=note&v=hello');
    await flow(proc, '/shared-set?k=lights&v=on');
    await flow(proc, '/other-set?k=elsewhere&v=1');
    assert.match(await flow(proc, '/fetch'), /temperature/);
    await flow(proc, '/ctx?v=3');
  });

  after(async () => {
    await proc?.kill();
    await upstream?.close();
  });

  const routes = (): [string, string, unknown?][] => [
    ['GET', '/flow-cache/stores'],
    ['GET', '/flow-cache/stores/default/namespaces'],
    ['GET', `${base('default', FLOW_NS)}/keys`],
    ['GET', entry(FLOW_NS, 'counter:kitchen')],
    ['PUT', entry(FLOW_NS, 'counter:kitchen'), { count: 5 }],
    ['DELETE', entry(FLOW_NS, 'note')],
    ['DELETE', base('default', ORPHAN_NS)],
    ['POST', '/flow-cache/stores/default/purge-expired', {}],
  ];

  it('answers 401 to an anonymous request on every route, and changes nothing', async () => {
    for (const [method, route, body] of routes()) {
      const reply = await call(proc.port, method, route, { body });
      assert.equal(reply.status, 401, `${method} ${route}: ${reply.status} ${reply.text}`);
    }
    assert.equal(await flow(proc, '/get?k=note'), 'hello');
  });

  it('lets a read-only user read (200) and answers 403 to each of its changes, which change nothing', async () => {
    for (const [method, route, body] of routes()) {
      const reply = await call(proc.port, method, route, { body, token: viewer });
      assert.equal(reply.status, method === 'GET' ? 200 : 403, `${method} ${route}: ${reply.status} ${reply.text}`);
      if (method !== 'GET') assert.match(reply.json.message, /needs the permission flow-cache\.write/);
    }
    assert.equal(await flow(proc, '/get?k=note'), 'hello');
    const orphan = await call(proc.port, 'GET', `${base('default', ORPHAN_NS)}/keys`, { token: viewer });
    assert.equal(orphan.json.total, 3);
    const count = await call(proc.port, 'GET', entry(FLOW_NS, 'counter:kitchen'), { token: viewer });
    assert.equal(count.json.entry.counter.count, 2);
  });

  it('lists the stores the flows name, with files from the flows and the context store, never a file from the request', async () => {
    const reply = await call(proc.port, 'GET', '/flow-cache/stores', { token: admin });
    assert.equal(reply.status, 200, reply.text);
    const stores = reply.json.stores as any[];
    const byId = new Map(stores.map((s) => [s.id, s]));
    const main = byId.get('default');
    assert.equal(main.file, defaultFile(proc.userDir));
    assert.equal(main.exists, true);
    assert.deepEqual(
      main.configNodes.map((c: any) => c.id),
      ['houseStore'],
    );
    assert.ok(main.entries >= 120 + 3 + 4, `entries: ${main.entries}`);
    assert.equal(main.expired, 2);
    assert.equal(main.sizeLimitBytes, 100 * 1024 * 1024);
    assert.equal(main.evictionPolicy, 'least-recently-stored');
    const other = byId.get('otherStore');
    assert.equal(other.file, path.join(proc.userDir, 'other', 'cache.sqlite'));
    assert.equal(other.entries, 1);
    const context = stores.find((s) => s.file === path.join(proc.userDir, 'flow-cache', 'context.sqlite'));
    assert.ok(context, `the context store's file is listed: ${reply.text}`);
    assert.match(context.id, /^open-[0-9a-f]{12}$/);

    // a path in the request names nothing: no such store, and no file is made there
    const elsewhere = path.join(proc.userDir, 'elsewhere.sqlite');
    for (const route of [
      `/flow-cache/stores/${encodeURIComponent(elsewhere)}/namespaces`,
      `/flow-cache/stores/..%2F..%2Fetc%2Fpasswd/namespaces`,
      `/flow-cache/stores/default/namespaces?file=${encodeURIComponent(elsewhere)}&path=${encodeURIComponent(elsewhere)}`,
    ]) {
      const answer = await call(proc.port, 'GET', route, { token: admin });
      assert.ok(answer.status === 404 || answer.status === 200, `${route}: ${answer.status}`);
      if (answer.status === 404) assert.match(answer.json.message, /no store/);
      else assert.ok(answer.json.namespaces.every((n: any) => n.name !== 'flow:elsewhere'));
    }
    assert.equal(fs.existsSync(elsewhere), false);
    const other404 = await call(proc.port, 'GET', '/flow-cache/stores/nope/namespaces', { token: admin });
    assert.equal(other404.status, 404);
  });

  it('names namespaces by their flow tab or shared name, marks the one whose tab is gone orphaned, and the context read-only', async () => {
    const reply = await call(proc.port, 'GET', '/flow-cache/stores/default/namespaces', { token: admin });
    assert.equal(reply.status, 200, reply.text);
    const byName = new Map((reply.json.namespaces as any[]).map((n) => [n.name, n]));
    const flowNs = byName.get(`flow:${TAB}`);
    assert.equal(flowNs.label, TAB_LABEL);
    assert.equal(flowNs.kind, 'flow');
    assert.equal(flowNs.orphaned, false);
    assert.equal(flowNs.namespace, FLOW_NS);
    assert.equal(flowNs.expired, 2);
    const shared = byName.get('shared:house');
    assert.equal(shared.kind, 'shared');
    assert.deepEqual(shared.configNodes, ['houseStore']);
    assert.equal(shared.entries, 1);
    const orphan = byName.get('flow:deleted-tab');
    assert.equal(orphan.orphaned, true);
    assert.equal(orphan.entries, 3);

    const stores = (await call(proc.port, 'GET', '/flow-cache/stores', { token: admin })).json.stores as any[];
    const contextStore = stores.find((s) => s.file.endsWith('context.sqlite'));
    const context = await call(proc.port, 'GET', `/flow-cache/stores/${contextStore.id}/namespaces`, { token: admin });
    const visits = (context.json.namespaces as any[]).find((n) => n.name === `context:${TAB}`);
    assert.ok(visits, context.text);
    assert.equal(visits.kind, 'context');
    assert.equal(visits.readOnly, true);
    assert.equal(visits.label, TAB_LABEL);
    const refused = await call(proc.port, 'DELETE', `${base(contextStore.id, visits.namespace)}/entries/visits`, { token: admin });
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.json.message, /context store/);
    const cleared = await call(proc.port, 'DELETE', base(contextStore.id, visits.namespace), { token: admin });
    assert.equal(cleared.status, 409);
  });

  it('finds the keys flows wrote, pages through 120 more with a cursor, and filters by prefix and substring', async () => {
    const keys = `${base('default', FLOW_NS)}/keys`;
    const first = await call(proc.port, 'GET', `${keys}?limit=50`, { token: admin });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.total, 120 + 4);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call(proc.port, 'GET', `${keys}?limit=50${cursor ? `&cursor=${cursor}` : ''}`, { token: admin });
      seen.push(...page.json.keys.map((k: any) => k.key));
      cursor = page.json.next;
    } while (cursor);
    assert.equal(seen.length, 124);
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(seen.includes('counter:kitchen') && seen.includes('cooldown:door') && seen.includes('note'));
    assert.ok(seen.some((k) => k.startsWith('fetch:')));
    assert.ok(!seen.includes('old:1'), 'expired entries are not listed');

    const prefix = await call(proc.port, 'GET', `${keys}?filter=item%3A11&match=prefix`, { token: admin });
    assert.deepEqual(
      prefix.json.keys.map((k: any) => k.key),
      Array.from({ length: 10 }, (_, i) => `item:11${i}`),
    );
    const contains = await call(proc.port, 'GET', `${keys}?filter=KITCH&match=substring`, { token: admin });
    assert.deepEqual(
      contains.json.keys.map((k: any) => [k.key, k.kind]),
      [['counter:kitchen', 'counter']],
    );
    // last write first: the entries written by the flows after the start come before the 120 written before it
    const recent = await call(proc.port, 'GET', `${keys}?sort=stored&limit=4`, { token: admin });
    assert.deepEqual(
      recent.json.keys.map((k: any) => k.key).sort(),
      ['cooldown:door', 'counter:kitchen', 'note', seen.find((k) => k.startsWith('fetch:'))].sort(),
    );
  });

  it("shows a counter's value change after the flow counts, and a count set through the API is what the flow counts on from", async () => {
    const before = await call(proc.port, 'GET', entry(FLOW_NS, 'counter:kitchen'), { token: admin });
    assert.equal(before.json.entry.kind, 'counter');
    assert.equal(before.json.entry.counter.count, 2);
    assert.equal(before.json.entry.evictable, false);
    assert.equal(await flow(proc, '/count?k=kitchen'), '3');
    const after = await call(proc.port, 'GET', entry(FLOW_NS, 'counter:kitchen'), { token: admin });
    assert.equal(after.json.entry.counter.count, 3);
    const set = await call(proc.port, 'PUT', entry(FLOW_NS, 'counter:kitchen'), { token: admin, body: { count: 41 } });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.json.entry.counter.count, 41);
    assert.equal(await flow(proc, '/count?k=kitchen'), '42');
  });

  it('shows a cooldown with the time it holds back, and a reset lets the gate pass again', async () => {
    assert.equal(await flow(proc, '/gate?k=door'), 'suppressed');
    const shown = await call(proc.port, 'GET', entry(FLOW_NS, 'cooldown:door'), { token: admin });
    assert.equal(shown.json.entry.kind, 'cooldown');
    assert.equal(shown.json.entry.cooldown.key, 'door');
    assert.equal(shown.json.entry.cooldown.length, 3_600_000);
    assert.ok(shown.json.entry.cooldown.remaining > 3_500_000, shown.text);
    const reset = await call(proc.port, 'DELETE', entry(FLOW_NS, 'cooldown:door'), { token: admin });
    assert.equal(reset.status, 200, reset.text);
    assert.equal(reset.json.deleted, true);
    assert.equal(await flow(proc, '/gate?k=door'), 'passed');
    assert.equal(await flow(proc, '/gate?k=door'), 'suppressed');
  });

  it('edits a plain value as JSON (the flow reads the new one) and deletes a key', async () => {
    const edited = await call(proc.port, 'PUT', entry(FLOW_NS, 'note'), { token: admin, body: { value: { text: 'edited', n: [1, 2] } } });
    assert.equal(edited.status, 200, edited.text);
    assert.deepEqual(edited.json.entry.preview.value, { text: 'edited', n: [1, 2] });
    assert.deepEqual(JSON.parse(await flow(proc, '/get?k=note')), { text: 'edited', n: [1, 2] });
    const download = await call(proc.port, 'GET', `${entry(FLOW_NS, 'note')}?download=1`, { token: admin });
    assert.match(String(download.headers['content-disposition']), /attachment; filename="note.json"/);
    assert.deepEqual(download.json, { text: 'edited', n: [1, 2] });
    const deleted = await call(proc.port, 'DELETE', entry(FLOW_NS, 'note'), { token: admin });
    assert.equal(deleted.json.deleted, true);
    const gone = await get404(entry(FLOW_NS, 'note'));
    assert.match(gone.json.message, /no entry "note"/);
    assert.equal((await call(proc.port, 'GET', '/get?k=note')).status, 404);
  });

  async function get404(route: string) {
    const reply = await call(proc.port, 'GET', route, { token: admin });
    assert.equal(reply.status, 404, reply.text);
    return reply;
  }

  it("shows a cached HTTP answer's status, its URL without the query, and never the secret, even where the answer echoes it", async () => {
    const keys = await call(proc.port, 'GET', `${base('default', FLOW_NS)}/keys?filter=fetch%3A&match=prefix`, { token: admin });
    const [fetchKey] = keys.json.keys.map((k: any) => k.key);
    const shown = await call(proc.port, 'GET', entry(FLOW_NS, fetchKey), { token: admin });
    assert.equal(shown.status, 200, shown.text);
    const fetched = shown.json.entry;
    assert.equal(fetched.kind, 'fetch');
    assert.equal(fetched.fetch.statusCode, 200);
    assert.equal(fetched.fetch.url, `http://127.0.0.1:${upstream.port}/weather/today`);
    assert.equal(fetched.fetch.withCredential, true);
    assert.equal(fetched.preview.value.temperature, 21.5);
    // the upstream repeated the Authorization header into the body the node stored: the answer has it cleaned
    assert.equal(fetched.preview.value.youSent, '…');
    assert.equal(fetched.preview.value.path, '/weather/today?token=…');
    const download = await call(proc.port, 'GET', `${entry(FLOW_NS, fetchKey)}?download=1`, { token: admin });
    assert.equal(download.status, 200);
    assert.match(download.text, /temperature/);
    const edit = await call(proc.port, 'PUT', entry(FLOW_NS, fetchKey), { token: admin, body: { value: 1 } });
    assert.equal(edit.status, 400);
    assert.match(edit.json.message, /cached HTTP answer/);
  });

  it('clears a namespace and deletes an orphaned one, leaving every other namespace as it was', async () => {
    const orphan = await call(proc.port, 'DELETE', base('default', ORPHAN_NS), { token: admin });
    assert.equal(orphan.status, 200, orphan.text);
    assert.equal(orphan.json.removed, 3);
    const shared = await call(proc.port, 'DELETE', base('default', SHARED_NS), { token: admin });
    assert.equal(shared.json.removed, 1);
    const names = (await call(proc.port, 'GET', '/flow-cache/stores/default/namespaces', { token: admin })).json.namespaces as any[];
    assert.equal(
      names.find((n) => n.name === 'flow:deleted-tab'),
      undefined,
    );
    // the shared namespace is still named by its config node, with nothing in it
    assert.equal(names.find((n) => n.name === 'shared:house').entries, 0);
    assert.ok(names.find((n) => n.name === `flow:${TAB}`).entries >= 120);
    assert.equal(await flow(proc, '/count?k=kitchen'), '43');
  });

  it('purges expired entries and nothing else', async () => {
    const purge = await call(proc.port, 'POST', '/flow-cache/stores/default/purge-expired', { token: admin, body: {} });
    assert.equal(purge.status, 200, purge.text);
    assert.equal(purge.json.removed, 2);
    const ns = (await call(proc.port, 'GET', '/flow-cache/stores/default/namespaces', { token: admin })).json.namespaces.find(
      (n: any) => n.name === `flow:${TAB}`,
    );
    assert.equal(ns.expired, 0);
    assert.ok(ns.entries >= 120);
  });

  it('answers bad input with a 4xx and a message, and changes nothing', async () => {
    const keys = `${base('default', FLOW_NS)}/keys`;
    const cases: [string, string, { body?: unknown; raw?: string }, number, RegExp][] = [
      ['GET', `${base('default', 'zz')}/keys`, {}, 400, /namespace must be the hex-encoded name/],
      ['GET', `${base('default', hex('flow:x').toUpperCase())}/keys`, {}, 400, /hex-encoded/],
      ['GET', `${keys}?limit=0`, {}, 400, /limit must be a whole number from 1 to 1000/],
      ['GET', `${keys}?limit=abc`, {}, 400, /limit/],
      ['GET', `${keys}?limit=5000`, {}, 400, /limit/],
      ['GET', `${keys}?sort=size`, {}, 400, /sort must be key or stored/],
      ['GET', `${keys}?match=regex`, {}, 400, /match must be prefix or substring/],
      ['GET', `${keys}?cursor=not-a-cursor`, {}, 400, /cursor/],
      ['GET', `${keys}?filter=${'x'.repeat(1100)}`, {}, 400, /filter must be at most 1024/],
      ['GET', `${base('default', FLOW_NS)}/entries/%E0%A4%A`, {}, 400, /bad request/],
      ['GET', entry(FLOW_NS, 'no-such-key'), {}, 404, /no entry "no-such-key"/],
      ['PUT', entry(FLOW_NS, 'counter:kitchen'), { body: { count: 'many' } }, 400, /count must be a finite number/],
      ['PUT', entry(FLOW_NS, 'counter:kitchen'), { body: { value: 3 } }, 400, /is a counter: set it with/],
      ['PUT', entry(FLOW_NS, 'counter:kitchen'), { body: [1, 2] }, 400, /send a JSON object/],
      ['PUT', entry(FLOW_NS, 'counter:kitchen'), { body: { nothing: true } }, 400, /send a JSON object/],
      ['PUT', entry(FLOW_NS, 'cooldown:door'), { body: { value: 0 } }, 400, /reset it with DELETE/],
      ['PUT', entry(FLOW_NS, 'item:001'), { body: { count: 1 } }, 400, /not one/],
      ['PUT', entry(FLOW_NS, 'item:001'), { body: { value: 1, ttl: -5 } }, 400, /ttl must be a number of seconds >= 0/],
      ['PUT', entry(FLOW_NS, 'no-such-key'), { body: { value: 1 } }, 404, /no entry/],
      ['PUT', entry(FLOW_NS, 'item:001'), { raw: '{"value": ' }, 400, /JSON/],
      ['DELETE', `${base('unknown-store', FLOW_NS)}/entries/x`, {}, 404, /no store "unknown-store"/],
      ['POST', '/flow-cache/stores/unknown-store/purge-expired', { body: {} }, 404, /no store/],
    ];
    for (const [method, route, options, status, message] of cases) {
      const reply = await call(proc.port, method, route, { ...options, token: admin });
      assert.equal(reply.status, status, `${method} ${route.slice(0, 120)}: ${reply.status} ${reply.text.slice(0, 300)}`);
      assert.match(reply.json?.message ?? reply.text, message, `${method} ${route.slice(0, 120)}`);
    }
    const item = await call(proc.port, 'GET', entry(FLOW_NS, 'item:001'), { token: admin });
    assert.deepEqual(item.json.entry.preview.value, { key: 'item:001', n: 1 });
    assert.equal(await flow(proc, '/count?k=kitchen'), '44');
    assert.ok(proc.alive, 'Node-RED is still running');
  });

  it('no answer of any test held the ttl-fetch secret or the query token of its URL', () => {
    assert.ok(answers.length > 50, `${answers.length} answers checked`);
    const bare = HEADER_SECRET.replace(/^Bearer /, '');
    for (const answer of answers) {
      assert.ok(!answer.text.includes(bare), `an answer holds the secret: ${answer.text.slice(0, 300)}`);
      assert.ok(!answer.text.includes(QUERY_SECRET), `an answer holds the query token: ${answer.text.slice(0, 300)}`);
    }
  });
});

describe('admin API without adminAuth', { timeout: TIMEOUT }, () => {
  let proc: NodeRedProcess;
  let upstream: Awaited<ReturnType<typeof echoServer>>;

  before(async () => {
    upstream = await echoServer();
    proc = await adminNodeRed('admin-open-', { adminAuth: false });
    await proc.start();
    await deploy(proc, adminFlows(upstream.port));
    await flow(proc, '/count?k=hall');
  });

  after(async () => {
    await proc?.kill();
    await upstream?.close();
  });

  it('reads and changes without a token, as the rest of the admin API does', async () => {
    assert.equal((await call(proc.port, 'GET', '/flows')).status, 200);
    const stores = await call(proc.port, 'GET', '/flow-cache/stores');
    assert.equal(stores.status, 200, stores.text);
    const set = await call(proc.port, 'PUT', entry(FLOW_NS, 'counter:hall'), { body: { count: 9 } });
    assert.equal(set.status, 200, set.text);
    assert.equal(await flow(proc, '/count?k=hall'), '10');
  });
});
