// A cache-store with the Redis backend as a flow uses it: settings that cannot work are refused at
// start with a readable reason (and every node using the store fails its messages with it), and
// valid ones reach a real redis-server: its database, its key prefix, and a server that wants a
// password or an ACL user, with the login kept in the node's credentials.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from '@redis/client';
import type { NodeMessage } from '../../nodes/red/api';
import { allNodes, catchAndComplete, collect, deploy, helper, lastStatus, ManualClock, node, useRuntime } from '../support/harness';
import { RedisServer } from '../support/redis-server';

const nodes = allNodes();
const TAB = 'tab1';
const PASSWORD = 'requirepass-Secret-4471';
const ACL_USER = 'flowcache';
const ACL_PASSWORD = 'acl-Secret-9038';

type Flow = Record<string, unknown>[];
type CacheError = { message: string; code?: string; source?: { id?: string } };

const SECRET_IN_URL =
  /^no password in the Redis URL \(it is saved in the flow file and shown\): put it in the Password field and give the URL as redis:\/\/host:port$/;
const LOGIN_IN_URL = /^no user or password in the Redis URL \(it is saved in the flow file\): use the Username and Password fields$/;

function errorOf(msg: NodeMessage): CacheError {
  return msg.error as CacheError;
}

function redisStore(id: string, settings: Record<string, unknown>): Record<string, unknown> {
  return { id, type: 'cache-store', name: `store ${id}`, backend: 'redis', scope: 'flow', ...settings };
}

/** A cache-set and a cache-get (suffix `n`) working on store `storeId`, each with a helper after it. */
function setAndGet(storeId: string, n: string): Flow {
  return [
    {
      id: `cacheSet${n}`,
      type: 'cache-set',
      z: TAB,
      store: storeId,
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      wires: [[`setOut${n}`]],
    },
    { id: `setOut${n}`, type: 'helper', z: TAB },
    {
      id: `cacheGet${n}`,
      type: 'cache-get',
      z: TAB,
      store: storeId,
      key: 'topic',
      keyType: 'msg',
      property: 'payload',
      defaultType: 'none',
      wires: [[`found${n}`], [`missing${n}`]],
    },
    { id: `found${n}`, type: 'helper', z: TAB },
    { id: `missing${n}`, type: 'helper', z: TAB },
  ];
}

function flowOf(stores: Record<string, unknown>[], ...parts: Flow[]): Flow {
  const ids = parts.flat().map((n) => n.id as string);
  return [{ id: TAB, type: 'tab', label: 'Flow 1' }, ...stores, ...parts.flat(), ...(catchAndComplete(TAB, ids) as Flow)];
}

/** The runtime face of a cache-store: its settings or the reason it cannot be used. */
function storeNode(id: string): { configError?: string; settings?: { backend: string; redis?: Record<string, unknown> } } {
  const found = helper.getNode(id) as { configError?: string } | null;
  if (!found) throw new Error(`cache-store ${id} is not in the flow`);
  return found;
}

/** Every line the runtime logged so far, as text. */
function logText(): string {
  return helper
    .log()
    .getCalls()
    .map((c) => JSON.stringify(c.args[0]))
    .join('\n');
}

/** Every status a node showed so far, as text. */
function statusText(id: string): string {
  return JSON.stringify((node(id).status as unknown as { getCalls(): { args: unknown[] }[] }).getCalls().map((c) => c.args[0]));
}

/** Keys on a server's database, read with a client of the test's own. */
async function keysOn(server: RedisServer, database: number, pattern: string, login: { username?: string; password?: string } = {}): Promise<string[]> {
  const client = createClient({ url: server.url, database, ...login });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.keys(pattern)).sort();
  } finally {
    await client.close();
  }
}

describe('cache-store with the Redis backend', () => {
  const clock = new ManualClock();
  useRuntime(clock);
  let open: RedisServer;
  let locked: RedisServer;

  before(async () => {
    open = await RedisServer.start();
    locked = await RedisServer.start(['--requirepass', PASSWORD]);
    // an ACL user beside the default one (whose password is requirepass)
    const admin = createClient({ url: locked.url, password: PASSWORD });
    admin.on('error', () => undefined);
    await admin.connect();
    await admin.sendCommand(['ACL', 'SETUSER', ACL_USER, 'on', `>${ACL_PASSWORD}`, '~*', '+@all']);
    await admin.close();
  });

  after(async () => {
    await open?.stop();
    await locked?.stop();
  });

  describe('settings that cannot work', () => {
    const CASES: { name: string; settings: Record<string, unknown>; reason: RegExp }[] = [
      { name: 'no URL', settings: { redisUrl: '' }, reason: /^a Redis store needs the server's URL, e\.g\. redis:\/\/127\.0\.0\.1:6379$/ },
      { name: 'only spaces as URL', settings: { redisUrl: '   ' }, reason: /^a Redis store needs the server's URL/ },
      {
        name: 'not a URL',
        settings: { redisUrl: 'localhost 6379' },
        // only a host and port are ever repeated: text with a space in it might hold a password
        reason: /^"…" is not a Redis URL: give redis:\/\/host:port, or rediss:\/\/host:port for TLS$/,
      },
      {
        name: 'http URL',
        settings: { redisUrl: 'http://127.0.0.1:6379' },
        reason: /^a Redis URL starts with redis:\/\/ or rediss:\/\/ \(TLS\), not http:\/\/$/,
      },
      {
        name: 'user and password in the URL',
        settings: { redisUrl: 'redis://admin:url-Secret-5512@127.0.0.1:6379' },
        reason: /^no user or password in the Redis URL \(it is saved in the flow file\): use the Username and Password fields$/,
      },
      { name: 'password only in the URL', settings: { redisUrl: 'redis://:url-Secret-5512@127.0.0.1:6379' }, reason: /^no user or password in the Redis URL/ },
      {
        name: 'database as a path',
        settings: { redisUrl: 'redis://127.0.0.1:6379/2' },
        reason: /^a Redis URL holds only host and port, got "redis:\/\/127\.0\.0\.1:6379\/2": choose the database with the Database field$/,
      },
      {
        name: 'a query',
        settings: { redisUrl: 'redis://127.0.0.1:6379?db=2' },
        reason: /^a Redis URL holds only host and port, got "redis:\/\/127\.0\.0\.1:6379\?…"/,
      },
      { name: 'no host', settings: { redisUrl: 'redis://' }, reason: /^"redis:\/\/" is not a Redis URL/ },
      // a password outside the login: refused with the reason to use the Password field, the URL never repeated
      { name: 'password in the query', settings: { redisUrl: 'redis://127.0.0.1:6379/?password=qry-Secret-1101' }, reason: SECRET_IN_URL },
      { name: 'pass in a query without a slash', settings: { redisUrl: 'redis://127.0.0.1:6379?pass=qry-Secret-1102' }, reason: SECRET_IN_URL },
      { name: 'pwd among other parameters', settings: { redisUrl: 'redis://127.0.0.1:6379/?db=2&pwd=qry-Secret-1103' }, reason: SECRET_IN_URL },
      { name: 'auth in the query', settings: { redisUrl: 'redis://127.0.0.1:6379/?auth=qry-Secret-1104' }, reason: SECRET_IN_URL },
      { name: 'token in the query', settings: { redisUrl: 'rediss://127.0.0.1:6379/?access_token=qry-Secret-1105' }, reason: SECRET_IN_URL },
      { name: 'percent-encoded parameter name', settings: { redisUrl: 'redis://127.0.0.1:6379/?p%61ssword=qry-Secret-1106' }, reason: SECRET_IN_URL },
      { name: 'upper-case parameter name', settings: { redisUrl: 'redis://127.0.0.1:6379/?PASSWORD=qry-Secret-1107' }, reason: SECRET_IN_URL },
      { name: 'password as the fragment', settings: { redisUrl: 'redis://127.0.0.1:6379#frag-Secret-1108' }, reason: SECRET_IN_URL },
      { name: 'fragment after a slash', settings: { redisUrl: 'redis://127.0.0.1:6379/#frag-Secret-1109' }, reason: SECRET_IN_URL },
      // a login of any shape: refused, never shown
      { name: 'login with a space', settings: { redisUrl: 'redis://admin:pa ss-Secret-1110@127.0.0.1:6379' }, reason: LOGIN_IN_URL },
      { name: "login with an '@'", settings: { redisUrl: 'redis://admin:pa@ss-Secret-1111@127.0.0.1:6379' }, reason: LOGIN_IN_URL },
      { name: "login with a '/'", settings: { redisUrl: 'redis://admin:pa/ss-Secret-1112@127.0.0.1:6379' }, reason: LOGIN_IN_URL },
      { name: 'percent-encoded login', settings: { redisUrl: 'redis://admin:pa%2Fss-Secret-1113@127.0.0.1:6379' }, reason: LOGIN_IN_URL },
      { name: 'a user name alone', settings: { redisUrl: 'redis://user-Secret-1114@127.0.0.1:6379' }, reason: LOGIN_IN_URL },
      { name: 'login without a scheme', settings: { redisUrl: 'admin:pa ss-Secret-1115@127.0.0.1:6379' }, reason: LOGIN_IN_URL },
      // other text that is no host and port: shown with everything but the host replaced
      {
        name: 'a word as the path',
        settings: { redisUrl: 'redis://127.0.0.1:6379/path-Secret-1116' },
        reason: /^a Redis URL holds only host and port, got "redis:\/\/127\.0\.0\.1:6379\/…": choose the database with the Database field$/,
      },
      { name: 'a word as the port', settings: { redisUrl: 'redis://127.0.0.1:port-Secret-1117' }, reason: /^"redis:\/\/…" is not a Redis URL/ },
      {
        name: 'database over the limit',
        settings: { redisUrl: 'redis://127.0.0.1:6379', redisDb: '65536' },
        reason: /^the Redis database must be a whole number from 0 to 65535, got "65536"$/,
      },
      {
        name: 'negative database',
        settings: { redisUrl: 'redis://127.0.0.1:6379', redisDb: -1 },
        reason: /^the Redis database must be a whole number from 0 to 65535, got "-1"$/,
      },
      { name: 'fractional database', settings: { redisUrl: 'redis://127.0.0.1:6379', redisDb: '1.5' }, reason: /got "1\.5"$/ },
      { name: 'database as a word', settings: { redisUrl: 'redis://127.0.0.1:6379', redisDb: 'two' }, reason: /got "two"$/ },
      {
        name: 'prefix with a line break',
        settings: { redisUrl: 'redis://127.0.0.1:6379', redisPrefix: 'flow\ncache:' },
        reason: /^the key prefix may have at most 256 characters and no control characters$/,
      },
      {
        name: 'prefix too long',
        settings: { redisUrl: 'redis://127.0.0.1:6379', redisPrefix: 'p'.repeat(257) },
        reason: /^the key prefix may have at most 256 characters/,
      },
      {
        name: 'unknown backend',
        settings: { backend: 'memcached', redisUrl: 'redis://127.0.0.1:6379' },
        reason: /^backend must be "sqlite" or "redis", got "memcached"$/,
      },
    ];

    it('each is refused at start with its reason, and nodes using the store fail every message with STORE_INVALID', async () => {
      const stores = CASES.map((c, i) => redisStore(`bad${i}`, c.settings));
      await helper.load(nodes, flowOf(stores, ...CASES.map((_c, i) => setAndGet(`bad${i}`, String(i)))));
      const caught = collect('caught');
      const written = CASES.map((_c, i) => collect(`setOut${i}`));
      for (const [i, c] of CASES.entries()) {
        const reason = storeNode(`bad${i}`).configError;
        assert.match(reason ?? '(no error)', c.reason, c.name);
        // the log names the store and says why, once per store
        assert.ok(
          logText().includes(`cache-store \\"store bad${i}\\": ${JSON.stringify(reason).slice(1, -1)}`),
          `${c.name}: logged (${logText().slice(0, 300)})`,
        );
        node(`cacheSet${i}`).receive({ topic: 'kitchen', payload: 21 });
        node(`cacheGet${i}`).receive({ topic: 'kitchen' });
      }
      const errors = await caught.until(CASES.length * 2);
      for (const [i, c] of CASES.entries()) {
        for (const id of [`cacheSet${i}`, `cacheGet${i}`]) {
          const failed = errors.find((m) => errorOf(m).source?.id === id);
          assert.ok(failed, `${c.name}: ${id} ended its message with an error`);
          assert.equal(errorOf(failed).code, 'STORE_INVALID', `${c.name}: ${id}: ${errorOf(failed).message}`);
          assert.match(errorOf(failed).message, new RegExp(c.reason.source.replace(/^\^/, '').replace(/\$$/, '')), `${c.name}: ${id} says why`);
          assert.equal(lastStatus(id).fill, 'red', `${c.name}: ${id} is red`);
        }
      }
      assert.deepEqual(
        written.map((w) => w.received.length),
        CASES.map(() => 0),
        'nothing was written',
      );
      // a user or password written into the URL is never repeated, in the log, a status or an error
      const shown = [
        logText(),
        ...CASES.flatMap((_c, i) => [statusText(`cacheSet${i}`), statusText(`cacheGet${i}`)]),
        JSON.stringify(errors.map((m) => m.error)),
      ].join('\n');
      assert.ok(!shown.includes('url-Secret-5512'), 'the password of the URL is shown somewhere');
      for (const secret of shown.match(/(?:qry|frag|ss|user|path|port)-Secret-\d{4}/g) ?? []) assert.fail(`${secret} is shown: ${shown.slice(0, 2000)}`);
      // the admin API (the editor's sidebar; every user who may read) names the refused stores with the same words
      const listing = await helper.request().get('/flow-cache/stores').expect(200);
      assert.ok(!/Secret-\d{4}/.test(JSON.stringify(listing.body)), `an admin answer shows a password: ${JSON.stringify(listing.body).slice(0, 2000)}`);
      for (const [i, c] of CASES.entries()) {
        const listed = (listing.body.stores as { id: string; error?: string }[]).find((s) => s.id === `bad${i}`);
        assert.match(listed?.error ?? '(not listed)', c.reason, `${c.name}: the admin answer`);
      }
    });

    it('a store left on SQLite ignores its Redis fields (flows from before the Redis backend keep working)', async () => {
      // a cache-store saved before the backend existed: no backend property, no Redis fields
      const legacy = { id: 'storeLegacy', type: 'cache-store', name: 'legacy store', path: 'legacy.sqlite', scope: 'flow' };
      const sqliteWithRedisFields = { ...redisStore('storeSqlite', { redisUrl: 'http://nowhere', redisDb: 'x' }), backend: 'sqlite', path: 'other.sqlite' };
      await helper.load(nodes, flowOf([legacy, sqliteWithRedisFields], setAndGet('storeLegacy', 'L'), setAndGet('storeSqlite', 'S')));
      for (const id of ['storeLegacy', 'storeSqlite']) {
        assert.equal(storeNode(id).configError, undefined, id);
        assert.equal(storeNode(id).settings?.backend, 'sqlite', id);
      }
      for (const n of ['L', 'S']) {
        const found = collect(`found${n}`);
        const stored = collect(`setOut${n}`);
        node(`cacheSet${n}`).receive({ topic: 'mode', payload: `away ${n}` });
        await stored.until(1);
        node(`cacheGet${n}`).receive({ topic: 'mode' });
        assert.equal((await found.until(1))[0].payload, `away ${n}`);
      }
    });
  });

  describe('a reachable server', () => {
    it('cache-set writes through Redis (its database and key prefix) and cache-get reads the value back', async () => {
      const store = redisStore('storeRedis', { redisUrl: open.url, redisDb: '3', redisPrefix: 'e2e-house:' });
      await helper.load(nodes, flowOf([store], setAndGet('storeRedis', '')));
      assert.equal(storeNode('storeRedis').configError, undefined);
      assert.deepEqual(storeNode('storeRedis').settings?.redis, { url: open.url, database: 3, prefix: 'e2e-house:' });
      const stored = collect('setOut');
      const found = collect('found');
      const missing = collect('missing');
      node('cacheSet').receive({ topic: 'sensor.kitchen', payload: { temp: 21.5, at: new Date('2026-06-01T09:00:00Z') } });
      await stored.until(1);
      node('cacheGet').receive({ topic: 'sensor.kitchen' });
      const [msg] = await found.until(1);
      assert.deepEqual(msg.payload, { temp: 21.5, at: new Date('2026-06-01T09:00:00Z') });
      assert.equal((msg.cache as { hit: boolean }).hit, true);
      node('cacheGet').receive({ topic: 'sensor.hall' });
      await missing.until(1);
      assert.match(lastStatus('cacheGet').text ?? '', /miss sensor\.hall/);

      // the value is on the server: in database 3 under the prefix, one key; nothing in database 0
      const keys = await keysOn(open, 3, 'e2e-house:*');
      assert.equal(keys.length, 1, `keys in db 3: ${keys.join(', ')}`);
      assert.ok(keys[0].endsWith(':sensor.kitchen'), keys[0]);
      assert.deepEqual(await keysOn(open, 0, '*'), []);

      // another process (here: a second deploy of the same flow, a fresh client) finds it
      await helper.unload();
      await helper.load(nodes, flowOf([store], setAndGet('storeRedis', '')));
      const again = collect('found');
      node('cacheGet').receive({ topic: 'sensor.kitchen' });
      assert.equal(((await again.until(1))[0].payload as { temp: number }).temp, 21.5);
    });

    it('the default key prefix is flow-cache: and database 0 when the dialog leaves them empty', async () => {
      await helper.load(nodes, flowOf([redisStore('storePlain', { redisUrl: `${open.url}/`, redisDb: '', redisPrefix: '' })], setAndGet('storePlain', '')));
      assert.deepEqual(storeNode('storePlain').settings?.redis, { url: open.url, database: 0, prefix: 'flow-cache:' });
      const stored = collect('setOut');
      node('cacheSet').receive({ topic: 'door', payload: 'open' });
      await stored.until(1);
      const keys = await keysOn(open, 0, 'flow-cache:*');
      assert.equal(keys.length, 1, keys.join(', '));
      assert.ok(keys[0].endsWith(':door'));
    });
  });

  describe('a server that wants a login', () => {
    /** Deploys as the editor does: the credentials inside the nodes, which Node-RED takes out of the flow. */
    async function deployAsEditor(flow: Flow): Promise<void> {
      await helper.load(nodes, flowOf([]));
      await deploy(flow, 'full');
    }

    it('is reached with the password of the credentials, which stays out of the deployed flow', async () => {
      const store = { ...redisStore('storeLocked', { redisUrl: locked.url, redisPrefix: 'auth:' }), credentials: { password: PASSWORD } };
      await deployAsEditor(flowOf([store], setAndGet('storeLocked', '')));
      assert.equal(storeNode('storeLocked').configError, undefined);
      const stored = collect('setOut');
      const found = collect('found');
      node('cacheSet').receive({ topic: 'counter', payload: 41 });
      await stored.until(1);
      node('cacheGet').receive({ topic: 'counter' });
      assert.equal((await found.until(1))[0].payload, 41);
      assert.equal((await keysOn(locked, 0, 'auth:*', { password: PASSWORD })).length, 1);

      const deployed = JSON.stringify((helper as unknown as { _redNodes: { getFlows(): unknown } })._redNodes.getFlows());
      assert.ok(deployed.includes('"backend":"redis"'), 'the deployed flow holds the store');
      assert.ok(!deployed.includes(PASSWORD), 'the password is in the deployed flow');
    });

    it('is reached as an ACL user (username and password)', async () => {
      const store = { ...redisStore('storeAcl', { redisUrl: locked.url, redisPrefix: 'acl:' }), credentials: { username: ACL_USER, password: ACL_PASSWORD } };
      await deployAsEditor(flowOf([store], setAndGet('storeAcl', '')));
      const stored = collect('setOut');
      const found = collect('found');
      node('cacheSet').receive({ topic: 'mode', payload: 'night' });
      await stored.until(1);
      node('cacheGet').receive({ topic: 'mode' });
      assert.equal((await found.until(1))[0].payload, 'night');
      assert.equal((await keysOn(locked, 0, 'acl:*', { username: ACL_USER, password: ACL_PASSWORD })).length, 1);
    });

    it('without the right password every message fails with a catchable error that never shows the password', async () => {
      const wrong = 'wrong-Secret-2208';
      const stores = [
        { ...redisStore('storeNoLogin', { redisUrl: locked.url, redisPrefix: 'x:' }) },
        { ...redisStore('storeWrongPw', { redisUrl: locked.url, redisPrefix: 'x:' }), credentials: { password: wrong } },
      ];
      await deployAsEditor(flowOf(stores, setAndGet('storeNoLogin', 'N'), setAndGet('storeWrongPw', 'W')));
      const caught = collect('caught');
      const written = [collect('setOutN'), collect('setOutW')];
      node('cacheSetN').receive({ topic: 'a', payload: 1 });
      node('cacheSetW').receive({ topic: 'a', payload: 1 });
      const errors = await caught.until(2, 15_000);
      for (const id of ['cacheSetN', 'cacheSetW']) {
        const failed = errors.find((m) => errorOf(m).source?.id === id);
        assert.ok(failed, `${id} ended its message with an error`);
        assert.match(errorOf(failed).code ?? '', /^STORE_(IO|DISCONNECTED)$/, `${id}: ${errorOf(failed).code} ${errorOf(failed).message}`);
        assert.match(errorOf(failed).message, /NOAUTH|WRONGPASS|auth/i, `${id} says the login failed: ${errorOf(failed).message}`);
        assert.equal(lastStatus(id).fill, 'red');
      }
      assert.deepEqual(
        written.map((w) => w.received.length),
        [0, 0],
        'nothing was written',
      );
      assert.deepEqual(await keysOn(locked, 0, 'x:*', { password: PASSWORD }), []);
      const shown = [logText(), statusText('cacheSetN'), statusText('cacheSetW'), JSON.stringify(errors.map((m) => m.error))].join('\n');
      assert.ok(!shown.includes(wrong) && !shown.includes(PASSWORD), 'a password is shown somewhere');
    });
  });

  describe("a node's status follows its store", () => {
    type Status = { fill?: string; shape?: string; text?: string };
    /** What the editor shows under each node: the last status any instance of it sent (a new instance starts with what the old one left). */
    const shown = new Map<string, Status>();
    const waiters: { id: string; test: (s: Status) => boolean; resolve: () => void }[] = [];

    /** Follows the statuses of the node now deployed as `id`: those it sent while starting, then every later one. */
    function follow(id: string): void {
      const target = helper.getNode(id) as unknown as { status(s: Status): void } & { status: { getCalls(): { args: Status[] }[] } };
      for (const call of target.status.getCalls()) shown.set(id, call.args[0]);
      const spy = target.status;
      const original = spy.bind(target);
      (target as { status: (s: Status) => void }).status = (status: Status) => {
        original(status);
        shown.set(id, status);
        for (const w of [...waiters]) if (w.id === id && w.test(status)) waiters.splice(waiters.indexOf(w), 1) && w.resolve();
      };
    }

    /** Resolves once the editor shows a status of `id` that passes `test`. */
    function showing(id: string, test: (s: Status) => boolean, what: string, ms = 15_000): Promise<void> {
      if (test(shown.get(id) ?? {})) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${id} never showed ${what}; it shows ${JSON.stringify(shown.get(id))}`)), ms);
        waiters.push({
          id,
          test,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }

    const isRed = (s: Status) => s.fill === 'red' && /disconnected/.test(s.text ?? '');
    const isClear = (s: Status) => s.fill === undefined && s.text === undefined;

    function gateFlow(storeId: string, url: string): Flow {
      const gate = {
        id: 'gate',
        type: 'cooldown-gate',
        z: TAB,
        store: storeId,
        key: 'topic',
        keyType: 'msg',
        cooldown: 1,
        cooldownUnits: 'hours',
        failOpen: false,
        wires: [['passed'], ['suppressed']],
      };
      return flowOf(
        [redisStore(storeId, { redisUrl: url, redisPrefix: 'status:' })],
        [gate, { id: 'passed', type: 'helper', z: TAB }, { id: 'suppressed', type: 'helper', z: TAB }],
      );
    }

    it('a deploy to a working Redis URL clears the red "disconnected" status at once, before any message', async () => {
      const gone = await RedisServer.start();
      const deadUrl = gone.url;
      await gone.stop();
      await helper.load(nodes, gateFlow('storeDead', deadUrl));
      follow('gate');
      await showing('gate', isRed, 'a red "disconnected" status');
      assert.match(shown.get('gate')?.text ?? '', new RegExp(`disconnected: .*${gone.port}`));
      // the user fixes the URL and deploys: the new gate is the one the editor shows, with no message yet
      await deploy(gateFlow('storeDead', open.url), 'full');
      follow('gate');
      await showing('gate', isClear, 'its status cleared');
      const passed = collect('passed');
      node('gate').receive({ topic: 'door' });
      assert.equal((await passed.until(1)).length, 1, 'the gate works on the new server');
    });

    it('a server that comes back clears the red status by itself, before any message', async () => {
      const server = await RedisServer.start();
      try {
        await helper.load(nodes, gateFlow('storeBack', server.url));
        follow('gate');
        // connected, and no message yet: nothing of the gate's own under the alert to come
        await keysOn(server, 0, 'status:*');
        await server.kill();
        await showing('gate', isRed, 'a red "disconnected" status');
        await server.start();
        await showing('gate', (s) => !isRed(s), 'the red status lifted');
        assert.equal(isRed(shown.get('gate') ?? {}), false);
      } finally {
        await server.stop();
      }
    });
  });
});
