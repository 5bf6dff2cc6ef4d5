// node-red-contrib-flow-cache/context: the Node-RED context store module (see docs/context-store.md).
module.exports = require('./dist/nodes/context/index.js');
