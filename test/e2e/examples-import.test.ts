// Every example imported through the menu, one after another into one editor, as a user trying them all does.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type Browser, dismissNotifications, type NodeRed, openBrowser, openEditor, root, startNodeRed } from './support';

const MODULE = 'node-red-contrib-flow-cache';

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  label?: string;
  x?: number;
}

/** Every example as [folder, file name without .json], Home Assistant ones first. */
const examples = fs
  .readdirSync(path.join(root, 'examples'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .flatMap((folder) =>
    fs
      .readdirSync(path.join(root, 'examples', folder.name))
      .filter((file) => file.endsWith('.json'))
      .map((file) => [folder.name, file.replace(/\.json$/, '')] as [string, string]),
  )
  .sort(([a], [b]) => Number(b === 'home-assistant') - Number(a === 'home-assistant') || a.localeCompare(b));

function readExample(folder: string, file: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(root, 'examples', folder, `${file}.json`), 'utf8')) as FlowNode[];
}

/** An XPath literal for a label (no label here holds both kinds of quote). */
const literal = (text: string) => (text.includes('"') ? `'${text}'` : `"${text}"`);

/**
 * Menu > Import > Examples > module > folder > file > Import. The file is looked up inside its folder's
 * branch: a file and a folder may share a name (home-assistant/expiring-entries, expiring-entries/).
 */
async function importFromMenu(page: Page, folder: string, file: string): Promise<void> {
  await page.locator('#red-ui-header-button-sidemenu').click();
  await page.locator('#menu-item-import').click();
  const dialog = page.locator('#red-ui-clipboard-dialog');
  await dialog.waitFor();
  await dialog.locator('#red-ui-clipboard-dialog-import-tabs a', { hasText: 'Examples' }).click();
  const tree = dialog.locator('#red-ui-clipboard-dialog-import-tab-examples');
  const label = (text: string) => `div[contains(concat(" ", @class, " "), " red-ui-treeList-label ")][normalize-space(.)=${literal(text)}]`;
  await tree.locator(`xpath=.//${label(MODULE)}`).click();
  await tree.locator(`xpath=.//li[div/${label(MODULE)}]//${label(folder)}`).click();
  // A click while the branch is still being drawn can miss; the Import button says when a file is chosen.
  const fileLabel = tree.locator(`xpath=.//li[div/${label(MODULE)}]//li[div/${label(folder)}]//${label(file)}`);
  for (let attempt = 1; ; attempt++) {
    await fileLabel.click();
    try {
      await page.waitForFunction(
        () => !(globalThis as any).document.querySelector('#red-ui-clipboard-dialog-ok').classList.contains('ui-state-disabled'),
        undefined,
        { timeout: 3000 },
      );
      break;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
  await page.locator('#red-ui-clipboard-dialog-ok').click();
  await dialog.waitFor({ state: 'hidden' });
}

describe('every example imported one after another through Import > Examples', () => {
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

  test('each lands on a new tab of its own, and none asks about nodes that already exist', async () => {
    const { page } = browser;
    const firstTab = await page.evaluate(() => (globalThis as any).RED.workspaces.active() as string);
    const expectedConfigs: string[] = [];
    for (const [folder, file] of examples) {
      const flow = readExample(folder, file);
      const tab = flow.find((n) => n.type === 'tab');
      assert.ok(tab, `${folder}/${file} has a tab node`);
      await importFromMenu(page, folder, file);
      // The editor says what it did: "Imported: ..." or "Some of the nodes you are importing already exist ...";
      // the Home Assistant nodes are of a type this Node-RED does not have ("Imported unrecognised type: ...").
      await page.locator('.red-ui-notification').first().waitFor();
      const notes = await page.evaluate(() =>
        [...(globalThis as any).document.querySelectorAll('.red-ui-notification')].map((n: any) => n.textContent.replace(/\s+/g, ' ').trim()),
      );
      const expected = folder === 'home-assistant' ? /^Imported(:| unrecognised type)/ : /^Imported:/;
      assert.deepEqual(
        notes.filter((note: string) => !expected.test(note)),
        [],
        `${folder}/${file}: the editor asked or warned instead of importing`,
      );
      await dismissNotifications(page);

      const placed = await page.evaluate(
        (ids: string[]) => ids.map((id) => ({ id, z: (globalThis as any).RED.nodes.node(id)?.z ?? null })),
        flow.filter((n) => n.type !== 'tab' && typeof n.x === 'number').map((n) => n.id),
      );
      assert.deepEqual(
        placed.filter((p) => p.z !== tab.id),
        [],
        `${folder}/${file}: nodes not on the example's own tab`,
      );
      assert.equal(await page.evaluate((id: string) => (globalThis as any).RED.nodes.workspace(id)?.label, tab.id), tab.label);
      expectedConfigs.push(...flow.filter((n) => n.type !== 'tab' && typeof n.x !== 'number').map((n) => `${n.type} ${n.id}`));
    }

    const state = await page.evaluate((first: string) => {
      const RED = (globalThis as any).RED;
      const configs: string[] = [];
      RED.nodes.eachConfig((c: any) => {
        configs.push(`${c.type} ${c.id}`);
      });
      const tabs: string[] = [];
      RED.nodes.eachWorkspace((w: any) => {
        tabs.push(w.id);
      });
      return { configs, tabs, onFirst: RED.nodes.filterNodes({ z: first }).length };
    }, firstTab);
    assert.deepEqual(state.configs.sort(), expectedConfigs.sort(), 'each config node once, and no server config the user would have to fill in');
    assert.equal(state.tabs.length, examples.length + 1, 'one new tab per example beside the first one');
    assert.equal(state.onFirst, 0, 'nothing landed on the tab that was open');
    assert.deepEqual(browser.pageErrors, []);
  });
});
