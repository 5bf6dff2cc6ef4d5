// The cache-store dialog reads whole in English and German, drawn with Liberation Sans and with DejaVu
// Sans (the fonts Linux users have), at the dialog width of the Node-RED line under test (4.1, or 5 with
// NODE_RED_LINE=5): no label wraps or is cut, no placeholder and no choice of a select is cut, with the
// SQLite fields, the deferred-write interval and the Redis fields shown.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  activeTab,
  type Browser,
  closeTrays,
  cutTexts,
  FONT_SETS,
  formProblems,
  importNodes,
  type NodeRed,
  nodeRedLine,
  openBrowser,
  openDialog,
  openEditor,
  screenshot,
  startNodeRed,
  trayOpen,
} from './support';

describe(`the cache-store dialog fits its texts (Node-RED ${nodeRedLine === '5' ? '5' : '4.1'})`, () => {
  let nodeRed: NodeRed;

  before(async () => {
    nodeRed = await startNodeRed();
  });

  after(async () => {
    await nodeRed?.stop();
  });

  for (const locale of ['en-US', 'de-DE']) {
    for (const fonts of FONT_SETS) {
      describe(`${locale}, ${fonts === 'dejavu' ? 'DejaVu Sans' : 'Liberation Sans'}`, () => {
        let browser: Browser;

        before(async () => {
          browser = await openBrowser(undefined, locale, fonts);
          await openEditor(browser.page, nodeRed);
        });

        after(async () => {
          await browser?.close();
        });

        test('no label, placeholder or choice is cut, with the SQLite and with the Redis fields', async () => {
          const { page } = browser;
          await importNodes(page, [{ id: 'fitGet', type: 'cache-get', z: await activeTab(page), x: 200, y: 100, wires: [[], []] }]);
          await openDialog(page, 'fitGet');
          await page.locator('#node-input-btn-store-add').click();
          const config = await trayOpen(page, '#node-config-dialog-ok');
          await config.locator('#node-config-dialog-ok').waitFor();
          const problems: string[] = [];
          const check = async (what: string) => {
            for (const p of await formProblems(config, 'node-config-input', 'cache-store')) problems.push(`${what}: ${p}`);
            for (const p of await cutTexts(config)) problems.push(`${what}: ${p}`);
          };
          await page.locator('#node-config-input-scope').selectOption('shared');
          await page.locator('#node-config-input-durability').selectOption('deferred');
          await page.locator('#node-config-input-flushInterval').waitFor({ state: 'visible' });
          await screenshot(config, `store-dialog-${nodeRedLine}-${locale}-${fonts}-sqlite`);
          await check('SQLite');
          await page.locator('#node-config-input-backend').selectOption('redis');
          await page.locator('#node-config-input-redisUrl').waitFor({ state: 'visible' });
          await screenshot(config, `store-dialog-${nodeRedLine}-${locale}-${fonts}-redis`);
          await check('Redis');
          await closeTrays(page);
          assert.deepEqual(problems, []);
          assert.deepEqual(browser.pageErrors, []);
        });
      });
    }
  }
});
