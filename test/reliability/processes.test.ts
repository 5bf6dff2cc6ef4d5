import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeValue, encodeValue } from '../../nodes/lib/serialize';
import { Store } from '../../nodes/lib/store';
import { tempDir } from '../support/harness';
import { everyKind } from './children/store-child';

const CHILD = path.join(__dirname, 'children', 'store-child.js');
const root = tempDir('flow-cache-processes-');
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** A node binary of the given major line: this one if it fits, else the npm registry's `node@<major>` package. */
function nodeOfLine(major: number): string {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  return execFileSync('npx', ['-y', `node@${major}`, '-p', 'process.execPath'], { encoding: 'utf8' }).trim();
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(node: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [CHILD, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Starts a child that opens the store of `file`, writes its pid and closes it. */
function spawnOpen(file: string): { pid: number | undefined; done: Promise<Run> } {
  const child = spawn(process.execPath, [CHILD, 'open', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { pid: child.pid, done };
}

/** Starts a child that holds the store of `file`; resolves once it has it open. */
function hold(file: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, 'hold', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`holder exited with ${code} before it was ready`)));
  });
}

function dbFile(): string {
  return path.join(fs.mkdtempSync(path.join(root, 'p-')), 'cache.sqlite');
}

describe('two processes and one database file', () => {
  it('the second process is refused with an error naming the file and the process that has it', async () => {
    const file = dbFile();
    const holder = await hold(file);
    const second = await run(process.execPath, ['hold', file]);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /STORE_LOCKED/);
    assert.ok(second.stderr.includes(file), second.stderr);
    assert.ok(second.stderr.includes(`process ${holder.pid}`), second.stderr);
    await assert.rejects(Store.open(file), /in use by process \d+/);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    // a killed holder leaves no stale lock: the operating system released it with the process
    const store = await Store.open(file, { sweepInterval: 0 });
    assert.equal((await store.get('child', 'holder'))?.value, holder.pid);
    await store.close();
  });

  // both switch a new file to WAL at once: SQLite refuses one of them at once (SQLITE_BUSY, no busy wait)
  it('schema creation is safe when two processes create the same new file at once (100 races)', async () => {
    const failures: string[] = [];
    for (let round = 0; round < 100; round++) {
      const file = dbFile();
      const results = await Promise.all([run(process.execPath, ['schema', file]), run(process.execPath, ['schema', file])]);
      for (const r of results) if (r.code !== 0) failures.push(r.stderr.trim());
    }
    assert.deepStrictEqual(failures, []);
  });

  it('two processes opening the same new store at once: one has it and the other is refused, or each in turn (100 races)', async () => {
    const failures: string[] = [];
    for (let round = 0; round < 100; round++) {
      const file = dbFile();
      const children = [spawnOpen(file), spawnOpen(file)];
      const results = await Promise.all(children.map((c) => c.done));
      for (const r of results) {
        if (r.code !== 0 && !(r.code === 2 && r.stderr.startsWith('STORE_LOCKED '))) failures.push(`round ${round}: ${r.stderr.trim()}`);
      }
      const opened = children.filter((_, i) => results[i].code === 0).map((c) => `pid-${c.pid}`);
      if (opened.length === 0) failures.push(`round ${round}: both were refused: ${results.map((r) => r.stderr.trim()).join(' / ')}`);
      // whoever had the file wrote to it, and nothing it wrote was moved aside by the other
      assert.deepStrictEqual(
        fs.readdirSync(path.dirname(file)).filter((name) => name.includes('.corrupt-')),
        [],
      );
      const store = await Store.open(file, { sweepInterval: 0 });
      assert.deepStrictEqual((await store.keys('child')).sort(), opened.sort(), `round ${round}`);
      await store.close();
    }
    assert.deepStrictEqual(failures, []);
  });
});

describe('deferred writes when the process dies of an unhandled error', () => {
  it('node:sqlite writes them on the way out: nothing acknowledged is lost', async () => {
    const node = nodeOfLine(24);
    const file = dbFile();
    const result = await run(node, ['deferred-then-crash', file, '200']);
    assert.match(result.stdout, /counted node:sqlite/);
    assert.notEqual(result.code, 0, 'the process died of the error');
    const store = await Store.open(file, { sweepInterval: 0 });
    assert.equal((await store.get('child', 'count'))?.value, 200);
    await store.close();
  });

  it('sqlite3 cannot write during exit: the log says how many writes are lost', async () => {
    const node = nodeOfLine(20);
    const file = dbFile();
    const result = await run(node, ['deferred-then-crash', file, '200'], { FLOW_CACHE_DRIVER: 'sqlite3' });
    assert.match(result.stdout, /counted sqlite3/);
    assert.match(result.stderr, /exited with 1 writes not yet committed; they are lost/);
  });
});

describe('one file format for both drivers', () => {
  const expected = Object.fromEntries(Object.entries(everyKind()).map(([k, v]) => [k, encodeValue(v)]));

  for (const [writer, reader] of [
    ['sqlite3', 'node:sqlite'],
    ['node:sqlite', 'sqlite3'],
  ] as const) {
    it(`a file written through ${writer} opens and reads through ${reader}, and back`, async () => {
      const nodeFor = (driver: string) => nodeOfLine(driver === 'sqlite3' ? 20 : 24);
      const file = dbFile();
      const wrote = await run(nodeFor(writer), ['write-all', file], { FLOW_CACHE_DRIVER: writer });
      assert.equal(wrote.stdout.trim(), writer, wrote.stderr);
      const read = await run(nodeFor(reader), ['read-all', file], { FLOW_CACHE_DRIVER: reader });
      assert.equal(read.code, 0, read.stderr);
      const seen = JSON.parse(read.stdout) as { driver: string; values: Record<string, string> };
      assert.equal(seen.driver, reader);
      assert.deepStrictEqual(seen.values, expected);
      assert.equal((decodeValue(seen.values.big) as bigint) === 2n ** 70n, true);
      const back = await run(nodeFor(writer), ['read-all', file], { FLOW_CACHE_DRIVER: writer });
      const again = JSON.parse(back.stdout) as { values: Record<string, string> };
      assert.equal(again.values[`from-${reader}`], 'true', 'what the other driver wrote reads back');
    });
  }
});
