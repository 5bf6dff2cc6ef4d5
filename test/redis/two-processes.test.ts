// Two Node-RED processes (the line NODE_RED_LINE names) sharing one real redis-server, which asks
// for a password: the flows are deployed over the admin API with a cache-store on backend redis,
// the password given as the node's credential, and driven through HTTP endpoints. Counters,
// cooldowns and ttl-fetch's single flight hold across both processes; a server killed mid-run
// turns into catchable errors and a "disconnected" status, and its return into working nodes
// without a redeploy; the password shows up in neither the flow file nor the log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eachLimited, get, NodeRedProcess, type Reply, userdir } from '../support/node-red-process';
import { RedisServer } from '../support/redis-server';
import {
  anonymousReply,
  arrived,
  deployFlows,
  escaped,
  keysByDatabase,
  ok,
  type RedisTarget,
  redisFlows,
  startNodeRed,
  statuses,
  Upstream,
  until,
} from './support';

const PASSWORD = 'r3dis-Pw-9fQ2xLk7';
const TIMEOUT = 60_000;

let server: RedisServer;
let upstream: Upstream;
let a: NodeRedProcess;
let b: NodeRedProcess;
/** Every Redis server of the run (the one started late too), stopped at the end. */
const servers: RedisServer[] = [];

/** The database the flows use: not 0, so a client that forgot it after reconnecting would write elsewhere. */
const DATABASE = 3;

function target(redis: RedisServer): RedisTarget {
  return { url: redis.url, password: PASSWORD, database: DATABASE };
}

/** Request i goes to a, then b, then a...: the work is split across both processes. */
function either(i: number): NodeRedProcess {
  return i % 2 === 0 ? a : b;
}

before(async () => {
  server = await RedisServer.start(['--requirepass', PASSWORD]);
  servers.push(server);
  upstream = await Upstream.start();
  [a, b] = await Promise.all([startNodeRed('a'), startNodeRed('b')]);
  const flows = redisFlows(target(server), upstream.port);
  await Promise.all([deployFlows(a, flows), deployFlows(b, flows)]);
});

after(async () => {
  await NodeRedProcess.killAll();
  await upstream?.close();
  for (const s of servers) await s.stop();
});

describe(`two Node-RED processes on one Redis (Node-RED line ${process.env.NODE_RED_LINE === '5' ? '5' : '4'})`, { timeout: 5 * TIMEOUT }, () => {
  it(`both processes run Node-RED ${userdir.nodeRedPackage().version} on Node.js ${userdir.nodeVersion(userdir.nodeRedNode())}`, () => {
    for (const proc of [a, b]) {
      assert.match(proc.log, new RegExp(`Node-RED version: v${userdir.nodeRedPackage().version.replace(/\./g, '\\.')}`));
      assert.match(proc.log, new RegExp(`Node.js {1,2}version: v${userdir.nodeVersion(userdir.nodeRedNode()).replace(/\./g, '\\.')}`));
    }
  });

  it('1,000 concurrent counter increments split across both processes count to exactly 1,000, each count handed out once', { timeout: TIMEOUT }, async () => {
    const replies: Reply[] = new Array(1000);
    await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        replies[i] = await get(either(i).port, '/count?k=visits');
      }),
    );
    const failed = replies.filter((r) => r.status !== 200);
    assert.deepStrictEqual(failed, [], 'every increment succeeds');
    const counts = replies.map((r) => Number(r.body)).sort((x, y) => x - y);
    assert.deepStrictEqual(
      counts,
      Array.from({ length: 1000 }, (_, i) => i + 1),
      'no count lost, none given twice',
    );
    assert.equal(await ok(a, '/peek?k=visits'), '1000');
    assert.equal(await ok(b, '/peek?k=visits'), '1000');
  });

  it('a burst of 100 messages for one key split across both processes lets exactly one through the cooldown-gate', { timeout: TIMEOUT }, async () => {
    const bodies = await Promise.all(Array.from({ length: 100 }, async (_, i) => ok(either(i), '/gate?k=front-door')));
    assert.equal(bodies.filter((body) => body === 'passed').length, 1, 'one passes');
    assert.equal(bodies.filter((body) => body === 'suppressed').length, 99, 'the rest are held back');
    // the cooldown holds in both processes afterwards
    assert.equal(await ok(a, '/gate?k=front-door'), 'suppressed');
    assert.equal(await ok(b, '/gate?k=front-door'), 'suppressed');
  });

  it('50 concurrent ttl-fetch misses for one URL across both processes make one upstream request, and all 50 get its answer', {
    timeout: TIMEOUT,
  }, async () => {
    const wanted = 'weather/today';
    const before = (await arrived(a)) + (await arrived(b));
    // the upstream holds its answer until every message has reached the ttl-fetch node: all 50 are misses then
    upstream.hold();
    const pending = Array.from({ length: 50 }, (_, i) => ok(either(i), `/fetch?p=${wanted}`));
    await upstream.requested(`/${wanted}`);
    await until([a, b], async () => (await arrived(a)) + (await arrived(b)) - before === 50);
    // a moment for the last arrivals to get from the node's input to the flight they join
    await new Promise((resolve) => setTimeout(resolve, 200));
    upstream.release();
    const answers = (await Promise.all(pending)).map((body) => JSON.parse(body) as { body: { path: string; n: number }; hit: boolean });
    assert.equal(upstream.count(`/${wanted}`), 1, 'one request upstream');
    for (const answer of answers) assert.deepStrictEqual(answer.body, { path: `/${wanted}`, n: 1 });
    // both processes had misses that got the answer: one of them waited for the other's request
    const missesA = answers.filter((answer, i) => either(i) === a && !answer.hit).length;
    const missesB = answers.filter((answer, i) => either(i) === b && !answer.hit).length;
    assert.ok(missesA > 0 && missesB > 0, `misses that got the answer: ${missesA} in a, ${missesB} in b`);
    // later messages are hits in either process, still without another request upstream
    assert.equal((JSON.parse(await ok(b, `/fetch?p=${wanted}`)) as { hit: boolean }).hit, true);
    assert.equal(upstream.count(`/${wanted}`), 1);
  });

  it('Redis killed mid-run: catchable errors, failOpen passes, status disconnected; restarted, everything works again without a redeploy', {
    timeout: 2 * TIMEOUT,
  }, async () => {
    // a steady stream through the counter, the fail-open gate and ttl-fetch in both processes
    let done = 0;
    let killed: Promise<void> | undefined;
    const replies: { path: string; reply: Reply }[] = [];
    const paths = Array.from({ length: 300 }, (_, i) => [`/count?k=stream`, `/gate-fail-open?k=stream-${i}`, `/fetch?p=stream/${i}`][i % 3]);
    await eachLimited(
      paths.map((p, i) => ({ p, i })),
      12,
      async ({ p, i }) => {
        const reply = await get(either(i).port, p);
        replies.push({ path: p, reply });
        if (++done === 90) killed = server.kill('SIGKILL');
      },
    );
    await killed;
    const unexpected = replies.filter(({ reply }) => !(reply.status === 200 || (reply.status === 500 && /disconnected/i.test(reply.body))));
    assert.deepStrictEqual(unexpected, [], 'every message either works or fails with a disconnected error a Catch node reports');
    assert.ok(
      replies.some(({ reply }) => reply.status === 500),
      'messages after the kill failed',
    );
    assert.ok(
      replies.filter(({ path: p }) => p.startsWith('/gate-fail-open')).every(({ reply }) => reply.status === 200 && reply.body === 'passed'),
      'the fail-open gate passes every message',
    );

    // while the server is away: every node says so, each kind of message fails or passes as it should
    for (const proc of [a, b]) {
      await until(proc, async () => /disconnected/i.test((await statuses(proc)).count1 ?? ''));
      const seen = await statuses(proc);
      for (const id of ['count1', 'gate1', 'gate2', 'set1', 'get1', 'fetch1']) assert.match(seen[id] ?? '', /disconnected/i, `status of ${id}`);
      const count = await get(proc.port, '/count?k=stream');
      assert.equal(count.status, 500);
      assert.match(count.body, /disconnected/i);
      assert.doesNotMatch(count.body, new RegExp(PASSWORD));
      assert.equal((await get(proc.port, '/gate?k=down')).status, 500, 'a gate without failOpen reports the error');
      assert.equal(await ok(proc, '/gate-fail-open?k=down'), 'passed', 'failOpen passes');
      assert.equal((await get(proc.port, '/fetch?p=down')).status, 500);
      assert.equal((await get(proc.port, '/set?k=down&v=1')).status, 500);
    }

    // the same port again (an empty server: it kept nothing): the clients find it by themselves
    await server.start();
    // set1's last message failed and none came since: its status no longer says disconnected once the server is back
    for (const proc of [a, b]) await until(proc, async () => !/disconnected/i.test((await statuses(proc)).set1 ?? ''));
    for (const proc of [a, b]) await until(proc, async () => (await get(proc.port, '/peek?k=after')).status === 200);
    const counts = await Promise.all(Array.from({ length: 100 }, (_, i) => ok(either(i), '/count?k=after')));
    assert.deepStrictEqual(
      counts.map(Number).sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    // reconnected into the flows' database, not the server's default one
    const keys = await keysByDatabase(server.url, PASSWORD, 'nr-test:', [0, DATABASE]);
    assert.deepStrictEqual(keys[0], []);
    assert.ok(
      keys[DATABASE].some((key) => key.endsWith(':counter:after')),
      keys[DATABASE].join('\n'),
    );
    const gates = await Promise.all(Array.from({ length: 20 }, (_, i) => ok(either(i), '/gate?k=after')));
    assert.equal(gates.filter((g) => g === 'passed').length, 1);
    const fetched = JSON.parse(await ok(a, '/fetch?p=after')) as { body: { n: number }; hit: boolean };
    assert.equal(fetched.hit, false);
    assert.equal((JSON.parse(await ok(b, '/fetch?p=after')) as { hit: boolean }).hit, true);
    for (const proc of [a, b]) {
      // statuses show at most every 250 ms: the latest one comes a little later
      await until(proc, async () => {
        const seen = await statuses(proc);
        return ['count1', 'gate1', 'fetch1'].every((id) => !/disconnected/i.test(seen[id] ?? ''));
      });
      assert.ok(proc.alive);
      assert.deepStrictEqual(escaped(proc.log), [], 'nothing escaped the flows');
      // once per process, under the store's name, not once per message
      const where = `${server.url.replace(/[/.]/g, '\\$&')} db ${DATABASE}`;
      const lost = proc.log.split('\n').filter((line) => new RegExp(`\\[cache-store:shared redis\\] Redis ${where}: disconnected`).test(line));
      assert.equal(lost.length, 1, `the log says once that the server was lost:\n${proc.log.slice(-3000)}`);
      assert.match(proc.log, new RegExp(`\\[cache-store:shared redis\\] Redis ${where}: connected again`));
    }
  });

  it('Redis stops answering (SIGSTOP, the connection stays up): messages fail with catchable errors after the command timeout instead of waiting forever; it goes on: everything works', {
    timeout: TIMEOUT,
  }, async () => {
    server.pause();
    try {
      // sent while nothing answers: each ends (5 s, the command timeout), none hangs
      const during = await Promise.all(
        [a, b].flatMap((proc) => [get(proc.port, '/count?k=stopped'), get(proc.port, '/gate-fail-open?k=stopped'), get(proc.port, '/fetch?p=stopped')]),
      );
      for (const [i, reply] of during.entries()) {
        if (i % 3 === 1) assert.equal(reply.body, 'passed', 'failOpen passes');
        else {
          assert.equal(reply.status, 500, reply.body);
          assert.match(reply.body, /disconnected/i);
        }
      }
      for (const proc of [a, b]) {
        await until(proc, async () => /disconnected/i.test((await statuses(proc)).count1 ?? ''));
        // known not to answer: the next message fails at once
        const count = await get(proc.port, '/count?k=stopped');
        assert.equal(count.status, 500);
        assert.match(count.body, /disconnected/i);
      }
    } finally {
      server.resume();
    }
    for (const proc of [a, b]) await until(proc, async () => (await get(proc.port, '/peek?k=resumed')).status === 200);
    const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => ok(either(i), '/count?k=resumed')));
    assert.deepStrictEqual(
      counts.map(Number).sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    for (const proc of [a, b]) {
      await until(proc, async () => !/disconnected/i.test((await statuses(proc)).count1 ?? ''));
      assert.deepStrictEqual(escaped(proc.log), []);
    }
  });

  it('Redis unreachable when the flows are deployed: errors and a disconnected status, then working once the server starts', { timeout: TIMEOUT }, async () => {
    // a port of its own with nothing listening: a server started and ended at once
    const late = await RedisServer.start(['--requirepass', PASSWORD]);
    servers.push(late);
    await late.kill('SIGKILL');
    const flows = redisFlows({ ...target(late), prefix: 'late:' }, upstream.port);
    await Promise.all([deployFlows(a, flows), deployFlows(b, flows)]);
    for (const proc of [a, b]) {
      const count = await get(proc.port, '/count?k=late');
      assert.equal(count.status, 500);
      assert.match(count.body, /disconnected/i);
      assert.equal(await ok(proc, '/gate-fail-open?k=late'), 'passed');
      await until(proc, async () => /disconnected/i.test((await statuses(proc)).count1 ?? ''));
    }
    await late.start();
    for (const proc of [a, b]) await until(proc, async () => (await get(proc.port, '/peek?k=late')).status === 200);
    const counts = await Promise.all(Array.from({ length: 50 }, (_, i) => ok(either(i), '/count?k=late')));
    assert.deepStrictEqual(
      counts.map(Number).sort((x, y) => x - y),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    for (const proc of [a, b]) assert.deepStrictEqual(escaped(proc.log), []);
  });

  it('the Redis password given as a credential works and is in neither flows.json nor the log', { timeout: TIMEOUT }, async () => {
    // the server refuses a client without it
    assert.match(await anonymousReply(server.port, 'PING'), /^-NOAUTH/);
    for (const proc of [a, b]) {
      // the nodes worked with it (the tests above); the server refuses clients without it
      assert.equal(await ok(proc, '/set?k=pw&v=1'), JSON.stringify({ k: 'pw', v: '1' }));
      const flowFile = fs.readFileSync(path.join(proc.userDir, 'flows.json'), 'utf8');
      assert.ok(flowFile.includes('"backend": "redis"') || flowFile.includes('"backend":"redis"'), 'the flow file holds the Redis store');
      assert.ok(!flowFile.includes(PASSWORD), 'flows.json has no password');
      const credFile = path.join(proc.userDir, 'flows_cred.json');
      assert.ok(fs.existsSync(credFile), 'the credentials are kept apart');
      assert.ok(!fs.readFileSync(credFile, 'utf8').includes(PASSWORD), 'flows_cred.json holds it encrypted');
      const shown = await get(proc.port, '/flows');
      assert.ok(!shown.body.includes(PASSWORD), 'the admin API does not hand it out');
      assert.ok(!proc.log.includes(PASSWORD), 'the log has no password');
    }
  });
});
