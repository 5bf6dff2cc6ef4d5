import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CacheError, StoreIOError } from '../../nodes/lib/errors';
import { APPLICATION_ID } from '../../nodes/lib/schema';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { diskKeys, onDisk, openStore, RecordingLogger, tempFile } from './fixtures';

const NS = 'corrupt';
const ASIDE_SUFFIX = '.corrupt-2026-06-01T10-00-00-000Z'; // the ManualClock's start time

/** A real database with enough rows to span many pages, closed cleanly. */
async function realDatabase(file: string): Promise<void> {
  const store = await openStore(file);
  await Promise.all(Array.from({ length: 200 }, (_, i) => store.set(NS, `k${i}`, 'x'.repeat(1000))));
  await store.close();
}

describe('a damaged database file', () => {
  const clock = new ManualClock();
  let file: string;
  let store: Store | undefined;
  let logger: RecordingLogger;

  beforeEach(() => {
    clock.install();
    file = tempFile();
    logger = new RecordingLogger();
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    clock.uninstall();
  });

  async function assertRecovered(original: Buffer): Promise<void> {
    const aside = file + ASIDE_SUFFIX;
    assert.ok(fs.existsSync(aside), `the damaged file is kept as ${path.basename(aside)}`);
    assert.deepStrictEqual(fs.readFileSync(aside), original, 'the kept file is the damaged one, untouched');
    assert.equal(logger.errors.length, 1, 'one error is logged');
    assert.ok(logger.errors[0].includes(file), `the log names the file: ${logger.errors[0]}`);
    assert.ok(logger.errors[0].includes(aside), `the log names where it went: ${logger.errors[0]}`);
    assert.ok(store);
    await store.set(NS, 'after', 'works');
    assert.equal((await store.get(NS, 'after'))?.value, 'works');
    assert.deepStrictEqual(await diskKeys(file, NS), ['after']);
  }

  /** Opening `file` fails with a clear error and leaves it (and the directory) exactly as it was. */
  async function assertRefused(original: Buffer): Promise<void> {
    const before = fs.readdirSync(path.dirname(file));
    await assert.rejects(openStore(file, { logger }), (error: unknown) => {
      assert.ok(error instanceof CacheError, String(error));
      assert.equal(error.code, 'STORE_FOREIGN_FILE');
      assert.ok(error.message.includes(file), error.message);
      assert.match(error.message, /left untouched/);
      return true;
    });
    assert.deepStrictEqual(fs.readFileSync(file), original, 'the file is unchanged, byte for byte');
    assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), before, 'nothing is moved aside or created beside it, not even a lock file');
  }

  it('of garbage bytes (not ours to judge) is refused and left untouched', async () => {
    const garbage = Buffer.alloc(8192);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    fs.writeFileSync(file, garbage);
    await assertRefused(garbage);
  });

  it('holding text (a flows.json given as the path) is refused and left untouched', async () => {
    file = path.join(path.dirname(file), 'flows.json');
    const flows = Buffer.from(JSON.stringify([{ id: 'a1', type: 'tab', label: 'Flow 1' }], null, 4));
    fs.writeFileSync(file, flows);
    await assertRefused(flows);
  });

  it("another program's SQLite database is refused: no WAL switch, no tables of ours, byte for byte", async () => {
    await onDisk(file, async (db) => {
      await db.run('CREATE TABLE states(entity_id TEXT, state TEXT)');
      await db.run("INSERT INTO states VALUES ('light.kitchen', 'on')");
    });
    await assertRefused(fs.readFileSync(file));
    assert.deepStrictEqual(await onDisk(file, (db) => db.all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")), [{ name: 'states' }]);
  });

  it('a database of another program that marked itself (application_id) is refused', async () => {
    await onDisk(file, async (db) => {
      await db.run('PRAGMA application_id = 1234');
      await db.run('CREATE TABLE keyv(key TEXT PRIMARY KEY, value TEXT)');
    });
    await assertRefused(fs.readFileSync(file));
  });

  it('a keyv database written before the mark existed is taken as ours, and marked', async () => {
    await onDisk(file, async (db) => {
      await db.run('CREATE TABLE keyv(key VARCHAR(255) PRIMARY KEY, value TEXT )');
    });
    store = await openStore(file, { logger });
    await store.set(NS, 'k', 1);
    await store.close();
    store = undefined;
    assert.equal(fs.readFileSync(file).readUInt32BE(68), APPLICATION_ID, 'the header carries our mark');
    assert.deepStrictEqual(logger.errors, []);
  });

  it('cut short (a truncated real database) is moved aside and a fresh store is opened', async () => {
    await realDatabase(file);
    const whole = fs.readFileSync(file);
    assert.ok(whole.length > 100_000, `the database spans many pages (${whole.length} bytes)`);
    const truncated = whole.subarray(0, Math.floor(whole.length / 2));
    fs.writeFileSync(file, truncated);
    store = await openStore(file, { logger });
    await assertRecovered(truncated);
  });

  it('cut inside its header (nothing left to tell whose it is) is refused and left untouched', async () => {
    await realDatabase(file);
    const stub = fs.readFileSync(file).subarray(0, 60);
    fs.writeFileSync(file, stub);
    await assertRefused(stub);
  });

  it('with damaged table pages behind a sound header fails the read that meets the damage, then is moved aside and replaced', async () => {
    await realDatabase(file);
    const bytes = fs.readFileSync(file);
    const pageSize = bytes.readUInt16BE(16);
    bytes.fill(0xa5, pageSize, pageSize * 4); // pages 2 to 4: table and index b-tree pages
    fs.writeFileSync(file, bytes);
    store = await openStore(file, { logger });
    if (!fs.existsSync(file + ASIDE_SUFFIX)) {
      assert.deepStrictEqual(logger.errors, []); // the header is sound, so the damage shows on use
      await assert.rejects(store.get(NS, 'k5'), (error: unknown) => error instanceof StoreIOError && /malformed/.test(error.message));
      await store.flush(); // the replacement is queued behind the failed read
    }
    await assertRecovered(bytes);
    assert.equal((await store.get(NS, 'k5'))?.value, undefined, 'the fresh store starts empty');
  });

  it('moves its WAL and shared-memory files aside with it', async () => {
    await realDatabase(file);
    const truncated = fs.readFileSync(file).subarray(0, 8192);
    fs.writeFileSync(file, truncated);
    fs.writeFileSync(`${file}-wal`, 'stale wal');
    fs.writeFileSync(`${file}-shm`, 'stale shm');
    store = await openStore(file, { logger });
    assert.equal(fs.readFileSync(`${file}${ASIDE_SUFFIX}-wal`, 'utf8'), 'stale wal');
    assert.equal(fs.readFileSync(`${file}${ASIDE_SUFFIX}-shm`, 'utf8'), 'stale shm');
    await assertRecovered(truncated);
  });

  it('a healthy database is opened as it is, with nothing logged or moved', async () => {
    await realDatabase(file);
    store = await openStore(file, { logger });
    assert.equal((await store.get(NS, 'k199'))?.value, 'x'.repeat(1000));
    assert.deepStrictEqual(logger.errors, []);
    assert.deepStrictEqual(
      fs.readdirSync(path.dirname(file)).filter((name) => name.includes('.corrupt-')),
      [],
    );
  });

  it('an empty file is taken as a new database', async () => {
    fs.writeFileSync(file, '');
    store = await openStore(file, { logger });
    await store.set(NS, 'k', 1);
    assert.equal((await store.get(NS, 'k'))?.value, 1);
    assert.deepStrictEqual(logger.errors, []);
  });

  it('damaged twice keeps both damaged files apart', async () => {
    await realDatabase(file);
    const first = fs.readFileSync(file).subarray(0, 8192);
    fs.writeFileSync(file, first);
    store = await openStore(file, { logger });
    await store.close();
    await realDatabase(file);
    clock.advance(60_000);
    const second = fs.readFileSync(file).subarray(0, 4096 * 3);
    fs.writeFileSync(file, second);
    store = await openStore(file, { logger });
    assert.deepStrictEqual(fs.readFileSync(file + ASIDE_SUFFIX), first);
    assert.deepStrictEqual(fs.readFileSync(`${file}.corrupt-2026-06-01T10-01-00-000Z`), second);
    assert.equal(logger.errors.length, 2);
  });
});
