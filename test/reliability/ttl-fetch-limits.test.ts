// ttl-fetch in a real Node-RED process with a 256 MB heap (as on a Raspberry Pi): a huge body, an
// endless body, and what the process prints when a URL carries a token.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../support/harness';
import { freePort, get, type Reply, userdir } from '../support/node-red-process';

const TIMEOUT = 120_000;
const HEAP_MB = 256;
const HUGE_BYTES = 120 * 1024 * 1024;
const TOKEN = '987654321:AAGx7Lq2VbN4pWz8RtYc3KmD5sHj6FeQ0Uo';
const z = 'limits';

/** Node-RED as a child process with a heap limit; what it prints is kept in `log`. */
class LimitedNodeRed {
  log = '';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly userDir: string,
    readonly port: number,
    private readonly settings: string,
  ) {}

  static async start(flows: object[]): Promise<LimitedNodeRed> {
    const dir = tempDir('ttl-fetch-limits-');
    const port = await freePort();
    const settings = userdir.prepareUserDir(dir, { port, host: '127.0.0.1' });
    fs.writeFileSync(`${dir}/flows.json`, JSON.stringify(flows, null, 2));
    const red = new LimitedNodeRed(dir, port, settings);
    await red.run();
    return red;
  }

  private async run(): Promise<void> {
    const node = process.env.NODE_RED_NODE || process.execPath;
    const child = spawn(node, [`--max-old-space-size=${HEAP_MB}`, userdir.nodeRedCli(), '--userDir', this.userDir, '--settings', this.settings], {
      cwd: this.userDir,
      env: { ...process.env, HOME: this.userDir, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    child.on('exit', () => {
      this.child = undefined;
    });
    for (;;) {
      if (!this.child) throw new Error(`Node-RED exited before it was ready:\n${this.log}`);
      try {
        if ((await get(this.port, '/ready')).status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  get alive(): boolean {
    return this.child !== undefined;
  }

  /** Peak resident memory of the process so far (VmHWM), in MB. */
  peakRssMb(): number {
    const status = fs.readFileSync(`/proc/${this.child?.pid}/status`, 'utf8');
    return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024);
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }
}

/** One GET that resolves with the reply, or with undefined if the process died or nothing came within `ms`. */
function ask(port: number, urlPath: string, ms: number): Promise<Reply | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    get(port, urlPath).then(
      (reply) => {
        clearTimeout(timer);
        resolve(reply);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

function fetchNode(id: string, url: string, props: object = {}): object {
  return {
    id,
    type: 'ttl-fetch',
    z,
    url,
    method: 'GET',
    headers: [],
    secretHeader: 'Authorization',
    ttl: 1,
    ttlUnits: 'hours',
    returnType: 'json',
    staleIfError: true,
    key: '',
    keyType: 'msg',
    wires: [['reply']],
    ...props,
  };
}

function flows(upstream: string): object[] {
  const endpoint = (path: string, target: string) => ({ id: `in-${target}`, type: 'http in', z, url: path, method: 'get', wires: [[target]] });
  return [
    { id: z, type: 'tab', label: 'Limits' },
    { id: 'readyIn', type: 'http in', z, url: '/ready', method: 'get', wires: [['reply']] },
    endpoint('/huge', 'huge'),
    fetchNode('huge', `${upstream}/huge`, { timeout: 60 }), // the default size limit
    endpoint('/endless', 'endless'),
    fetchNode('endless', `${upstream}/endless`, { timeout: 3, maxResponseMb: 200 }),
    endpoint('/telegram', 'telegram'),
    fetchNode('telegram', `${upstream}/bot${TOKEN}/sendMessage?chat_id=42`, { timeout: 10 }),
    // a tab without a Catch node: Node-RED logs the error itself (and the request gets no reply)
    { id: 'bare', type: 'tab', label: 'No catch' },
    { id: 'in-logged', type: 'http in', z: 'bare', url: '/telegram-logged', method: 'get', wires: [['logged']] },
    { ...fetchNode('logged', `${upstream}/bot${TOKEN}/sendMessage?chat_id=42`, { timeout: 10 }), z: 'bare', wires: [['bareReply']] },
    { id: 'in-stale', type: 'http in', z: 'bare', url: '/telegram-stale', method: 'get', wires: [['stale']] },
    { ...fetchNode('stale', `${upstream}/bot${TOKEN}/getMe`, { timeout: 10, ttl: 0.001, ttlUnits: 'seconds' }), z: 'bare', wires: [['bareReply']] },
    { id: 'bareReply', type: 'http response', z: 'bare', statusCode: '', headers: {}, wires: [] },
    { id: 'catchAll', type: 'catch', z, scope: null, uncaught: false, wires: [['failed']] },
    {
      id: 'failed',
      type: 'change',
      z,
      rules: [
        { t: 'set', p: 'statusCode', pt: 'msg', to: '500', tot: 'num' },
        { t: 'set', p: 'payload', pt: 'msg', to: '{"code": error.code, "message": error.message}', tot: 'jsonata' },
      ],
      wires: [['reply']],
    },
    { id: 'reply', type: 'http response', z, statusCode: '', headers: {}, wires: [] },
  ];
}

describe('ttl-fetch in Node-RED with a 256 MB heap', () => {
  let upstream: http.Server;
  let base: string;
  const requests: string[] = [];
  let red: LimitedNodeRed;

  before(async () => {
    upstream = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/huge') {
        // 120 MB of JSON, sent as fast as the client reads it
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        const chunk = Buffer.from('{"sensor":"temperature","value":21.5},'.repeat(1724)); // ~64 KB
        let sent = 0;
        const pump = () => {
          while (sent < HUGE_BYTES) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end('{}]');
        };
        res.write('[');
        pump();
        res.on('close', () => {
          sent = HUGE_BYTES;
        });
        return;
      }
      if (req.url === '/endless') {
        // a body that never ends: 64 KB every 5 ms (about 12 MB/s) while the client keeps up
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('[');
        const chunk = Buffer.from('"0123456789abcdef",'.repeat(3449));
        const timer = setInterval(() => {
          if (!res.writableNeedDrain) res.write(chunk);
        }, 5);
        res.on('close', () => clearInterval(timer));
        return;
      }
      // the Telegram-style endpoints: getMe answers once, then the bot API is down
      if (req.url === `/bot${TOKEN}/getMe` && requests.filter((r) => r === req.url).length === 1) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true,"result":{"is_bot":true}}');
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    red = await LimitedNodeRed.start(flows(base));
  });

  after(async () => {
    await red?.stop();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('cuts a 120 MB body off at the size limit with UPSTREAM_TOO_LARGE; Node-RED keeps running', { timeout: TIMEOUT }, async (t) => {
    const started = performance.now();
    const reply = await ask(red.port, '/huge', 60_000);
    const ms = Math.round(performance.now() - started);
    assert.ok(red.alive, `Node-RED died:\n${red.log.slice(-3000)}`);
    assert.ok(reply, 'no reply within 60 s');
    assert.equal(reply.status, 500);
    const error = JSON.parse(reply.body) as { code: string; message: string };
    assert.equal(error.code, 'UPSTREAM_TOO_LARGE');
    assert.match(error.message, /\/huge is more than 5\.0 MB, over the limit of 5\.0 MB/);
    const peak = red.peakRssMb();
    t.diagnostic(`answered in ${ms} ms; peak RSS of Node-RED ${peak} MB`);
    assert.ok(peak < HEAP_MB, `peak RSS ${peak} MB`);
    assert.equal((await ask(red.port, '/ready', 5_000))?.status, 200, 'Node-RED still answers');
  });

  it('ends an endless body at the 3 s timeout, for every message waiting for it, with memory bounded', { timeout: TIMEOUT }, async (t) => {
    const before = requests.filter((r) => r === '/endless').length;
    const started = performance.now();
    const replies = await Promise.all([0, 1, 2].map((i) => new Promise((r) => setTimeout(r, i * 300)).then(() => ask(red.port, '/endless', 30_000))));
    const ms = Math.round(performance.now() - started);
    assert.ok(red.alive, `Node-RED died:\n${red.log.slice(-3000)}`);
    for (const reply of replies) {
      assert.ok(reply, `no reply within 30 s; peak RSS ${red.peakRssMb()} MB`);
      assert.equal(reply.status, 500);
      const error = JSON.parse(reply.body) as { code: string; message: string };
      assert.equal(error.code, 'UPSTREAM_TIMEOUT');
      assert.equal(error.message, `UpstreamError: request to ${base}/endless timed out after 3 s`);
    }
    assert.equal(requests.filter((r) => r === '/endless').length - before, 1, 'one upstream request for the three messages');
    const peak = red.peakRssMb();
    t.diagnostic(`all three answered after ${ms} ms; peak RSS of Node-RED ${peak} MB`);
    assert.ok(ms >= 2_900 && ms < 10_000, `${ms} ms`);
    assert.ok(peak < HEAP_MB, `peak RSS ${peak} MB`);
  });

  it('never prints a token of the URL: not in the reply, not in a logged error or warning', { timeout: TIMEOUT }, async () => {
    const reply = await ask(red.port, '/telegram', 30_000);
    assert.ok(reply);
    const error = JSON.parse(reply.body) as { code: string; message: string };
    assert.equal(error.code, 'UPSTREAM_HTTP');
    assert.equal(error.message, `UpstreamError: ${base}/…/sendMessage answered 502 Bad Gateway`);
    // an error no Catch node handles is logged by Node-RED (the HTTP request gets no reply)
    await ask(red.port, '/telegram-logged', 2_000);
    // a stale copy is sent with a warning in the log
    assert.equal((await ask(red.port, '/telegram-stale', 30_000))?.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 10)); // older than its 1 ms TTL
    const stale = await ask(red.port, '/telegram-stale', 30_000);
    assert.deepEqual(JSON.parse(stale?.body ?? 'null'), { ok: true, result: { is_bot: true } });
    const logged = async (text: string) => {
      for (let i = 0; i < 100 && !red.log.includes(text); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(red.log.includes(text), `the log does not show "${text}":\n${red.log.slice(-2000)}`);
    };
    await logged(`[error] [ttl-fetch:logged] UpstreamError: ${base}/…/sendMessage answered 502 Bad Gateway`);
    await logged(`[warn] [ttl-fetch:stale] ${base}/…/getMe answered 502 Bad Gateway; sending the cached response`);
    for (const secret of [TOKEN, TOKEN.split(':')[1], 'chat_id=42']) {
      assert.ok(!red.log.includes(secret), `the log holds ${secret}`);
      assert.ok(!reply.body.includes(secret), `the reply holds ${secret}`);
    }
    assert.equal(requests.filter((r) => r.startsWith(`/bot${TOKEN}/`)).length, 4, 'the requests carried the token');
  });
});
