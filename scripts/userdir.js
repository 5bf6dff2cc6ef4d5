// Prepares Node-RED userDirs and picks the Node-RED runtime for `npm start` and the tests that start Node-RED processes.
//   NODE_RED_LINE=4 (default: Node-RED 4.1, the `node-red` dev dependency) or 5 (the `node-red5` alias)
//   NODE_RED_NODE=<node binary> runs Node-RED on another Node.js than the one running the caller
//                 (e.g. NODE_RED_NODE="$(npx -y node@24 -p process.execPath)")
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/**
 * Node-RED's `contextStorage` setting as settings.js source: a store's `module` that is not a built-in
 * store's name ('memory', 'localfilesystem') becomes require(<module>), resolved from the userDir.
 * @param {Record<string, {module: string, config?: object}>} stores
 */
function contextStorageSource(stores) {
  const entries = Object.entries(stores).map(([name, store]) => {
    const builtIn = store.module === 'memory' || store.module === 'localfilesystem';
    const module = builtIn ? JSON.stringify(store.module) : `require(${JSON.stringify(store.module)})`;
    return `  ${JSON.stringify(name)}: { module: ${module}, config: ${JSON.stringify(store.config ?? {})} }`;
  });
  return `{\n${entries.join(',\n')}\n}`;
}

/**
 * Writes <dir>/settings.js (editor on `host`:`port`, no tours, no catalogue or telemetry requests).
 * @param {string} dir the userDir
 * @param {{port?: number, host?: string, contextStorage?: Record<string, {module: string, config?: object}>}} [options]
 *   contextStorage: Node-RED's setting of that name (none: Node-RED's default, the memory store)
 * @returns {string} the settings file
 */
function writeSettings(dir, options = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const settings = {
    uiHost: options.host || '127.0.0.1',
    uiPort: options.port || 1880,
    flowFile: 'flows.json',
    credentialSecret: 'flow-cache-local-development',
    editorTheme: { tours: false, palette: { catalogues: [] }, projects: { enabled: false } },
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
    logging: { console: { level: 'info' } },
  };
  const file = path.join(dir, 'settings.js');
  let source = `module.exports = ${JSON.stringify(settings, null, 2)};\n`;
  if (options.contextStorage) source += `module.exports.contextStorage = ${contextStorageSource(options.contextStorage)};\n`;
  fs.writeFileSync(file, source);
  return file;
}

/**
 * Writes settings.js and links the package into <dir>/node_modules.
 * @param {string} dir the userDir
 * @param {{port?: number, host?: string, contextStorage?: Record<string, {module: string, config?: object}>}} [options]
 */
function prepareUserDir(dir, options = {}) {
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const link = path.join(dir, 'node_modules', 'node-red-contrib-flow-cache');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  const pkg = path.join(dir, 'package.json');
  if (!fs.existsSync(pkg)) {
    fs.writeFileSync(
      pkg,
      JSON.stringify({ name: 'node-red-project', private: true, dependencies: { 'node-red-contrib-flow-cache': `file:${root}` } }, null, 2),
    );
  }
  return writeSettings(dir, options);
}

/** The Node-RED line to run: '4' (default) or '5', from NODE_RED_LINE. */
function nodeRedLine() {
  return process.env.NODE_RED_LINE === '5' ? '5' : '4';
}

/** The red.js (Node-RED's own CLI) of a Node-RED line's install in this repository. */
function nodeRedCli(line = nodeRedLine()) {
  return require.resolve(line === '5' ? 'node-red5/red.js' : 'node-red/red.js', { paths: [root] });
}

/** A Node-RED line's version and the Node.js versions its package.json accepts. */
function nodeRedPackage(line = nodeRedLine()) {
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(nodeRedCli(line)), 'package.json'), 'utf8'));
  return { version: pkg.version, engines: pkg.engines?.node || '' };
}

/**
 * Whether a Node.js version satisfies an engines range of the simple forms Node-RED uses (">=22.9");
 * a range of another form counts as satisfied.
 */
function satisfies(version, range) {
  const min = /^>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
  if (!min) return true;
  const have = version.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const want = Number(min[i + 1] || 0);
    if (have[i] !== want) return have[i] > want;
  }
  return true;
}

/** The version of a node binary ("24.1.0"). */
function nodeVersion(node) {
  if (node === process.execPath) return process.versions.node;
  return execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
}

/**
 * The node binary that runs Node-RED: NODE_RED_NODE, else the one running this process. Refuses one
 * the Node-RED line does not support (Node-RED 5 needs Node.js >= 22.9), with what to do instead.
 */
function nodeRedNode(line = nodeRedLine()) {
  const node = process.env.NODE_RED_NODE || process.execPath;
  const version = nodeVersion(node);
  const { version: red, engines } = nodeRedPackage(line);
  if (!satisfies(version, engines)) {
    throw new Error(
      `Node-RED ${red} needs Node.js ${engines}, but ${node} is ${version}: set NODE_RED_NODE to a node binary that fits, ` +
        'e.g. NODE_RED_NODE="$(npx -y node@24 -p process.execPath)"',
    );
  }
  return node;
}

module.exports = { prepareUserDir, writeSettings, nodeRedLine, nodeRedCli, nodeRedPackage, nodeRedNode, nodeVersion, satisfies, root };
