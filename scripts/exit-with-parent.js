// Preloaded (node --require) into the Node-RED that scripts/start.js runs. start.js gives it an IPC
// channel; the channel closes when start.js is gone however it ended (even SIGKILL), and Node-RED then
// stops as on SIGTERM: its flows close and deferred stores write what they hold. Without an IPC
// channel (Node-RED started some other way) this does nothing.
if (typeof process.send === 'function') {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
