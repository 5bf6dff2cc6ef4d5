import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../support/harness';
import { eachLimited, endpointFlow, get, integrityCheck, NodeRedProcess, type Reply } from '../support/node-red-process';

const ROUNDS = 5;
const CLIENTS = 16;
const TIMEOUT = 180_000;

/**
 * Fires requests from CLIENTS concurrent clients and SIGKILLs Node-RED once `killAfter` answers
 * have arrived, while the other clients' requests are still in flight. `onReply` sees every
 * answer that arrived (those are the acknowledged writes).
 */
async function burstThenKill(
  proc: NodeRedProcess,
  killAfter: number,
  nextPath: () => string,
  onReply: (urlPath: string, reply: Reply) => void,
): Promise<{ answered: number; interrupted: number }> {
  let answered = 0;
  let interrupted = 0;
  let killing: Promise<void> | undefined;
  const client = async () => {
    while (!killing) {
      const urlPath = nextPath();
      let reply: Reply;
      try {
        reply = await get(proc.port, urlPath);
      } catch (error) {
        if (!killing) throw error;
        interrupted++; // in flight when the process died: not acknowledged
        return;
      }
      onReply(urlPath, reply);
      answered++;
      if (answered >= killAfter && !killing) killing = proc.kill('SIGKILL');
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  await killing;
  return { answered, interrupted };
}

function databaseOf(proc: NodeRedProcess): string {
  return path.join(proc.userDir, 'flow-cache', 'cache.sqlite');
}

describe('SIGKILL in the middle of a burst of writes, then a restart on the same userDir', () => {
  after(() => NodeRedProcess.killAll());

  it('counter: the count is at least the highest count any client received, and never more than was sent', { timeout: TIMEOUT }, async (t) => {
    const proc = await NodeRedProcess.prepare(tempDir('crash-counter-'), endpointFlow());
    let highest = 0;
    let sent = 0;
    for (let round = 0; round <= ROUNDS; round++) {
      await proc.start();
      if (round > 0) {
        const peek = await get(proc.port, '/peek?k=hits');
        assert.equal(peek.status, 200, peek.body);
        const count = Number(peek.body);
        assert.ok(count >= highest, `round ${round}: count ${count} after the restart, but a client was told ${highest}`);
        assert.ok(count <= sent, `round ${round}: count ${count} after the restart, but only ${sent} increments were sent`);
      }
      if (round === ROUNDS) break;
      const { answered, interrupted } = await burstThenKill(
        proc,
        150 + round * 40,
        () => {
          sent++;
          return '/count?k=hits';
        },
        (_path, reply) => {
          assert.equal(reply.status, 200, reply.body);
          highest = Math.max(highest, Number(reply.body));
        },
      );
      assert.ok(answered >= 150, `only ${answered} answers before the kill`);
      t.diagnostic(`round ${round}: ${answered} answered, ${interrupted} in flight at the kill, highest count ${highest}`);
      assert.equal(await integrityCheck(databaseOf(proc)), 'ok');
    }
    await proc.kill();
  });

  it('cache-set: every value whose response arrived is readable after the restart', { timeout: TIMEOUT }, async () => {
    const proc = await NodeRedProcess.prepare(tempDir('crash-set-'), endpointFlow());
    const acknowledged = new Map<string, string>();
    let sequence = 0;
    for (let round = 0; round <= ROUNDS; round++) {
      await proc.start();
      await eachLimited([...acknowledged], 8, async ([key, value]) => {
        const reply = await get(proc.port, `/get?k=${key}`);
        assert.equal(reply.status, 200, `round ${round}: ${key} was acknowledged before the kill but reads as ${reply.status} ${reply.body}`);
        assert.equal(reply.body, value);
      });
      if (round === ROUNDS) break;
      const before = acknowledged.size;
      await burstThenKill(
        proc,
        150 + round * 40,
        () => `/set?k=r${round}-${sequence++}&v=${randomBytes(8).toString('hex')}`,
        (urlPath, reply) => {
          assert.equal(reply.status, 200, reply.body);
          const query = new URLSearchParams(urlPath.split('?')[1]);
          assert.equal((JSON.parse(reply.body) as { v: string }).v, query.get('v'));
          acknowledged.set(query.get('k') as string, query.get('v') as string);
        },
      );
      assert.ok(acknowledged.size - before >= 150);
      assert.equal(await integrityCheck(databaseOf(proc)), 'ok');
    }
    await proc.kill();
  });

  it('cooldown-gate: a key that passed before the kill is still cooling down after the restart', { timeout: TIMEOUT }, async () => {
    const proc = await NodeRedProcess.prepare(tempDir('crash-gate-'), endpointFlow());
    const passed = new Set<string>();
    let sequence = 0;
    for (let round = 0; round <= ROUNDS; round++) {
      await proc.start();
      await eachLimited([...passed], 8, async (key) => {
        const reply = await get(proc.port, `/gate?k=${key}`);
        assert.equal(reply.status, 200, reply.body);
        assert.equal(reply.body, 'suppressed', `round ${round}: ${key} passed before the kill but passes again after the restart`);
      });
      if (round === ROUNDS) break;
      const before = passed.size;
      await burstThenKill(
        proc,
        150 + round * 40,
        () => `/gate?k=alarm-r${round}-${sequence++}`,
        (urlPath, reply) => {
          assert.equal(reply.status, 200, reply.body);
          assert.equal(reply.body, 'passed', `a fresh key must pass: ${urlPath}`);
          passed.add(new URLSearchParams(urlPath.split('?')[1]).get('k') as string);
        },
      );
      assert.ok(passed.size - before >= 150);
      assert.equal(await integrityCheck(databaseOf(proc)), 'ok');
    }
    await proc.kill();
  });
});
