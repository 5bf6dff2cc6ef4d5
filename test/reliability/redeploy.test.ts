import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../support/harness';
import { allRows, get, NodeRedProcess, sendJson } from '../support/node-red-process';

const CLIENTS = 16;
const REDEPLOYS = 3;
/** Answers between two redeploys (and after the last one). */
const ANSWERS_PER_ROUND = 400;
/** A request whose answer was lost in a redeploy (its http response node had closed) is given up after this. */
const REQUEST_TIMEOUT = 5_000;
const TIMEOUT = 240_000;
const BIG_VALUE = 1_500_000;
/** Deploys of the modified nodes, alternating between two size limits. */
const MODIFIED_DEPLOYS = 4;

type Outcome = { status: number; body: string } | 'timeout' | 'refused';

/** One GET that gives up after REQUEST_TIMEOUT (a message dropped by a redeploy is never answered). */
function request(port: number, urlPath: string, timeout = REQUEST_TIMEOUT): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve('refused'));
    });
    req.setTimeout(timeout, () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', () => resolve('refused'));
  });
}

interface StoreConfig {
  sizeLimitMb: number;
  evictionPolicy?: string;
}

/**
 * A tab of HTTP endpoints on one deferred cache-store (flushed only at close: flushInterval is an
 * hour): /count (counter +1), /peek (counter +0), /big?n= (cache-set of an n-character string),
 * /del (cache-set delete) and /ready. Errors reach a Catch node and answer 500 with the message.
 */
function flows(store: StoreConfig): object[] {
  const z = 'redeploy';
  const keyed = { store: 'deferredStore', key: 'req.query.k', keyType: 'msg' };
  return [
    { id: z, type: 'tab', label: 'Redeploy' },
    {
      id: 'deferredStore',
      type: 'cache-store',
      name: 'deferred',
      path: 'flow-cache/deferred.sqlite',
      scope: 'shared',
      namespace: 'redeploy',
      defaultTtl: 0,
      sizeLimitMb: store.sizeLimitMb,
      evictionPolicy: store.evictionPolicy ?? 'least-recently-stored',
      durability: 'deferred',
      flushInterval: 3600,
      timezone: '',
    },
    { id: 'readyIn', type: 'http in', z, url: '/ready', method: 'get', wires: [['reply']] },
    { id: 'countIn', type: 'http in', z, url: '/count', method: 'get', wires: [['count1']] },
    { id: 'peekIn', type: 'http in', z, url: '/peek', method: 'get', wires: [['peekZero']] },
    {
      id: 'peekZero',
      type: 'change',
      z,
      rules: [{ t: 'set', p: 'increment', pt: 'msg', to: '0', tot: 'num' }],
      wires: [['count1']],
    },
    { id: 'count1', type: 'counter', z, name: 'hits', ...keyed, step: 1, initial: 0, resetEvery: 'never', wires: [['reply']] },
    { id: 'bigIn', type: 'http in', z, url: '/big', method: 'get', wires: [['bigValue']] },
    {
      id: 'bigValue',
      type: 'function',
      z,
      func: "msg.payload = 'x'.repeat(Number(msg.req.query.n));\nreturn msg;",
      outputs: 1,
      wires: [['bigSet']],
    },
    { id: 'bigSet', type: 'cache-set', z, ...keyed, operation: 'set', value: 'payload', valueType: 'msg', ttl: 0, wires: [['bigDone']] },
    {
      id: 'bigDone',
      type: 'change',
      z,
      rules: [{ t: 'set', p: 'payload', pt: 'msg', to: 'stored', tot: 'str' }],
      wires: [['reply']],
    },
    { id: 'delIn', type: 'http in', z, url: '/del', method: 'get', wires: [['delSet']] },
    { id: 'delSet', type: 'cache-set', z, ...keyed, operation: 'delete', wires: [['bigDone']] },
    { id: 'catchAll', type: 'catch', z, scope: null, uncaught: false, wires: [['failed']] },
    {
      id: 'failed',
      type: 'change',
      z,
      rules: [
        { t: 'set', p: 'statusCode', pt: 'msg', to: '500', tot: 'num' },
        { t: 'set', p: 'payload', pt: 'msg', to: 'error.message', tot: 'msg' },
      ],
      wires: [['reply']],
    },
    { id: 'reply', type: 'http response', z, statusCode: '', headers: {}, wires: [] },
  ];
}

/** A full deploy through the admin API (every node is stopped, then every node started again). */
async function deployFull(proc: NodeRedProcess, flow: object[]): Promise<void> {
  await deploy(proc, flow, 'full');
}

/** A deploy through the admin API: `full`, or `nodes` (only the changed nodes, and those using a changed config node, restart). */
async function deploy(proc: NodeRedProcess, flow: object[], type: 'full' | 'nodes'): Promise<void> {
  const reply = await sendJson(proc.port, 'POST', '/flows', flow, { 'Node-RED-Deployment-Type': type });
  assert.ok(reply.status >= 200 && reply.status < 300, `deploy answered ${reply.status}: ${reply.body}`);
}

/**
 * Waits until the flows answer again after a deploy, through `urlPath`: after a deploy of the
 * modified nodes Node-RED answers the deploy before it starts them again, and a message sent to
 * one of them in between is dropped (never answered), so the path must lead through one of them.
 */
async function ready(proc: NodeRedProcess, urlPath = '/ready'): Promise<void> {
  for (;;) {
    assert.ok(proc.alive, `Node-RED exited:\n${proc.log.slice(-3000)}`);
    const outcome = await request(proc.port, urlPath, 1000);
    if (outcome !== 'timeout' && outcome !== 'refused' && outcome.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What CLIENTS clients sending /count without pause saw. */
class Load {
  sent = 0;
  ok = 0;
  highest = 0;
  /** Sent, never answered (the message was dropped with a node a redeploy stopped). */
  unanswered = 0;
  /** 404 while the http in node was between two deploys: never reached the counter. */
  notRouted = 0;
  errors: string[] = [];
  private stopping = false;
  private readonly done: Promise<void>;
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(private readonly proc: NodeRedProcess) {
    this.done = Promise.all(Array.from({ length: CLIENTS }, () => this.client())).then(() => undefined);
  }

  private async client(): Promise<void> {
    while (!this.stopping) {
      if (!this.proc.alive) {
        this.errors.push(`Node-RED exited:\n${this.proc.log.slice(-3000)}`);
        this.stopping = true;
        for (const w of this.waiters.splice(0)) w.resolve();
        return;
      }
      this.sent++;
      const outcome = await request(this.proc.port, '/count?k=hits');
      if (outcome === 'refused') await new Promise((resolve) => setTimeout(resolve, 10));
      if (outcome === 'timeout' || outcome === 'refused') this.unanswered++;
      else if (outcome.status === 200) {
        this.ok++;
        this.highest = Math.max(this.highest, Number(outcome.body));
      } else if (outcome.status === 404) this.notRouted++;
      else this.errors.push(`${outcome.status} ${outcome.body}`);
      for (const w of [...this.waiters]) {
        if (this.ok >= w.count) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
  }

  /** Resolves once `count` increments have been answered in total (or the load has stopped). */
  answered(count: number): Promise<void> {
    if (this.ok >= count || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.done;
  }
}

/** The count the database file holds for key `hits`, read from the file itself. */
async function countInFile(file: string): Promise<number | undefined> {
  const row = (await allRows(file)).find((r) => r.key.endsWith(':counter:hits'));
  if (!row) return undefined;
  return (JSON.parse(row.value) as { v: { count: number } }).v.count;
}

describe('full redeploys of a deferred store while requests keep coming', () => {
  after(() => NodeRedProcess.killAll());

  it('counter: after three full redeploys under load and a SIGTERM, the file holds the final count', { timeout: TIMEOUT }, async (t) => {
    const userDir = tempDir('redeploy-count-');
    const proc = await NodeRedProcess.prepare(userDir, flows({ sizeLimitMb: 100 }));
    await proc.start();
    const load = new Load(proc);
    for (let round = 1; round <= REDEPLOYS; round++) {
      await load.answered(round * ANSWERS_PER_ROUND);
      await deployFull(proc, flows({ sizeLimitMb: 100 }));
      await ready(proc);
    }
    await load.answered((REDEPLOYS + 1) * ANSWERS_PER_ROUND);
    await load.stop();

    const peek = await get(proc.port, '/peek?k=hits');
    assert.equal(peek.status, 200, peek.body);
    const running = Number(peek.body);
    await proc.kill('SIGTERM');
    const stored = await countInFile(path.join(userDir, 'flow-cache', 'deferred.sqlite'));
    t.diagnostic(
      `${load.sent} sent, ${load.ok} counted and answered, ${load.unanswered} unanswered, ${load.notRouted} not routed, ` +
        `${load.errors.length} errors; running count ${running}, file after SIGTERM ${stored}`,
    );

    assert.deepStrictEqual(load.errors.slice(0, 5), [], 'no request failed with an error');
    // no lost update: every answered increment is in the running count, and nothing was counted twice
    assert.ok(running >= load.ok, `running count ${running}, but ${load.ok} increments were answered`);
    assert.ok(running >= load.highest, `running count ${running}, but a client was told ${load.highest}`);
    assert.ok(running <= load.ok + load.unanswered, `running count ${running} is more than was sent to the counter`);
    // the deferred writes were flushed when Node-RED stopped
    assert.equal(stored, running, `the file holds ${stored} after SIGTERM, the counter said ${running}`);
    assert.doesNotMatch(proc.log, /already open with other settings/);
    assert.doesNotMatch(proc.log, /writes lost/);
  });

  it('a changed sizeLimitMb applies after a full redeploy under load', { timeout: TIMEOUT }, async (t) => {
    const userDir = tempDir('redeploy-limit-');
    // eviction off: a write over the limit is refused rather than making room
    const small = flows({ sizeLimitMb: 1, evictionPolicy: 'none' });
    const large = flows({ sizeLimitMb: 8, evictionPolicy: 'none' });
    const proc = await NodeRedProcess.prepare(userDir, small);
    await proc.start();
    const refused = await get(proc.port, `/big?k=big&n=${BIG_VALUE}`);
    assert.equal(refused.status, 500, `a ${BIG_VALUE}-character value must not fit a 1 MB store: ${refused.body}`);

    const load = new Load(proc);
    await load.answered(ANSWERS_PER_ROUND);
    await deployFull(proc, large);
    await ready(proc);
    await load.answered(2 * ANSWERS_PER_ROUND);
    // and back to the small limit, then up again: each deploy's settings apply
    await deployFull(proc, small);
    await ready(proc);
    await load.answered(3 * ANSWERS_PER_ROUND);
    const stillSmall = await get(proc.port, `/big?k=big&n=${BIG_VALUE}`);
    await deployFull(proc, large);
    await ready(proc);
    await load.answered(4 * ANSWERS_PER_ROUND);
    await load.stop();

    const stored = await get(proc.port, `/big?k=big&n=${BIG_VALUE}`);
    t.diagnostic(
      `${load.ok} increments answered around the deploys; after 1 MB again: ${stillSmall.status}; after 8 MB: ${stored.status} ${stored.body.slice(0, 80)}`,
    );
    assert.equal(stillSmall.status, 500, `the 1 MB limit deployed second must apply: ${stillSmall.body}`);
    assert.equal(stored.status, 200, `the 8 MB limit deployed last must apply: ${stored.body}`);
    assert.equal(stored.body, 'stored');
    assert.doesNotMatch(proc.log, /already open with other settings/);
    await proc.kill('SIGTERM');
  });

  it('deploys of the modified nodes only (the cache-store and its users restart, the HTTP flow keeps running): no request fails, each size limit applies', {
    timeout: TIMEOUT,
  }, async (t) => {
    const userDir = tempDir('redeploy-modified-');
    const small = flows({ sizeLimitMb: 1, evictionPolicy: 'none' });
    const large = flows({ sizeLimitMb: 8, evictionPolicy: 'none' });
    const proc = await NodeRedProcess.prepare(userDir, small);
    await proc.start();
    const load = new Load(proc);
    const probes: string[] = [];
    for (let round = 1; round <= MODIFIED_DEPLOYS; round++) {
      await load.answered(round * (ANSWERS_PER_ROUND / 2));
      const limit = round % 2 === 1 ? 8 : 1;
      await deploy(proc, limit === 8 ? large : small, 'nodes');
      await ready(proc, '/del?k=nothing');
      const probe = await get(proc.port, `/big?k=big&n=${BIG_VALUE}`);
      probes.push(`${limit} MB: ${probe.status}`);
      assert.equal(probe.status, limit === 8 ? 200 : 500, `round ${round}: the ${limit} MB limit just deployed must apply: ${probe.body}`);
      if (probe.status === 200) assert.equal((await get(proc.port, '/del?k=big')).status, 200);
    }
    await load.answered((MODIFIED_DEPLOYS + 1) * (ANSWERS_PER_ROUND / 2));
    await load.stop();
    const peek = await get(proc.port, '/peek?k=hits');
    await proc.kill('SIGTERM');
    const inFile = await countInFile(path.join(userDir, 'flow-cache', 'deferred.sqlite'));
    t.diagnostic(
      `${load.sent} sent, ${load.ok} answered, ${load.unanswered} unanswered, ${load.errors.length} errors; ${probes.join(', ')}; count ${peek.body}, in the file ${inFile}`,
    );
    // the reply path stays up in these deploys: a message reaching the counter while it restarts is counted, never refused
    assert.deepStrictEqual(load.errors.slice(0, 5), [], 'no request failed with an error');
    assert.equal(inFile, Number(peek.body));
    assert.ok(Number(peek.body) >= load.ok);
    assert.doesNotMatch(proc.log, /already open with other settings/);
  });
});
