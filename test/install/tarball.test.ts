// The package as a user gets it: `npm pack`, the tarball installed into a fresh userDir the way Node-RED's
// palette manager installs it (`npm install --omit=dev --engine-strict`), Node-RED started on that userDir
// as a real process, the nodes used over HTTP and the editor driven in Chromium.
//   NODE_RED_LINE=4|5      which Node-RED runs (default 4: Node-RED 4.1)
//   NODE_RED_NODE=<node>   the Node.js that installs and runs it (default: the one running the tests)
//   INSTALL_IGNORE_SCRIPTS=1  install with --ignore-scripts: no native build at all, as on a machine without compilers
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type Browser,
  closeTrays,
  deployFlows,
  editorNode,
  FLOW_TYPES,
  importExample,
  type NodeRed,
  openBrowser,
  openDialog,
  openEditor,
  root,
  screenshot,
  startNodeRed,
  trayClosed,
  trayOpen,
  waitForStatus,
} from '../e2e/support';
import { endpointFlow, get, userdir } from '../support/node-red-process';

const MODULE = 'node-red-contrib-flow-cache';
const ignoreScripts = process.env.INSTALL_IGNORE_SCRIPTS === '1';
const line = userdir.nodeRedLine();
const variant = `Node-RED ${userdir.nodeRedPackage(line).version}, npm install --omit=dev${ignoreScripts ? ' --ignore-scripts' : ''}`;
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** npm's own CLI script, so that it runs on the Node.js under test. */
function npmCli(): string {
  const fromRun = process.env.npm_execpath;
  if (fromRun && /npm-cli\.js$/.test(fromRun)) return fromRun;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'npm');
    if (fs.existsSync(candidate)) return fs.realpathSync(candidate);
  }
  throw new Error('npm is not on PATH');
}

/**
 * Runs npm with `node`; the environment of an enclosing `npm run` (npm_* variables, among them the
 * repository as local prefix) is left out, so the inner npm works on `cwd` alone.
 */
function npm(node: string, args: string[], cwd: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  // install scripts (node-gyp, prebuild-install) run `node` from PATH: the one under test
  env.PATH = `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}`;
  return new Promise((resolve, reject) => {
    const child = spawn(node, [npmCli(), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`npm ${args.join(' ')} (in ${cwd}) exited with ${code}:\n${out}`))));
  });
}

/** GET with a JSON answer from Node-RED's admin API. */
function getJson(port: number, urlPath: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { accept: 'application/json', connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`GET ${urlPath}: ${res.statusCode} ${body}`));
        resolve(JSON.parse(body));
      });
    });
    req.on('error', reject);
  });
}

/** An HTTP API for ttl-fetch on 127.0.0.1 that counts the requests it answers. */
async function startUpstream(): Promise<{ port: number; requests: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, answer: count }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The endpoint flow of the process tests (counter, cache-set, cache-get, cooldown-gate) plus /fetch on ttl-fetch. */
function flows(upstreamPort: number): object[] {
  const z = 'endpoints';
  return endpointFlow({
    extra: [
      { id: 'fetchIn', type: 'http in', z, url: '/fetch', method: 'get', wires: [['fetch1']] },
      {
        id: 'fetch1',
        type: 'ttl-fetch',
        z,
        store: '',
        key: '',
        keyType: 'str',
        url: `http://127.0.0.1:${upstreamPort}/weather`,
        method: 'GET',
        headers: [],
        secretHeader: 'Authorization',
        ttl: 1,
        ttlUnits: 'hours',
        returnType: 'json',
        staleIfError: true,
        timeout: 10,
        wires: [['fetchReply']],
      },
      {
        id: 'fetchReply',
        type: 'change',
        z,
        rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '{"answer": payload.answer, "hit": cache.hit}', tot: 'jsonata' }],
        wires: [['reply']],
      },
    ],
  });
}

describe(`the npm tarball installed into a fresh userDir (${variant})`, { timeout: 15 * 60_000 }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-install-'));
  const userDir = path.join(work, 'userdir');
  const installed = path.join(userDir, 'node_modules', MODULE);
  const node = userdir.nodeRedNode();
  let tarball = '';
  let installLog = '';
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let nodeRed: NodeRed | undefined;
  let browser: Browser | undefined;
  /** Answers to the editor script every node's .html loads from resources/<module>/. */
  const editorScript: number[] = [];

  before(
    async () => {
      // the tarball of the build under test (--ignore-scripts: prepack's clean rebuild would pull dist/ from under the running tests)
      const packed = JSON.parse(await npm(process.execPath, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root));
      tarball = path.join(work, packed[0].filename);
      fs.mkdirSync(userDir);
      fs.writeFileSync(
        path.join(userDir, 'package.json'),
        JSON.stringify({ name: 'node-red-project', description: 'A Node-RED userDir', version: '0.0.1', private: true }, null, 2),
      );
      // what Node-RED's palette manager runs
      installLog = await npm(
        node,
        [
          'install',
          '--no-audit',
          '--no-update-notifier',
          '--no-fund',
          '--save',
          '--save-prefix=~',
          '--omit=dev',
          '--engine-strict',
          ...(ignoreScripts ? ['--ignore-scripts'] : []),
          tarball,
        ],
        userDir,
      );
      upstream = await startUpstream();
      fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows(upstream.port), null, 2));
    },
    { timeout: 10 * 60_000 },
  );

  after(async () => {
    await browser?.close();
    await nodeRed?.stop(); // removes the userDir
    await upstream?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('the userDir holds a copy of the tarball, not a link to the repository', () => {
    const dependency = JSON.parse(fs.readFileSync(path.join(userDir, 'package.json'), 'utf8')).dependencies?.[MODULE];
    assert.equal(dependency, `file:../${path.basename(tarball)}`, 'package.json names the tarball');
    assert.equal(fs.lstatSync(installed).isSymbolicLink(), false, 'a real directory');
    assert.ok(!fs.realpathSync(installed).startsWith(root), 'outside the repository');
    assert.equal(JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).version, pkg.version);
    for (const file of ['resources/flow-cache-editor.js', 'LICENSE', 'dist/nodes/cache-get.html', 'examples/cooldown-gate/water-leak-notification.json']) {
      assert.ok(fs.existsSync(path.join(installed, file)), `${file} installed`);
    }
    for (const dir of ['test', 'bench', 'dist/test', 'dist/bench']) assert.ok(!fs.existsSync(path.join(installed, dir)), `no ${dir}/`);
    // Nothing below the userDir may come from the repository's own node_modules.
    assert.equal(fs.existsSync(path.join(userDir, 'node_modules', 'node-red')), false, 'Node-RED itself is not a dependency of the package');
    if (ignoreScripts) {
      const binding = path.join(userDir, 'node_modules', 'sqlite3', 'build', 'Release', 'node_sqlite3.node');
      assert.equal(fs.existsSync(binding), false, 'with --ignore-scripts no native sqlite3 driver was built');
    }
    assert.doesNotMatch(installLog, /npm (error|ERR!)/);
  });

  test('Node-RED starts on the userDir and registers the six node types from the installed copy', { timeout: 120_000 }, async () => {
    nodeRed = await startNodeRed({ userDir });
    const deadline = Date.now() + 60_000;
    while ((await get(nodeRed.port, '/ready').catch(() => ({ status: 0 }))).status !== 200) {
      assert.ok(Date.now() < deadline, `the flows never answered /ready:\n${nodeRed.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const log = nodeRed.log();
    assert.match(log, new RegExp(`Node-RED version: v${userdir.nodeRedPackage(line).version.replace(/\./g, '\\.')}`));
    assert.match(log, new RegExp(`Node.js {2}version: v${userdir.nodeVersion(node).replace(/\./g, '\\.')}`));
    assert.doesNotMatch(log, /\[error\]/, 'no error in the log');
    assert.doesNotMatch(log, /Failed to register|Missing node modules|Waiting for missing types/);
    const sets = ((await getJson(nodeRed.port, '/nodes')) as any[]).filter((set) => set.module === MODULE);
    assert.deepEqual(sets.flatMap((set) => set.types).sort(), ['cache-get', 'cache-set', 'cache-store', 'cooldown-gate', 'counter', 'ttl-fetch']);
    for (const set of sets) {
      assert.equal(set.err, undefined, `${set.id} loaded without error`);
      assert.equal(set.enabled, true, `${set.id} enabled`);
      assert.equal(set.version, pkg.version);
    }
  });

  test('every node works from the installed copy: counter, cache-set, cache-get, cooldown-gate, ttl-fetch', async () => {
    assert.ok(nodeRed, 'Node-RED runs');
    const port = nodeRed.port;
    const call = async (urlPath: string) => {
      const reply = await get(port, urlPath);
      return `${reply.status} ${reply.body}`;
    };
    assert.equal(await call('/count?k=door'), '200 1');
    assert.equal(await call('/count?k=door'), '200 2');
    assert.equal(await call('/get?k=last'), '404 missing');
    assert.equal(await call('/set?k=last&v=kitchen'), '200 {"k":"last","v":"kitchen"}');
    assert.equal(await call('/get?k=last'), '200 kitchen');
    assert.equal(await call('/gate?k=leak'), '200 passed');
    assert.equal(await call('/gate?k=leak'), '200 suppressed');
    assert.equal(await call('/fetch'), '200 {"answer":1,"hit":false}');
    assert.equal(await call('/fetch'), '200 {"answer":1,"hit":true}');
    assert.equal(upstream.requests(), 1, 'the second fetch came from the store');
    const database = path.join(userDir, 'flow-cache', 'cache.sqlite');
    assert.ok(fs.statSync(database).size > 0, 'the default store is <userDir>/flow-cache/cache.sqlite');
  });

  test('the editor finishes loading: the editor script is served and the palette shows the five flow nodes', { timeout: 120_000 }, async () => {
    assert.ok(nodeRed, 'Node-RED runs');
    browser = await openBrowser();
    const { page } = browser;
    page.on('response', (response) => {
      if (response.url().endsWith(`/resources/${MODULE}/flow-cache-editor.js`)) editorScript.push(response.status());
    });
    await openEditor(page, nodeRed);
    assert.equal(await page.locator('#red-ui-loading-progress').isVisible(), false, 'the loading screen is gone');
    assert.deepEqual(
      editorScript.length > 0 && editorScript.every((status) => status === 200 || status === 304),
      true,
      `editor script answers: ${editorScript}`,
    );
    const category = page.locator('#red-ui-palette-container-flow_cache');
    for (const type of FLOW_TYPES) assert.equal(await category.locator(`[data-palette-type="${type}"]`).isVisible(), true, `${type} in the palette`);
    const registered = await page.evaluate(() =>
      ['cache-store', 'cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'].filter((t) => (globalThis as any).RED.nodes.getType(t)),
    );
    assert.equal(registered.length, 6, `the editor knows ${registered}`);
    await screenshot(page, `install-${line}-${ignoreScripts ? 'ignore-scripts' : 'normal'}-editor`);
  });

  test('every node dialog opens and saves, the cache-store one from a node dialog', { timeout: 120_000 }, async () => {
    assert.ok(browser, 'the editor is open');
    const { page } = browser;
    // a fresh flow tab, so that no node is dropped onto another's wire; each node dragged from the palette as a user does
    await page.evaluate(() => (globalThis as any).RED.workspaces.add());
    const chart = page.locator('#red-ui-workspace-chart');
    const ids: Record<string, string> = {};
    for (const [i, type] of FLOW_TYPES.entries()) {
      await page.locator(`[data-palette-type="${type}"]`).dragTo(chart, { targetPosition: { x: 260, y: 80 + i * 70 } });
      const added = await page.evaluate(
        (t: string) => (globalThis as any).RED.nodes.filterNodes({ type: t, z: (globalThis as any).RED.workspaces.active() }).map((n: any) => n.id),
        type,
      );
      assert.equal(added.length, 1, `${type} dropped on the canvas`);
      ids[type] = added[0];
    }
    for (const type of FLOW_TYPES) {
      const tray = await openDialog(page, ids[type]);
      assert.equal(await tray.locator('#node-input-name').count(), 1, `${type} dialog has its form`);
      await tray.locator('#node-input-name').fill(`installed ${type}`);
      if (type === 'cache-get') {
        await page.locator('#node-input-btn-store-add').click();
        const config = await trayOpen(page, '#node-config-dialog-ok');
        await config.locator('#node-config-input-name').fill('installed store');
        await page.locator('#node-config-dialog-ok').click();
        await trayOpen(page, '#node-dialog-ok');
        await page.waitForFunction(() => (globalThis as any).document.querySelector('#node-input-store option:checked')?.textContent === 'installed store');
      }
      await page.locator('#node-dialog-ok').click();
      await trayClosed(page);
      const saved = await editorNode(page, ids[type]);
      assert.equal(saved.name, `installed ${type}`, `${type} saved`);
      assert.equal(saved.valid, true, `${type} valid (${JSON.stringify(saved.validationErrors)})`);
    }
    const stores = await page.evaluate(() => {
      const found: any[] = [];
      (globalThis as any).RED.nodes.eachConfig((n: any) => {
        if (n.type === 'cache-store') found.push({ id: n.id, name: n.name, valid: n.valid });
      });
      return found;
    });
    assert.deepEqual(
      stores.map((s) => ({ name: s.name, valid: s.valid })),
      [{ name: 'installed store', valid: true }],
    );
    assert.equal((await editorNode(page, ids['cache-get'])).store, stores[0].id, 'cache-get uses the new store');
    await closeTrays(page);
  });

  test('an example from the installed package is imported, deployed and run, with its statuses on the canvas', { timeout: 120_000 }, async () => {
    assert.ok(browser && nodeRed, 'the editor is open');
    const { page } = browser;
    const example = JSON.parse(fs.readFileSync(path.join(installed, 'examples', 'cooldown-gate', 'water-leak-notification.json'), 'utf8')) as any[];
    const named = (name: string) => {
      const found = example.find((n) => n.name === name);
      assert.ok(found, `the example has a node named "${name}"`);
      return found;
    };
    const gate = example.find((n) => n.type === 'cooldown-gate');
    const tab = example.find((n) => n.type === 'tab');
    await importExample(page, MODULE, 'cooldown-gate', 'water-leak-notification');
    await page.locator(`#red-ui-tab-${tab.id} a`).click();
    await page.locator(`g[id="${gate.id}"]`).waitFor();
    await deployFlows(page);

    assert.equal(await nodeRed.inject(named('kitchen leak: on').id), 200);
    await waitForStatus(page, gate.id, /^passed binary_sensor\.kitchen_leak \(1 passed \/ 0 suppressed\)$/);
    assert.equal(await nodeRed.inject(named('kitchen leak: on again').id), 200);
    await waitForStatus(page, gate.id, /^binary_sensor\.kitchen_leak: .+ left \(1 passed \/ 1 suppressed\)$/);
    assert.equal(await nodeRed.inject(named('bathroom leak: on').id), 200);
    await waitForStatus(page, gate.id, /^passed binary_sensor\.bath_leak \(2 passed \/ 1 suppressed\)$/);
    assert.equal(await nodeRed.inject(named('leak fixed: reset kitchen').id), 200);
    await waitForStatus(page, gate.id, /^reset binary_sensor\.kitchen_leak \(2 passed \/ 1 suppressed\)$/);
    await screenshot(page, `install-${line}-${ignoreScripts ? 'ignore-scripts' : 'normal'}-example`);
    assert.doesNotMatch(nodeRed.log(), /\[error\]/, 'no error in the log');
  });

  test('no request failed, no console error, nothing thrown in the page, nothing asked of the outside world', () => {
    assert.ok(browser, 'the editor was open');
    assert.deepEqual(browser.failedRequests, []);
    assert.deepEqual(browser.consoleErrors, []);
    assert.deepEqual(browser.pageErrors, []);
    assert.deepEqual(browser.outsideRequests, []);
  });
});
