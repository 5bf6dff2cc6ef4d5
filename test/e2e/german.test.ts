// The editor in German, as a user whose browser speaks German meets it: the palette, every dialog, the
// Store field's default store, a validator message and the help come from the de catalogues.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  activeTab,
  type Browser,
  canvasNode,
  closeTrays,
  errorTooltip,
  FLOW_TYPES,
  formProblems,
  importNodes,
  type NodeRed,
  openBrowser,
  openDialog,
  openEditor,
  rawI18nKeys,
  root,
  screenshot,
  showSidebarTab,
  startNodeRed,
  trayOpen,
  type,
  waitMarked,
} from './support';

type Catalogue = Record<string, any>;

function catalogue(lang: string, set: string): Catalogue {
  return JSON.parse(fs.readFileSync(path.join(root, 'locales', lang, `${set}.json`), 'utf8'));
}

/** A text of a catalogue by its dotted key, with __name__ placeholders filled from `values`. */
function text(lang: string, set: string, key: string, values: Record<string, string> = {}): string {
  let at: any = catalogue(lang, set);
  for (const part of key.split('.')) at = at?.[part];
  assert.equal(typeof at, 'string', `${lang} ${set}:${key}`);
  return (at as string).replace(/__(\w+)__/g, (whole, name: string) => values[name] ?? whole);
}

/** HTML as the page shows it: tags dropped, entities decoded, whitespace collapsed. */
function plain(html: string): string {
  return html
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The first paragraph of a node's help in a language, as plain text. */
function helpSummary(lang: string, set: string): string {
  const html = fs.readFileSync(path.join(root, 'locales', lang, `${set}.html`), 'utf8');
  const paragraph = /<p>([\s\S]*?)<\/p>/.exec(html);
  assert.ok(paragraph, `${lang}/${set}.html has a summary`);
  return plain(paragraph[1]);
}

/** The visible label texts of a dialog's rows, in order. */
function rowLabels(tray: any): Promise<string[]> {
  return tray.evaluate((element: any) =>
    [...element.querySelectorAll('.form-row > label:first-child')]
      .filter((label: any) => label.offsetParent !== null)
      .map((label: any) => (label.textContent as string).replace(/\s+/g, ' ').trim()),
  );
}

describe('the editor in German (browser language de-DE)', () => {
  let nodeRed: NodeRed;
  let browser: Browser;

  before(async () => {
    nodeRed = await startNodeRed();
    browser = await openBrowser(undefined, 'de-DE');
    await openEditor(browser.page, nodeRed);
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
  });

  test('the browser speaks German and the editor took its language', async () => {
    const { page } = browser;
    assert.equal(await page.evaluate(() => (globalThis as any).navigator.language), 'de-DE');
    // Node-RED's own German: the deploy button.
    assert.match((await page.locator('#red-ui-header-button-deploy').textContent()) ?? '', /Übernahme/);
  });

  test('the palette shows the German category and node names', async () => {
    const { page } = browser;
    const header = ((await page.locator('#red-ui-palette-header-flow_cache').textContent()) ?? '').trim();
    assert.equal(header, text('de', 'cache-get', 'palette.label.flow_cache'));
    assert.equal(header, 'Flow-Cache');
    for (const set of FLOW_TYPES) {
      // The palette breaks a label at its hyphens onto lines; as text that reads "TTL - Abruf".
      const label = ((await page.locator(`[data-palette-type="${set}"] .red-ui-palette-label`).textContent()) ?? '')
        .replace(/\s+/g, ' ')
        .replace(/ ?- ?/g, '-')
        .trim();
      const german = text('de', set, `${set}.label.palette`);
      assert.equal(label, german, `${set} palette label`);
      assert.notEqual(german, text('en-US', set, `${set}.label.palette`), `${set}: the German palette label is not the English one`);
    }
    assert.equal(
      ((await page.locator('[data-palette-type="cache-get"] .red-ui-palette-label').textContent()) ?? '').replace(/\s+/g, ' ').trim(),
      'Cache lesen',
    );
    await page.locator('#red-ui-palette-container-flow_cache').scrollIntoViewIfNeeded();
    await screenshot(page.locator('#red-ui-palette'), 'de-palette');
  });

  test('every dialog is in German, its labels fit, and the Store field names the default store', async () => {
    const { page } = browser;
    const z = await activeTab(page);
    await importNodes(
      page,
      FLOW_TYPES.map((set, i) => ({
        id: `de${i}`,
        type: set,
        z,
        x: 160,
        y: 60 + i * 50,
        wires: set === 'cache-get' || set === 'cooldown-gate' ? [[], []] : [[]],
        ...(set === 'cooldown-gate' ? { cooldown: 5, cooldownUnits: 'minutes' } : {}),
      })),
    );
    const defaultStore = text('de', 'cache-store', 'cache-store.editor.store.default');
    const hint = plain(text('de', 'cache-store', 'cache-store.editor.store.hint'));
    for (const [i, set] of FLOW_TYPES.entries()) {
      await closeTrays(page);
      const tray = await openDialog(page, `de${i}`);
      await screenshot(tray, `de-dialog-${set}`);
      assert.deepEqual(await rawI18nKeys(tray), [], `${set}: no raw keys`);
      assert.deepEqual(await formProblems(tray, 'node-input', set), [], `${set}: every field labelled, every label on one line`);
      const labels = await rowLabels(tray);
      assert.ok(labels.includes('Speicher'), `${set}: the Store field is labelled in German (${labels.join(' | ')})`);
      assert.ok(!labels.includes('Store') && !labels.includes('Key'), `${set}: no English labels left (${labels.join(' | ')})`);
      // The empty choice of the config select names the default store, not "Kein" or "Neuen Typ ... hinzufügen".
      const chosen = ((await page.locator('#node-input-store option:checked').textContent()) ?? '').trim();
      assert.equal(chosen, defaultStore, `${set}: the Store field shows the default store`);
      const shownHint = ((await tray.locator('.flow-cache-store-hint').textContent()) ?? '').replace(/\s+/g, ' ').trim();
      assert.equal(shownHint, hint, `${set}: the hint under the Store field`);
      assert.match(shownHint, /flow-cache\/cache\.sqlite/);
      assert.match(shownHint, /ein Namensraum je Flow-Tab/);
    }
    await closeTrays(page);
  });

  test('the cache-get dialog in German: its own labels and the default-value choice', async () => {
    const { page } = browser;
    await closeTrays(page);
    const tray = await openDialog(page, 'de0');
    const labels = await rowLabels(tray);
    for (const label of ['Name', 'Speicher', 'Schlüssel', 'Ausgabe in', 'Ersatzwert']) assert.ok(labels.includes(label), `"${label}" in ${labels.join(' | ')}`);
    assert.equal(
      ((await tray.locator('#node-input-default + .red-ui-typedInput-container .red-ui-typedInput-type-label').textContent()) ?? '').trim(),
      'kein Ersatzwert',
    );
    await closeTrays(page);
  });

  test('a bad value is explained in German', async () => {
    const { page } = browser;
    await closeTrays(page);
    await openDialog(page, `de${FLOW_TYPES.indexOf('cache-set')}`);
    await type(page, '#node-input-ttl', '-5');
    await waitMarked(page, 'node-input-ttl', true);
    assert.equal(await errorTooltip(page, 'node-input-ttl'), text('de', 'cache-store', 'cache-store.editor.errors.atLeast', { min: '0' }));
    assert.equal(await errorTooltip(page, 'node-input-ttl'), 'muss mindestens 0 sein');
    await closeTrays(page);
  });

  test('the units, the node label and the cache-store dialog are in German', async () => {
    const { page } = browser;
    await closeTrays(page);
    const id = `de${FLOW_TYPES.indexOf('cooldown-gate')}`;
    const label = ((await page.locator(`g[id="${id}"] .red-ui-flow-node-label`).textContent()) ?? '').trim();
    assert.equal(label, 'Sperrzeit 5 min');
    await openDialog(page, id);
    const units = await page.locator('#node-input-cooldownUnits option').allTextContents();
    assert.deepEqual(units, ['Sekunden', 'Minuten', 'Stunden', 'Tage']);
    await page.locator('#node-input-btn-store-add').click();
    const config = await trayOpen(page, '#node-config-dialog-ok');
    await config.locator('#node-config-dialog-ok').waitFor();
    await screenshot(config, 'de-dialog-cache-store');
    assert.deepEqual(await rawI18nKeys(config), [], 'cache-store: no raw keys');
    assert.deepEqual(await formProblems(config, 'node-config-input', 'cache-store'), [], 'cache-store: labels fit');
    const labels = await rowLabels(config);
    for (const german of ['Datei', 'Bereich', 'Vorgabe-TTL', 'Größenlimit', 'Verdrängung', 'Schreiben', 'Zeitzone']) {
      assert.ok(labels.includes(german), `"${german}" in ${labels.join(' | ')}`);
    }
    await closeTrays(page);
  });

  test('the help sidebar shows the German help of each node', async () => {
    const { page } = browser;
    await closeTrays(page);
    await showSidebarTab(page, 'help');
    const help = page.locator('.red-ui-help:visible').first();
    for (const [i, set] of FLOW_TYPES.entries()) {
      await canvasNode(page, `de${i}`).click();
      const summary = helpSummary('de', set);
      await page
        .locator('.red-ui-help:visible', { hasText: summary.slice(0, 60) })
        .first()
        .waitFor();
      const shown = ((await help.textContent()) ?? '').replace(/\s+/g, ' ');
      assert.ok(shown.includes(summary), `${set}: the German summary`);
      assert.match(shown, /Eingangsdaten/);
      assert.match(shown, /Ausgangsdaten/);
      assert.ok(!shown.includes(helpSummary('en-US', set).slice(0, 40)), `${set}: not the English help`);
    }
    await screenshot(page.locator('#red-ui-sidebar'), 'de-help-counter');
  });

  test('the editor asked nothing of the outside world and threw no errors', () => {
    assert.deepEqual(browser.outsideRequests, []);
    assert.deepEqual(browser.pageErrors, []);
  });
});
