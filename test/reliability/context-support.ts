// Node-RED processes whose context store is this package's, installed from the npm tarball: settings.js
// names it as a user does (`require('node-red-contrib-flow-cache/context')`, resolved from the userDir).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../support/harness';
import { get, NodeRedProcess, type Reply } from '../support/node-red-process';

const root = path.join(__dirname, '..', '..', '..');

interface ContextStorage {
  [name: string]: { module: string; config?: object };
}

const userdir = require(path.join(root, 'scripts', 'userdir.js')) as {
  writeSettings(dir: string, options: { port: number; host: string; contextStorage?: ContextStorage }): string;
};

/** The context store setting of this package's module. */
export function flowCacheContext(config: object = {}): ContextStorage {
  return { default: { module: 'node-red-contrib-flow-cache/context', config } };
}

/** Node-RED's own file store, as settings.js enables it (its defaults: in-memory cache, written every 30 s). */
export function localFileSystemContext(config: object = {}): ContextStorage {
  return { default: { module: 'localfilesystem', config } };
}

let unpacked: string | undefined;

/** `npm pack` of the built package (once per process), unpacked: what a user's install holds. */
function packedPackage(): string {
  if (unpacked) return unpacked;
  const dir = tempDir('flow-cache-pack-');
  // --ignore-scripts: pack what `npm run build` made, without prepack's clean rebuild under the running tests
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  const tarball = path.join(dir, (JSON.parse(out) as { filename: string }[])[0].filename);
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  unpacked = path.join(dir, 'package');
  return unpacked;
}

/**
 * Installs the tarball's files into <userDir>/node_modules/node-red-contrib-flow-cache (a copy, no link to
 * the repository) with the packages it loads beside it, as npm would hoist them (linked from this
 * repository's node_modules, so no download or native build is needed).
 */
export function installFromTarball(userDir: string): void {
  const modules = path.join(userDir, 'node_modules');
  const packed = packedPackage();
  fs.mkdirSync(modules, { recursive: true });
  fs.cpSync(packed, path.join(modules, 'node-red-contrib-flow-cache'), { recursive: true });
  // what the packed package.json asks npm for (sqlite3 comes with @keyv/sqlite where it could be built)
  const manifest = JSON.parse(fs.readFileSync(path.join(packed, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  const wanted = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), 'sqlite3'];
  for (const dependency of wanted) {
    const from = path.join(root, 'node_modules', dependency);
    if (!fs.existsSync(from)) continue;
    fs.mkdirSync(path.dirname(path.join(modules, dependency)), { recursive: true });
    fs.symlinkSync(from, path.join(modules, dependency), 'dir');
  }
}

/**
 * A Node-RED process on a fresh userDir with the package installed from the tarball, `flows`, and
 * `contextStorage` in settings.js. Not started.
 */
export async function contextNodeRed(prefix: string, flows: object[], contextStorage: ContextStorage): Promise<NodeRedProcess> {
  const userDir = tempDir(prefix);
  installFromTarball(userDir);
  const proc = await NodeRedProcess.prepare(userDir, flows); // keeps the installed copy (links the repository only where none is)
  userdir.writeSettings(userDir, { port: proc.port, host: '127.0.0.1', contextStorage });
  return proc;
}

/** Rewrites settings.js of a prepared process with another context store (a user switching stores). */
export function switchContextStore(proc: NodeRedProcess, contextStorage: ContextStorage): void {
  userdir.writeSettings(proc.userDir, { port: proc.port, host: '127.0.0.1', contextStorage });
}

const TAB = 'ctx';

function fn(id: string, func: string, next: string): object {
  return { id, type: 'function', z: TAB, func, outputs: 1, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], wires: [[next]] };
}

/**
 * The flow of the proofs: every GET answers once its Function node is done.
 *   /inc        flow.set('n', (flow.get('n')||0)+1), synchronous; answers the new count
 *   /inc-ack    the same on 'm' with a callback: answers "<count> <ms from set to callback>" from the callback
 *   /read?k=    flow.get(k) (0 when unset)
 *   /remember?v= node context 'last' = v, global 'g' = {v, at: new Date(0)}
 * Errors reach a Catch node and answer 500 with the message.
 */
export function contextFlow(extra: object[] = []): object[] {
  return [
    { id: TAB, type: 'tab', label: 'Context' },
    ...extra,
    { id: 'readyIn', type: 'http in', z: TAB, url: '/ready', method: 'get', wires: [['reply']] },
    { id: 'incIn', type: 'http in', z: TAB, url: '/inc', method: 'get', wires: [['incSync']] },
    fn('incSync', "const n = (flow.get('n') || 0) + 1;\nflow.set('n', n);\nmsg.payload = String(n);\nreturn msg;", 'reply'),
    { id: 'incAckIn', type: 'http in', z: TAB, url: '/inc-ack', method: 'get', wires: [['incAck']] },
    fn(
      'incAck',
      "const n = (flow.get('m') || 0) + 1;\nconst t = Date.now();\nflow.set('m', n, (err) => {\n  if (err) { node.error(err, msg); return; }\n  msg.payload = n + ' ' + (Date.now() - t);\n  node.send(msg);\n});\nreturn null;",
      'reply',
    ),
    { id: 'readIn', type: 'http in', z: TAB, url: '/read', method: 'get', wires: [['read']] },
    fn('read', 'const v = flow.get(msg.req.query.k);\nmsg.payload = JSON.stringify(v === undefined ? 0 : v);\nreturn msg;', 'reply'),
    { id: 'rememberIn', type: 'http in', z: TAB, url: '/remember', method: 'get', wires: [['remember']] },
    fn(
      'remember',
      "context.set('last', msg.req.query.v);\nglobal.set('g', { v: msg.req.query.v, at: new Date(0) });\nmsg.payload = 'ok';\nreturn msg;",
      'reply',
    ),
    { id: 'catchAll', type: 'catch', z: TAB, scope: null, uncaught: false, wires: [['failed']] },
    {
      id: 'failed',
      type: 'change',
      z: TAB,
      rules: [
        { t: 'set', p: 'statusCode', pt: 'msg', to: '500', tot: 'num' },
        { t: 'set', p: 'payload', pt: 'msg', to: 'error.message', tot: 'msg' },
      ],
      wires: [['reply']],
    },
    { id: 'reply', type: 'http response', z: TAB, statusCode: '', headers: {}, wires: [] },
  ];
}

export const CONTEXT_TAB = TAB;

/** GET that must answer 200; returns the body. */
export async function ok(proc: NodeRedProcess, urlPath: string): Promise<string> {
  const reply: Reply = await get(proc.port, urlPath);
  if (reply.status !== 200) throw new Error(`GET ${urlPath}: ${reply.status} ${reply.body}`);
  return reply.body;
}
