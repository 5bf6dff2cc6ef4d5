// The cache-store dialog's Redis backend as a user meets it: choosing Redis swaps the file's fields for
// the server's, a URL that is not redis:// or rediss:// host and port is refused with the reason, the
// login is kept as credentials (never in the exported flow or the flow file), and a deployed flow
// reaches a real password-protected redis-server with it. Existing stores stay SQLite.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@redis/client';
import type { Locator, Page } from 'playwright-core';
import { RedisServer } from '../support/redis-server';
import {
  activeTab,
  type Browser,
  closeTrays,
  deployFlows,
  editorNode,
  errorTooltip,
  formProblems,
  importNodes,
  type NodeRed,
  openBrowser,
  openDialog,
  openEditor,
  rawI18nKeys,
  screenshot,
  startNodeRed,
  trayClosed,
  trayOpen,
  type,
  waitForStatus,
  waitMarked,
} from './support';

const PASSWORD = 'e2e-redis-Secret-7731';
const LOGIN = 'no user or password in the Redis URL (it is saved in the flow file): use the Username and Password fields';
const SECRET = 'no password in the Redis URL (it is saved in the flow file and shown): put it in the Password field and give the URL as redis://host:port';
/** The rows each backend shows alone. */
const SQLITE_ONLY = ['path', 'sizeLimitMb', 'evictionPolicy', 'durability'];
const REDIS_ONLY = ['redisUrl', 'redisDb', 'redisPrefix', 'username', 'password'];
/** Shown for both backends. */
const COMMON = ['name', 'backend', 'scope', 'defaultTtl', 'timezone'];

function visible(page: Page, property: string): Promise<boolean> {
  return page.locator(`#node-config-input-${property}`).isVisible();
}

/** Which of `properties` have their field shown in the open cache-store dialog. */
async function shown(page: Page, properties: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const property of properties) if (await visible(page, property)) found.push(property);
  return found;
}

/**
 * The error tooltip of an invalid field, read once the tooltip of an earlier hover is gone (the editor
 * fades it out and then removes it), so the text is this field's current error.
 */
async function tooltipOf(page: Page, id: string): Promise<string | undefined> {
  await page.mouse.move(5, 500);
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.red-ui-popover').length === 0);
  return errorTooltip(page, id);
}

/** Opens a flow node's dialog and, from its Store field, a new cache-store's dialog. */
async function addStoreFrom(page: Page, nodeId: string): Promise<Locator> {
  await openDialog(page, nodeId);
  await page.locator('#node-input-btn-store-add').click();
  const config = await trayOpen(page, '#node-config-dialog-ok');
  await config.locator('#node-config-dialog-ok').waitFor();
  return config;
}

/** Opens the dialog of the store a flow node uses (the pencil beside its Store field). */
async function editStoreFrom(page: Page, nodeId: string): Promise<Locator> {
  await openDialog(page, nodeId);
  await page.locator('#node-input-btn-store-edit').click();
  const config = await trayOpen(page, '#node-config-dialog-ok');
  await config.locator('#node-config-dialog-ok').waitFor();
  return config;
}

/** Saves the config dialog, then the flow node's dialog under it. */
async function saveBoth(page: Page): Promise<void> {
  await page.locator('#node-config-dialog-ok').click();
  await trayOpen(page, '#node-dialog-ok');
  await page.locator('#node-dialog-ok').click();
  await trayClosed(page);
}

/** The cache-store config nodes the editor holds: id, label, validity and the Redis properties. */
function stores(page: Page): Promise<Record<string, any>[]> {
  return page.evaluate(() => {
    const RED = (globalThis as any).RED;
    const found: Record<string, any>[] = [];
    RED.nodes.eachConfig((n: any) => {
      if (n.type !== 'cache-store') return;
      found.push({
        id: n.id,
        label: RED.utils.getNodeLabel(n),
        valid: n.valid,
        validationErrors: n.validationErrors,
        backend: n.backend,
        redisUrl: n.redisUrl,
        redisDb: n.redisDb,
        redisPrefix: n.redisPrefix,
        path: n.path,
      });
    });
    return found;
  });
}

describe('cache-store dialog: the Redis backend', () => {
  let nodeRed: NodeRed;
  let browser: Browser;
  let redis: RedisServer;
  let tab = '';
  const ids = { inject: 'e2eRedisInject', set: 'e2eRedisSet', get: 'e2eRedisGet', legacyGet: 'e2eLegacyGet' };
  let storeId = '';

  /** A client of the test's own on the server's database 2. */
  async function adminClient() {
    const client = createClient({ url: redis.url, password: PASSWORD, database: 2 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** The keys matching `pattern` once there are `count` of them (the flow writes after the inject answered). */
  async function waitForKeys(client: Awaited<ReturnType<typeof adminClient>>, pattern: string, count: number): Promise<string[]> {
    for (let i = 0; i < 400; i++) {
      const keys = await client.keys(pattern);
      if (keys.length >= count) return keys;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return client.keys(pattern);
  }

  before(async () => {
    redis = await RedisServer.start(['--requirepass', PASSWORD]);
    nodeRed = await startNodeRed();
    browser = await openBrowser();
    await openEditor(browser.page, nodeRed);
    tab = await activeTab(browser.page);
    await importNodes(browser.page, [
      {
        id: ids.inject,
        type: 'inject',
        z: tab,
        name: 'door',
        props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
        repeat: '',
        crontab: '',
        once: false,
        onceDelay: 0.1,
        topic: 'door',
        payload: 'open',
        payloadType: 'str',
        x: 140,
        y: 100,
        wires: [[ids.set]],
      },
      {
        id: ids.set,
        type: 'cache-set',
        z: tab,
        operation: 'set',
        key: 'topic',
        keyType: 'msg',
        value: 'payload',
        valueType: 'msg',
        ttl: 0,
        store: '',
        x: 340,
        y: 100,
        wires: [[ids.get]],
      },
      {
        id: ids.get,
        type: 'cache-get',
        z: tab,
        key: 'topic',
        keyType: 'msg',
        property: 'payload',
        defaultType: 'none',
        store: '',
        x: 540,
        y: 100,
        wires: [[], []],
      },
    ]);
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
    await redis?.stop();
  });

  test('a new store is SQLite: the file, size limit, eviction and durability shown, the Redis fields hidden', async () => {
    const { page } = browser;
    await closeTrays(page);
    const config = await addStoreFrom(page, ids.set);
    assert.equal(await page.locator('#node-config-input-backend').inputValue(), 'sqlite');
    assert.deepEqual(
      (await page.locator('#node-config-input-backend option').allTextContents()).map((t) => t.trim()),
      ['SQLite file on this Node-RED host', 'Redis server, shared by several Node-RED'],
    );
    assert.deepEqual(await shown(page, [...COMMON, ...SQLITE_ONLY, ...REDIS_ONLY]), [...COMMON, ...SQLITE_ONLY]);
    assert.equal(await page.locator('#node-config-redis-tip').isVisible(), false, 'the Redis tip is hidden');
    assert.deepEqual(await formProblems(config, 'node-config-input', 'cache-store'), []);
    await closeTrays(page);
  });

  test('choosing Redis shows the server fields and the tip, hides the file-only ones, and refuses a URL that is not redis:// host and port', async () => {
    const { page } = browser;
    await closeTrays(page);
    const config = await addStoreFrom(page, ids.set);
    await page.locator('#node-config-input-backend').selectOption('redis');
    await page.locator('#node-config-input-redisUrl').waitFor({ state: 'visible' });
    assert.deepEqual(await shown(page, [...COMMON, ...SQLITE_ONLY, ...REDIS_ONLY]), [...COMMON, ...REDIS_ONLY]);
    // deferred durability would show the flush interval, but not for Redis
    assert.equal(await visible(page, 'flushInterval'), false);
    const tip = ((await page.locator('#node-config-redis-tip').textContent()) ?? '').replace(/\s+/g, ' ');
    assert.match(tip, /maxmemory-policy/, 'the tip names the size cap Redis keeps');
    assert.match(tip, /appendfsync/, 'the tip names the durability Redis keeps');
    assert.deepEqual(await rawI18nKeys(config), []);
    assert.deepEqual(await formProblems(config, 'node-config-input', 'cache-store'), [], 'every Redis field labelled, labels on one line');
    assert.equal(await page.locator('#node-config-input-redisPrefix').inputValue(), 'flow-cache:', 'the default key prefix');
    // Node-RED leaves a new config node's falsy defaults unset: the field shows 0 as its placeholder, and empty means 0
    assert.equal(await page.locator('#node-config-input-redisDb').inputValue(), '', 'the default database');
    assert.equal(await page.locator('#node-config-input-redisDb').getAttribute('placeholder'), '0', 'the default database');
    assert.equal(await page.locator('#node-config-input-password').getAttribute('type'), 'password', 'the password is not shown as typed');

    // an empty URL is refused once Redis is chosen; every way a URL can be wrong says what is wrong
    await waitMarked(page, 'node-config-input-redisUrl', true);
    const refused: [string, string][] = [
      ['http://127.0.0.1:6379', 'a Redis URL starts with redis:// or rediss:// (TLS), not http://'],
      ['redis://admin:url-Secret-5512@127.0.0.1:6379', LOGIN],
      ['redis://127.0.0.1:6379/2', 'a Redis URL holds only host and port, got "redis://127.0.0.1:6379/2": choose the database with the Database field'],
      ['redis://', '"redis://" is not a Redis URL: give redis://host:port, or rediss://host:port for TLS'],
      // a login of any shape (a '/' or a space in it, no scheme) is refused as a login, never repeated
      ['redis://admin:pa/ss-Secret@127.0.0.1', LOGIN],
      ['redis://admin:pa ss-Secret@127.0.0.1:6379', LOGIN],
      ['admin:pa%2Fss-Secret@127.0.0.1:6379', LOGIN],
      // a password in the query or the fragment: the Password field is where it goes
      ['redis://127.0.0.1:6379/?password=qry-Secret', SECRET],
      ['redis://127.0.0.1:6379?p%61ss=qry-Secret', SECRET],
      ['redis://127.0.0.1:6379/?db=2&auth=qry-Secret', SECRET],
      ['redis://127.0.0.1:6379#frag-Secret', SECRET],
      // any other query or path is shown without its values
      ['redis://127.0.0.1:6379/?db=2', 'a Redis URL holds only host and port, got "redis://127.0.0.1:6379/?…": choose the database with the Database field'],
      ['redis://127.0.0.1:port-Secret', '"redis://…" is not a Redis URL: give redis://host:port, or rediss://host:port for TLS'],
    ];
    for (const [url, reason] of refused) {
      await type(page, '#node-config-input-redisUrl', url);
      await waitMarked(page, 'node-config-input-redisUrl', true);
      assert.equal(await tooltipOf(page, 'node-config-input-redisUrl'), reason, url);
    }
    await screenshot(config, 'dialog-cache-store-redis-invalid');
    await type(page, '#node-config-input-redisUrl', 'rediss://cache.example.net:6380');
    await waitMarked(page, 'node-config-input-redisUrl', false);
    await type(page, '#node-config-input-redisDb', '65536');
    await waitMarked(page, 'node-config-input-redisDb', true);
    assert.equal(await tooltipOf(page, 'node-config-input-redisDb'), 'the Redis database must be a whole number from 0 to 65535, got "65536"');
    await type(page, '#node-config-input-redisDb', '0');
    await waitMarked(page, 'node-config-input-redisDb', false);

    // back to SQLite: the file's fields again, and the Redis fields no longer count
    await type(page, '#node-config-input-redisUrl', 'http://not-redis');
    await page.locator('#node-config-input-backend').selectOption('sqlite');
    assert.deepEqual(await shown(page, [...COMMON, ...SQLITE_ONLY, ...REDIS_ONLY]), [...COMMON, ...SQLITE_ONLY]);
    await waitMarked(page, 'node-config-input-redisUrl', false);
    await closeTrays(page);
  });

  test('a Redis store is saved with its server, database and prefix, labelled with its host, the password kept out of the exported flow', async () => {
    const { page } = browser;
    await closeTrays(page);
    const config = await addStoreFrom(page, ids.set);
    await page.locator('#node-config-input-backend').selectOption('redis');
    await type(page, '#node-config-input-redisUrl', redis.url);
    await type(page, '#node-config-input-redisDb', '2');
    await type(page, '#node-config-input-redisPrefix', 'e2e-house:');
    await type(page, '#node-config-input-password', PASSWORD);
    await waitMarked(page, 'node-config-input-redisUrl', false);
    await screenshot(config, 'dialog-cache-store-redis');
    await saveBoth(page);

    const [store] = (await stores(page)).filter((s) => s.backend === 'redis');
    assert.ok(store, 'the Redis store is in the editor');
    storeId = store.id;
    assert.equal(store.valid, true, JSON.stringify(store.validationErrors));
    assert.equal(store.redisUrl, redis.url);
    assert.equal(String(store.redisDb), '2');
    assert.equal(store.redisPrefix, 'e2e-house:');
    assert.equal(store.label, `redis://127.0.0.1:${redis.port} db 2`, 'an unnamed Redis store shows its server and database');
    assert.equal((await editorNode(page, ids.set)).store, storeId, 'cache-set uses the new store');
    // a label never shows what comes before the '@' of a URL, even one the validator refuses (a hand-edited flow)
    const labels = await page.evaluate(() => {
      const label = (globalThis as any).RED.nodes.getType('cache-store').label;
      return [
        'redis://admin:pa@ss-Secret@10.0.0.5:6380',
        'redis://admin:pa/ss-Secret@10.0.0.5',
        'rediss://u:Secret@cache.example.net',
        'redis://admin:pa ss-Secret@10.0.0.5:6380',
        'redis://10.0.0.5:6380/?password=qry-Secret',
        'redis://10.0.0.5:6380/?x=a@qry-Secret',
        'redis://10.0.0.5:6380#frag-Secret',
      ].map((redisUrl) => label.call({ backend: 'redis', redisUrl, redisDb: 0 }));
    });
    assert.deepEqual(labels, [
      'redis://10.0.0.5:6380',
      'redis://10.0.0.5',
      'rediss://cache.example.net',
      'redis://10.0.0.5:6380',
      'redis://10.0.0.5:6380',
      'redis://…',
      'redis://10.0.0.5:6380',
    ]);

    // cache-get picks the same store from its Store list, where it is shown by its server
    await openDialog(page, ids.get);
    const option = page.locator(`#node-input-store option[value="${storeId}"]`);
    assert.equal(((await option.textContent()) ?? '').trim(), `redis://127.0.0.1:${redis.port} db 2`);
    await page.locator('#node-input-store').selectOption(storeId);
    await page.locator('#node-dialog-ok').click();
    await trayClosed(page);

    // the editor holds the password as a credential; an export (what Export > Clipboard gives) does not
    const credentials = await page.evaluate((id: string) => (globalThis as any).RED.nodes.node(id).credentials, storeId);
    assert.equal(credentials?.password, PASSWORD);
    const exported = await page.evaluate(() => {
      const RED = (globalThis as any).RED;
      const all: any[] = [];
      RED.nodes.eachNode((n: any) => all.push(n));
      RED.nodes.eachConfig((n: any) => all.push(n));
      return JSON.stringify(RED.nodes.createExportableNodeSet(all));
    });
    assert.match(exported, /"backend":"redis"/, 'the export holds the Redis store');
    assert.ok(exported.includes(`"redisUrl":"${redis.url}"`));
    assert.ok(!exported.includes(PASSWORD), 'the password is in the exported flow');
    assert.ok(!exported.includes('"credentials"'), 'credentials are in the exported flow');
  });

  test('deployed, the flow reaches the password-protected server with the credentials, and the flow file holds no password', async () => {
    const { page } = browser;
    await closeTrays(page);
    await deployFlows(page);
    assert.equal(await nodeRed.inject(ids.inject), 200);
    await waitForStatus(page, ids.set, /^stored door/);
    await waitForStatus(page, ids.get, /^hit door/);
    // the value is on the server, in database 2 under the prefix
    const client = await adminClient();
    const keys = await client.keys('e2e-house:*');
    await client.close();
    assert.equal(keys.length, 1, keys.join(', '));
    assert.ok(keys[0].endsWith(':door'));

    const flowFile = fs.readFileSync(path.join(nodeRed.userDir, 'flows.json'), 'utf8');
    assert.ok(flowFile.includes('"backend": "redis"') || flowFile.includes('"backend":"redis"'), 'the flow file holds the store');
    assert.ok(!flowFile.includes(PASSWORD), 'the password is in flows.json');
    const credentialFile = fs.readFileSync(path.join(nodeRed.userDir, 'flows_cred.json'), 'utf8');
    assert.ok(!credentialFile.includes(PASSWORD), 'flows_cred.json holds the password in clear');
    assert.ok(!nodeRed.log().includes(PASSWORD), 'the password is in the log');
  });

  test('after a reload the editor has no password, only the knowledge that one is set; reopening and saving keeps it', async () => {
    const { page } = browser;
    await closeTrays(page);
    await page.reload();
    await page.locator('#red-ui-loading-progress').waitFor({ state: 'hidden' });
    await page.locator(`g[id="${ids.set}"]`).waitFor();
    const [store] = (await stores(page)).filter((s) => s.id === storeId);
    assert.equal(store.label, `redis://127.0.0.1:${redis.port} db 2`);
    const exported = await page.evaluate(() => JSON.stringify((globalThis as any).RED.nodes.createCompleteNodeSet()));
    assert.ok(!exported.includes(PASSWORD), 'the editor got the password back from the runtime');

    await editStoreFrom(page, ids.set);
    assert.equal(await page.locator('#node-config-input-backend').inputValue(), 'redis');
    assert.notEqual(await page.locator('#node-config-input-password').inputValue(), PASSWORD, 'the password field does not show the password');
    await page.locator('#node-config-input-redisPrefix').waitFor({ state: 'visible' });
    await saveBoth(page);
    // a redeploy with the dialog saved but the password left untouched still logs in: the key, deleted
    // on the server, is written again
    const client = await adminClient();
    await client.del((await client.keys('e2e-house:*'))[0]);
    await page.evaluate(() => (globalThis as any).RED.nodes.dirty(true));
    await page.locator('#red-ui-header-button-deploy').click();
    await page.locator('.red-ui-notification', { hasText: 'Successfully deployed' }).last().waitFor();
    assert.equal(await nodeRed.inject(ids.inject), 200);
    try {
      assert.equal((await waitForKeys(client, 'e2e-house:*', 1)).length, 1, 'the value written again after the redeploy');
    } finally {
      await client.close();
    }
  });

  test('a store from before the backend existed opens as SQLite and stays valid', async () => {
    const { page } = browser;
    await closeTrays(page);
    await importNodes(page, [
      { id: 'e2eLegacyStore', type: 'cache-store', name: 'legacy store', path: 'legacy.sqlite', scope: 'flow' },
      {
        id: ids.legacyGet,
        type: 'cache-get',
        z: tab,
        key: 'topic',
        keyType: 'msg',
        property: 'payload',
        defaultType: 'none',
        store: 'e2eLegacyStore',
        x: 540,
        y: 200,
        wires: [[], []],
      },
    ]);
    const [legacy] = (await stores(page)).filter((s) => s.id === 'e2eLegacyStore');
    assert.equal(legacy.valid, true, JSON.stringify(legacy.validationErrors));
    assert.equal(legacy.label, 'legacy store');
    await editStoreFrom(page, ids.legacyGet);
    assert.equal(await page.locator('#node-config-input-backend').inputValue(), 'sqlite');
    assert.deepEqual(await shown(page, [...COMMON, ...SQLITE_ONLY, ...REDIS_ONLY]), [...COMMON, ...SQLITE_ONLY]);
    assert.equal(await page.locator('#node-config-input-path').inputValue(), 'legacy.sqlite');
    await closeTrays(page);
  });

  test('the Redis fields in German: labelled, every label on one line, the tip and a refused URL in German', async () => {
    const german = await openBrowser(undefined, 'de-DE');
    try {
      const { page } = german;
      await openEditor(page, nodeRed);
      const config = await editStoreFrom(page, ids.set);
      assert.equal(await page.locator('#node-config-input-backend').inputValue(), 'redis');
      assert.deepEqual(await rawI18nKeys(config), []);
      assert.deepEqual(await formProblems(config, 'node-config-input', 'cache-store'), [], 'German labels fit');
      const labels = await config.evaluate((element: any) =>
        [...element.querySelectorAll('.form-row')]
          .filter((row: any) => row.offsetParent !== null)
          .map((row: any) => (row.querySelector('label')?.textContent ?? '').trim()),
      );
      for (const label of ['Backend', 'Redis-URL', 'Datenbank', 'Präfix', 'Benutzer', 'Passwort'])
        assert.ok(labels.includes(label), `"${label}" in ${labels.join(' | ')}`);
      assert.match(((await page.locator('#node-config-redis-tip').textContent()) ?? '').replace(/\s+/g, ' '), /Redis setzt seine eigenen Grenzen/);
      await type(page, '#node-config-input-redisUrl', 'http://127.0.0.1:6379');
      await waitMarked(page, 'node-config-input-redisUrl', true);
      assert.equal(await tooltipOf(page, 'node-config-input-redisUrl'), 'eine Redis-URL beginnt mit redis:// oder rediss:// (TLS), nicht mit http://');
      await screenshot(config, 'de-dialog-cache-store-redis');
      await closeTrays(page);
      assert.deepEqual(german.pageErrors, []);
    } finally {
      await german.close();
    }
  });

  test('the editor asked nothing of the outside world and threw no errors', () => {
    assert.deepEqual(browser.outsideRequests, []);
    assert.deepEqual(browser.pageErrors, []);
  });
});
