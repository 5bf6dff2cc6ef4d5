// The flow most cooldown-gate tests run: a tab, a cache-store, the gate "gate1" (1 h per msg.topic,
// failing closed) and a helper on each of its three outputs, with a Catch and a Complete node.
import { catchAndComplete, collect } from './harness';

/** The tab with `storeNode` and the gate, `gate` overriding its settings. */
export function gateNodes(storeNode: object, gate: object = {}): object[] {
  return [
    { id: 'tab1', type: 'tab', label: 'Notifications' },
    storeNode,
    {
      id: 'gate1',
      type: 'cooldown-gate',
      z: 'tab1',
      store: 'store1',
      key: 'topic',
      keyType: 'msg',
      cooldown: 1,
      cooldownUnits: 'hours',
      failOpen: false,
      ...gate,
      wires: [['passed'], ['suppressed'], ['summaries']],
    },
    { id: 'passed', type: 'helper', z: 'tab1' },
    { id: 'suppressed', type: 'helper', z: 'tab1' },
    { id: 'summaries', type: 'helper', z: 'tab1' },
    ...catchAndComplete('tab1', ['gate1']),
  ];
}

/** What reaches the gate's three outputs, the Catch node and the Complete node. */
export function gateOutputs() {
  return {
    passed: collect('passed'),
    suppressed: collect('suppressed'),
    summaries: collect('summaries'),
    caught: collect('caught'),
    completed: collect('completed'),
  };
}
