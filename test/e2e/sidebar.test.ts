// The flow cache sidebar in the editor (Node-RED 4.1, or 5 with NODE_RED_LINE=5): a user opens it, finds
// what a flow wrote, sees a count change after an inject and a refresh, resets a cooldown and sees the
// gate pass again, follows a node to its namespace, and clears a namespace. Pictures for the README.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Locator, Page, Response } from 'playwright-core';
import { get, userdir } from '../support/node-red-process';
import {
  type Browser,
  canvasNode,
  closeTrays,
  dismissNotifications,
  type NodeRed,
  nodeRedLine,
  openBrowser,
  openDialog,
  openEditor,
  rawI18nKeys,
  root,
  screenshot,
  sidebarTabButton,
  startNodeRed,
  waitForStatus,
} from './support';

const z = 'kitchenTab';
const SECRET = 'Bearer e2e-S3cr3t-Zq81';

function inject(id: string, name: string, topic: string, y: number, wire: string) {
  return {
    id,
    type: 'inject',
    z,
    name,
    props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
    repeat: '',
    once: false,
    topic,
    payload: '',
    payloadType: 'date',
    x: 150,
    y,
    wires: [[wire]],
  };
}

/** A kitchen tab: motion counted per day, a door notification held back for an hour, a note in a shared namespace, a cached weather answer. */
function flows(upstreamPort: number): object[] {
  return [
    { id: z, type: 'tab', label: 'Kitchen' },
    { id: 'houseStore', type: 'cache-store', name: 'house', scope: 'shared', namespace: 'house' },
    inject('inMotion', 'kitchen motion', 'kitchen', 60, 'motionCount'),
    {
      id: 'motionCount',
      type: 'counter',
      z,
      name: 'motion today',
      store: '',
      key: 'topic',
      keyType: 'msg',
      step: 1,
      initial: 0,
      resetEvery: 'day',
      x: 390,
      y: 60,
      wires: [[]],
    },
    inject('inDoor', 'front door opened', 'front door', 120, 'doorGate'),
    {
      id: 'doorGate',
      type: 'cooldown-gate',
      z,
      name: 'notify once an hour',
      store: '',
      key: 'topic',
      keyType: 'msg',
      cooldown: 1,
      cooldownUnits: 'hours',
      failOpen: true,
      x: 410,
      y: 120,
      wires: [[], []],
    },
    inject('inNote', 'visitor', 'last visitor', 180, 'noteSet'),
    {
      id: 'noteSet',
      type: 'cache-set',
      z,
      name: 'remember visitor',
      store: 'houseStore',
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      x: 400,
      y: 180,
      wires: [[]],
    },
    inject('inWeather', 'weather', 'weather', 240, 'weatherFetch'),
    {
      id: 'weatherFetch',
      type: 'ttl-fetch',
      z,
      name: 'weather (cached 1 h)',
      url: `http://127.0.0.1:${upstreamPort}/forecast/today?apikey=k8Xq2LmZ9vTw`,
      method: 'GET',
      headers: [],
      secretHeader: 'Authorization',
      ttl: 1,
      ttlUnits: 'hours',
      returnType: 'json',
      timeout: 10,
      key: '',
      keyType: 'str',
      x: 410,
      y: 240,
      wires: [[]],
    },
  ];
}

function sidebar(page: Page): Locator {
  return page.locator('.flow-cache-sidebar');
}

/** Opens the tab as a user does: its button where the tab bar shows it, else View > Flow cache in the main menu. */
async function openTab(page: Page): Promise<void> {
  const button = sidebarTabButton(page, 'flow-cache');
  if (await button.isVisible()) {
    if (!(await button.evaluate((b: any) => b.tagName === 'BUTTON' && b.classList.contains('selected')))) await button.click();
  } else {
    await page.locator('#red-ui-header-button-sidemenu').click();
    await page.locator('#menu-item-view-menu').hover();
    await page.locator('#menu-item-view-menu-flow-cache').click();
  }
  await sidebar(page).waitFor({ state: 'visible' });
}

/** Waits until the key table shows the keys of `answer` (a keys request's response), in its order. */
async function keysShown(page: Page, answer: Response): Promise<void> {
  const keys = ((await answer.json()) as { keys: { key: string }[] }).keys.map((k) => k.key);
  await page.waitForFunction((wanted: string[]) => {
    const rows = [...(globalThis as any).document.querySelectorAll('.flow-cache-sidebar tr.flow-cache-key')].map((r: any) => r.getAttribute('data-key'));
    return JSON.stringify(rows) === JSON.stringify(wanted);
  }, keys);
}

async function refresh(page: Page): Promise<void> {
  const answered = page.waitForResponse((r) => /\/flow-cache\/stores\/[^/]+\/namespaces\/[0-9a-f]+\/keys/.test(r.url()));
  await sidebar(page).locator('.flow-cache-refresh').click();
  await keysShown(page, await answered);
}

/** Types a filter and waits until the key table shows what it brings. */
async function filterKeys(page: Page, text: string): Promise<void> {
  const wanted = `filter=${encodeURIComponent(text).replace(/%20/g, '+')}`;
  const answered = page.waitForResponse((r) => r.url().includes('/keys?') && (text === '' ? !r.url().includes('filter=') : r.url().includes(wanted)));
  await sidebar(page).locator('.flow-cache-filter').fill(text);
  await keysShown(page, await answered);
}

/** Waits until the store holds `count` keys in the namespace labelled `label` (the flows' writes landed). */
async function storeHolds(port: number, label: string, count: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const stores = JSON.parse((await get(port, '/flow-cache/stores')).body) as { stores: { id: string; default?: boolean }[] };
    const store = stores.stores.find((s) => s.default);
    if (store) {
      const reply = await get(port, `/flow-cache/stores/${encodeURIComponent(store.id)}/namespaces`);
      const namespaces = (JSON.parse(reply.body) as { namespaces: { label: string; entries: number }[] }).namespaces;
      const found = namespaces.find((n) => n.label === label);
      if (found?.entries === count) return;
      if (tries === 300) assert.fail(`the ${label} namespace holds ${found?.entries ?? 'no'} keys, not ${count}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function keyRow(page: Page, key: string): Locator {
  return sidebar(page).locator(`tr.flow-cache-key[data-key="${key}"]`);
}

/** Selects a key and waits until its entry shows. */
async function openKey(page: Page, key: string): Promise<Locator> {
  await keyRow(page, key).click();
  const entry = sidebar(page).locator('.flow-cache-entry');
  await entry.locator('.flow-cache-entry-key', { hasText: key }).waitFor();
  return entry;
}

/** Answers the confirmation a destructive change asks for. */
async function confirm(page: Page, expected: RegExp): Promise<void> {
  const dialog = page.locator('.red-ui-notification', { hasText: expected });
  await dialog.waitFor();
  await dialog.locator('.flow-cache-confirm').click();
}

async function selectedNamespace(page: Page): Promise<string> {
  return sidebar(page)
    .locator('.flow-cache-namespace')
    .evaluate((s: any) => s.options[s.selectedIndex]?.text ?? '');
}

describe(`flow cache sidebar (Node-RED ${nodeRedLine === '5' ? '5' : '4.1'})`, () => {
  let nodeRed: NodeRed;
  let browser: Browser;
  let upstream: http.Server;

  before(async () => {
    upstream = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ summary: 'light rain', high: 14.5, low: 8, hourly: [9, 11, 13, 14, 12], sentAuth: req.headers.authorization ?? null }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-sidebar-'));
    userdir.prepareUserDir(dir);
    const nodes = flows((upstream.address() as AddressInfo).port) as any[];
    fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(nodes));
    // the secret travels as the editor sends it: in the flow file's credentials (encrypted by Node-RED on the first deploy)
    nodeRed = await startNodeRed({ userDir: dir });
    const deployed = await new Promise<number>((resolve, reject) => {
      const body = Buffer.from(JSON.stringify(nodes.map((n) => (n.id === 'weatherFetch' ? { ...n, credentials: { secret: SECRET } } : n))));
      const req = http.request(
        {
          host: '127.0.0.1',
          port: nodeRed.port,
          path: '/flows',
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': body.length, 'node-red-deployment-type': 'full' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    assert.ok(deployed === 200 || deployed === 204, `deploy: ${deployed}`);
    for (const id of ['inMotion', 'inMotion', 'inNote', 'inWeather']) assert.equal(await nodeRed.inject(id), 200);
    // an inject answers when it fires: the count and the fetched answer are written a moment later
    await storeHolds(nodeRed.port, 'Kitchen', 2);
    browser = await openBrowser();
    browser.page.setDefaultTimeout(30_000);
    await openEditor(browser.page, nodeRed);
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  test('opens as a tab of the sidebar and finds a key a flow wrote, in the namespace named by its flow tab', async () => {
    const { page } = browser;
    await openTab(page);
    await sidebar(page).locator('.flow-cache-key').first().waitFor();
    assert.equal(
      await sidebar(page)
        .locator('.flow-cache-store')
        .evaluate((s: any) => s.options[s.selectedIndex].text),
      'default store',
    );
    assert.match(await selectedNamespace(page), /^Kitchen \(flow\) · 2 keys$/);
    await filterKeys(page, 'kitch');
    assert.equal(await sidebar(page).locator('tr.flow-cache-key').count(), 1);
    const entry = await openKey(page, 'counter:kitchen');
    assert.equal(await entry.locator('.flow-cache-count .flow-cache-meta-value').textContent(), '2');
    assert.deepEqual(await rawI18nKeys(sidebar(page)), []);
  });

  test("shows a counter's new value after an inject and a refresh", async () => {
    const { page } = browser;
    assert.equal(await nodeRed.inject('inMotion'), 200);
    await waitForStatus(page, 'motionCount', /kitchen: 3/);
    const count = sidebar(page).locator('.flow-cache-count .flow-cache-meta-value');
    assert.equal(await count.textContent(), '2', 'nothing changes until the refresh');
    await refresh(page);
    await page.waitForFunction(() => (globalThis as any).document.querySelector('.flow-cache-count .flow-cache-meta-value')?.textContent === '3');
  });

  test('resets a cooldown after a confirmation, and the gate passes again', async () => {
    const { page } = browser;
    assert.equal(await nodeRed.inject('inDoor'), 200);
    await waitForStatus(page, 'doorGate', /passed front door \(1 passed \/ 0 suppressed\)/);
    assert.equal(await nodeRed.inject('inDoor'), 200);
    await waitForStatus(page, 'doorGate', /front door: .* left \(1 passed \/ 1 suppressed\)/);
    await filterKeys(page, 'door');
    const entry = await openKey(page, 'cooldown:front door');
    assert.match((await entry.textContent()) ?? '', /Holds back for\s*(59 min|1 h)/);
    await screenshot(sidebar(page), `sidebar-cooldown-${nodeRedLine}`);
    await entry.locator('.flow-cache-reset').click();
    await confirm(page, /Reset the cooldown of front door\?/);
    await page.locator('.red-ui-notification', { hasText: 'cooldown of front door reset' }).waitFor();
    await keyRow(page, 'cooldown:front door').waitFor({ state: 'detached' });
    assert.equal(await nodeRed.inject('inDoor'), 200);
    await waitForStatus(page, 'doorGate', /passed front door \(2 passed \/ 1 suppressed\)/);
    await dismissNotifications(page);
  });

  test("selecting a cache node shows its namespace, and a cache node's dialog links to it", async () => {
    const { page } = browser;
    await filterKeys(page, '');
    await canvasNode(page, 'noteSet').click();
    await page.waitForFunction(() =>
      /^house \(shared\)/.test((globalThis as any).document.querySelector('.flow-cache-namespace').selectedOptions[0]?.text ?? ''),
    );
    await sidebar(page).locator('tr.flow-cache-key[data-key="last visitor"]').waitFor();
    const tray = await openDialog(page, 'motionCount');
    const link = tray.locator('.flow-cache-dialog-link a');
    assert.match((await link.textContent()) ?? '', /Show what this node stores/);
    await link.click();
    await page.waitForFunction(() =>
      /^Kitchen \(flow\)/.test((globalThis as any).document.querySelector('.flow-cache-namespace').selectedOptions[0]?.text ?? ''),
    );
    await closeTrays(page);
    await page.evaluate(() => (globalThis as any).RED.view.select({ nodes: [] }));
  });

  test('shows a cached HTTP answer with its status and URL, and never the secret it was fetched with', async () => {
    const { page } = browser;
    await refresh(page);
    await filterKeys(page, 'fetch:');
    const row = sidebar(page).locator('tr.flow-cache-key').first();
    const key = (await row.getAttribute('data-key')) ?? '';
    const entry = await openKey(page, key);
    const url = await entry.locator('.flow-cache-fetch-url .flow-cache-meta-value').textContent();
    assert.match(url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/forecast\/today$/);
    const text = (await sidebar(page).textContent()) ?? '';
    assert.match(text, /light rain/);
    assert.ok(!text.includes('S3cr3t') && !text.includes('k8Xq2LmZ9vTw'), 'neither the secret nor the API key shows');
    if (nodeRedLine === '4') await readmePicture(page, 'sidebar-fetch');
  });

  test('clears a namespace after a confirmation: its keys are gone and the flow starts from nothing there', async () => {
    const { page } = browser;
    await filterKeys(page, 'kitchen');
    await openKey(page, 'counter:kitchen');
    if (nodeRedLine === '4') await readmePicture(page, 'sidebar-counter');
    await filterKeys(page, '');
    await sidebar(page).locator('.flow-cache-clear').click();
    await confirm(page, /Delete all 3 keys of Kitchen\?/);
    await page.locator('.red-ui-notification', { hasText: '3 keys of Kitchen removed' }).waitFor();
    await sidebar(page).locator('.flow-cache-no-keys').waitFor();
    assert.match(await selectedNamespace(page), /^Kitchen \(flow\) · 0 keys$/);
    assert.equal(await nodeRed.inject('inMotion'), 200);
    await waitForStatus(page, 'motionCount', /kitchen: 1$/);
    await dismissNotifications(page);
  });

  test('the page showed no error and every request of the sidebar was answered', () => {
    assert.deepEqual(browser.pageErrors, []);
    assert.deepEqual(browser.consoleErrors, []);
    assert.deepEqual(
      browser.failedRequests.filter((r) => r.includes('/flow-cache/')),
      [],
    );
  });
});

/**
 * A README picture: the workspace's flow with the sidebar widened beside it, saved into docs/
 * (the Node-RED 4.1 editor, the line most users run).
 */
async function readmePicture(page: Page, name: string): Promise<void> {
  await dismissNotifications(page);
  await page.evaluate(() => (globalThis as any).RED.view.select({ nodes: [] }));
  const separator = page.locator('#red-ui-sidebar-separator');
  const sidebarBox = (await page.locator('#red-ui-sidebar').boundingBox())!;
  if (sidebarBox.width < 500) {
    const handle = (await separator.boundingBox())!;
    await page.mouse.move(handle.x + handle.width / 2, handle.y + 200);
    await page.mouse.down();
    await page.mouse.move(handle.x - (520 - sidebarBox.width), handle.y + 200, { steps: 8 });
    await page.mouse.up();
  }
  await page.mouse.move(1, 1);
  const workspace = (await page.locator('#red-ui-workspace').boundingBox())!;
  const side = (await page.locator('#red-ui-sidebar').boundingBox())!;
  const file = path.join(root, 'docs', `${name}.png`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const x = workspace.x + 20;
  await page.screenshot({ path: file, clip: { x, y: side.y, width: side.x + side.width - x, height: Math.min(side.height, 720) } });
  assert.ok(fs.statSync(file).size > 20_000, 'the picture has content');
}
