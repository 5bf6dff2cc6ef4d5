// When context changes reach the disk: a set with a callback is called back once committed; a synchronous
// set is committed with the next group commit (SIGKILL the bound after it loses nothing); with
// flushInterval, every that many seconds, on close, and at exit; a failing disk is retried.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { FlowCacheContext } from '../../nodes/context/context-store';
import { availableDrivers } from '../../nodes/lib/driver';
import type { Store } from '../../nodes/lib/store';
import { contextStore, defaultFile, freshDir, onDisk, onDiskContext, Recorded, SYNC_COMMIT_BOUND_MS, setAsync } from './fixtures';

function child(userDir: string, ...args: (string | number)[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [path.join(__dirname, 'child.js'), userDir, ...args.map(String)], { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, signal: run.signal, stdout: run.stdout, stderr: run.stderr };
}

const fillDisk = (file: string) =>
  onDisk(file, (db) => db.run(`CREATE TRIGGER full_disk BEFORE INSERT ON keyv BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`));
const freeDisk = (file: string) => onDisk(file, (db) => db.run('DROP TRIGGER full_disk'));

describe('context durability', () => {
  let userDir: string;
  let file: string;
  let context: FlowCacheContext;
  let logger: Recorded;

  beforeEach(() => {
    userDir = freshDir();
    file = defaultFile(userDir);
    logger = new Recorded();
  });
  afterEach(async () => {
    mock.timers.reset();
    await context?.close();
  });

  describe('every change committed (the default)', () => {
    beforeEach(async () => {
      context = contextStore(userDir, {}, logger);
      await context.open();
    });

    it('calls a set’s callback only once the value is committed: a disk that refuses the write reaches the callback', async () => {
      await setAsync(context, 'flow1', 'n', 1);
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { n: 1 } }, 'on disk when the callback came');
      await fillDisk(file);
      await assert.rejects(
        setAsync(context, 'flow1', 'm', 2),
        (error: Error & { code?: string }) => error.code === 'STORE_IO' && /disk is full/.test(error.message),
      );
      await freeDisk(file);
    });

    it('has a synchronous set on disk with the next group commit', async () => {
      context.set('flow1', 'n', 1);
      const burst = Array.from({ length: 1000 }, (_, i) => `k${i}`);
      for (const key of burst) context.set('flow1', key, key);
      await context.committed();
      const disk = await onDiskContext(file);
      assert.equal(disk.flow1.n, 1);
      assert.equal(Object.keys(disk.flow1).length, 1001);
    });

    it('writes the changes made while a commit is under way together, right after it, each key once with its latest value', async () => {
      const store = (context as unknown as { store: Store }).store;
      const original = store.set.bind(store);
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const calls: [string, string, unknown][] = [];
      // the group commit: sqlite3's way, and node:sqlite's for a key whose earlier write is still under way
      store.commitNow = () => false;
      store.set = ((namespace: string, key: string, value: unknown, ttl?: number, options?: object) => {
        calls.push([namespace, key, value]);
        return held.then(() => original(namespace, key, value, ttl, options));
      }) as typeof store.set;
      context.set('flow1', 'n', 1);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(calls.length, 1, 'the first change went to the store at once');
      const acknowledged = setAsync(context, 'flow1', 'acked', true);
      for (let i = 2; i <= 100; i++) {
        context.set('flow1', 'n', i);
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(calls.length, 1, 'nothing else while that commit is under way');
      release();
      await acknowledged;
      assert.deepStrictEqual(
        calls
          .slice(1)
          .map(([, key, value]) => [key, value])
          .sort(),
        [
          ['acked', true],
          ['n', 100],
        ],
      );
      store.set = original;
      delete (store as { commitNow?: unknown }).commitNow;
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { acked: true, n: 100 } });
    });

    it('keeps a value it could not write in memory, says why, and writes it once the disk takes it again', async () => {
      mock.timers.enable({ apis: ['setTimeout'] });
      context.set('flow1', 'n', 1);
      await context.committed();
      await fillDisk(file);
      context.set('flow1', 'n', 2);
      await context.committed();
      assert.equal(context.get('flow1', 'n'), 2, 'flows go on reading the value');
      assert.equal(context.pendingWrites, 1);
      assert.match(logger.errors.join('\n'), /context writes to .* fail \(.*disk is full.*\); 1 changed keys kept in memory and retried/);
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { n: 1 } });
      mock.timers.tick(1000); // the first retry fails too
      await context.committed();
      assert.equal(context.pendingWrites, 1);
      await freeDisk(file);
      mock.timers.tick(2000); // the next retry, 2 s later, succeeds
      await context.committed();
      assert.equal(context.pendingWrites, 0);
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { n: 2 } });
      assert.match(logger.warnings.join('\n'), /succeed again/);
    });

    it('calls a callback that throws without letting the error loose; the error is logged', async () => {
      await new Promise<void>((resolve) =>
        context.set('flow1', 'n', 1, () => {
          setImmediate(resolve);
          throw new Error('a bug in the flow');
        }),
      );
      assert.match(logger.errors.join('\n'), /a context set callback threw: Error: a bug in the flow/);
    });
  });

  describe('a process that dies', () => {
    it(`loses no synchronous set when SIGKILLed ${SYNC_COMMIT_BOUND_MS} ms after the last one`, () => {
      const run = child(userDir, 'kill-after-sync', 500, SYNC_COMMIT_BOUND_MS);
      assert.equal(run.signal, 'SIGKILL', run.stderr);
      return onDiskContext(file).then((disk) => {
        assert.equal(disk.flow1.n, 500);
        assert.equal(Object.keys(disk.flow1).length, 501);
      });
    });

    it('node:sqlite: loses no synchronous set when SIGKILLed right after the last one returned; sqlite3: says it commits within the bound', async () => {
      const run = child(userDir, 'kill-at-once', 500);
      assert.equal(run.signal, 'SIGKILL', run.stderr);
      const line = /loaded from .* \((node:sqlite|sqlite3); (.*)\)\s*$/m.exec(run.stdout);
      assert.ok(line, run.stdout);
      if (line[1] === 'node:sqlite') {
        assert.equal(line[2], 'each change committed before set() returns');
        const disk = await onDiskContext(file);
        assert.equal(disk.flow1.n, 500, 'the last set before the kill is on disk');
        assert.equal(Object.keys(disk.flow1).length, 501);
      } else {
        // sqlite3 is asynchronous: a set is committed with the next group commit (the test above holds it to the bound)
        assert.equal(line[2], 'each change committed within a group commit, about 250 ms at most; a set with a callback calls back once committed');
      }
    });

    it('has every write whose callback came on disk, when SIGKILLed inside the last callback', async () => {
      const run = child(userDir, 'kill-in-callback', 300);
      assert.equal(run.signal, 'SIGKILL', run.stderr);
      const disk = await onDiskContext(file);
      assert.equal(Object.keys(disk.flow1).length, 300);
    });

    const synchronousDriver = process.env.FLOW_CACHE_DRIVER !== 'sqlite3' && availableDrivers().includes('node:sqlite');
    it(
      synchronousDriver
        ? 'writes changes still held by flushInterval when the process exits (node:sqlite writes during exit)'
        : 'says in the log how many changes held by flushInterval are lost when the process exits (sqlite3 cannot write during exit)',
      async () => {
        const run = child(userDir, 'exit-with-pending', 20);
        assert.equal(run.status, 0, run.stderr);
        const said = JSON.parse(run.stdout) as { errors: string[] };
        const disk = await onDiskContext(file);
        if (synchronousDriver) {
          assert.equal(Object.keys(disk.flow1 ?? {}).length, 20);
          assert.deepStrictEqual(said.errors, []);
        } else {
          assert.deepStrictEqual(disk, {});
          assert.match(said.errors.join('\n'), /exited with 20 writes not yet committed; they are lost/);
        }
      },
    );
  });

  describe('flushInterval', () => {
    beforeEach(async () => {
      mock.timers.enable({ apis: ['setInterval'] });
      context = contextStore(userDir, { flushInterval: 30 }, logger);
      await context.open();
    });

    it('keeps changes in memory and writes them every flushInterval seconds, each key once', async () => {
      for (let i = 1; i <= 100; i++) context.set('flow1', 'n', i);
      await setAsync(context, 'flow1', 'acked', true);
      context.set('global', 'g', 'x');
      await context.committed();
      assert.deepStrictEqual(await onDiskContext(file), {}, 'nothing written before the interval (a callback does not wait for the disk)');
      assert.equal(context.get('flow1', 'n'), 100);
      assert.equal(context.pendingWrites, 3);
      mock.timers.tick(30_000);
      await context.committed();
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { acked: true, n: 100 }, global: { g: 'x' } });
      assert.equal(context.pendingWrites, 0);
      context.set('flow1', 'n', undefined);
      mock.timers.tick(30_000);
      await context.committed();
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { acked: true }, global: { g: 'x' } }, 'a deletion is written too');
    });

    it('writes what is pending on close', async () => {
      context.set('flow1', 'n', 7);
      await context.close();
      assert.deepStrictEqual(await onDiskContext(file), { flow1: { n: 7 } });
      context = contextStore(userDir, { flushInterval: 30 }, logger);
      await context.open();
      assert.equal(context.get('flow1', 'n'), 7);
    });

    it('refuses an unstorable value at once, as without flushInterval', () => {
      assert.throws(() => context.set('flow1', 'f', () => 1), /cannot store a function at f/);
      assert.equal(context.pendingWrites, 0);
    });
  });
});
