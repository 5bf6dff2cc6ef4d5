// `npm start` and scripts/start.js as real processes: the port they are told, and Node-RED ending with them.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, get } from '../support/node-red-process';

const root = path.join(__dirname, '..', '..', '..');
const startScript = path.join(root, 'scripts', 'start.js');
/** How long Node-RED may take to start, and to be gone after its parent is stopped. */
const START_MS = 30_000;
const STOP_MS = 10_000;

/** Every process started here, and every one found below them: killed after the suite whatever happened. */
const started = new Set<number>();
const dirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-start-'));
  dirs.push(dir);
  return dir;
}

/** The environment of a started process: no PORT of our own, no test-runner context. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const copy = { ...process.env, ...extra };
  delete copy.NODE_TEST_CONTEXT;
  if (!('PORT' in extra)) delete copy.PORT;
  return copy;
}

/** A process's parent pid and state from /proc (undefined once it is gone). */
function stat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "<pid> (<comm>) <state> <ppid> ...": the command name may hold spaces and parentheses
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Whether a process still runs (a zombie waiting to be reaped has ended). */
function running(pid: number): boolean {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

/** Every live process below `pid`, with its command name. */
function descendants(pid: number): { pid: number; comm: string }[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(Number(entry));
    if (!s || s.state === 'Z') continue;
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), Number(entry)]);
  }
  const found: { pid: number; comm: string }[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      let comm = '';
      try {
        comm = fs.readFileSync(`/proc/${child}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      found.push({ pid: child, comm });
      queue.push(child);
    }
  }
  return found;
}

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls `done` every 25 ms until it holds; the milliseconds it took, or an error after `limitMs`. */
async function until(done: () => boolean | Promise<boolean>, limitMs: number, what: string): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await done()) return Date.now() - start;
    if (Date.now() - start > limitMs) throw new Error(`${what}: not after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A started process with what it printed. */
interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Started {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) started.add(child.pid);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Waits until Node-RED answers on `port`; returns the Node-RED process (found below `parent`). */
async function nodeRedUp(started_: Started, port: number): Promise<number> {
  await until(
    async () => {
      if (started_.child.exitCode !== null || started_.child.signalCode !== null) throw new Error(`exited before Node-RED answered:\n${started_.output()}`);
      try {
        return (await get(port, '/')).status === 200;
      } catch {
        return false;
      }
    },
    START_MS,
    `Node-RED on port ${port}`,
  );
  const below = descendants(started_.child.pid as number);
  for (const p of below) started.add(p.pid);
  const nodeRed = below.find((p) => p.comm === 'node-red');
  assert.ok(nodeRed, `no node-red process below ${started_.child.pid}: ${JSON.stringify(below)}`);
  return nodeRed.pid;
}

describe('npm start', () => {
  after(() => {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a SIGTERM to npm stops its Node-RED: the port is free and the process gone (npm start -- --port)', async (t) => {
    // npm runs the start script in a shell; a SIGTERM to npm ends that shell and nothing below it.
    // The same script as package.json's, with the build (already done for the tests) left out.
    const script = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    assert.match(script, /^npm run build && node scripts\/start\.js$/, 'the start script this test reproduces');
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'start-test', private: true, scripts: { start: script.replace('npm run build', 'node -e 0') } }),
    );
    fs.symlinkSync(path.join(root, 'scripts'), path.join(dir, 'scripts'), 'dir');
    const port = await freePort();
    const npm = launch('npm', ['start', '--', '--port', String(port), '--userDir', path.join(dir, 'userdir')], { cwd: dir, env: env() });
    const nodeRed = await nodeRedUp(npm, port);
    assert.match(npm.output(), new RegExp(`http://127\\.0\\.0\\.1:${port}/`), 'start.js names the port it was given');

    npm.child.kill('SIGTERM');
    const ms = await until(async () => !running(nodeRed) && !(await listening(port)), STOP_MS, 'Node-RED gone and its port closed after SIGTERM to npm');
    t.diagnostic(`Node-RED gone ${ms} ms after the SIGTERM to npm`);
    await npm.exited;
    assert.match(npm.output(), /Stopped flows/, 'Node-RED stopped its flows (a clean stop, not a kill)');
  });

  it('scripts/start.js killed with SIGKILL takes its Node-RED with it (PORT=)', async (t) => {
    const dir = tempDir();
    const port = await freePort();
    const start = launch(process.execPath, [startScript, '--userDir', path.join(dir, 'userdir')], { cwd: dir, env: env({ PORT: String(port) }) });
    const nodeRed = await nodeRedUp(start, port);

    start.child.kill('SIGKILL');
    const ms = await until(async () => !running(nodeRed) && !(await listening(port)), STOP_MS, 'Node-RED gone and its port closed after SIGKILL to start.js');
    t.diagnostic(`Node-RED gone ${ms} ms after start.js was killed`);
  });

  it('scripts/start.js passes SIGTERM on and exits with Node-RED (exit code 0 after a clean stop)', async () => {
    const dir = tempDir();
    const port = await freePort();
    const start = launch(process.execPath, [startScript, '--port', String(port), '--userDir', path.join(dir, 'userdir')], {
      cwd: dir,
      env: env({ PORT: '1' }),
    });
    const nodeRed = await nodeRedUp(start, port);
    start.child.kill('SIGTERM');
    const { code } = await start.exited;
    assert.equal(code, 0);
    assert.match(start.output(), /Stopped flows/);
    await until(async () => !running(nodeRed) && !(await listening(port)), STOP_MS, 'Node-RED gone');
  });

  it('a port that is not one is refused with a message, before anything starts', async () => {
    const dir = tempDir();
    for (const [args, extra, message] of [
      [['--port', 'abc'], {}, /--port must be a port number from 1 to 65535, not "abc"/],
      [[], { PORT: '70000' }, /PORT must be a port number from 1 to 65535, not "70000"/],
      [['--port'], {}, /--port needs a value/],
      [['--prot', '1881'], {}, /unknown option "--prot"/],
    ] as [string[], Record<string, string>, RegExp][]) {
      const start = launch(process.execPath, [startScript, '--userDir', path.join(dir, 'userdir'), ...args], { cwd: dir, env: env(extra) });
      const { code } = await start.exited;
      assert.equal(code, 2, `${args.join(' ')}: ${start.output()}`);
      assert.match(start.output(), message);
      assert.match(start.output(), /usage: node scripts\/start\.js/);
      assert.equal(fs.existsSync(path.join(dir, 'userdir')), false, 'no userDir was made');
    }
  });
});
