// A process that uses the context store and then ends abruptly, for the durability tests:
//   node child.js <userDir> kill-after-sync <count> <delayMs>   count synchronous sets, SIGKILL itself delayMs after the last
//   node child.js <userDir> kill-in-callback <count>            count sets with callbacks, SIGKILL itself in the last callback
//   node child.js <userDir> kill-at-once <count>                count synchronous sets, SIGKILL itself right after the last one returned
//   node child.js <userDir> exit-with-pending <count>           flushInterval of an hour, count sets, then process.exit()
import { contextStore, Recorded } from './fixtures';

async function main(): Promise<void> {
  const [userDir, mode, countText, delayText] = process.argv.slice(2);
  const count = Number(countText);
  const logger = new Recorded();
  const context = contextStore(userDir, mode === 'exit-with-pending' ? { flushInterval: 3600 } : {}, logger);
  await context.open();
  if (mode === 'kill-after-sync') {
    for (let i = 1; i <= count; i++) {
      context.set('flow1', 'n', i);
      context.set('flow1', `k${i}`, { i });
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve)); // arrive in several group commits, as messages do
    }
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), Number(delayText));
  } else if (mode === 'kill-at-once') {
    // the store's start-up line first, so the test knows which promise it is holding the store to
    process.stdout.write(`${logger.infos.join('\n')}\n`);
    for (let i = 1; i <= count; i++) {
      context.set('flow1', 'n', i);
      context.set('flow1', `k${i}`, { i });
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve)); // as messages arrive
    }
    process.kill(process.pid, 'SIGKILL');
  } else if (mode === 'kill-in-callback') {
    for (let i = 1; i <= count; i++) {
      context.set('flow1', `k${i}`, i, (error) => {
        if (error) throw error;
        if (i === count) process.kill(process.pid, 'SIGKILL');
      });
    }
  } else if (mode === 'exit-with-pending') {
    for (let i = 1; i <= count; i++) context.set('flow1', `k${i}`, i);
    process.on('exit', () => {
      // what the store said while the process exited (after the store's own exit handlers)
      process.stdout.write(JSON.stringify({ errors: logger.errors, pending: context.pendingWrites }));
    });
    process.exit(0);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
