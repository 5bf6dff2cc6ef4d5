import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheError, StoreIOError } from '../../nodes/lib/errors';
import { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { DURABILITIES, freshDir, onDisk, openStore, RecordingLogger, tempFile } from './fixtures';

const NS = 'errors';
const isClosed = (error: unknown) => error instanceof CacheError && error.code === 'STORE_CLOSED' && /is closed/.test(error.message);
const isIO = (error: unknown) => error instanceof StoreIOError && error.code === 'STORE_IO';

for (const durability of DURABILITIES) {
  describe(`errors reach the caller, never as a miss (${durability})`, () => {
    const clock = new ManualClock();
    let file: string;
    let store: Store;
    let logger: RecordingLogger;

    beforeEach(async () => {
      clock.install();
      file = tempFile();
      logger = new RecordingLogger();
      store = await openStore(file, { durability, logger });
    });
    afterEach(async () => {
      await store.close();
      clock.uninstall();
    });

    it('a closed store rejects every operation with a clear error', async () => {
      await store.set(NS, 'k', 1);
      await store.close();
      await assert.rejects(store.get(NS, 'k'), isClosed);
      await assert.rejects(store.get(NS, 'never-read'), isClosed);
      await assert.rejects(store.set(NS, 'k', 2), isClosed);
      await assert.rejects(
        store.update(NS, 'k', () => ({ value: 3 })),
        isClosed,
      );
      await assert.rejects(store.delete(NS, 'k'), isClosed);
      await assert.rejects(store.clear(NS), isClosed);
      await assert.rejects(store.keys(NS), (error: unknown) => error instanceof CacheError);
      await store.close(); // closing twice is harmless
    });

    it('a missing table (the file changed under the store) rejects what needs the file with StoreIOError', async () => {
      await store.set(NS, 'cached', 'in memory');
      await store.flush();
      await onDisk(file, (db) => db.run('DROP TABLE keyv'));
      await assert.rejects(store.get(NS, 'not-cached'), (error: unknown) => isIO(error) && (error as Error).message.includes(file));
      await assert.rejects(
        store.update(NS, 'counter', () => ({ value: 1 })),
        isIO,
      );
      await assert.rejects(store.clear(NS), isIO);
      await assert.rejects(store.keys(NS), isIO);
      if (durability === 'immediate') {
        await assert.rejects(store.set(NS, 'new', 1), (error: unknown) => isIO(error) && /no such table/.test((error as Error).message));
        await assert.rejects(store.delete(NS, 'other'), isIO);
        await assert.rejects(store.get(NS, 'new'), isIO, 'a write that failed is not served from memory');
      } else {
        await store.set(NS, 'new', 1); // accepted: deferred writes reach the file at the next flush
        await assert.rejects(store.flush(), (error: unknown) => isIO(error) && /no such table/.test((error as Error).message));
        assert.match(logger.errors.join('\n'), /no such table/, 'the failed flush is logged');
        assert.equal((await store.get(NS, 'new'))?.value, 1, 'an acknowledged write is kept in memory, not dropped');
      }
    });

    it('a failed write leaves the previous value in place on disk', async () => {
      await store.set(NS, 'k', 'committed');
      await store.flush();
      await onDisk(file, (db) => db.run(`CREATE TRIGGER refuse BEFORE UPDATE ON keyv BEGIN SELECT RAISE(ABORT, 'refused'); END`));
      const refused = (error: unknown) => isIO(error) && /refused/.test((error as Error).message);
      if (durability === 'immediate') {
        await assert.rejects(store.set(NS, 'k', 'lost'), refused);
        assert.equal((await store.get(NS, 'k'))?.value, 'committed');
        await assert.rejects(
          store.update(NS, 'k', () => ({ value: 'lost too' })),
          isIO,
        );
        assert.equal((await store.get(NS, 'k'))?.value, 'committed');
      } else {
        await store.set(NS, 'k', 'pending');
        await assert.rejects(store.flush(), refused);
      }
      const rows = await onDisk(file, (db) => db.all<{ value: string }>('SELECT value FROM keyv'));
      assert.deepStrictEqual(
        rows.map((r) => JSON.parse(r.value).v),
        ['committed'],
      );
    });

    if (durability === 'deferred') {
      it('writes lost at close are logged', async () => {
        await store.set(NS, 'k', 1);
        await onDisk(file, (db) => db.run('DROP TABLE keyv'));
        await store.close();
        assert.ok(
          logger.errors.some((message) => /writes lost at close/.test(message)),
          logger.errors.join('\n'),
        );
      });
    }
  });
}

describe('errors at open', () => {
  it('a path whose parent is a file fails to open with StoreIOError naming the path', async () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'not-a-dir'), 'x');
    const file = path.join(dir, 'not-a-dir', 'cache.sqlite');
    await assert.rejects(Store.open(file), (error: unknown) => isIO(error) && (error as Error).message.includes(file));
  });

  it('a path that is a directory fails to open with a clear error', async () => {
    const dir = freshDir();
    await assert.rejects(
      Store.open(dir),
      (error: unknown) => error instanceof CacheError && error.code === 'STORE_FOREIGN_FILE' && error.message.includes(dir),
    );
  });

  it('invalid options are rejected before anything is created', async () => {
    const file = tempFile();
    const bad = [{ sizeLimitMb: 0 }, { sizeLimitMb: Number.NaN }, { evictionPolicy: 'fifo' }, { durability: 'later' }, { flushInterval: -1 }];
    for (const options of bad) {
      await assert.rejects(Store.open(file, options as never), (error: unknown) => error instanceof CacheError && error.code === 'INVALID_OPTION');
    }
    assert.equal(fs.existsSync(file), false);
  });
});
