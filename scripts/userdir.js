// Prepares a Node-RED userDir that has this package installed (as a symlink), for `npm start` and the browser tests.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/**
 * Writes settings.js and links the package into <dir>/node_modules.
 * @param {string} dir the userDir
 * @param {{port?: number, host?: string}} [options]
 */
function prepareUserDir(dir, options = {}) {
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const link = path.join(dir, 'node_modules', 'node-red-contrib-flow-cache');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  const pkg = path.join(dir, 'package.json');
  if (!fs.existsSync(pkg)) {
    fs.writeFileSync(pkg, JSON.stringify({ name: 'node-red-project', private: true, dependencies: { 'node-red-contrib-flow-cache': `file:${root}` } }, null, 2));
  }
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
  fs.writeFileSync(path.join(dir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  return path.join(dir, 'settings.js');
}

/** The red.js of the Node-RED 4.1 install (its CLI runs on Node 20). */
function nodeRedCli() {
  return require.resolve('node-red/red.js', { paths: [root] });
}

module.exports = { prepareUserDir, nodeRedCli, root };
