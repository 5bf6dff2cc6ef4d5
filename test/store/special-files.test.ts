// A store path that names something other than a regular file (a FIFO, a socket, a device, a
// directory, or a symbolic link to one of these) is refused at once with STORE_FOREIGN_FILE, and
// nothing is opened in a way that could block: a blocking open of a FIFO waits for a writer forever
// and freezes the whole process (Node-RED and its editor with it). Each open runs in a child process
// with a deadline, so a store that blocks fails the test instead of hanging it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freshDir, testDriver } from './fixtures';

const STORE_MODULE = path.resolve(__dirname, '..', '..', 'nodes', 'lib', 'store.js');
const DEADLINE_MS = 10_000;

interface Outcome {
  code?: string;
  message?: string;
  opened?: boolean;
  /** Timer ticks the child counted while the open was under way: 0 means the event loop was blocked. */
  ticks: number;
  ms: number;
}

/** Opens a store on `file` in a child process; fails if it has not answered within the deadline. */
function openInChild(file: string): Promise<Outcome> {
  const script = `
    const { Store } = require(${JSON.stringify(STORE_MODULE)});
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = Date.now();
    Store.open(process.argv[1], { sweepInterval: 0, driver: process.argv[2] }).then(
      async (store) => { await store.close(); finish({ opened: true }); },
      (error) => finish({ code: error.code, message: error.message }),
    );
    function finish(result) {
      clearInterval(timer);
      process.stdout.write(JSON.stringify({ ...result, ticks, ms: Date.now() - started }));
    }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, file, testDriver()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`opening ${file} did not end within ${DEADLINE_MS / 1000} s: the process is blocked`));
    }, DEADLINE_MS);
    child.on('exit', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as Outcome);
      } catch {
        reject(new Error(`no answer from the child: ${out} ${err}`));
      }
    });
  });
}

function assertRefused(outcome: Outcome, file: string, kind: RegExp): void {
  assert.equal(outcome.opened, undefined, 'the store was opened');
  assert.equal(outcome.code, 'STORE_FOREIGN_FILE', outcome.message);
  assert.ok(outcome.message?.includes(file), outcome.message);
  assert.match(outcome.message ?? '', kind);
  assert.match(outcome.message ?? '', /choose another file/);
  assert.ok(outcome.ms < 2000, `refused after ${outcome.ms} ms`);
}

describe('a store path that is not a regular file', () => {
  let dir: string;
  let server: net.Server;

  before(async () => {
    dir = freshDir();
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'socket.sqlite'), resolve));
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('a FIFO (named pipe) is refused at once, and the process never blocks on it', async () => {
    const fifo = path.join(dir, 'fifo.sqlite');
    execFileSync('mkfifo', [fifo]);
    const outcome = await openInChild(fifo);
    assertRefused(outcome, fifo, /FIFO/);
    assert.ok(fs.statSync(fifo).isFIFO(), 'the FIFO is left as it was');
    assert.deepEqual(
      fs.readdirSync(dir).filter((name) => name.startsWith('fifo.sqlite')),
      ['fifo.sqlite'],
      'nothing was created beside it, not even a lock file',
    );
  });

  it('a symbolic link to a FIFO is refused as the FIFO is', async () => {
    const fifo = path.join(dir, 'behind-link');
    execFileSync('mkfifo', [fifo]);
    const link = path.join(dir, 'link.sqlite');
    fs.symlinkSync(fifo, link);
    assertRefused(await openInChild(link), link, /FIFO/);
  });

  it('a FIFO where the lock file goes is refused, the database beside it untouched', async () => {
    const file = path.join(dir, 'locked-by-fifo.sqlite');
    execFileSync('mkfifo', [`${file}.lock`]);
    const outcome = await openInChild(file);
    assertRefused(outcome, file, /locked-by-fifo\.sqlite\.lock beside it: it is a FIFO/);
    assert.equal(fs.existsSync(file), false, 'no database file was created');
  });

  it('a unix socket is refused', async () => {
    const socket = path.join(dir, 'socket.sqlite');
    assertRefused(await openInChild(socket), socket, /it is a socket/);
  });

  it('a character device (/dev/null, /dev/zero) is refused', async () => {
    for (const device of ['/dev/null', '/dev/zero']) {
      assertRefused(await openInChild(device), device, /it is a character device/);
    }
  });

  it('a directory is refused', async () => {
    const sub = path.join(dir, 'a-directory.sqlite');
    fs.mkdirSync(sub);
    assertRefused(await openInChild(sub), sub, /it is a directory/);
    assert.deepEqual(fs.readdirSync(sub), [], 'nothing was created inside it');
  });

  it('a regular file in the same directory still opens (the check refuses only what it should)', async () => {
    const outcome = await openInChild(path.join(dir, 'plain.sqlite'));
    assert.equal(outcome.opened, true, outcome.message);
  });
});
