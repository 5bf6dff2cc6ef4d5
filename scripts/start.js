// `npm start`: Node-RED on 127.0.0.1:1880 (PORT overrides) with this package, in the git-ignored .userdir/.
// NODE_RED_LINE=5 starts Node-RED 5 (NODE_RED_NODE names its node binary when this one is too old), see userdir.js.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { prepareUserDir, nodeRedCli, nodeRedNode, root } = require('./userdir');

const dir = path.join(root, '.userdir');
const port = Number(process.env.PORT) || 1880;
const settings = prepareUserDir(dir, { port });
console.log(`Node-RED with node-red-contrib-flow-cache: http://127.0.0.1:${port}/ (userDir ${dir})`);
const child = spawn(nodeRedNode(), [nodeRedCli(), '--userDir', dir, '--settings', settings], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
