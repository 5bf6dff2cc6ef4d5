// A real Redis server for tests: Debian's redis-server on a free port of 127.0.0.1, no persistence,
// in a temp directory; stopped (or killed and started again on the same port) by the test.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './harness';

const running = new Set<RedisServer>();
process.on('exit', () => {
  for (const server of running) server.child?.kill('SIGKILL');
});

/** The redis-server binary: REDIS_SERVER, else the one on PATH (.ci/run installs Debian's). */
export function redisServerBinary(): string {
  const named = process.env.REDIS_SERVER;
  if (named) return named;
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const binary = found.stdout.trim();
  if (found.status !== 0 || !binary) {
    throw new Error('redis-server is not installed: the Redis tests need it (apt-get install -y redis-server, as .ci/run does)');
  }
  return binary;
}

export class RedisServer {
  child: ChildProcess | undefined;
  log = '';
  private exit: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly extra: string[],
  ) {}

  /** Starts a server on a free port; `extra` are more redis-server arguments (e.g. ['--requirepass', 'x']). */
  static async start(extra: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), tempDir('flow-cache-redis-'), extra);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port; resolves once the server accepts connections. */
  async start(): Promise<void> {
    if (this.child) throw new Error('redis-server is already running');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extra];
    const child = spawn(redisServerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(this);
    let ready: () => void = () => undefined;
    let failed: (error: Error) => void = () => undefined;
    const started = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    const onOutput = (d: Buffer) => {
      this.log += d.toString();
      if (this.log.includes('Ready to accept connections')) ready();
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.on('error', failed);
    this.exit = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        running.delete(this);
        failed(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${this.log}`));
        resolve();
      });
    });
    await started;
    await waitForPort(this.port);
  }

  /** Ends the server with a signal (default SIGKILL: no goodbye to its clients) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.child?.kill(signal);
    await this.exit;
  }

  /** Stops the server without ending it (SIGSTOP): its connections stay open and nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a paused server go on (SIGCONT): it answers what it was sent meanwhile. */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    // a paused server would not act on SIGTERM until it goes on
    this.resume();
    await this.kill('SIGTERM');
    fs.rmSync(path.join(this.dir), { recursive: true, force: true });
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connection to 127.0.0.1:port succeeds. */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}
