// Preloaded (node --require) into every Node-RED process bench/nodered.ts starts, with the package and
// without it alike. Asked 'usage' over the IPC channel, it answers with the process's CPU time (user +
// system, all threads), its RSS, its clock and the start times of the full garbage collections so far.
// When the channel closes (the benchmark is gone, however it ended) Node-RED stops as on SIGTERM.
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';

/** What the probe answers to 'usage'. */
export interface ProbeUsage {
  cpuMs: number;
  rssBytes: number;
  /** when it answered: ms since the epoch, on this process's clock */
  at: number;
  /** when each full (mark-compact) collection so far started, on the same clock */
  fullCollections: number[];
}

if (typeof process.send === 'function') {
  const fullCollections: number[] = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // `detail` is missing from the Node.js 20 type package, not from Node.js 20
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        fullCollections.push(performance.timeOrigin + entry.startTime);
      }
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('message', (message) => {
    if (message !== 'usage') return;
    const cpu = process.cpuUsage();
    const usage: ProbeUsage = {
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssBytes: process.memoryUsage.rss(),
      at: performance.timeOrigin + performance.now(),
      fullCollections,
    };
    process.send?.(usage);
  });
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
