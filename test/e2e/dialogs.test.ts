// Each node's edit dialog as a user meets it: dragged from the palette, labelled fields, bad values refused, good ones saved.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  type Browser,
  canvasNode,
  closeTrays,
  editorNode,
  errorTooltip,
  FLOW_TYPES,
  formProblems,
  type NodeRed,
  openBrowser,
  openDialog,
  openEditor,
  rawI18nKeys,
  screenshot,
  showSidebarTab,
  startNodeRed,
  trayClosed,
  trayOpen,
  type,
  waitMarked,
} from './support';

/** The Store field's empty choice and the line under it, as en-US says them. */
const DEFAULT_STORE = 'default store: flow-cache/cache.sqlite, one namespace per flow tab';
const STORE_HINT =
  'Empty: the default store, flow-cache/cache.sqlite in the Node-RED user directory, one namespace per flow tab. Add a cache store () for another file, a namespace shared by several tabs, or limits of its own.';

/** What a dialog must refuse and what it must keep. */
interface DialogCase {
  /** Enters one invalid value; `marked` is the field that must show the error. */
  invalid(page: Page): Promise<void>;
  marked: string;
  /** Enters a valid configuration. */
  valid(page: Page): Promise<void>;
  /** The node's properties after saving the valid configuration (numbers compared as text). */
  saved: Record<string, unknown>;
}

/** Picks a TypedInput's type from its menu, then types its value into the TypedInput's own text box. */
async function typedInput(page: Page, field: string, valueType: string, text?: string): Promise<void> {
  const container = page.locator(`#node-input-${field} + .red-ui-typedInput-container`);
  await container.locator('button.red-ui-typedInput-type-select').click();
  await page.locator(`.red-ui-typedInput-options:visible a[value="${valueType}"]`).click();
  if (text !== undefined) await type(page, `#node-input-${field}`, text);
}

const CASES: Record<string, DialogCase> = {
  'cache-get': {
    invalid: (page) => typedInput(page, 'key', 'str', ''),
    marked: 'node-input-key',
    async valid(page) {
      await typedInput(page, 'key', 'str', 'door:{{topic}}');
      await type(page, '#node-input-property', 'lastDoor');
      await typedInput(page, 'default', 'num', '0');
    },
    saved: { key: 'door:{{topic}}', keyType: 'str', property: 'lastDoor', default: '0', defaultType: 'num' },
  },
  'cache-set': {
    invalid: (page) => type(page, '#node-input-ttl', '-5'),
    marked: 'node-input-ttl',
    async valid(page) {
      await page.locator('#node-input-operation').selectOption('set');
      await typedInput(page, 'key', 'str', 'last leak');
      await typedInput(page, 'value', 'msg', 'payload.state');
      await type(page, '#node-input-ttl', '3600');
    },
    saved: { operation: 'set', key: 'last leak', keyType: 'str', value: 'payload.state', valueType: 'msg', ttl: '3600' },
  },
  'cooldown-gate': {
    invalid: (page) => type(page, '#node-input-cooldown', '-1'),
    marked: 'node-input-cooldown',
    async valid(page) {
      await type(page, '#node-input-cooldown', '4');
      await page.locator('#node-input-cooldownUnits').selectOption('hours');
      await page.locator('#node-input-failOpen').uncheck();
    },
    saved: { cooldown: '4', cooldownUnits: 'hours', failOpen: false, key: 'topic', keyType: 'msg' },
  },
  counter: {
    invalid: (page) => type(page, '#node-input-step', 'two'),
    marked: 'node-input-step',
    async valid(page) {
      await type(page, '#node-input-step', '2');
      await type(page, '#node-input-initial', '10');
      await page.locator('#node-input-resetEvery').selectOption('week');
    },
    saved: { step: '2', initial: '10', resetEvery: 'week' },
  },
  'ttl-fetch': {
    invalid: (page) => type(page, '#node-input-ttl', 'soon'),
    marked: 'node-input-ttl',
    async valid(page) {
      await type(page, '#node-input-url', 'https://api.example.com/weather?city={{payload}}');
      await type(page, '#node-input-ttl', '15');
      await page.locator('#node-input-ttlUnits').selectOption('minutes');
      await page.locator('#node-input-returnType').selectOption('text');
      await type(page, '#node-input-timeout', '10');
      await page.locator('.node-input-headers-container-row .red-ui-editableList-addButton').click();
      await page.locator('.node-input-header-name').last().fill('Accept');
      await page.locator('.node-input-header-value').last().fill('application/json');
      await page.locator('#node-input-secret').fill('Bearer e2e-secret-token');
    },
    saved: {
      url: 'https://api.example.com/weather?city={{payload}}',
      ttl: '15',
      ttlUnits: 'minutes',
      returnType: 'text',
      timeout: '10',
      headers: [{ name: 'Accept', value: 'application/json' }],
    },
  },
};

/** Whether a field shows the editor's error marking (on the input or on its TypedInput container). */
function isMarked(page: Page, id: string): Promise<boolean> {
  return page.evaluate((fieldId: string) => {
    const field = (globalThis as any).document.getElementById(fieldId);
    if (!field) return false;
    const container = field.closest('.red-ui-typedInput-container') ?? field.nextElementSibling;
    const typed = container?.classList.contains('red-ui-typedInput-container') ? container : null;
    return field.classList.contains('input-error') || Boolean(typed?.classList.contains('input-error'));
  }, id);
}

function sameValues(actual: Record<string, any>, expected: Record<string, unknown>, what: string): void {
  for (const [key, want] of Object.entries(expected)) {
    const got = actual[key];
    if (typeof want === 'object' || typeof want === 'boolean') assert.deepEqual(got, want, `${what}: ${key}`);
    else assert.equal(String(got), String(want), `${what}: ${key}`);
  }
}

describe('edit dialogs', () => {
  let nodeRed: NodeRed;
  let browser: Browser;
  const ids: Record<string, string> = {};

  before(async () => {
    nodeRed = await startNodeRed();
    browser = await openBrowser();
    await openEditor(browser.page, nodeRed);
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
  });

  test('each flow node can be dragged from the palette onto the canvas', async () => {
    const { page } = browser;
    const chart = page.locator('#red-ui-workspace-chart');
    for (const [i, nodeType] of FLOW_TYPES.entries()) {
      const before = await page.evaluate((t: string) => (globalThis as any).RED.nodes.filterNodes({ type: t }).length, nodeType);
      await page.locator(`[data-palette-type="${nodeType}"]`).dragTo(chart, { targetPosition: { x: 260, y: 80 + i * 70 } });
      const added = await page.evaluate((t: string) => (globalThis as any).RED.nodes.filterNodes({ type: t }).map((n: any) => n.id), nodeType);
      assert.equal(added.length, before + 1, `${nodeType} dropped on the canvas`);
      ids[nodeType] = added[added.length - 1];
      await canvasNode(page, ids[nodeType]).waitFor();
    }
    // Fresh from the palette, every node is valid with its defaults.
    for (const nodeType of FLOW_TYPES) assert.equal((await editorNode(page, ids[nodeType])).valid, true, `${nodeType} is valid as dropped`);
  });

  for (const nodeType of FLOW_TYPES) {
    test(`${nodeType}: labelled fields, an invalid value refused, a valid one saved`, async () => {
      const { page } = browser;
      await closeTrays(page);
      const spec = CASES[nodeType];
      const id = ids[nodeType];
      assert.ok(id, `${nodeType} is on the canvas`);

      let tray = await openDialog(page, id);
      await screenshot(tray, `dialog-${nodeType}`);
      assert.deepEqual(await rawI18nKeys(tray), [], `${nodeType} dialog shows no raw i18n keys`);
      assert.deepEqual(await formProblems(tray, 'node-input', nodeType), [], `${nodeType} dialog fields`);
      // No store chosen: the Store field says it is the default store, which file and which namespace.
      assert.equal(((await page.locator('#node-input-store option:checked').textContent()) ?? '').trim(), DEFAULT_STORE, `${nodeType} Store field`);
      assert.equal(((await tray.locator('.flow-cache-store-hint').textContent()) ?? '').replace(/\s+/g, ' ').trim(), STORE_HINT, `${nodeType} Store hint`);

      await spec.invalid(page);
      await waitMarked(page, spec.marked, true);
      const tooltip = await errorTooltip(page, spec.marked);
      if (tooltip !== undefined) {
        assert.notEqual(tooltip, '', `${nodeType}: the invalid field explains itself`);
        assert.doesNotMatch(tooltip, /^[a-z-]+\.[a-zA-Z.]+$/, `${nodeType}: the error is not a raw key`);
      }
      await screenshot(tray, `dialog-${nodeType}-invalid`);
      await page.locator('#node-dialog-ok').click();
      await trayClosed(page);
      const refused = await editorNode(page, id);
      assert.equal(refused.valid, false, `${nodeType} saved with an invalid value is marked invalid`);
      assert.equal(await page.locator(`g[id="${id}"] .red-ui-flow-node-error`).isVisible(), true, `${nodeType} shows the error badge`);

      tray = await openDialog(page, id);
      assert.equal(await isMarked(page, spec.marked), true, `${nodeType}: the invalid field is still marked when reopened`);
      await spec.valid(page);
      await waitMarked(page, spec.marked, false);
      await screenshot(tray, `dialog-${nodeType}-valid`);
      await page.locator('#node-dialog-ok').click();
      await trayClosed(page);
      const saved = await editorNode(page, id);
      assert.equal(saved.valid, true, `${nodeType} is valid after the fix (${JSON.stringify(saved.validationErrors)})`);
      sameValues(saved, spec.saved, nodeType);
      assert.equal(await page.locator(`g[id="${id}"] .red-ui-flow-node-error`).isVisible(), false, `${nodeType} error badge gone`);
    });
  }

  test('ttl-fetch keeps its secret header out of the exported flow', async () => {
    // What Export > selected nodes would give for this node.
    const exported = await browser.page.evaluate((id: string) => {
      const RED = (globalThis as any).RED;
      return JSON.stringify(RED.nodes.createExportableNodeSet([RED.nodes.node(id)]));
    }, ids['ttl-fetch']);
    assert.match(exported, /api\.example\.com/, 'the exported node is the configured one');
    assert.ok(!exported.includes('e2e-secret-token'), 'the secret is not in the flow');
    const credentials = await browser.page.evaluate((id: string) => (globalThis as any).RED.nodes.node(id).credentials, ids['ttl-fetch']);
    assert.equal(credentials?.secret, 'Bearer e2e-secret-token');
  });

  test('a cache-store is created from a node dialog, refuses bad settings and is then offered in the Store list', async () => {
    const { page } = browser;
    await closeTrays(page);
    const id = ids['cache-get'];
    await openDialog(page, id);
    const store = page.locator('#node-input-store');
    assert.equal(
      (await store.locator('option:checked').textContent()) ?? '',
      DEFAULT_STORE,
      'no store yet: the default store is chosen, named with its file and scope',
    );

    await page.locator('#node-input-btn-store-add').click();
    const config = await trayOpen(page, '#node-config-dialog-ok');
    await config.locator('#node-config-dialog-ok').waitFor();
    await screenshot(config, 'dialog-cache-store');
    assert.deepEqual(await rawI18nKeys(config), [], 'cache-store dialog shows no raw i18n keys');
    assert.deepEqual(await formProblems(config, 'node-config-input', 'cache-store'), [], 'cache-store dialog fields');

    // A shared scope with no namespace, and a size limit of 0, are refused.
    await page.locator('#node-config-input-scope').selectOption('shared');
    await page.locator('#node-config-input-namespace').waitFor({ state: 'visible' });
    await type(page, '#node-config-input-namespace', '');
    await type(page, '#node-config-input-sizeLimitMb', '0');
    await waitMarked(page, 'node-config-input-namespace', true);
    await waitMarked(page, 'node-config-input-sizeLimitMb', true);
    await page.locator('#node-config-input-durability').selectOption('deferred');
    await page.locator('#node-config-input-flushInterval').waitFor({ state: 'visible' });
    await screenshot(config, 'dialog-cache-store-invalid');
    assert.deepEqual(await formProblems(config, 'node-config-input', 'cache-store'), [], 'cache-store dialog fields with every row shown');

    await type(page, '#node-config-input-name', 'house store');
    await type(page, '#node-config-input-namespace', 'house');
    await type(page, '#node-config-input-sizeLimitMb', '50');
    await type(page, '#node-config-input-flushInterval', '10');
    await type(page, '#node-config-input-timezone', 'Europe/Berlin');
    await waitMarked(page, 'node-config-input-namespace', false);
    await waitMarked(page, 'node-config-input-sizeLimitMb', false);
    await screenshot(config, 'dialog-cache-store-valid');
    await page.locator('#node-config-dialog-ok').click();
    await trayOpen(page, '#node-dialog-ok');

    await page.waitForFunction(() => {
      const option = (globalThis as any).document.querySelector('#node-input-store option:checked');
      return option && option.textContent === 'house store';
    });
    // Node-RED rebuilt the list with the new store; its empty choice still names the default store (not "none").
    assert.deepEqual(await store.locator('option').allTextContents(), ['house store', DEFAULT_STORE]);
    await page.locator('#node-dialog-ok').click();
    await trayClosed(page);

    const stores = await page.evaluate(() => {
      const found: any[] = [];
      (globalThis as any).RED.nodes.eachConfig((n: any) => {
        if (n.type === 'cache-store')
          found.push({
            id: n.id,
            valid: n.valid,
            name: n.name,
            scope: n.scope,
            namespace: n.namespace,
            sizeLimitMb: n.sizeLimitMb,
            durability: n.durability,
            flushInterval: n.flushInterval,
            timezone: n.timezone,
          });
      });
      return found;
    });
    assert.equal(stores.length, 1);
    sameValues(
      stores[0],
      {
        valid: true,
        name: 'house store',
        scope: 'shared',
        namespace: 'house',
        sizeLimitMb: '50',
        durability: 'deferred',
        flushInterval: '10',
        timezone: 'Europe/Berlin',
      },
      'cache-store',
    );
    assert.equal((await editorNode(page, id)).store, stores[0].id, 'cache-get now uses the new store');

    // The config-node sidebar lists it, with its name.
    await showSidebarTab(page, 'config');
    await page.locator('#red-ui-sidebar .red-ui-palette-node-config', { hasText: 'house store' }).waitFor();
    await screenshot(page.locator('#red-ui-sidebar'), 'config-sidebar');
  });

  test('the editor asked nothing of the outside world and threw no errors', () => {
    assert.deepEqual(browser.outsideRequests, []);
    assert.deepEqual(browser.pageErrors, []);
  });
});
