// importFrom: 'localfilesystem': the context Node-RED's file store wrote (written here by that store itself)
// is copied in once, never over newer data, with a log line saying what was copied.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FlowCacheContext } from '../../nodes/context/context-store';
import { ManualClock, nodeRedLine } from '../support/harness';
import { contextStore, freshDir, Recorded } from './fixtures';

interface NodeRedStore {
  open(): Promise<void>;
  close(): Promise<void>;
  set(scope: string, key: string, value: unknown): void;
}

/** Node-RED's own localfilesystem store, of the line under test, on a userDir. */
function localFileSystem(userDir: string): NodeRedStore {
  const base = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5/package.json' : 'node-red/package.json'));
  const runtime = path.dirname(require.resolve('@node-red/runtime/package.json', { paths: [base] }));
  const make = require(path.join(runtime, 'lib', 'nodes', 'context', 'localfilesystem.js')) as (config: object) => NodeRedStore;
  return make({ settings: { userDir } });
}

/** Writes context through localfilesystem, as a Node-RED that used it left it (its close writes the files). */
async function leftByLocalFileSystem(userDir: string, writes: [string, string, unknown][]): Promise<void> {
  const store = localFileSystem(userDir);
  await store.open();
  for (const [scope, key, value] of writes) store.set(scope, key, value);
  await store.close();
}

describe('importFrom: localfilesystem', () => {
  const clock = new ManualClock(Date.parse('2026-06-01T10:00:00Z'));
  let userDir: string;
  let logger: Recorded;
  let context: FlowCacheContext | undefined;

  beforeEach(() => {
    userDir = freshDir();
    logger = new Recorded();
    clock.install();
  });
  afterEach(async () => {
    await context?.close();
    context = undefined;
    clock.uninstall();
  });

  async function open(): Promise<FlowCacheContext> {
    await context?.close();
    context = contextStore(userDir, { importFrom: 'localfilesystem' }, logger);
    await context.open();
    return context;
  }

  /** Sets a context file's modification time (the import compares it with when a key was stored here). */
  function touch(relative: string, at: number): void {
    fs.utimesSync(path.join(userDir, 'context', relative), new Date(at), new Date(at));
  }

  it('copies global, flow and node context, and logs what it copied', async () => {
    await leftByLocalFileSystem(userDir, [
      ['global', 'mode', 'away'],
      ['global', 'rooms', { kitchen: { temp: 21.5 }, list: [1, 2] }],
      ['flow1', 'n', 200],
      ['node1:flow1', 'last', 'on'],
    ]);
    const ctx = await open();
    assert.equal(ctx.get('global', 'mode'), 'away');
    assert.deepStrictEqual(ctx.get('global', 'rooms'), { kitchen: { temp: 21.5 }, list: [1, 2] });
    assert.equal(ctx.get('flow1', 'n'), 200);
    assert.equal(ctx.get('node1:flow1', 'last'), 'on');
    assert.match(logger.infos.join('\n'), /copied 4 keys of 3 scopes from 3 localfilesystem context files in .*context/);
    await ctx.close();
    context = contextStore(userDir, {}, logger);
    await context.open();
    assert.equal(context.get('flow1', 'n'), 200, 'copied into the store, not read from the files again');
  });

  it('copies each file once: a later start copies nothing, so changes made here stay', async () => {
    await leftByLocalFileSystem(userDir, [['flow1', 'n', 200]]);
    const ctx = await open();
    ctx.set('flow1', 'n', 201);
    await ctx.committed();
    const logged = logger.infos.length;
    const again = await open();
    assert.equal(again.get('flow1', 'n'), 201);
    assert.doesNotMatch(logger.infos.slice(logged).join('\n'), /copied/);
  });

  it('never overwrites a key stored here after the file was written; copies one the file has newer', async () => {
    await leftByLocalFileSystem(userDir, [
      ['flow1', 'older-here', 'from file'],
      ['flow1', 'newer-here', 'from file'],
    ]);
    touch('flow1/flow.json', clock.ms);
    // the store already holds both keys: one written before the file, one after
    context = contextStore(userDir, {}, logger);
    await context.open();
    clock.advance(-3600_000);
    context.set('flow1', 'older-here', 'stored here first');
    await context.committed();
    clock.advance(2 * 3600_000);
    context.set('flow1', 'newer-here', 'stored here later');
    await context.committed();
    const ctx = await open();
    assert.equal(ctx.get('flow1', 'older-here'), 'from file');
    assert.equal(ctx.get('flow1', 'newer-here'), 'stored here later');
    assert.match(logger.infos.join('\n'), /copied 1 key of 1 scope from 1 localfilesystem context file .*; kept 1 key stored here after the file was written/);
  });

  it('copies a file again once it has changed since (localfilesystem used again in between)', async () => {
    await leftByLocalFileSystem(userDir, [['flow1', 'n', 1]]);
    touch('flow1/flow.json', clock.ms - 60_000);
    await open();
    await leftByLocalFileSystem(userDir, [['flow1', 'n', 2]]);
    touch('flow1/flow.json', clock.ms + 60_000);
    const ctx = await open();
    assert.equal(ctx.get('flow1', 'n'), 2);
  });

  it('starts with an empty or torn file: it is skipped with a warning naming it, the other files are copied', async () => {
    await leftByLocalFileSystem(userDir, [
      ['flow1', 'n', 5],
      ['flow2', 'm', 6],
    ]);
    fs.writeFileSync(path.join(userDir, 'context', 'flow2', 'flow.json'), '{"m": 6, "trunc'); // a power cut during the write
    fs.mkdirSync(path.join(userDir, 'context', 'flow3'));
    fs.writeFileSync(path.join(userDir, 'context', 'flow3', 'flow.json'), ''); // localfilesystem treats an empty file as {}
    const ctx = await open();
    assert.equal(ctx.get('flow1', 'n'), 5);
    assert.deepEqual(ctx.keys('flow2'), []);
    assert.match(logger.warnings.join('\n'), /skipped flow2\/flow\.json: not a JSON object \(the file is left as it is\)/);
    assert.equal(fs.readFileSync(path.join(userDir, 'context', 'flow2', 'flow.json'), 'utf8'), '{"m": 6, "trunc');
    const warned = logger.warnings.length;
    await open();
    assert.equal(logger.warnings.length, warned, 'a torn file is reported once, not at every start');
  });

  it('does nothing, and logs nothing, where there is no localfilesystem context', async () => {
    const ctx = await open();
    assert.deepEqual(ctx.keys('global'), []);
    assert.doesNotMatch(logger.infos.join('\n'), /copied/);
    assert.deepStrictEqual(logger.warnings, []);
  });

  it('copies only with importFrom set', async () => {
    await leftByLocalFileSystem(userDir, [['flow1', 'n', 200]]);
    context = contextStore(userDir, {}, logger);
    await context.open();
    assert.equal(context.get('flow1', 'n'), undefined);
  });
});
