import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { StoreIOError } from '../../nodes/lib/errors';
import type { Store } from '../../nodes/lib/store';
import { ManualClock } from '../support/harness';
import { diskKeys, openStore, RecordingLogger, tempFile } from './fixtures';

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

  it('of garbage bytes is moved aside and a fresh store is opened', async () => {
    const garbage = Buffer.alloc(8192);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    fs.writeFileSync(file, garbage);
    store = await openStore(file, { logger });
    await assertRecovered(garbage);
  });

  it('holding text is moved aside and a fresh store is opened', async () => {
    const text = Buffer.from('this is not a database\n'.repeat(10));
    fs.writeFileSync(file, text);
    store = await openStore(file, { logger });
    await assertRecovered(text);
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

  it('cut inside its header is moved aside and a fresh store is opened', async () => {
    await realDatabase(file);
    const stub = fs.readFileSync(file).subarray(0, 60);
    fs.writeFileSync(file, stub);
    store = await openStore(file, { logger });
    await assertRecovered(stub);
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
    fs.writeFileSync(file, 'garbage');
    fs.writeFileSync(`${file}-wal`, 'stale wal');
    fs.writeFileSync(`${file}-shm`, 'stale shm');
    store = await openStore(file, { logger });
    assert.equal(fs.readFileSync(`${file}${ASIDE_SUFFIX}-wal`, 'utf8'), 'stale wal');
    assert.equal(fs.readFileSync(`${file}${ASIDE_SUFFIX}-shm`, 'utf8'), 'stale shm');
    await assertRecovered(Buffer.from('garbage'));
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
    fs.writeFileSync(file, 'first garbage');
    store = await openStore(file, { logger });
    await store.close();
    clock.advance(60_000);
    fs.writeFileSync(file, 'second garbage');
    store = await openStore(file, { logger });
    assert.equal(fs.readFileSync(file + ASIDE_SUFFIX, 'utf8'), 'first garbage');
    assert.equal(fs.readFileSync(`${file}.corrupt-2026-06-01T10-01-00-000Z`, 'utf8'), 'second garbage');
    assert.equal(logger.errors.length, 2);
  });
});
