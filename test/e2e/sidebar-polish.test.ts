// The flow cache sidebar as a user meets it, in English and German (Node-RED 4.1, or 5 with
// NODE_RED_LINE=5): it opens on the namespace of the flow tab in view and follows it; switching namespace
// or store clears the entry shown (no stale entry, no request for it); counts read right ("1 key",
// "1 Eintrag"), sizes are written in the browser's locale and policy names in its language; its fields
// are not cut, the panel has the sidebar's height, a selected entry shows without scrolling; and every
// change asks first.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { get, userdir } from '../support/node-red-process';
import {
  type Browser,
  FONT_SETS,
  flowCacheTab,
  type NodeRed,
  nodeRedLine,
  openBrowser,
  openEditor,
  openFlowCacheTab,
  screenshot,
  startNodeRed,
} from './support';

const KITCHEN = 'kitchenTab';
const ALPHA = 'alphaTab';

function once(id: string, z: string, topic: string, wire: string, y: number) {
  return {
    id,
    type: 'inject',
    z,
    name: topic,
    props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
    repeat: '',
    once: true,
    onceDelay: 0.1,
    topic,
    payload: '',
    payloadType: 'date',
    x: 130,
    y,
    wires: [[wire]],
  };
}

/**
 * Kitchen (first tab, so the editor opens on it): a counter, a gate that counts passes per day, and 20
 * sensor readings; Alpha (first in the alphabet): one counter; a shared store "house" with one note.
 */
function flows(): object[] {
  return [
    { id: KITCHEN, type: 'tab', label: 'Kitchen' },
    { id: ALPHA, type: 'tab', label: 'Alpha' },
    { id: 'houseStore', type: 'cache-store', name: 'house', path: 'flow-cache/house.sqlite', scope: 'shared', namespace: 'house' },
    once('inMotion', KITCHEN, 'kitchen', 'motion', 40),
    {
      id: 'motion',
      type: 'counter',
      z: KITCHEN,
      name: '',
      store: '',
      key: 'topic',
      keyType: 'msg',
      step: 1,
      initial: 0,
      resetEvery: 'never',
      x: 360,
      y: 40,
      wires: [[]],
    },
    once('inDoor', KITCHEN, 'front door', 'door', 100),
    {
      id: 'door',
      type: 'cooldown-gate',
      z: KITCHEN,
      name: '',
      store: '',
      key: 'topic',
      keyType: 'msg',
      cooldown: 1,
      cooldownUnits: 'hours',
      failOpen: true,
      limit: 3,
      period: 'day',
      x: 360,
      y: 100,
      wires: [[], []],
    },
    once('inSensors', KITCHEN, 'sensors', 'readings', 160),
    {
      id: 'readings',
      type: 'function',
      z: KITCHEN,
      name: '20 readings',
      func: "for (let i = 10; i < 30; i++) node.send({ topic: 'sensor ' + i, payload: { celsius: i } });\nreturn null;",
      outputs: 1,
      x: 330,
      y: 160,
      wires: [['store']],
    },
    {
      id: 'store',
      type: 'cache-set',
      z: KITCHEN,
      name: '',
      store: '',
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      x: 520,
      y: 160,
      wires: [[]],
    },
    once('inAlpha', ALPHA, 'alpha', 'alphaCount', 40),
    {
      id: 'alphaCount',
      type: 'counter',
      z: ALPHA,
      name: '',
      store: '',
      key: 'topic',
      keyType: 'msg',
      step: 1,
      initial: 0,
      resetEvery: 'never',
      x: 360,
      y: 40,
      wires: [[]],
    },
    once('inNote', ALPHA, 'note', 'note', 100),
    {
      id: 'note',
      type: 'cache-set',
      z: ALPHA,
      name: '',
      store: 'houseStore',
      key: 'topic',
      keyType: 'msg',
      operation: 'set',
      value: 'payload',
      valueType: 'msg',
      ttl: 0,
      x: 360,
      y: 100,
      wires: [[]],
    },
  ];
}

/** Waits until the flows' writes landed (Kitchen 22 keys, Alpha 1, house 1). */
async function written(port: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const counts: Record<string, number> = {};
    for (const store of JSON.parse((await get(port, '/flow-cache/stores')).body).stores as { id: string; exists: boolean }[]) {
      if (!store.exists) continue;
      const reply = JSON.parse((await get(port, `/flow-cache/stores/${encodeURIComponent(store.id)}/namespaces`)).body);
      for (const ns of reply.namespaces as { label: string; entries: number }[]) counts[ns.label] = ns.entries;
    }
    if (counts.Kitchen === 22 && counts.Alpha === 1 && counts.house === 1) return;
    if (tries === 300) assert.fail(`the flows wrote ${JSON.stringify(counts)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const TEXTS = {
  'en-US': {
    alpha: 'Alpha (flow) · 1 key',
    kitchen: 'Kitchen (flow) · 22 keys',
    house: /^1 entry · .* of 100\.0 MB · evicts the oldest writes first · commits at once · /,
    defaultStore: /^23 entries · .* of 100\.0 MB · /,
    setAsk: /Set kitchen from \d+ to 9\?/,
    setDone: 'kitchen set to 9',
    saveAsk: /Replace the value of sensor 10 with the edited one\?/,
    cancel: 'Cancel',
    target: 9,
    passes: 'Passes this period',
  },
  'de-DE': {
    alpha: 'Alpha (Flow) · 1 Schlüssel',
    kitchen: 'Kitchen (Flow) · 22 Schlüssel',
    house: /^1 Eintrag · .* von 100,0 MB · verdrängt die ältesten Schreibvorgänge zuerst · schreibt sofort · /,
    defaultStore: /^23 Einträge · .* von 100,0 MB · /,
    setAsk: /kitchen von \d+ auf 11 setzen\?/,
    setDone: 'kitchen auf 11 gesetzt',
    saveAsk: /Den Wert von sensor 10 durch den bearbeiteten ersetzen\?/,
    cancel: 'Abbrechen',
    target: 11,
    passes: 'Durchgänge in diesem Zeitraum',
  },
};

async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as any).$.active === 0);
}

async function selectedText(page: Page, select: string): Promise<string> {
  return flowCacheTab(page)
    .locator(select)
    .evaluate((s: any) => s.options[s.selectedIndex]?.text ?? '');
}

async function pickByText(page: Page, select: string, start: string): Promise<void> {
  const value = await flowCacheTab(page)
    .locator(select)
    .evaluate((s: any, wanted: string) => [...s.options].find((o: any) => o.text.startsWith(wanted))?.value, start);
  assert.ok(value !== undefined, `an option "${start}..." in ${select}`);
  await flowCacheTab(page).locator(select).selectOption(value);
  await settled(page);
}

async function openKey(page: Page, key: string): Promise<void> {
  await flowCacheTab(page).locator(`tr.flow-cache-key[data-key="${key}"]`).click();
  await page.waitForFunction((k: string) => (globalThis as any).document.querySelector('.flow-cache-entry-key')?.textContent === k, key);
  await settled(page);
}

/** What the user cannot read whole: cut texts, fields narrower than their text, a squeezed value column, a short panel. */
function layoutProblems(page: Page, line: string): Promise<string[]> {
  return flowCacheTab(page).evaluate((tab: any, nodeRedLine: string) => {
    const w = globalThis as any;
    const problems: string[] = [];
    const canvas = w.document.createElement('canvas').getContext('2d');
    const textWidth = (element: any, text: string) => {
      const style = w.getComputedStyle(element);
      canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      return canvas.measureText(text).width;
    };
    const inner = (element: any) => {
      const style = w.getComputedStyle(element);
      return element.clientWidth - Number.parseFloat(style.paddingLeft) - Number.parseFloat(style.paddingRight);
    };
    const filter = tab.querySelector('.flow-cache-filter');
    if (textWidth(filter, filter.placeholder) > inner(filter)) problems.push(`filter box cut: "${filter.placeholder}" in ${inner(filter)} px`);
    for (const cls of ['.flow-cache-store', '.flow-cache-match', '.flow-cache-sort']) {
      const select = tab.querySelector(cls);
      for (const option of select.options) {
        // the arrow takes about 20 px of a select
        if (textWidth(select, option.text) > inner(select) - 16)
          problems.push(`${cls} cuts "${option.text}" (${Math.round(textWidth(select, option.text))} px text in ${inner(select)} px)`);
      }
    }
    const keys = tab.querySelector('.flow-cache-keys').getBoundingClientRect();
    for (const cell of tab.querySelectorAll('.flow-cache-key-when')) {
      const box = cell.getBoundingClientRect();
      if (box.right > keys.right + 1 || cell.scrollWidth > cell.clientWidth + 1) problems.push(`"${cell.textContent}" cut at the right`);
    }
    const table = tab.querySelector('.flow-cache-meta');
    if (table) {
      for (const row of table.rows) {
        const [label, value] = row.cells;
        if (label.scrollWidth > label.clientWidth + 1) problems.push(`label "${label.textContent}" cut`);
        if (value.getBoundingClientRect().width < table.getBoundingClientRect().width * 0.45)
          problems.push(`value of "${label.textContent}" squeezed to ${Math.round(value.getBoundingClientRect().width)} px`);
      }
    }
    // Node-RED 5 gives a tab the height of the sidebar section the user puts it in (the top one by
    // default); Node-RED 4.1 gives it the whole sidebar
    if (nodeRedLine !== '5') {
      const sidebar = w.document.querySelector('#red-ui-sidebar') ?? tab.closest('.red-ui-sidebar');
      const share = tab.getBoundingClientRect().height / sidebar.getBoundingClientRect().height;
      if (share < 0.85) problems.push(`the panel has ${Math.round(share * 100)}% of the sidebar's height`);
    }
    return problems;
  }, line);
}

/** True when the entry's title and buttons are inside the visible part of the tab. */
function entryInView(page: Page): Promise<boolean> {
  return flowCacheTab(page).evaluate((tab: any) => {
    const box = tab.getBoundingClientRect();
    const title = tab.querySelector('.flow-cache-entry-title')?.getBoundingClientRect();
    const actions = tab.querySelector('.flow-cache-actions')?.getBoundingClientRect();
    return Boolean(title && actions && title.top >= box.top && actions.bottom <= box.bottom);
  });
}

describe(`flow cache sidebar polish (Node-RED ${nodeRedLine === '5' ? '5' : '4.1'})`, () => {
  let nodeRed: NodeRed;

  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-polish-'));
    userdir.prepareUserDir(dir);
    fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(flows()));
    nodeRed = await startNodeRed({ userDir: dir });
    await written(nodeRed.port);
  });

  after(async () => {
    await nodeRed?.stop();
  });

  for (const locale of ['en-US', 'de-DE'] as const) {
    const texts = TEXTS[locale];
    describe(locale, () => {
      let browser: Browser;

      before(async () => {
        browser = await openBrowser(undefined, locale);
        await openEditor(browser.page, nodeRed);
      });

      after(async () => {
        await browser?.close();
      });

      test('opens on the namespace of the flow tab in view, and follows the flow tab shown', async () => {
        const { page } = browser;
        assert.equal(await page.evaluate(() => (globalThis as any).RED.workspaces.active()), KITCHEN);
        await openFlowCacheTab(page);
        await flowCacheTab(page).locator('tr.flow-cache-key').first().waitFor();
        await settled(page);
        assert.equal(await selectedText(page, '.flow-cache-namespace'), texts.kitchen);
        await page.evaluate((id) => (globalThis as any).RED.workspaces.show(id), ALPHA);
        await page.waitForFunction(
          (want: string) => (globalThis as any).document.querySelector('.flow-cache-namespace').selectedOptions[0]?.text === want,
          texts.alpha,
        );
        await settled(page);
        await page.evaluate((id) => (globalThis as any).RED.workspaces.show(id), KITCHEN);
        await page.waitForFunction(
          (want: string) => (globalThis as any).document.querySelector('.flow-cache-namespace').selectedOptions[0]?.text === want,
          texts.kitchen,
        );
        await settled(page);
      });

      test('switching namespace or store clears the entry shown, and asks for nothing of it there', async () => {
        const { page } = browser;
        await openKey(page, 'sensor 12');
        await pickByText(page, '.flow-cache-namespace', 'Alpha');
        assert.equal(await flowCacheTab(page).locator('.flow-cache-entry-key').count(), 0, 'no entry of Kitchen under Alpha');
        await openKey(page, 'counter:alpha');
        await pickByText(page, '.flow-cache-store', 'house');
        assert.equal(await flowCacheTab(page).locator('.flow-cache-entry-key').count(), 0, 'no entry of the default store under house');
        assert.deepEqual(
          browser.failedRequests.filter((r) => r.includes('/flow-cache/')),
          [],
        );
        assert.deepEqual(browser.consoleErrors, []);
      });

      test('counts, sizes and policy names read right', async () => {
        const { page } = browser;
        assert.match((await flowCacheTab(page).locator('.flow-cache-store-info > div').nth(1).textContent()) ?? '', texts.house);
        await pickByText(page, '.flow-cache-store', locale === 'de-DE' ? 'Standardspeicher' : 'default store');
        assert.match((await flowCacheTab(page).locator('.flow-cache-store-info > div').nth(1).textContent()) ?? '', texts.defaultStore);
        const namespaces = await flowCacheTab(page)
          .locator('.flow-cache-namespace option')
          .evaluateAll((o: any[]) => o.map((e) => e.textContent));
        assert.ok(namespaces.includes(texts.alpha) && namespaces.includes(texts.kitchen), namespaces.join(' | '));
      });

      test('fields fit, the panel has the height of the sidebar, and a selected entry shows without scrolling (Liberation Sans and DejaVu Sans)', async () => {
        const problems: string[] = [];
        for (const fonts of FONT_SETS) {
          const other = fonts === 'liberation' ? undefined : await openBrowser(undefined, locale, fonts);
          try {
            const page = other ? other.page : browser.page;
            if (other) await openEditor(page, nodeRed);
            await openFlowCacheTab(page);
            await settled(page);
            await flowCacheTab(page).locator('.flow-cache-store').selectOption('default');
            await settled(page);
            await pickByText(page, '.flow-cache-namespace', 'Kitchen');
            await flowCacheTab(page).locator('.flow-cache-sort').selectOption('stored');
            await settled(page);
            await flowCacheTab(page).locator('.flow-cache-sort').selectOption('key');
            await settled(page);
            // the last key of the list: below it the entry opens
            const last = await flowCacheTab(page).locator('tr.flow-cache-key').last().getAttribute('data-key');
            await openKey(page, last ?? '');
            if (!(await entryInView(page))) problems.push(`${fonts}: the entry of the last key is out of view`);
            await openKey(page, 'cooldown:front door');
            if (!(await entryInView(page))) problems.push(`${fonts}: the entry of the cooldown is out of view`);
            assert.match((await flowCacheTab(page).locator('.flow-cache-meta').textContent()) ?? '', new RegExp(texts.passes));
            await screenshot(flowCacheTab(page), `sidebar-polish-${nodeRedLine}-${locale}-${fonts}`);
            for (const problem of await layoutProblems(page, nodeRedLine)) problems.push(`${fonts}: ${problem}`);
          } finally {
            await other?.close();
          }
        }
        assert.deepEqual(problems, []);
      });

      test('Set count and Save ask first, and change nothing until confirmed', async () => {
        const { page } = browser;
        await openKey(page, 'counter:kitchen');
        const before = await flowCacheTab(page).locator('.flow-cache-count .flow-cache-meta-value').textContent();
        await flowCacheTab(page).locator('.flow-cache-count-input').fill(String(texts.target));
        await flowCacheTab(page).locator('.flow-cache-set-count').click();
        const ask = page.locator('.red-ui-notification', { hasText: texts.setAsk });
        await ask.waitFor();
        await ask.locator('button', { hasText: texts.cancel }).click();
        await ask.waitFor({ state: 'detached' });
        await settled(page);
        assert.equal(await flowCacheTab(page).locator('.flow-cache-count .flow-cache-meta-value').textContent(), before, 'cancelled: the count is as it was');
        await flowCacheTab(page).locator('.flow-cache-set-count').click();
        await page.locator('.red-ui-notification', { hasText: texts.setAsk }).locator('.flow-cache-confirm').click();
        await page.locator('.red-ui-notification', { hasText: texts.setDone }).waitFor();
        await page.waitForFunction(
          (want: string) => (globalThis as any).document.querySelector('.flow-cache-count .flow-cache-meta-value')?.textContent === want,
          String(texts.target),
        );

        await openKey(page, 'sensor 10');
        await flowCacheTab(page).locator('.flow-cache-edit').click();
        await flowCacheTab(page)
          .locator('.flow-cache-json')
          .fill(JSON.stringify({ celsius: texts.target }));
        await flowCacheTab(page).locator('.flow-cache-save').click();
        const saveAsk = page.locator('.red-ui-notification', { hasText: texts.saveAsk });
        await saveAsk.waitFor();
        await saveAsk.locator('.flow-cache-confirm').click();
        await page.waitForFunction(() => !(globalThis as any).document.querySelector('.flow-cache-json'));
        await settled(page);
        assert.match((await flowCacheTab(page).locator('.flow-cache-value').textContent()) ?? '', new RegExp(`celsius:?\\s*${texts.target}`));
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
  }
});
