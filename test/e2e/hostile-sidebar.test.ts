// Stored data is shown as text (Node-RED 4.1, or 5 with NODE_RED_LINE=5). Keys usually come from outside
// (MQTT topics, webhook fields, device names): a flow writes keys, values, a cached answer and a URL that
// hold HTML, into a flow tab whose label holds HTML and into a cache-store whose name, file and shared
// namespace hold HTML. A read-only user then views every entry, and an admin views every entry and does
// every change the sidebar offers (Set count, Save, Reset cooldown, Delete, Clear, purge expired). No
// script may run and no element of the stored texts may reach the page, in the sidebar, its
// confirmations, its notifications or anywhere else.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { userdir } from '../support/node-red-process';
import {
  type Browser,
  dismissNotifications,
  flowCacheTab,
  logIn,
  type NodeRed,
  nodeRedLine,
  openBrowser,
  openFlowCacheTab,
  showSidebarTab,
  startNodeRed,
} from './support';

const bcrypt = require('bcryptjs') as { hashSync(password: string, rounds: number): string };

const USERS = { admin: 'admin-pass-e2e', viewer: 'viewer-pass-e2e' };

/** An image whose error handler notes `tag` in window.__xss (a script that ran), marked data-xss (an element that got in). */
function img(tag: string): string {
  return `<img src=x data-xss onerror="window.__xss=(window.__xss||[]).concat('${tag}')">`;
}
/** An attribute broken out of, then an SVG whose load handler runs; one of them calls alert(). */
function svg(tag: string, alert = false): string {
  return `"><svg data-xss onload="${alert ? `alert('${tag}')` : `window.__xss=(window.__xss||[]).concat('${tag}')`}">`;
}

const TAB_LABEL = `Garage ${img('tab label')}`;
const STORE_NAME = `house ${img('store name')}`;
const STORE_FILE = `flow-cache/${img('store file').replace(/\//g, '')}.sqlite`;
const SHARED_NAME = `shared ${svg('shared namespace')}`;
const K = {
  counter: `door ${img('counter key')}`,
  gate: `alarm ${svg('cooldown key', true)}`,
  value: `note ${img('value key')}`,
  shared: `visitor ${svg('shared key')}`,
  fetch: `weather ${img('fetch key')}`,
};
const HOSTILE_VALUE = {
  [img('value object key')]: svg('value text'),
  list: [img('value list item'), { [svg('nested key')]: img('nested value') }],
};

const z = 'hostileTab';

function once(id: string, topic: string, payload: unknown, wire: string, y: number) {
  return {
    id,
    type: 'inject',
    z,
    name: '',
    props: [
      { p: 'payload', v: JSON.stringify(payload), vt: 'json' },
      { p: 'topic', v: topic, vt: 'str' },
    ],
    repeat: '',
    once: true,
    onceDelay: 0.1,
    topic,
    payload: JSON.stringify(payload),
    payloadType: 'json',
    x: 150,
    y,
    wires: [[wire]],
  };
}

function flows(upstreamPort: number): object[] {
  const common = { z, name: '', store: '', key: 'topic', keyType: 'msg', wires: [[]] };
  return [
    { id: z, type: 'tab', label: TAB_LABEL },
    // a store imported with a time zone that holds HTML: the editor names the bad zone in its error tooltip
    { id: 'badZone', type: 'cache-store', name: 'zone', scope: 'flow', timezone: img('time zone') },
    { id: 'hostileStore', type: 'cache-store', name: STORE_NAME, path: STORE_FILE, scope: 'shared', namespace: SHARED_NAME },
    once('i1', K.counter, 1, 'count', 40),
    { ...common, id: 'count', type: 'counter', step: 1, initial: 0, resetEvery: 'never', x: 400, y: 40 },
    once('i2', K.gate, 1, 'gate', 100),
    { ...common, id: 'gate', type: 'cooldown-gate', cooldown: 1, cooldownUnits: 'hours', failOpen: true, x: 400, y: 100, wires: [[], []] },
    once('i3', K.value, HOSTILE_VALUE, 'value', 160),
    { ...common, id: 'value', type: 'cache-set', operation: 'set', value: 'payload', valueType: 'msg', ttl: 0, x: 400, y: 160 },
    once('i4', K.shared, img('shared value'), 'shared', 220),
    { ...common, id: 'shared', type: 'cache-set', store: 'hostileStore', operation: 'set', value: 'payload', valueType: 'msg', ttl: 0, x: 400, y: 220 },
    once('i5', K.fetch, '', 'fetch', 280),
    {
      ...common,
      id: 'fetch',
      type: 'ttl-fetch',
      url: `http://127.0.0.1:${upstreamPort}/${encodeURIComponent(img('url path'))}?q=${encodeURIComponent(svg('url query'))}`,
      method: 'GET',
      headers: [],
      ttl: 1,
      ttlUnits: 'hours',
      returnType: 'json',
      timeout: 10,
      x: 400,
      y: 280,
    },
  ];
}

/** A JSON answer of the admin API, as `token`'s user. */
function getJson(port: number, urlPath: string, token: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`${urlPath}: ${res.statusCode} ${body}`))));
      })
      .on('error', reject);
  });
}

function token(port: number, username: keyof typeof USERS): Promise<string> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ client_id: 'node-red-editor', grant_type: 'password', scope: '', username, password: USERS[username] }));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/auth/token',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text).access_token) : reject(new Error(`login: ${res.statusCode} ${text}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Waits until the flows' writes landed: 4 keys under the hostile tab, 1 in the hostile shared namespace. */
async function written(port: number, admin: string): Promise<void> {
  for (let tries = 0; ; tries++) {
    const { stores } = await getJson(port, '/flow-cache/stores', admin);
    const counts: number[] = [];
    for (const store of stores as { id: string; exists: boolean }[]) {
      if (!store.exists) continue;
      const { namespaces } = await getJson(port, `/flow-cache/stores/${encodeURIComponent(store.id)}/namespaces`, admin);
      for (const ns of namespaces as { label: string; entries: number }[])
        if (ns.label === TAB_LABEL || ns.label === SHARED_NAME.trim()) counts.push(ns.entries);
    }
    if (counts.sort().join() === '1,4') return;
    if (tries === 300) assert.fail(`the flows wrote ${counts.join(', ') || 'nothing'}, not 4 keys and 1`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * What the stored texts did in the page so far: scripts that ran (window.__xss, alert dialogs) and
 * elements of theirs that reached the document at any moment (a MutationObserver from the first load).
 */
async function injected(page: Page, dialogs: string[]): Promise<string[]> {
  // one more image error after every earlier one: the handlers of images made before it have run
  await page.evaluate(
    () =>
      new Promise((resolve) => {
        const probe = new (globalThis as any).Image();
        probe.onerror = resolve;
        probe.onload = resolve;
        probe.src = `x?probe=${Date.now()}`;
      }),
  );
  const found = await page.evaluate(() => {
    const w = globalThis as any;
    const ran: string[] = (w.__xss ?? []).map((tag: string) => `script ran: ${tag}`);
    const now = [...w.document.querySelectorAll('[data-xss]')].map(
      (e: any) => `element in the page: <${e.tagName.toLowerCase()}> in ${e.parentElement?.className || e.parentElement?.tagName}`,
    );
    return [...ran, ...(w.__injected ?? []), ...now];
  });
  return [...found, ...dialogs.map((d) => `alert: ${d}`)];
}

/** Watches for hostile elements from the first script of each page load on. */
async function watch(page: Page, dialogs: string[]): Promise<void> {
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss().catch(() => undefined);
  });
  await page.addInitScript(() => {
    const w = globalThis as any;
    w.__injected = [];
    const note = (node: any) => {
      if (node.nodeType !== 1) return;
      const hits = node.matches('[data-xss]') ? [node] : [...node.querySelectorAll('[data-xss]')];
      for (const hit of hits)
        w.__injected.push(
          `element added: <${hit.tagName.toLowerCase()}> under ${hit.parentElement?.className || hit.parentElement?.tagName || 'a detached node'}`,
        );
    };
    new w.MutationObserver((records: any[]) => {
      for (const record of records) for (const node of record.addedNodes) note(node);
    }).observe(w.document, { childList: true, subtree: true });
  });
}

async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as any).$.active === 0);
}

/** Picks an option of a select of the tab and waits for the requests it makes. */
async function pick(page: Page, select: string, value: string): Promise<void> {
  await flowCacheTab(page).locator(select).selectOption(value);
  await settled(page);
}

async function options(page: Page, select: string): Promise<string[]> {
  return flowCacheTab(page)
    .locator(select)
    .evaluate((s: any) => [...s.options].map((o: any) => o.value));
}

/** Selects each store, each namespace of it and each key of that, waiting for the entry each time; returns the keys seen. */
async function viewEverything(page: Page, check: (where: string) => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  for (const store of await options(page, '.flow-cache-store')) {
    await pick(page, '.flow-cache-store', store);
    for (const ns of await options(page, '.flow-cache-namespace')) {
      if (ns === '') continue;
      await pick(page, '.flow-cache-namespace', ns);
      const keys = await flowCacheTab(page)
        .locator('tr.flow-cache-key')
        .evaluateAll((rows: any[]) => rows.map((r) => r.getAttribute('data-key') as string));
      for (const key of keys) {
        await flowCacheTab(page)
          .locator('tr.flow-cache-key')
          .filter({ has: page.locator(`xpath=self::*[@data-key=${xpathLiteral(key)}]`) })
          .click();
        await page.waitForFunction((k: string) => (globalThis as any).document.querySelector('.flow-cache-entry-key')?.textContent === k, key);
        await settled(page);
        seen.push(key);
        await check(`viewing ${key}`);
      }
    }
  }
  return seen;
}

/** A string as an XPath literal (keys hold both kinds of quote). */
function xpathLiteral(text: string): string {
  if (!text.includes("'")) return `'${text}'`;
  if (!text.includes('"')) return `"${text}"`;
  return `concat(${text
    .split("'")
    .map((part) => `'${part}'`)
    .join(`, "'", `)})`;
}

function row(page: Page, key: string) {
  return flowCacheTab(page)
    .locator('tr.flow-cache-key')
    .filter({ has: page.locator(`xpath=self::*[@data-key=${xpathLiteral(key)}]`) });
}

async function showNamespace(page: Page, label: string): Promise<void> {
  const value = await flowCacheTab(page)
    .locator('.flow-cache-namespace')
    .evaluate((s: any, wanted: string) => [...s.options].find((o: any) => o.text.startsWith(wanted))?.value, label);
  assert.ok(value, `a namespace labelled ${label}`);
  await pick(page, '.flow-cache-namespace', value);
}

async function showStore(page: Page, id: string): Promise<void> {
  await pick(page, '.flow-cache-store', id);
}

async function openEntry(page: Page, key: string): Promise<void> {
  await row(page, key).click();
  await page.waitForFunction((k: string) => (globalThis as any).document.querySelector('.flow-cache-entry-key')?.textContent === k, key);
  await settled(page);
}

/** Answers the confirmation a change asks for (if it asks), then waits for the notification naming what was done. */
async function confirmed(page: Page, done: string): Promise<string> {
  const question = page.locator('.red-ui-notification .flow-cache-confirm');
  const notice = page.locator('.red-ui-notification-success', { hasText: done });
  await question.or(notice).first().waitFor();
  if (await question.isVisible()) await question.click();
  await notice.waitFor();
  await settled(page);
  return (await notice.first().textContent()) ?? '';
}

for (const user of ['viewer', 'admin'] as const) {
  describe(`the sidebar shows stored HTML as text to ${user === 'admin' ? 'an admin' : 'a read-only user'} (Node-RED ${nodeRedLine === '5' ? '5' : '4.1'})`, () => {
    let nodeRed: NodeRed;
    let browser: Browser;
    let upstream: http.Server;
    const dialogs: string[] = [];

    async function clean(where: string): Promise<void> {
      assert.deepEqual(await injected(browser.page, dialogs), [], `after ${where}`);
    }

    before(async () => {
      upstream = http.createServer((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ [img('answer key')]: svg('answer text'), forecast: img('answer value') }));
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-hostile-'));
      userdir.prepareUserDir(dir);
      fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(flows((upstream.address() as AddressInfo).port)));
      const users = [
        { username: 'admin', password: bcrypt.hashSync(USERS.admin, 8), permissions: '*' },
        { username: 'viewer', password: bcrypt.hashSync(USERS.viewer, 8), permissions: 'read' },
      ];
      nodeRed = await startNodeRed({ userDir: dir, settings: `module.exports.adminAuth = ${JSON.stringify({ type: 'credentials', users })};` });
      await written(nodeRed.port, await token(nodeRed.port, 'admin'));
      browser = await openBrowser();
      browser.page.setDefaultTimeout(30_000);
      await watch(browser.page, dialogs);
      await logIn(browser.page, nodeRed, user, USERS[user]);
      await openFlowCacheTab(browser.page);
      await settled(browser.page);
    });

    after(async () => {
      await browser?.close();
      await nodeRed?.stop();
      await new Promise((resolve) => upstream?.close(resolve));
    });

    test('every store, namespace and entry is shown, its HTML as text', async () => {
      const { page } = browser;
      await clean('opening the tab');
      const seen = await viewEverything(page, clean);
      for (const key of [`counter:${K.counter}`, `cooldown:${K.gate}`, K.value, K.shared, K.fetch])
        assert.ok(seen.includes(key), `${key} was shown: ${seen.join(' | ')}`);
      const stores = await flowCacheTab(page)
        .locator('.flow-cache-store option')
        .evaluateAll((o: any[]) => o.map((e) => e.textContent));
      assert.ok(stores.includes(STORE_NAME), `the store named as written: ${stores.join(' | ')}`);
      await showStore(page, 'hostileStore');
      assert.ok(
        ((await flowCacheTab(page).locator('.flow-cache-file').textContent()) ?? '').includes(img('store file').replace(/\//g, '')),
        'its file as text',
      );
      await showNamespace(page, SHARED_NAME.trim());
      await openEntry(page, K.shared);
      assert.match((await flowCacheTab(page).locator('.flow-cache-value').textContent()) ?? '', /<img src=x data-xss onerror=/);
      await clean('viewing every entry');
    });

    test("a cache-store's error tooltip names its bad time zone as text", async () => {
      const { page } = browser;
      await showSidebarTab(page, 'config');
      const badge = page.locator('.red-ui-palette-node-config-invalid .red-ui-flow-node-error');
      await badge.hover();
      const tooltip = page.locator('.red-ui-popover:visible', { hasText: 'unknown time zone' });
      await tooltip.waitFor();
      await clean('the error tooltip');
      assert.ok(((await tooltip.textContent()) ?? '').includes(img('time zone')), `the zone as written: ${await tooltip.textContent()}`);
      await page.mouse.move(5, 500);
      await openFlowCacheTab(page);
    });

    if (user === 'viewer') {
      test('a read-only user is offered no change', async () => {
        const { page } = browser;
        for (const control of [
          '.flow-cache-clear',
          '.flow-cache-purge',
          '.flow-cache-delete',
          '.flow-cache-set-count',
          '.flow-cache-edit',
          '.flow-cache-reset',
        ]) {
          assert.equal(await flowCacheTab(page).locator(`${control}:visible`).count(), 0, `${control} is not offered`);
        }
      });
    } else {
      test('Set count, Save, Reset cooldown, Delete, Clear and purge expired show the stored HTML as text', async () => {
        const { page } = browser;
        let shown: string;
        await showStore(page, 'default');
        await showNamespace(page, TAB_LABEL);

        await openEntry(page, `counter:${K.counter}`);
        await flowCacheTab(page).locator('.flow-cache-count-input').fill('7');
        await flowCacheTab(page).locator('.flow-cache-set-count').click();
        shown = await confirmed(page, 'set to 7');
        await clean('Set count');
        assert.ok(shown.includes(`${K.counter} set to 7`), `the notification names it as written: ${shown}`);
        await dismissNotifications(page);

        await openEntry(page, K.value);
        await flowCacheTab(page).locator('.flow-cache-edit').click();
        const json = flowCacheTab(page).locator('.flow-cache-json');
        await json.fill(img('bad json'));
        await flowCacheTab(page).locator('.flow-cache-save').click();
        await page.locator('.red-ui-notification', { hasText: 'not valid JSON' }).waitFor();
        await clean('Save of text that is no JSON');
        await dismissNotifications(page);
        await json.fill(JSON.stringify({ [img('saved key')]: svg('saved text') }));
        await flowCacheTab(page).locator('.flow-cache-save').click();
        shown = await confirmed(page, 'saved');
        await clean('Save');
        assert.ok(shown.includes(`${K.value} saved`), `the notification names it as written: ${shown}`);
        await dismissNotifications(page);

        await openEntry(page, `cooldown:${K.gate}`);
        await flowCacheTab(page).locator('.flow-cache-reset').click();
        shown = await confirmed(page, ' reset');
        await clean('Reset cooldown');
        assert.ok(shown.includes(`cooldown of ${K.gate} reset`), `the notification names it as written: ${shown}`);
        await dismissNotifications(page);

        await openEntry(page, K.value);
        await flowCacheTab(page).locator('.flow-cache-delete').click();
        shown = await confirmed(page, ' deleted');
        await clean('Delete');
        assert.ok(shown.includes(`${K.value} deleted`), `the notification names it as written: ${shown}`);
        await dismissNotifications(page);

        await flowCacheTab(page).locator('.flow-cache-clear').click();
        shown = await confirmed(page, ' removed');
        await clean(`Clear of the tab's namespace`);
        assert.ok(shown.includes(`of ${TAB_LABEL} removed`), `the notification names it as written: ${shown}`);
        await dismissNotifications(page);

        await showStore(page, 'hostileStore');
        await showNamespace(page, SHARED_NAME.trim());
        await flowCacheTab(page).locator('.flow-cache-clear').click();
        shown = await confirmed(page, `removed`);
        await clean('Clear of the shared namespace');
        assert.ok(shown.includes(`of ${SHARED_NAME.trim()} removed`), `the notification names it as written: ${shown}`);
        await dismissNotifications(page);

        await flowCacheTab(page).locator('.flow-cache-purge').click();
        await page.locator('.red-ui-notification', { hasText: STORE_FILE.replace(/^flow-cache\//, '') }).waitFor();
        await confirmed(page, 'expired entries removed');
        await clean('purge expired');
      });
    }

    test('the page showed no error', () => {
      assert.deepEqual(browser.pageErrors, []);
    });
  });
}
