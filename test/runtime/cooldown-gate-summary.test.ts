// cooldown-gate's summaries across redeploys, and the admin API's reset of a key that holds one: a
// summary leaves the store only in the step that sends it, so each goes out exactly once. Time comes
// from the injected clock; the gate's timers fire at instants of it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { fireDueAlarms, useManualAlarms } from '../../nodes/red/timers';
import { gateNodes } from '../support/gate-flow';
import { allNodes, collect, deploy, helper, lastStatus, ManualClock, node, useRuntime } from '../support/harness';

const nodes = allNodes();
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

interface Summary {
  key: string;
  held: number;
}

/** A tab with a cache-store on `file`, a summary gate "gate1" (1 h per msg.topic) and a helper on each output. */
function gateFlow(file: string, gate: object = {}) {
  return gateNodes(
    { id: 'store1', type: 'cache-store', name: 'test store', path: file, scope: 'flow', timezone: 'UTC' },
    { name: 'summaries', summary: true, ...gate },
  );
}

/** Fires what is due until `done()` holds, for at most `ms` of real time (the store opens and commits in real time). */
async function until(done: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) {
    fireDueAlarms();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('cooldown-gate summaries', () => {
  const clock = new ManualClock();
  const files = useRuntime(clock, '2026-06-01T10:00:00Z');
  before(() => useManualAlarms(true));
  after(() => useManualAlarms(false));

  it('sends each of 1,000 summaries falling due across full redeploys exactly once', { timeout: 120_000 }, async () => {
    const ROUNDS = 4;
    const PER_ROUND = 250;
    const start = clock.ms;
    await helper.load(nodes, gateFlow(files.file));
    let completed = collect('completed');
    const keysOf = (round: number) => Array.from({ length: PER_ROUND }, (_, i) => `sensor.r${round}_${i}`);
    // each round's keys pass a minute after the last round's, and a repeat is held back: due an hour later
    let sent = 0;
    for (let round = 0; round < ROUNDS; round++) {
      clock.ms = start + round * MINUTE;
      for (const topic of keysOf(round)) node('gate1').receive({ topic, payload: 'on' });
      for (const topic of keysOf(round)) node('gate1').receive({ topic, payload: 'still on' });
      sent += 2 * PER_ROUND;
      await completed.until(sent, 30_000);
    }

    const received: NodeMessage[] = [];
    const watch = () => collect('summaries').received;
    let lists = [watch()];
    for (let round = 0; round < ROUNDS; round++) {
      // this round's summaries fall due; the full redeploy lands while they are being sent
      clock.ms = start + round * MINUTE + HOUR;
      fireDueAlarms();
      // 0, 15, 25 and 150 ms later: the closing gate sends some (or none, or all), the new gate the rest
      await new Promise((resolve) => setTimeout(resolve, [0, 15, 25, 150][round]));
      await deploy(gateFlow(files.file, { name: `deploy ${round}` }), 'full');
      lists.push(watch());
      completed = collect('completed');
      // the new gate finds what is due in the store and sends it (its store opens in real time)
      await until(() => lists.reduce((n, list) => n + list.length, 0) >= (round + 1) * PER_ROUND);
    }
    for (const list of lists) received.push(...list);
    const counts = new Map<string, number>();
    for (const msg of received) {
      const key = (msg.summary as Summary).key;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      assert.equal((msg.summary as Summary).held, 1);
      assert.equal(msg.payload, 'still on');
    }
    const all = Array.from({ length: ROUNDS }, (_, round) => keysOf(round)).flat();
    const missing = all.filter((key) => !counts.has(key));
    const twice = [...counts].filter(([, n]) => n > 1).map(([key]) => key);
    assert.deepEqual({ missing: missing.length, twice: twice.length }, { missing: 0, twice: 0 });
    assert.equal(received.length, ROUNDS * PER_ROUND);

    // nothing is left to send: another redeploy and a day later, no summary goes out again
    await deploy(gateFlow(files.file, { name: 'again' }), 'full');
    lists = [watch()];
    clock.advance(24 * HOUR);
    await until(() => false, 500);
    assert.equal(lists[0].length, 0);
  });

  describe("the admin API's reset (the sidebar's Reset cooldown)", () => {
    const FLOW_NS = Buffer.from('flow:tab1', 'utf8').toString('hex');
    const resetPath = (key: string) => `/flow-cache/stores/store1/namespaces/${FLOW_NS}/entries/${encodeURIComponent(`cooldown:${key}`)}`;
    const leak = (payload: string) => ({ topic: 'binary_sensor.kitchen_leak', payload });

    /** Sends messages one after the other, each once the one before has left the gate. */
    async function sendInTurn(completed: ReturnType<typeof collect>, ...msgs: NodeMessage[]): Promise<void> {
      for (const msg of msgs) {
        const before = completed.received.length;
        node('gate1').receive({ ...msg });
        await completed.until(before + 1);
      }
    }

    it('sends what was held back at once, as msg.reset does, and frees the key', async () => {
      await helper.load(nodes, gateFlow(files.file, { cooldown: 4 }));
      const passed = collect('passed');
      const summaries = collect('summaries');
      const completed = collect('completed');
      await sendInTurn(completed, leak('on'), leak('on again'), leak('still on'));
      const answer = await helper.request().delete(resetPath('binary_sensor.kitchen_leak')).expect(200);
      assert.equal(answer.body.deleted, true);
      // sent by the gate before the answer (Node-RED delivers it a turn later)
      const [sent] = await summaries.until(1);
      assert.equal((sent.summary as Summary).held, 2);
      assert.equal(sent.payload, 'still on');
      assert.match(lastStatus('gate1').text ?? '', /summary for binary_sensor\.kitchen_leak: 2 held back/);
      await sendInTurn(completed, leak('on'));
      assert.equal(passed.received.length, 2, 'the key passes again');
      clock.advance(4 * HOUR);
      await until(() => false, 100);
      assert.equal(summaries.received.length, 1, 'not sent again when the cooldown would have ended');
    });

    it("lets another gate send a deleted gate's summary, and keeps it for the next start when no gate runs", async () => {
      await helper.load(nodes, gateFlow(files.file, { cooldown: 4 }));
      let completed = collect('completed');
      await sendInTurn(completed, leak('on'), leak('on again'));
      // the gate is deleted; another gate on the same keys takes over its summary
      const replaced = gateFlow(files.file, { cooldown: 4 }).map((n) => ((n as { id: string }).id === 'gate1' ? { ...n, id: 'gate2' } : n));
      await deploy(replaced, 'full');
      let summaries = collect('summaries');
      await helper.request().delete(resetPath('binary_sensor.kitchen_leak')).expect(200);
      assert.equal(((await summaries.until(1))[0].summary as Summary).held, 1);

      // no gate runs on these keys: the cooldown goes, the summary waits for the next start
      await deploy(gateFlow(files.file, { cooldown: 4 }), 'full');
      completed = collect('completed');
      await sendInTurn(completed, leak('on'), leak('on again'));
      const storeOnly = [
        { id: 'tab1', type: 'tab', label: 'Notifications' },
        { id: 'store1', type: 'cache-store', name: 'test store', path: files.file, scope: 'flow', timezone: 'UTC' },
        { id: 'reader', type: 'cache-get', z: 'tab1', store: 'store1', key: 'x', keyType: 'str', property: 'payload', defaultType: 'none', wires: [[], []] },
      ];
      await deploy(storeOnly, 'full');
      const answer = await helper.request().delete(resetPath('binary_sensor.kitchen_leak')).expect(200);
      assert.equal(answer.body.deleted, true);
      await deploy(gateFlow(files.file, { cooldown: 4 }), 'full');
      summaries = collect('summaries');
      const passed = collect('passed');
      completed = collect('completed');
      await until(() => summaries.received.length > 0);
      assert.equal(summaries.received.length, 1, 'sent once at the start');
      await sendInTurn(completed, leak('on'));
      assert.equal(passed.received.length, 1, 'the cooldown was reset');
    });
  });
});
