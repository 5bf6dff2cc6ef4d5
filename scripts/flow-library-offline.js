// Preloaded (node -r) into the Flow Library validator (node-red-dev validate) by
// scripts/flow-library-validate.sh, so that it runs without reaching flows.nodered.org:
//   - catalogue.nodered.org/catalogue.json (P08 similar names, N01 node types used by other packages)
//     is answered with an empty catalogue, and the report says so: those two checks are not made here;
//   - registry.npmjs.org/node-red (P06 Node-RED versions, P07 Node.js engines) is answered from
//     `npm view node-red --json`, which the script saved in FLOW_LIBRARY_NODE_RED (npm's own client,
//     its registry and proxy settings).
// Any other URL the validator asks for through axios fails with an error naming it.
const fs = require('node:fs');
const Module = require('node:module');

const saved = process.env.FLOW_LIBRARY_NODE_RED;
if (!saved) throw new Error('FLOW_LIBRARY_NODE_RED: the file with `npm view node-red --json` is not named');
const nodeRed = JSON.parse(fs.readFileSync(saved, 'utf8'));

/** The registry document of node-red as the validator reads it: dist-tags, and the engines of the latest version. */
function nodeRedDocument() {
  const latest = nodeRed['dist-tags'].latest;
  return { 'dist-tags': nodeRed['dist-tags'], versions: { [latest]: { version: latest, engines: nodeRed.engines } } };
}

const told = new Set();
function tell(text) {
  if (told.has(text)) return;
  told.add(text);
  process.stderr.write(`[offline] ${text}\n`);
}

async function answer(url) {
  const { hostname, pathname } = new URL(url);
  if (hostname === 'catalogue.nodered.org') {
    tell('catalogue.nodered.org not asked: P08 (similar names) and N01 (node types of other packages) checked against an empty catalogue');
    return { status: 200, data: { modules: [] } };
  }
  if (hostname === 'registry.npmjs.org' && pathname === '/node-red') {
    tell(`registry.npmjs.org/node-red answered by npm view: latest ${nodeRed['dist-tags'].latest}, engines ${JSON.stringify(nodeRed.engines)}`);
    return { status: 200, data: nodeRedDocument() };
  }
  throw new Error(`offline: the validator asked for ${url}, which this run does not answer`);
}

const offlineAxios = Object.assign((config) => answer(typeof config === 'string' ? config : config.url), { get: (url) => answer(url) });
offlineAxios.default = offlineAxios;

const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'axios') return offlineAxios;
  return load.call(this, request, ...rest);
};
