// The context store inside a real Node-RED (installed from the tarball, named in settings.js): the Context
// sidebar's admin API lists, refreshes and deletes its values; the cache's file can hold the context too;
// a damaged context file does not stop Node-RED; a switch from localfilesystem keeps the state.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { allRows, get, NodeRedProcess, sendJson } from '../support/node-red-process';
import { CONTEXT_TAB, contextFlow, contextNodeRed, flowCacheContext, localFileSystemContext, ok, switchContextStore } from './context-support';

const TIMEOUT = 180_000;

/** What the Context sidebar shows for a scope: GET /context/<scope>[/<id>] of the admin API, per store. */
async function sidebar(proc: NodeRedProcess, scope: string): Promise<Record<string, { msg: string; format: string }>> {
  const reply = await get(proc.port, `/context/${scope}`);
  assert.equal(reply.status, 200, reply.body);
  return (JSON.parse(reply.body) as Record<string, Record<string, { msg: string; format: string }>>).default ?? {};
}

describe('the context store in Node-RED', () => {
  after(() => NodeRedProcess.killAll());

  it('the Context sidebar lists flow, node and global context, shows changes on refresh, and deletes', { timeout: TIMEOUT }, async () => {
    const proc = await contextNodeRed('ctx-sidebar-', contextFlow(), flowCacheContext());
    await proc.start();
    for (let i = 0; i < 3; i++) await ok(proc, '/inc');
    await ok(proc, '/remember?v=first');
    const flow = await sidebar(proc, `flow/${CONTEXT_TAB}`);
    assert.deepStrictEqual(flow.n, { msg: '3', format: 'number' });
    assert.equal((await sidebar(proc, 'node/remember')).last.msg, 'first');
    const global = await sidebar(proc, 'global');
    assert.equal(global.g.format, 'Object');
    assert.deepStrictEqual(JSON.parse(global.g.msg), { v: 'first', at: '1970-01-01T00:00:00.000Z' });
    // refresh: the sidebar asks again and sees what changed since
    await ok(proc, '/inc');
    await ok(proc, '/remember?v=second');
    assert.equal((await sidebar(proc, `flow/${CONTEXT_TAB}`)).n.msg, '4');
    assert.equal((await sidebar(proc, 'node/remember')).last.msg, 'second');
    // one value, as the sidebar's row shows it
    const one = await get(proc.port, `/context/flow/${CONTEXT_TAB}/n?store=default`);
    assert.equal(one.status, 200, one.body);
    assert.equal((JSON.parse(one.body) as { msg: string }).msg, '4');
    // the sidebar's delete
    const deleted = await sendJson(proc.port, 'DELETE', `/context/node/remember/last?store=default`, {});
    assert.ok(deleted.status === 204 || deleted.status === 200, `${deleted.status} ${deleted.body}`);
    assert.equal((await sidebar(proc, 'node/remember')).last, undefined);
    // what the sidebar showed is what a restart finds
    await proc.kill('SIGTERM');
    await proc.start();
    assert.equal((await sidebar(proc, `flow/${CONTEXT_TAB}`)).n.msg, '4');
    assert.equal((await sidebar(proc, 'node/remember')).last, undefined, 'the delete was written');
    assert.equal(JSON.parse((await sidebar(proc, 'global')).g.msg).v, 'second');
    assert.match(proc.log, /Context store {2}: 'default' \[module=node-red-contrib-flow-cache\/context\]/);
    await proc.kill();
  });

  it('keeps the context of nodes inside a subflow across restarts, and drops a removed node’s context at the deploy that removes it', {
    timeout: TIMEOUT,
  }, async () => {
    const subflow = [
      {
        id: 'sf1',
        type: 'subflow',
        name: 'counting subflow',
        info: '',
        env: [],
        in: [{ x: 0, y: 0, wires: [{ id: 'sfFn' }] }],
        out: [{ x: 0, y: 0, wires: [{ id: 'sfFn', port: 0 }] }],
      },
      {
        id: 'sfFn',
        type: 'function',
        z: 'sf1',
        func: "const s = (context.get('s') || 0) + 1;\ncontext.set('s', s);\nflow.set('sf', s);\nmsg.payload = String(s);\nreturn msg;",
        outputs: 1,
        timeout: 0,
        noerr: 0,
        initialize: '',
        finalize: '',
        libs: [],
        wires: [[]],
      },
      { id: 'subIn', type: 'http in', z: CONTEXT_TAB, url: '/sub', method: 'get', wires: [['sfInst']] },
      { id: 'sfInst', type: 'subflow:sf1', z: CONTEXT_TAB, x: 100, y: 100, wires: [['reply']] },
    ];
    const flows = contextFlow(subflow);
    const proc = await contextNodeRed('ctx-clean-', flows, flowCacheContext());
    const file = path.join(proc.userDir, 'flow-cache', 'context.sqlite');
    const scopesOnDisk = async () =>
      new Set(
        (await allRows(file))
          .map((row) => Buffer.from(row.key.slice(0, row.key.indexOf(':')), 'hex').toString('utf8'))
          .filter((namespace) => namespace.startsWith('context:')),
      );
    await proc.start();
    assert.equal(await ok(proc, '/sub'), '1');
    assert.equal(await ok(proc, '/sub'), '2');
    await ok(proc, '/remember?v=gone-soon');
    await proc.kill('SIGTERM');
    await proc.start(); // Node-RED cleans context at every start: the subflow's node and flow context stay
    assert.equal(await ok(proc, '/sub'), '3');
    assert.ok((await scopesOnDisk()).has('context:remember:ctx'));
    const deploy = await sendJson(
      proc.port,
      'POST',
      '/flows',
      flows.filter((node) => (node as { id: string }).id !== 'remember'),
      {
        'Node-RED-Deployment-Type': 'full',
      },
    );
    assert.ok(deploy.status === 204 || deploy.status === 200, `${deploy.status} ${deploy.body}`);
    await proc.kill('SIGTERM');
    const scopes = await scopesOnDisk();
    assert.ok(!scopes.has('context:remember:ctx'), [...scopes].join(', '));
    for (const kept of ['context:global', 'context:sfInst', 'context:sfFn:sfInst']) assert.ok(scopes.has(kept), `${kept} in ${[...scopes].join(', ')}`);
  });

  it('keeps context in the cache’s own file when config.path names it: counters and context survive a SIGKILL together', { timeout: TIMEOUT }, async () => {
    const counter = [
      { id: 'countIn', type: 'http in', z: CONTEXT_TAB, url: '/count', method: 'get', wires: [['count1']] },
      {
        id: 'count1',
        type: 'counter',
        z: CONTEXT_TAB,
        store: '',
        key: 'req.query.k',
        keyType: 'msg',
        step: 1,
        initial: 0,
        resetEvery: 'never',
        wires: [['reply']],
      },
    ];
    const proc = await contextNodeRed('ctx-shared-', contextFlow(counter), flowCacheContext({ path: 'flow-cache/cache.sqlite' }));
    await proc.start();
    for (let i = 0; i < 3; i++) {
      await ok(proc, '/count?k=door');
      await ok(proc, '/inc-ack');
    }
    await proc.kill('SIGKILL');
    await proc.start();
    assert.equal(await ok(proc, '/count?k=door'), '4');
    assert.equal(JSON.parse(await ok(proc, '/read?k=m')), 3);
    const files = fs.readdirSync(path.join(proc.userDir, 'flow-cache'));
    assert.ok(files.includes('cache.sqlite'));
    assert.ok(!files.includes('context.sqlite'), 'one file for both');
    assert.doesNotMatch(proc.log, /already open with other settings/);
    await proc.kill();
  });

  it('starts on a damaged context file: moved aside, logged, the flows run on an empty one', { timeout: TIMEOUT }, async () => {
    const proc = await contextNodeRed('ctx-damaged-', contextFlow(), flowCacheContext());
    await proc.start();
    for (let i = 0; i < 20; i++) await ok(proc, `/remember?v=${'x'.repeat(2000)}${i}`);
    for (let i = 0; i < 50; i++) await ok(proc, '/inc');
    await proc.kill('SIGTERM');
    const file = path.join(proc.userDir, 'flow-cache', 'context.sqlite');
    fs.truncateSync(file, 4096); // cut short, as a power cut during a write can leave it
    fs.rmSync(`${file}-wal`, { force: true });
    proc.log = '';
    await proc.start();
    assert.match(proc.log, /context\.sqlite is damaged .* moved it to .*context\.sqlite\.corrupt-/);
    assert.equal(await ok(proc, '/inc'), '1');
    await proc.kill();
  });

  it('a switch from localfilesystem with importFrom keeps the count, copies once, and logs what it copied', { timeout: TIMEOUT }, async () => {
    const proc = await contextNodeRed('ctx-switch-', contextFlow(), localFileSystemContext());
    await proc.start();
    for (let i = 0; i < 50; i++) await ok(proc, '/inc');
    await ok(proc, '/remember?v=kept');
    await proc.kill('SIGTERM'); // localfilesystem writes its files when Node-RED stops
    switchContextStore(proc, flowCacheContext({ importFrom: 'localfilesystem' }));
    proc.log = '';
    await proc.start();
    assert.equal(JSON.parse(await ok(proc, '/read?k=n')), 50);
    assert.match(proc.log, /copied 3 keys of 3 scopes from 3 localfilesystem context files in .*context/);
    assert.equal(await ok(proc, '/inc'), '51');
    await proc.kill('SIGTERM');
    proc.log = '';
    await proc.start();
    assert.equal(JSON.parse(await ok(proc, '/read?k=n')), 51, 'the files are not copied over newer state again');
    assert.doesNotMatch(proc.log, /copied/);
    await proc.kill();
  });
});
