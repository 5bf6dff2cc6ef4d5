// The palette of a fresh editor: our five flow nodes in one category with their icons, the config node, and the help.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ALL_TYPES,
  activeTab,
  type Browser,
  canvasNode,
  FLOW_TYPES,
  importNodes,
  type NodeRed,
  openBrowser,
  openEditor,
  root,
  screenshot,
  showSidebarTab,
  startNodeRed,
} from './support';

/** The first paragraph of a node's help file, as plain text. */
function helpSummary(type: string): string {
  const html = fs.readFileSync(path.join(root, 'locales', 'en-US', `${type}.html`), 'utf8');
  const paragraph = /<p>([\s\S]*?)<\/p>/.exec(html);
  assert.ok(paragraph, `${type}.html has no summary paragraph`);
  return plain(paragraph[1]);
}

function plain(html: string): string {
  return html
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('palette and help of a fresh editor', () => {
  let nodeRed: NodeRed;
  let browser: Browser;

  before(async () => {
    nodeRed = await startNodeRed();
    browser = await openBrowser();
    await openEditor(browser.page, nodeRed);
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
  });

  test('the five flow nodes sit together in the "flow cache" category, each with a label', async () => {
    const { page } = browser;
    const category = page.locator('#red-ui-palette-container-flow_cache');
    await category.waitFor();
    const header = await page.locator('#red-ui-palette-header-flow_cache').textContent();
    assert.equal(header?.trim(), 'flow cache');
    const inCategory = await category.locator('[data-palette-type]').evaluateAll((entries: any[]) => entries.map((e) => e.dataset.paletteType));
    assert.deepEqual([...inCategory].sort(), [...FLOW_TYPES].sort());
    for (const type of FLOW_TYPES) {
      const entry = page.locator(`[data-palette-type="${type}"]`);
      assert.equal(await entry.count(), 1, `${type} is in the palette once`);
      const label = ((await entry.locator('.red-ui-palette-label').textContent()) ?? '').replace(/\s+/g, ' ').trim();
      assert.equal(label, type.replace('-', ' '), `${type} palette label`);
    }
    await category.scrollIntoViewIfNeeded();
    await screenshot(page.locator('#red-ui-palette'), 'palette');
  });

  test('cache-store is a config node: not in the palette, but offered by every node', async () => {
    const { page } = browser;
    assert.equal(await page.locator('[data-palette-type="cache-store"]').count(), 0);
    const definitions = await page.evaluate((types) => {
      const RED = (globalThis as any).RED;
      return types.map((type: string) => {
        const def = RED.nodes.getType(type);
        return { type, category: def?.category, store: def?.defaults?.store?.type };
      });
    }, ALL_TYPES);
    for (const def of definitions) {
      if (def.type === 'cache-store') assert.equal(def.category, 'config');
      else assert.deepEqual(def, { type: def.type, category: 'flow cache', store: 'cache-store' });
    }
  });

  test('every palette icon is our svg and loads', async () => {
    const { page } = browser;
    for (const type of FLOW_TYPES) {
      const image = await page
        .locator(`[data-palette-type="${type}"] .red-ui-palette-icon`)
        .evaluate((icon: any) => (globalThis as any).getComputedStyle(icon).backgroundImage as string);
      const url = /url\("?([^")]+)"?\)/.exec(image)?.[1];
      assert.ok(url, `${type} palette icon has a background image (${image})`);
      assert.ok(url.endsWith(`/${type}.svg`), `${type} icon is ${url}`);
      const response = await page.request.get(url);
      assert.equal(response.status(), 200, `${url} answers 200`);
      assert.match(response.headers()['content-type'] ?? '', /image\/svg\+xml/);
      // The browser can draw it: an <img> of the same url decodes to a non-empty picture.
      const size = await page.evaluate(async (src: string) => {
        const img = new (globalThis as any).Image();
        img.src = src;
        await img.decode();
        return [img.naturalWidth, img.naturalHeight];
      }, url);
      assert.ok(size[0] > 0 && size[1] > 0, `${type} icon decodes (${size})`);
    }
  });

  test('selecting a node shows its help in the help sidebar: the summary, Inputs and Outputs', async () => {
    const { page } = browser;
    const z = await activeTab(page);
    await importNodes(
      page,
      FLOW_TYPES.map((type, i) => ({ id: `help${i}`, type, z, x: 200, y: 80 + i * 60, wires: [] })),
    );
    await showSidebarTab(page, 'help');
    // The help section (the outermost .red-ui-help; the node's text sits in a nested one).
    const help = page.locator('.red-ui-help:visible').first();
    for (const [i, type] of FLOW_TYPES.entries()) {
      await canvasNode(page, `help${i}`).click();
      const summary = helpSummary(type);
      await page
        .locator('.red-ui-help:visible', { hasText: summary.slice(0, 60) })
        .first()
        .waitFor();
      const text = ((await help.textContent()) ?? '').replace(/\s+/g, ' ');
      assert.ok(text.includes(summary), `${type} help shows its summary`);
      assert.match(text, /\bInputs\b/, `${type} help has Inputs`);
      assert.match(text, /\bOutputs\b/, `${type} help has Outputs`);
      assert.match(text, /\bDetails\b/, `${type} help has Details`);
      await screenshot(page.locator('#red-ui-sidebar'), `help-${type}`);
    }
    // The config node has no canvas presence: its help is reached through the help tree.
    await page.locator('.red-ui-treeList-label', { hasText: /^cache store$/ }).click();
    const summary = helpSummary('cache-store');
    await page
      .locator('.red-ui-help:visible', { hasText: summary.slice(0, 60) })
      .first()
      .waitFor();
    const text = ((await help.textContent()) ?? '').replace(/\s+/g, ' ');
    assert.ok(text.includes(summary), 'cache-store help shows its summary');
    assert.match(text, /\bProperties\b/);
    await screenshot(page.locator('#red-ui-sidebar'), 'help-cache-store');
  });

  test('the editor asked nothing of the outside world and threw no errors', () => {
    assert.deepEqual(browser.outsideRequests, []);
    assert.deepEqual(browser.pageErrors, []);
  });
});
