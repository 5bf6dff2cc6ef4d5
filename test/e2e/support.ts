// Browser tests of the editor: Node-RED as a child process with this package, driven by Debian's Chromium.
// Node-RED 4.1 on this process's Node.js unless NODE_RED_LINE=5 / NODE_RED_NODE=<node binary> say otherwise (scripts/userdir.js).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { freePort, userdir } from '../support/node-red-process';

export { freePort };

export const root = path.join(__dirname, '..', '..', '..');
/** Screenshots and logs of a run (git-ignored). */
export const artifacts = path.join(root, 'test-artifacts');
/** The Node-RED line the editor under test belongs to: '4' (4.1, default) or '5' (NODE_RED_LINE=5). */
export const nodeRedLine = userdir.nodeRedLine();
/** The six node types of the package; cache-store is the config node. */
export const FLOW_TYPES = ['cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'];
export const ALL_TYPES = ['cache-store', ...FLOW_TYPES];

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A running Node-RED with this package installed in a temporary userDir. */
export interface NodeRed {
  port: number;
  url: string;
  userDir: string;
  /** Everything it printed so far. */
  log(): string;
  /** POST to the admin API (e.g. `/inject/<id>`); resolves with the HTTP status. */
  post(urlPath: string, body?: unknown): Promise<number>;
  /**
   * Presses an inject node through the admin API; resolves with the HTTP status. Right after a deploy
   * the new flow may still be starting (404 for an unknown node), so a 404 is retried for up to 10 s.
   */
  inject(id: string): Promise<number>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * A userDir the package is already installed in (e.g. from the npm tarball): only settings.js is
   * written there. Without it, a fresh temporary userDir gets the repository linked in.
   */
  userDir?: string;
  /** settings.js source appended to the settings the run writes (e.g. `module.exports.adminAuth = ...;`). */
  settings?: string;
}

/** Starts Node-RED on 127.0.0.1 (free port) and resolves once it serves the editor. */
export async function startNodeRed(options: StartOptions = {}): Promise<NodeRed> {
  const dir = options.userDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-e2e-'));
  const port = await freePort();
  const settings = options.userDir ? userdir.writeSettings(dir, { port }) : userdir.prepareUserDir(dir, { port });
  if (options.settings) fs.appendFileSync(settings, `\n${options.settings}\n`);
  const child: ChildProcess = spawn(userdir.nodeRedNode(), [userdir.nodeRedCli(), '--userDir', dir, '--settings', settings], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('Server now running at')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`Node-RED exited (${code}) before it served the editor:\n${output}`)));
  });
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    userDir: dir,
    log: () => output,
    post: (urlPath, body = {}) => postJson(port, urlPath, body),
    async inject(id) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const status = await postJson(port, `/inject/${id}`, {});
        if (status !== 404 || Date.now() > deadline) return status;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postJson(port: number, urlPath: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': data.length, connection: 'close' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** A Chromium with its page and what the page did. */
export interface Browser {
  page: Page;
  context: BrowserContext;
  /** Requests the page made to anything but the Node-RED under test. */
  outsideRequests: string[];
  /** Errors thrown in the page. */
  pageErrors: string[];
  /** Requests that failed (no answer) or were answered with a status >= 400: "<status> <method> <url>". */
  failedRequests: string[];
  /** Messages the page logged to the console as errors. */
  consoleErrors: string[];
  close(): Promise<void>;
}

/**
 * The fonts a Linux desktop draws the editor with. Node-RED asks for Helvetica Neue, Arial, Helvetica:
 * where Liberation Sans is installed (Debian's fonts-liberation) Arial is drawn with it, which has
 * Arial's widths; elsewhere with DejaVu Sans (fonts-dejavu-core, on every Debian), which is wider.
 * Layout tests draw with both.
 */
export type Fonts = 'liberation' | 'dejavu';
export const FONT_SETS: Fonts[] = ['liberation', 'dejavu'];

const FONT_DIRS = { liberation: '/usr/share/fonts/truetype/liberation', dejavu: '/usr/share/fonts/truetype/dejavu' };
const FONT_PACKAGES = { liberation: 'fonts-liberation', dejavu: 'fonts-dejavu-core' };

/** Fails with a one-line cause where the browser or a font the layout tests draw with is not installed. */
export function requireFonts(): void {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`the browser tests need the Debian package chromium (${CHROMIUM} is missing): apt-get install chromium`);
  for (const fonts of FONT_SETS) {
    if (!fs.existsSync(FONT_DIRS[fonts]))
      throw new Error(
        `the browser tests need the Debian package ${FONT_PACKAGES[fonts]} (${FONT_DIRS[fonts]} is missing): apt-get install ${FONT_PACKAGES[fonts]}`,
      );
  }
}

/** The fonts a browser draws with unless a test says: E2E_FONTS=dejavu runs a suite as on a machine without fonts-liberation. */
function defaultFonts(): Fonts {
  return process.env.E2E_FONTS === 'dejavu' ? 'dejavu' : 'liberation';
}

/** A fontconfig file for the browser: the system's fonts, without Liberation for 'dejavu' (a machine without fonts-liberation). */
function fontConfig(dir: string, fonts: Fonts): string {
  const file = path.join(dir, 'fonts.conf');
  const reject = fonts === 'dejavu' ? `<selectfont><rejectfont><glob>${FONT_DIRS.liberation}/*</glob></rejectfont></selectfont>` : '';
  fs.writeFileSync(
    file,
    `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig><include ignore_missing="no">/etc/fonts/fonts.conf</include>${reject}</fontconfig>\n`,
  );
  return file;
}

/**
 * A Chromium with a fresh profile and one page. `locale` sets the browser's language (navigator.language),
 * from which the Node-RED editor picks its catalogues: 'de-DE' opens the editor in German. `fonts`:
 * 'dejavu' draws as a machine without fonts-liberation does (see Fonts); by default the installed fonts
 * (or E2E_FONTS's).
 */
export async function openBrowser(viewport = { width: 1600, height: 1000 }, locale = 'en-US', fonts: Fonts = defaultFonts()): Promise<Browser> {
  requireFonts();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, `--lang=${locale}`],
    viewport,
    locale,
    env: { ...process.env, FONTCONFIG_FILE: fontConfig(profile, fonts) } as Record<string, string>,
  });
  // a page of our own: the tab Chromium opens at its start is its own to replace or close while it starts
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const outsideRequests: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith('http://127.0.0.1:') && !url.startsWith('data:')) outsideRequests.push(url);
  });
  page.on('pageerror', (error) => pageErrors.push(String(error.stack ?? error)));
  const failedRequests: string[] = [];
  page.on('requestfailed', (request) => failedRequests.push(`failed (${request.failure()?.errorText ?? 'no answer'}) ${request.method()} ${request.url()}`));
  page.on('response', (response) => {
    if (response.status() >= 400) failedRequests.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  });
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
  });
  return {
    page,
    context,
    outsideRequests,
    pageErrors,
    failedRequests,
    consoleErrors,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Loads the editor and waits until it is ready for input (toolbar shown, loader gone, our palette in place). */
export async function openEditor(page: Page, nodeRed: NodeRed): Promise<void> {
  await page.goto(nodeRed.url);
  await page.locator('.red-ui-header-toolbar').waitFor({ state: 'visible' });
  await page.locator('#red-ui-loading-progress').waitFor({ state: 'hidden' });
  await page.locator('[data-palette-type="cache-get"]').waitFor({ state: 'visible' });
  await page.locator('#red-ui-workspace-chart svg').first().waitFor();
}

/** Opens the editor as an adminAuth user: its login dialog, filled in as a user does, then the editor ready for input. */
export async function logIn(page: Page, nodeRed: NodeRed, username: string, password: string): Promise<void> {
  await page.goto(nodeRed.url);
  await page.locator('#node-dialog-login-username').fill(username);
  await page.locator('#node-dialog-login-password').fill(password);
  await page.locator('#node-dialog-login-submit').click();
  await page.locator('.red-ui-header-toolbar').waitFor({ state: 'visible' });
  await page.locator('#red-ui-loading-progress').waitFor({ state: 'hidden' });
  await page.locator('#red-ui-workspace-chart svg').first().waitFor();
  await page.waitForFunction(() => Boolean((globalThis as any).FlowCacheSidebar));
}

/** The flow cache sidebar tab's content. */
export function flowCacheTab(page: Page): Locator {
  return page.locator('.flow-cache-sidebar');
}

/** Opens the flow cache tab as a user does: its button where the tab bar shows it, else View > Flow cache in the main menu. */
export async function openFlowCacheTab(page: Page): Promise<void> {
  const button = sidebarTabButton(page, 'flow-cache');
  if (await button.isVisible()) {
    if (!(await button.evaluate((b: any) => b.tagName === 'BUTTON' && b.classList.contains('selected')))) await button.click();
  } else {
    await page.locator('#red-ui-header-button-sidemenu').click();
    await page.locator('#menu-item-view-menu').hover();
    await page.locator('#menu-item-view-menu-flow-cache').click();
  }
  await flowCacheTab(page).waitFor({ state: 'visible' });
}

/** Closes the editor's notifications (a click closes each one) and waits until they are gone. */
export async function dismissNotifications(page: Page): Promise<void> {
  await page.evaluate(() => {
    const $ = (globalThis as any).$;
    $('.red-ui-notification').trigger('click');
  });
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.red-ui-notification').length === 0);
}

/** Saves a screenshot of the page (or of one element) into test-artifacts/. */
export async function screenshot(target: Page | Locator, name: string): Promise<string> {
  fs.mkdirSync(artifacts, { recursive: true });
  const file = path.join(artifacts, `${name}.png`);
  await target.screenshot({ path: file });
  return file;
}

/** Adds nodes to the active flow tab where their x/y say, as a paste would (no drag mode). */
export async function importNodes(page: Page, nodes: object[]): Promise<void> {
  await page.evaluate((flow) => {
    const RED = (globalThis as any).RED;
    RED.view.importNodes(flow, { touchImport: true, generateIds: false, notify: false });
    RED.view.select({ nodes: [] });
    RED.view.redraw(true);
  }, nodes);
}

/** The id of the active flow tab. */
export function activeTab(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as any).RED.workspaces.active() as string);
}

/** A node on the canvas (its body, which a double-click opens). */
export function canvasNode(page: Page, id: string): Locator {
  return page.locator(`g[id="${id}"] rect.red-ui-flow-node`);
}

/**
 * Waits until the edit tray holding `button` (#node-dialog-ok for a node, #node-config-dialog-ok for a
 * config node) is on top and has slid fully into place. The editor keeps one tray in the page at a time.
 */
export async function trayOpen(page: Page, button = '#node-dialog-ok'): Promise<Locator> {
  await page.waitForFunction((selector: string) => {
    const trays = (globalThis as any).document.querySelectorAll('.red-ui-tray');
    const top = trays[trays.length - 1];
    return top?.querySelector(selector) && (globalThis as any).getComputedStyle(top).right === '0px';
  }, button);
  return page.locator('.red-ui-tray').last();
}

/** Opens a node's edit dialog from the canvas (double-click) and waits for its form. */
export async function openDialog(page: Page, id: string): Promise<Locator> {
  await canvasNode(page, id).dblclick();
  const tray = await trayOpen(page);
  await tray.locator('#dialog-form').waitFor({ state: 'visible' });
  return tray;
}

/** Cancels every open edit tray (a failed test may leave one open). */
export async function closeTrays(page: Page): Promise<void> {
  for (let i = 0; i < 5 && (await page.locator('.red-ui-tray').count()) > 0; i++) {
    // This very button (a locator would find the node dialog's button once a config dialog above it is gone).
    const cancel = await page.locator('.red-ui-tray').last().locator('#node-config-dialog-cancel, #node-dialog-cancel').first().elementHandle();
    if (!cancel) return;
    await cancel.click();
    await page.waitForFunction((button: any) => !button.isConnected, cancel);
    await cancel.dispose();
  }
}

/** Waits until no edit tray is open. */
export async function trayClosed(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.red-ui-tray').length === 0);
}

/** What the editor holds for a node (its saved properties and validity). */
export function editorNode(page: Page, id: string): Promise<Record<string, any>> {
  return page.evaluate((nodeId) => {
    const node = (globalThis as any).RED.nodes.node(nodeId);
    if (!node) return { missing: true };
    const copy: Record<string, any> = { valid: node.valid, validationErrors: node.validationErrors };
    for (const key of Object.keys(node._def.defaults)) copy[key] = node[key];
    return copy;
  }, id);
}

/** Texts inside `scope` (text, option texts, placeholders, labels, titles) that are i18n keys of this package left untranslated. */
export function rawI18nKeys(scope: Locator): Promise<string[]> {
  return scope.evaluate((element: any) => {
    const pattern = /\b(cache-store|cache-get|cache-set|cooldown-gate|counter|ttl-fetch)\.[a-zA-Z-]+(\.[a-zA-Z-]+)+/g;
    const texts: string[] = [element.textContent as string];
    for (const e of element.querySelectorAll('[placeholder], [aria-label], [title]')) {
      for (const attribute of ['placeholder', 'aria-label', 'title']) {
        const value = e.getAttribute(attribute);
        if (value) texts.push(value);
      }
    }
    const found: string[] = [];
    for (const text of texts) for (const match of text.match(pattern) ?? []) found.push(match);
    return found;
  });
}

/** Deploys with the header button and waits for the editor to confirm it. */
export async function deployFlows(page: Page): Promise<void> {
  const button = page.locator('#red-ui-header-button-deploy');
  if (await button.evaluate((b: any) => b.classList.contains('disabled'))) throw new Error('there is nothing to deploy');
  await button.click();
  await page.locator('.red-ui-notification', { hasText: 'Successfully deployed' }).waitFor();
  await page.locator('#red-ui-header-button-deploy.disabled').waitFor();
}

/** Waits for a node's status text on the canvas to match, and returns it (the error names what it shows instead). */
export async function waitForStatus(page: Page, id: string, expected: RegExp): Promise<string> {
  const label = page.locator(`g[id="${id}"] .red-ui-flow-node-status-label`);
  try {
    await page.waitForFunction(
      ([nodeId, source, flags]: [string, string, string]) => {
        const text = (globalThis as any).document.querySelector(`g[id="${nodeId}"] .red-ui-flow-node-status-label`)?.textContent ?? '';
        return new RegExp(source, flags).test(text);
      },
      [id, expected.source, expected.flags] as [string, string, string],
    );
  } catch (error) {
    const shown = (await label.count()) > 0 ? await label.textContent() : '(no status)';
    throw new Error(`status of ${id} never matched ${expected}; it shows "${shown}"`, { cause: error });
  }
  return (await label.textContent()) ?? '';
}

/** Menu > Import > Examples > <module> > <folder> > <file>, then Import: the example is added to the editor. */
export async function importExample(page: Page, module: string, folder: string, file: string): Promise<void> {
  await page.locator('#red-ui-header-button-sidemenu').click();
  await page.locator('#menu-item-import').click();
  const dialog = page.locator('#red-ui-clipboard-dialog');
  await dialog.waitFor();
  await dialog.locator('#red-ui-clipboard-dialog-import-tabs a', { hasText: 'Examples' }).click();
  const tree = dialog.locator('#red-ui-clipboard-dialog-import-tab-examples');
  for (const label of [module, folder, file]) {
    const literal = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await tree.locator('.red-ui-treeList-label', { hasText: new RegExp(`^\\s*${literal}\\s*$`) }).click();
  }
  await page.waitForFunction(() => !(globalThis as any).document.querySelector('#red-ui-clipboard-dialog-ok').classList.contains('ui-state-disabled'));
  await page.locator('#red-ui-clipboard-dialog-ok').click();
  await dialog.waitFor({ state: 'hidden' });
}

/**
 * The button that shows a sidebar tab ('debug', 'help', 'config', 'info', ...): Node-RED 4.1's tab link
 * button, or the button in Node-RED 5's sidebar tab bar.
 */
export function sidebarTabButton(page: Page, tab: string): Locator {
  return page.locator(`#red-ui-tab-${tab}-link-button, .red-ui-sidebar-tab-bar button[data-tab-id="${tab}"]`);
}

/** Shows a sidebar tab as a user does, with its button (Node-RED 5 hides a tab whose button is clicked while it shows). */
export async function showSidebarTab(page: Page, tab: string): Promise<void> {
  const button = sidebarTabButton(page, tab);
  if (!(await button.evaluate((b: any) => b.tagName === 'BUTTON' && b.classList.contains('selected')))) await button.click();
}

/**
 * Problems with the form's fields: a property of the node with no field, a field row without a label,
 * a label that wraps or is cut off. `prefix` is node-input or node-config-input.
 */
export function formProblems(tray: Locator, prefix: string, type: string): Promise<string[]> {
  return tray.evaluate(
    (element: any, [fieldPrefix, nodeType]: [string, string]) => {
      const RED = (globalThis as any).RED;
      const doc = (globalThis as any).document;
      const problems: string[] = [];
      const form = element.querySelector('#dialog-form, #node-config-dialog-edit-form');
      const defaults = RED.nodes.getType(nodeType).defaults;
      for (const property of Object.keys(defaults)) {
        const field = form.querySelector(`#${fieldPrefix}-${property}`) ?? form.querySelector(`#${fieldPrefix}-${property}-container`);
        // A TypedInput's type and editableList rows are kept in hidden fields beside the visible one.
        if (!field) problems.push(`no field for ${property}`);
      }
      for (const row of form.querySelectorAll('.form-row')) {
        const fields = [...row.querySelectorAll('input, select, textarea, ol')].filter((f: any) => f.type !== 'hidden');
        if (fields.length === 0) continue;
        const label = row.querySelector('label');
        const text = (label?.textContent ?? '').trim();
        if (!label || text === '') {
          problems.push(`row of ${fields[0].id || fields[0].className} has no label text`);
          continue;
        }
        if (row.offsetParent === null) continue; // a hidden row (e.g. namespace while the scope is "flow")
        // Lines the label's text occupies (text only: an icon glyph sits on its own box).
        const tops: number[] = [];
        const walker = doc.createTreeWalker(label, 4); // NodeFilter.SHOW_TEXT
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          if (node.textContent.trim() === '') continue;
          const range = doc.createRange();
          range.selectNodeContents(node);
          for (const rect of range.getClientRects()) if (rect.width > 0 && !tops.some((t) => Math.abs(t - rect.top) < 3)) tops.push(rect.top);
        }
        const lines = { size: tops.length };
        if (lines.size > 1) problems.push(`label "${text}" wraps onto ${lines.size} lines`);
        // The icon stays on the text's line (a label too long for its column pushes its text below the icon).
        const icon = label.querySelector('i.fa');
        if (icon && tops.length > 0) {
          const box = icon.getBoundingClientRect();
          const textBottom = Math.max(...[...label.querySelectorAll('span')].map((span: any) => span.getBoundingClientRect().bottom));
          if (box.bottom <= tops[0] + 2 || (Number.isFinite(textBottom) && box.top >= textBottom)) problems.push(`label "${text}" is on a line below its icon`);
        }
        if (label.scrollWidth > label.clientWidth + 1) problems.push(`label "${text}" is cut off`);
      }
      return problems;
    },
    [prefix, type] as [string, string],
  );
}

/**
 * Fields of a form whose text is cut: a placeholder wider than its box, an option of a select wider
 * than the select (what a closed select shows of the option chosen).
 */
export function cutTexts(tray: Locator): Promise<string[]> {
  return tray.evaluate((element: any) => {
    const w = globalThis as any;
    const form = element.querySelector('#dialog-form, #node-config-dialog-edit-form');
    const canvas = w.document.createElement('canvas').getContext('2d');
    const width = (field: any, text: string) => {
      const style = w.getComputedStyle(field);
      canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      return canvas.measureText(text).width;
    };
    const inner = (field: any) => {
      const style = w.getComputedStyle(field);
      return field.clientWidth - Number.parseFloat(style.paddingLeft) - Number.parseFloat(style.paddingRight);
    };
    const problems: string[] = [];
    for (const field of form.querySelectorAll('input[placeholder]')) {
      if (field.offsetParent === null || field.type === 'hidden') continue;
      if (width(field, field.placeholder) > inner(field))
        problems.push(`placeholder "${field.placeholder}" cut (${Math.round(width(field, field.placeholder))} px in ${inner(field)} px)`);
    }
    for (const select of form.querySelectorAll('select')) {
      if (select.offsetParent === null) continue;
      // the drop-down arrow takes about 16 px of the box
      for (const option of select.options) {
        if (width(select, option.text) > inner(select) - 16)
          problems.push(`option "${option.text}" cut (${Math.round(width(select, option.text))} px in ${inner(select) - 16} px)`);
      }
    }
    return problems;
  });
}

/** Types text into a field the way a user does (the editor validates on keyup and change). */
export async function type(page: Page, selector: string, text: string): Promise<void> {
  // A TypedInput hides the original input and shows its own text box beside it.
  const typed = page.locator(`${selector}[type="hidden"] + .red-ui-typedInput-container input.red-ui-typedInput-input`);
  const field = (await typed.count()) > 0 ? typed : page.locator(selector);
  await field.fill(text);
  await field.press('End');
  await field.dispatchEvent('change');
}

/** Waits until a field shows (or no longer shows) the editor's error marking. */
export async function waitMarked(page: Page, id: string, marked: boolean): Promise<void> {
  await page.waitForFunction(
    ([fieldId, want]: [string, boolean]) => {
      const field = (globalThis as any).document.getElementById(fieldId);
      if (!field) return false;
      const typed = field.closest('.red-ui-typedInput-container') ?? field.nextElementSibling;
      const on = field.classList.contains('input-error') || Boolean(typed?.classList?.contains('input-error'));
      return on === want;
    },
    [id, marked] as [string, boolean],
  );
}

/**
 * The text of the tooltip the editor shows when the pointer rests on an invalid field; undefined for a
 * TypedInput (Node-RED attaches the tooltip to its hidden input, so none appears).
 */
export async function errorTooltip(page: Page, id: string): Promise<string | undefined> {
  if ((await page.locator(`#${id}[type="hidden"]`).count()) > 0) return undefined;
  // The pointer may already rest on the field (where the double-click that opened the dialog was): move it off first.
  await page.mouse.move(5, 500);
  await page.locator(`#${id}`).hover();
  const tooltip = page.locator('.red-ui-popover-tooltip:visible, .red-ui-popover:visible').last();
  await tooltip.waitFor();
  const text = ((await tooltip.textContent()) ?? '').trim();
  await page.mouse.move(5, 500);
  return text;
}
