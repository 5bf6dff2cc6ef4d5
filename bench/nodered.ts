// Node-RED with this package beside the same Node-RED without it, each a real process (Node-RED's CLI,
// red.js, on 127.0.0.1): how long it takes to start, its RSS once idle, and the CPU time it spends idle.
// With the package, the flow holds a cache-store (SQLite, per-flow, every setting at its default) and a
// counter that an inject bumps once at start-up, so one store is open; without it, an inject and a change
// node. The package is linked into the userDir's node_modules, as `npm start` does (scripts/userdir.js);
// NODE_RED_LINE picks the Node-RED line (4.1 by default, 5), NODE_RED_NODE another node binary.
//   node dist/bench/nodered.js [--quick]   prints the figures and notes as JSON, progress on stderr
// `noderedFigures(quick)` runs it in a child process for bench/run.ts.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { messageOf } from '../nodes/lib/errors';
import { STORE_DEFAULTS } from '../nodes/lib/options';
import { formatNumber, median, ROOT, tempDir } from './lib';
import type { ProbeUsage } from './nodered-probe';

export const NODERED_DESCRIPTIONS: Record<string, [string, string]> = {
  'startup.nodered.ms': [
    'ms',
    "Node-RED with the package, a flow with a cache-store and a counter: process spawn until the inject's message at start-up has passed the counter (store open, first write committed; the inject fires 0.1 s after the flows start) and the admin API answers",
  ],
  'startup.nodered.ms.bare': ['ms', 'the same Node-RED without the package, an inject and a change node instead'],
  'startup.nodered.ms.delta': ['ms', 'what the package adds to the start-up (difference of the medians)'],
  'rss.idle.mb': ['MiB', 'RSS of Node-RED with the package and that flow, 5 s after it started, idle'],
  'rss.idle.mb.bare': ['MiB', 'the same without the package'],
  'rss.idle.mb.delta': ['MiB', 'what the package adds to the idle RSS'],
  'idle.cpu.ms.per.hour': [
    'ms',
    'CPU time (user + system, all threads) of Node-RED with the package and that flow while idle, measured over 60 s (20 s with --quick) and scaled to an hour; 5 s slices with a full garbage collection (V8 shrinking the heap after start-up) left out',
  ],
  'idle.cpu.ms.per.hour.bare': ['ms', 'the same without the package'],
  'idle.cpu.ms.per.hour.delta': [
    'ms',
    "what the package adds while idle; with the store's defaults its one timer is the sweep of expired entries, once a minute (a flush timer runs only with durability deferred or the least-recently-used policy)",
  ],
};

export const NODERED_RATIOS: [string, string, string][] = [
  ['startup.nodered.ms / startup.nodered.ms.bare', 'startup.nodered.ms', 'startup.nodered.ms.bare'],
  ['rss.idle.mb / rss.idle.mb.bare', 'rss.idle.mb', 'rss.idle.mb.bare'],
  ['idle.cpu.ms.per.hour / idle.cpu.ms.per.hour.bare', 'idle.cpu.ms.per.hour', 'idle.cpu.ms.per.hour.bare'],
];

const KINDS = ['bare', 'package'] as const;
type Kind = (typeof KINDS)[number];
type Figures = { figures: Record<string, number | null>; notes: Record<string, string> };

/** Starts of each kind, interleaved in pairs. */
const PAIRS = 5;
/** How long a started Node-RED idles before its RSS is read; the idle window opens this long after the last start. */
const SETTLE_MS = 5_000;
/** How long the idle window is. */
const windowMs = (quick: boolean) => (quick ? 20_000 : 60_000);
/** The idle window is read in slices of this length. */
const SLICE_MS = 5_000;
/** A slice is left out when a full collection starts in it or this soon after it (the collection's CPU came before its pause). */
const COLLECTION_MARGIN_MS = 500;
const READY_TIMEOUT_MS = 60_000;
/** What the flow's debug node is called: its line in the log says the message at start-up has passed. */
const READY = 'flow-cache-bench-ready';
const MB = 1024 * 1024;
const PROBE = path.join(__dirname, 'nodered-probe.js');

// scripts/userdir.js is plain CommonJS shared with `npm start`; it is not compiled into dist/
const userdir = require(path.join(ROOT, 'scripts', 'userdir.js')) as {
  prepareUserDir(dir: string, options: { port: number; host: string }): string;
  writeSettings(dir: string, options: { port: number; host: string }): string;
  nodeRedCli(): string;
  nodeRedPackage(): { version: string };
  nodeRedNode(): string;
  nodeVersion(node: string): string;
};

function flow(kind: Kind): object[] {
  const z = 'bench';
  const step =
    kind === 'package'
      ? { id: 'step', type: 'counter', z, store: 'store', key: 'starts', keyType: 'str', step: 1, initial: 0, resetEvery: 'never', wires: [['ready']] }
      : { id: 'step', type: 'change', z, rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '1', tot: 'num' }], wires: [['ready']] };
  return [
    { id: z, type: 'tab', label: 'bench' },
    ...(kind === 'package' ? [{ id: 'store', type: 'cache-store', name: 'bench' }] : []),
    { id: 'start', type: 'inject', z, once: true, onceDelay: 0.1, repeat: '', props: [{ p: 'payload' }], payload: '', payloadType: 'date', wires: [['step']] },
    step,
    { id: 'ready', type: 'debug', z, name: READY, active: true, tosidebar: false, console: true, complete: 'payload', wires: [] },
  ];
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether the admin API on `port` answers a request with 200. */
function adminAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/auth/login', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      })
      .on('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One Node-RED process and what was read of it. */
class NodeRed {
  log = '';
  startupMs = 0;
  /** performance.now() when it was ready */
  readyAt = 0;
  idleRssMb: number | undefined;
  idleCpu: IdleCpu | undefined;
  private onOutput: (() => void) | undefined;
  private readonly exited: Promise<unknown>;

  private constructor(
    readonly kind: Kind,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    const append = (d: Buffer) => {
      this.log += d.toString();
      this.onOutput?.();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = once(child, 'exit');
  }

  /**
   * Starts Node-RED in a fresh userDir (a copy of `template`'s files, when given, so the start is a restart)
   * and waits until the flow's message at start-up has passed and the admin API answers.
   */
  static async start(kind: Kind, template?: string): Promise<NodeRed> {
    const dir = tempDir(`flow-cache-bench-nodered-${kind}-`);
    if (template) fs.cpSync(template, dir, { recursive: true, filter: (src) => path.basename(src) !== 'node_modules' });
    const port = await freePort();
    const options = { port, host: '127.0.0.1' };
    const settings = kind === 'package' ? userdir.prepareUserDir(dir, options) : userdir.writeSettings(dir, options);
    fs.writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(flow(kind)));
    const started = performance.now();
    const child = spawn(userdir.nodeRedNode(), ['--require', PROBE, userdir.nodeRedCli(), '--userDir', dir, '--settings', settings], {
      cwd: dir,
      env: { ...process.env, HOME: dir, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const red = new NodeRed(kind, dir, child);
    try {
      await red.logged(`[debug:${READY}]`);
      const deadline = started + READY_TIMEOUT_MS;
      while (!(await adminAnswers(port))) {
        if (performance.now() > deadline) throw red.failed('gave no answer on its admin API');
        await sleep(10);
      }
      red.readyAt = performance.now();
      red.startupMs = red.readyAt - started;
      if (kind === 'package' && !fs.existsSync(path.join(dir, 'flow-cache', 'cache.sqlite'))) throw red.failed('has no store file');
    } catch (error) {
      await red.stop();
      throw error;
    }
    return red;
  }

  private failed(why: string): Error {
    return new Error(`Node-RED (${this.kind}) ${why}:\n${this.log.slice(-2000)}`);
  }

  /** Waits until Node-RED's output holds `text`. */
  private logged(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        this.onOutput = undefined;
        this.child.off('exit', onExit);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => done(this.failed(`was not ready after ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
      const onExit = () => done(this.failed('exited before it was ready'));
      this.child.on('exit', onExit);
      this.onOutput = () => {
        if (this.log.includes(text)) done();
        // a node type that failed to load never registers: the flows would wait for it for ever
        else if (this.log.includes('Waiting for missing types')) done(this.failed('is waiting for node types that did not load'));
      };
      this.onOutput();
    });
  }

  /** What the probe in the process reports now. */
  usage(): Promise<ProbeUsage> {
    const answer = once(this.child, 'message') as Promise<[ProbeUsage]>;
    this.child.send('usage');
    return answer.then(([usage]) => usage);
  }

  /** Ends the process: SIGTERM lets Node-RED stop its flows (the store closes its file), SIGKILL ends it at once. */
  async stop(signal: NodeJS.Signals = 'SIGKILL', keepDir = false): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      this.child.kill(signal);
      await this.exited;
      clearTimeout(timer);
    }
    if (!keepDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

interface IdleCpu {
  /** ms per hour over the slices without a full collection; null when every slice had one */
  perHour: number | null;
  /** ms per hour over the whole window */
  allSlices: number;
  leftOut: number;
}

/** CPU time per hour over the slices between successive readings, without the slices in which a full collection ran. */
function idleCpu(readings: ProbeUsage[]): IdleCpu {
  const first = readings[0];
  const last = readings[readings.length - 1];
  let cpuMs = 0;
  let windowMs = 0;
  let leftOut = 0;
  for (let i = 1; i < readings.length; i++) {
    const [from, to] = [readings[i - 1], readings[i]];
    if (last.fullCollections.some((t) => t >= from.at && t < to.at + COLLECTION_MARGIN_MS)) {
      leftOut++;
    } else {
      cpuMs += to.cpuMs - from.cpuMs;
      windowMs += to.at - from.at;
    }
  }
  const perHour = (cpu: number, ms: number) => (cpu * 3_600_000) / ms;
  return { perHour: windowMs > 0 ? perHour(cpuMs, windowMs) : null, allSlices: perHour(last.cpuMs - first.cpuMs, last.at - first.at), leftOut };
}

/** How many sweeps (one a minute from the store's opening, about when the process was ready) fall within [from, to]. */
function sweepsWithin(red: NodeRed, from: number, to: number): number {
  const interval = STORE_DEFAULTS.sweepInterval * 1000;
  return Math.floor((to - red.readyAt) / interval) - Math.floor((from - red.readyAt) / interval);
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

/** Starts the processes, lets them idle, reads them, and ends them. */
async function run(quick: boolean, progress: (line: string) => void): Promise<{ running: NodeRed[]; sweeps: number }> {
  // one unmeasured start of each: the OS caches the files they read, and every measured start begins
  // in a copy of the userDir it leaves (Node-RED's .config files, the store's database), so it is a restart
  const templates = {} as Record<Kind, string>;
  for (const kind of KINDS) {
    const warmUp = await NodeRed.start(kind);
    await warmUp.stop('SIGTERM', true);
    templates[kind] = warmUp.dir;
  }
  const running: NodeRed[] = [];
  try {
    // interleaved, each kind first in every other pair; a process idles while the next ones start
    const settled: Promise<void>[] = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      for (const kind of pair % 2 === 0 ? KINDS : [...KINDS].reverse()) {
        const red = await NodeRed.start(kind, templates[kind]);
        running.push(red);
        progress(`${kind}: started in ${formatNumber(Math.round(red.startupMs))} ms`);
        const read = async () => {
          await sleep(SETTLE_MS);
          red.idleRssMb = (await red.usage()).rssBytes / MB;
        };
        settled.push(read());
      }
    }
    await Promise.all(settled);
    // the idle window, the same for every process: CPU time read at the start of each slice and at the end
    progress(`idle window of ${windowMs(quick) / 1000} s, ${running.length} processes`);
    const opened = performance.now();
    const readings: ProbeUsage[][] = running.map(() => []);
    for (let t = 0; t <= windowMs(quick); t += SLICE_MS) {
      if (t > 0) await sleep(SLICE_MS);
      const now = await Promise.all(running.map((red) => red.usage()));
      for (const [i, usage] of now.entries()) readings[i].push(usage);
    }
    const closed = performance.now();
    running.forEach((red, i) => {
      red.idleCpu = idleCpu(readings[i]);
    });
    const sweeps = running.filter((red) => red.kind === 'package').reduce((sum, red) => sum + sweepsWithin(red, opened, closed), 0);
    return { running, sweeps };
  } finally {
    await Promise.all(running.map((red) => red.stop()));
    for (const dir of Object.values(templates)) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(quick: boolean, progress: (line: string) => void): Promise<Figures> {
  const about = `Node-RED ${userdir.nodeRedPackage().version} on Node.js ${userdir.nodeVersion(userdir.nodeRedNode())}`;
  const { running, sweeps } = await run(quick, progress);
  const result: Figures = { figures: {}, notes: {} };
  /** Each kind's values of one reading, the nulls left out. */
  const values = (pick: (red: NodeRed) => number | null | undefined) =>
    Object.fromEntries(KINDS.map((kind) => [kind, running.filter((red) => red.kind === kind).flatMap((red) => pick(red) ?? [])])) as Record<Kind, number[]>;
  /** The medians of a reading (with the package, without it, the difference) and a note with the range of each. */
  const figure = (name: string, of: Record<Kind, number[]>, digits: number, unit: string) => {
    const [withPackage, bare] = (['package', 'bare'] as const).map((kind) => (of[kind].length > 0 ? round(median(of[kind]), digits) : null));
    result.figures[name] = withPackage;
    result.figures[`${name}.bare`] = bare;
    result.figures[`${name}.delta`] = withPackage === null || bare === null ? null : round(withPackage - bare, digits);
    const range = (kind: Kind) =>
      of[kind].length > 0 ? `${formatNumber(round(Math.min(...of[kind]), digits))}–${formatNumber(round(Math.max(...of[kind]), digits))} ${unit}` : 'none';
    return `with the package ${range('package')}, without ${range('bare')}`;
  };
  const startups = values((red) => red.startupMs);
  const rss = values((red) => red.idleRssMb);
  const cpu = values((red) => red.idleCpu?.perHour);
  result.notes['startup.nodered.ms'] =
    `${about}; median of ${PAIRS} starts of each, interleaved, each in a fresh copy of a first start's userDir (a restart): ` +
    figure('startup.nodered.ms', startups, 0, 'ms');
  result.notes['rss.idle.mb'] = figure('rss.idle.mb', rss, 1, 'MiB');
  const cpuRange = figure('idle.cpu.ms.per.hour', cpu, 0, 'ms');
  const slices = (kind: Kind) => values((red) => red.idleCpu?.leftOut)[kind].reduce((a, b) => a + b, 0);
  const allSlices = values((red) => red.idleCpu?.allSlices);
  const perProcess = running.length / KINDS.length;
  const windowS = windowMs(quick) / 1000;
  result.notes['idle.cpu.ms.per.hour'] =
    `${windowS} s window, all ${running.length} processes at once, ${SETTLE_MS / 1000} s or more after their start: ${cpuRange}; ` +
    `slices left out: ${slices('package')} of ${perProcess * (windowMs(quick) / SLICE_MS)} with the package, ${slices('bare')} without ` +
    `(with them: ${formatNumber(round(median(allSlices.package), 0))} and ${formatNumber(round(median(allSlices.bare), 0))} ms)`;
  result.notes['idle.cpu.ms.per.hour.delta'] =
    `${sweeps} sweeps in the window across the ${perProcess} processes with the package (one a minute from the store's opening)`;
  return result;
}

/** Every figure null, with why. */
function notMeasured(why: string): Figures {
  const names = Object.keys(NODERED_DESCRIPTIONS);
  return { figures: Object.fromEntries(names.map((n) => [n, null])), notes: Object.fromEntries(names.map((n) => [n, why])) };
}

/** The figures, measured in a child process of their own (its progress goes to stderr). */
export function noderedFigures(quick: boolean): Figures {
  const result = spawnSync(process.execPath, [__filename, ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 2] });
  if (result.status !== 0) return notMeasured(`failed: exited with ${result.status ?? result.signal}`);
  return JSON.parse(result.stdout) as Figures;
}

/** Why this Node.js cannot run the Node-RED line asked for, or null when it can. */
function unsupported(): string | null {
  try {
    userdir.nodeRedNode();
    return null;
  } catch (error) {
    return messageOf(error);
  }
}

if (require.main === module) {
  const why = unsupported();
  const measured = why
    ? Promise.resolve(notMeasured(`not measured: ${why}`))
    : measure(process.argv.includes('--quick'), (line) => process.stderr.write(`    ${line}\n`));
  measured.then(
    (figures) => process.stdout.write(`${JSON.stringify(figures)}\n`),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
