// Texts in the runtime's language, through Node-RED's own i18n (the running line's @node-red/util, set to
// German): each text is asked of Node-RED once and filled here for every message after that, with the
// values where the translation puts them; a status made per message is formatted only when it shows.
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { Node, NodeAPI, NodeStatus } from '../../nodes/red/api';
import { MODULE, text } from '../../nodes/red/i18n';
import { StatusReporter } from '../../nodes/red/status';
import { nodeRedLine } from '../support/harness';

interface NodeRedI18n {
  init(settings: { lang?: string }): void;
  registerMessageCatalog(namespace: string, dir: string, file: string): Promise<void>;
  _(id: string, substitutions?: Record<string, unknown>): string;
}

const runtimeDir = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5' : 'node-red'));
const { i18n } = require(require.resolve('@node-red/util', { paths: [runtimeDir] })) as { i18n: NodeRedI18n };
const locales = path.join(__dirname, '..', '..', '..', 'locales');

/** A runtime whose RED._ is Node-RED's, counting the calls. */
function countingRuntime(): { red: NodeAPI; asked: string[] } {
  const asked: string[] = [];
  const red = {
    _: (id: string, substitutions?: Record<string, unknown>) => {
      asked.push(id);
      return i18n._(id, substitutions);
    },
  } as unknown as NodeAPI;
  return { red, asked };
}

describe(`texts in the runtime's language (Node-RED ${nodeRedLine === '5' ? '5' : '4.1'}, German)`, () => {
  before(async () => {
    i18n.init({ lang: 'de' });
    await i18n.registerMessageCatalog(`${MODULE}/cooldown-gate`, locales, 'cooldown-gate.json');
  });

  it('fills the German status of every message with its own values, asking Node-RED once', () => {
    const { red, asked } = countingRuntime();
    const first = text(red, 'cooldown-gate', 'status.suppressed', { key: 'Haustür', remaining: '59 min', passed: 1, suppressed: 2 });
    assert.equal(first, 'Haustür: noch 59 min (1 durchgelassen / 2 zurückgehalten)');
    for (let i = 3; i < 100; i++) {
      const shown = text(red, 'cooldown-gate', 'status.suppressed', { key: `Fenster ${i}`, remaining: `${i} s`, passed: i, suppressed: i * 2 });
      assert.equal(shown, `Fenster ${i}: noch ${i} s (${i} durchgelassen / ${i * 2} zurückgehalten)`);
    }
    assert.deepEqual(asked, [`${MODULE}/cooldown-gate:cooldown-gate.status.suppressed`]);
  });

  it('puts a value in as it is, even one that looks like a placeholder', () => {
    const { red } = countingRuntime();
    assert.equal(
      text(red, 'cooldown-gate', 'status.passed', { key: '__suppressed__', passed: 4, suppressed: 0 }),
      '__suppressed__ durchgelassen (4 durchgelassen / 0 zurückgehalten)',
    );
  });

  it('uses English while a catalogue is not registered, and the translation once it is', async () => {
    const { red, asked } = countingRuntime();
    const english = text(red, 'counter', 'status.reset', { key: 'Bewegung', count: 0 });
    assert.match(english, /Bewegung/);
    assert.doesNotMatch(english, /^counter\.status/);
    await i18n.registerMessageCatalog(`${MODULE}/counter`, locales, 'counter.json');
    const german = i18n._(`${MODULE}/counter:counter.status.reset`, { key: 'Bewegung', count: 0 });
    assert.notEqual(german, english, 'the German text differs from the English one');
    assert.equal(german, 'Bewegung: 0 (zurückgesetzt)');
    assert.equal(text(red, 'counter', 'status.reset', { key: 'Bewegung', count: 0 }), german);
    assert.equal(asked.length, 2, 'asked again after the miss, then kept');
    text(red, 'counter', 'status.reset', { key: 'Bewegung', count: 0 });
    assert.equal(asked.length, 2);
  });

  it('a status set for every message of a burst is made once when it shows, and the latest one shows', () => {
    const shown: NodeStatus[] = [];
    const node = { status: (s: NodeStatus) => shown.push(s) } as unknown as Node;
    const interval = StatusReporter.intervalMs;
    StatusReporter.intervalMs = 60_000;
    const reporter = new StatusReporter(node);
    let made = 0;
    try {
      for (let i = 1; i <= 1000; i++) {
        reporter.set(() => {
          made++;
          return { fill: i === 1000 ? 'red' : 'green', shape: 'dot', text: `message ${i}` };
        });
      }
      assert.equal(made, 1, 'only the first of the burst showed at once');
      assert.deepEqual(shown, [{ fill: 'green', shape: 'dot', text: 'message 1' }]);
      reporter.liftFailure(); // reads the latest status: the 1000th, red, so it is lifted
      assert.equal(made, 2);
      assert.deepEqual(shown.at(-1), {});
    } finally {
      reporter.clear();
      StatusReporter.intervalMs = interval;
    }
  });
});
