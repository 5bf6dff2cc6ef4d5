// node-red-contrib-flow-cache/context: the Node-RED context store module (see README, "Context store").
module.exports = require('./dist/nodes/context/index.js');
