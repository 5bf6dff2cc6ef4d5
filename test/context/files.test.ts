// Where the context lives: its own file by default, config.path (also the cache's file, shared with the cache
// nodes), a damaged file moved aside, another program's file refused; the module as settings.js loads it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FlowCacheContext } from '../../nodes/context/context-store';
import { acquireStore } from '../../nodes/lib/registry';
import { contextStore, defaultFile, freshDir, onDiskContext, Recorded, setAsync } from './fixtures';

const root = path.join(__dirname, '..', '..', '..');

describe('context store files', () => {
  let userDir: string;
  let context: FlowCacheContext | undefined;
  let logger: Recorded;

  beforeEach(() => {
    userDir = freshDir();
    logger = new Recorded();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
  });

  it('keeps context in <userDir>/flow-cache/context.sqlite by default, and says so at open', async () => {
    context = contextStore(userDir, {}, logger);
    assert.equal(context.file, defaultFile(userDir));
    await context.open();
    await setAsync(context, 'global', 'g', 1);
    assert.ok(fs.existsSync(defaultFile(userDir)));
    await context.close();
    context = contextStore(userDir, {}, logger);
    await context.open();
    assert.match(
      logger.infos.at(-1) ?? '',
      new RegExp(`1 context key of 1 scope loaded from ${defaultFile(userDir).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in \\d+ ms`),
    );
  });

  it('takes config.path relative to the userDir, or as an absolute path', async () => {
    assert.equal(contextStore(userDir, { path: 'state/ctx.sqlite' }).file, path.join(userDir, 'state', 'ctx.sqlite'));
    const absolute = path.join(freshDir(), 'elsewhere.sqlite');
    context = contextStore(userDir, { path: absolute });
    assert.equal(context.file, absolute);
    await context.open();
    await setAsync(context, 'flow1', 'n', 1);
    assert.deepStrictEqual(await onDiskContext(absolute), { flow1: { n: 1 } });
  });

  it('falls back to ~/.node-red when Node-RED passes no userDir', () => {
    const home = freshDir();
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      const made = contextStore('', {});
      assert.equal(made.file, path.join(home, '.node-red', 'flow-cache', 'context.sqlite'));
    } finally {
      process.env.HOME = saved;
    }
  });

  it('shares the cache’s file when config.path names it: one open store, the cache’s keys untouched', async () => {
    const cacheFile = path.join(userDir, 'flow-cache', 'cache.sqlite');
    context = contextStore(userDir, { path: 'flow-cache/cache.sqlite' }, logger);
    await context.open();
    const lease = await acquireStore(cacheFile, {}); // what a cache node does on its first message
    try {
      await lease.store.set('flow:tab1', 'counter', 5);
      await setAsync(context, 'tab1', 'counter', 'context');
      await context.clean([]); // the tab's context goes, its cache keys stay
      assert.equal((await lease.store.get('flow:tab1', 'counter'))?.value, 5);
      assert.equal(context.get('tab1', 'counter'), undefined);
      await setAsync(context, 'global', 'g', 1);
      await context.close();
      context = undefined;
      assert.equal((await lease.store.get('flow:tab1', 'counter'))?.value, 5, 'the store stays open for the cache after the context closed');
    } finally {
      await lease.release();
    }
    context = contextStore(userDir, { path: 'flow-cache/cache.sqlite' }, logger);
    await context.open();
    assert.equal(context.get('global', 'g'), 1);
    assert.deepEqual(context.keys('tab1'), [], 'cache keys never show as context');
  });

  it('moves a damaged file aside, logs it and opens an empty one: Node-RED starts', async () => {
    const file = defaultFile(userDir);
    context = contextStore(userDir, {}, logger);
    await context.open();
    for (let i = 0; i < 50; i++) context.set('global', `g${i}`, 'x'.repeat(1000));
    await context.committed();
    await context.close();
    assert.ok(fs.statSync(file).size > 16_384);
    fs.truncateSync(file, 8192); // a write cut short by a power cut: the header promises pages that are not there
    fs.rmSync(`${file}-wal`, { force: true });
    context = contextStore(userDir, {}, logger);
    await context.open();
    assert.deepEqual(context.keys('global'), []);
    assert.match(logger.errors.join('\n'), /is damaged .* moved it to .*context\.sqlite\.corrupt-/);
    assert.ok(fs.readdirSync(path.dirname(file)).some((name) => name.startsWith('context.sqlite.corrupt-')));
    await setAsync(context, 'global', 'g', 2);
    assert.equal(context.get('global', 'g'), 2);
  });

  it('refuses a file that is not its own (another program’s database, settings.js) and leaves it as it was', async () => {
    const foreign = path.join(userDir, 'settings.js');
    fs.writeFileSync(foreign, 'module.exports = {};\n');
    context = contextStore(userDir, { path: 'settings.js' }, logger);
    await assert.rejects(context.open(), (error: Error & { code?: string }) => error.code === 'STORE_FOREIGN_FILE');
    assert.equal(fs.readFileSync(foreign, 'utf8'), 'module.exports = {};\n');
    context = undefined;
  });

  it('refuses a bad config when Node-RED creates the store, naming the setting', () => {
    assert.throws(() => contextStore(userDir, { flushInterval: -1 }), /flushInterval must be a number of seconds from 0 to 2147483, got -1/);
    assert.throws(() => contextStore(userDir, { flushInterval: 30 * 86_400 }), /flushInterval must be a number of seconds from 0 to 2147483, got 2592000/);
    assert.throws(() => contextStore(userDir, { flushInterval: '30' as never }), /flushInterval must be a number/);
    assert.throws(() => contextStore(userDir, { importFrom: 'memory' }), /importFrom must be 'localfilesystem'/);
    assert.throws(() => contextStore(userDir, { path: '  ' }), /path must be a file name/);
  });

  it('is a context store module as settings.js names it: a function of config, named in Node-RED’s log', async () => {
    const mod = require(path.join(root, 'context.js')) as ((config: object) => FlowCacheContext) & { toString(): string };
    assert.equal(typeof mod, 'function');
    assert.ok(Object.hasOwn(mod, 'toString'), 'Node-RED logs module=<toString()> only when the module has its own');
    assert.equal(String(mod), 'node-red-contrib-flow-cache/context');
    const store = mod({ settings: { userDir } });
    for (const method of ['open', 'close', 'get', 'set', 'keys', 'delete', 'clean'] as const) assert.equal(typeof store[method], 'function', method);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
    assert.ok(pkg.files.includes('context.js'), 'context.js ships in the tarball');
  });
});
