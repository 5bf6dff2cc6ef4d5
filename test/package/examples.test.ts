// The example flows as files: what importing them (Import > Examples) brings into a user's editor.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

const root = path.join(__dirname, '..', '..', '..');
const examplesDir = path.join(root, 'examples');

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  label?: string;
  [property: string]: unknown;
}

/** Every example file as "<folder>/<file>.json". */
const files = fs
  .readdirSync(examplesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .flatMap((folder) =>
    fs
      .readdirSync(path.join(examplesDir, folder.name))
      .filter((file) => file.endsWith('.json'))
      .map((file) => `${folder.name}/${file}`),
  )
  .sort();

const examples = new Map(files.map((file) => [file, JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as FlowNode[]]));

/** A config node, as Node-RED's import tells them apart: no position on a tab. */
function isConfig(n: FlowNode): boolean {
  return n.type !== 'tab' && n.type !== 'subflow' && !('x' in n) && !('y' in n);
}

/**
 * The Home Assistant node types the examples use, with the schema version of each in
 * node-red-contrib-home-assistant-websocket 0.80 (the version its editor offers to upgrade older nodes to).
 */
const HA_VERSIONS: Record<string, number> = { 'server-state-changed': 6, 'poll-state': 3, 'api-call-service': 7, 'server-events': 3, 'ha-get-entities': 1 };
/** Properties those versions no longer have (an export from an older version still holds them). */
const HA_DEPRECATED = [
  'entityidfilter',
  'entityidfiltertype',
  'haltifstate',
  'halt_if',
  'halt_if_type',
  'halt_if_compare',
  'outputinitially',
  'outputonchanged',
  'state_type',
  'output_only_on_state_change',
  'entity_id',
  'updateinterval',
  'exposeToHomeAssistant',
  'haConfig',
  'entityIdType',
  'target',
  'service_domain',
  'mergecontext',
  'output_location',
  'output_location_type',
];

describe('examples as files', () => {
  test('there are examples, Home Assistant ones among them', () => {
    assert.ok(files.length >= 10, `${files.length} example files`);
    assert.ok(files.filter((file) => file.startsWith('home-assistant/')).length >= 5);
  });

  for (const [file, flow] of examples) {
    test(`${file}: brings its own tab, with a label; every other node is on it or a config node`, () => {
      const tabs = flow.filter((n) => n.type === 'tab');
      assert.equal(tabs.length, 1, `${file} holds ${tabs.length} tab nodes`);
      const [tab] = tabs;
      assert.ok(typeof tab.label === 'string' && tab.label.trim().length >= 10, `${file}: the tab's label says what it is ("${tab.label}")`);
      for (const n of flow) {
        if (n === tab) continue;
        if (isConfig(n)) assert.ok(n.z === undefined || n.z === tab.id, `${file}: config node ${n.type} ${n.id} belongs to another tab (${n.z})`);
        else assert.equal(n.z, tab.id, `${file}: ${n.type} "${n.name ?? n.id}" is not on the example's tab`);
      }
    });
  }

  test('no id is in two examples: importing one after another never finds nodes that already exist', () => {
    const seen = new Map<string, string>();
    const shared: string[] = [];
    for (const [file, flow] of examples) {
      for (const n of flow) {
        const other = seen.get(n.id);
        if (other) shared.push(`${n.id} (${n.type}) in ${other} and ${file}`);
        seen.set(n.id, file);
      }
    }
    assert.deepEqual(shared, []);
  });

  test('every tab label is different, so the imported tabs can be told apart', () => {
    const labels = [...examples.values()].map((flow) => flow.find((n) => n.type === 'tab')?.label);
    assert.deepEqual(
      labels.filter((label, i) => labels.indexOf(label) !== i),
      [],
    );
  });

  test('no two different config nodes share a name', () => {
    const byName = new Map<string, { file: string; node: FlowNode }>();
    const clashes: string[] = [];
    for (const [file, flow] of examples) {
      for (const node of flow.filter(isConfig)) {
        const name = node.name ?? '';
        const other = byName.get(`${node.type}:${name}`);
        if (other && (other.node.id !== node.id || JSON.stringify(other.node) !== JSON.stringify(node))) {
          clashes.push(`${node.type} "${name}": ${other.node.id} in ${other.file}, ${node.id} in ${file}`);
        }
        byName.set(`${node.type}:${name}`, { file, node });
      }
    }
    assert.deepEqual(clashes, []);
  });

  test('the Home Assistant examples bring no server config: each Home Assistant node takes the server the user has', () => {
    for (const file of files.filter((f) => f.startsWith('home-assistant/'))) {
      const flow = examples.get(file) as FlowNode[];
      assert.deepEqual(
        flow.filter((n) => n.type === 'server').map((n) => n.id),
        [],
        `${file} holds a server config node`,
      );
      const haNodes = flow.filter((n) => 'server' in n);
      assert.ok(haNodes.length > 0, `${file} has no Home Assistant node`);
      for (const n of haNodes) assert.equal(n.server, '', `${file}: ${n.type} "${n.name}" names a server`);
    }
    for (const file of files.filter((f) => !f.startsWith('home-assistant/'))) {
      assert.deepEqual(
        (examples.get(file) as FlowNode[]).filter((n) => 'server' in n || n.type === 'server').map((n) => n.type),
        [],
        `${file} needs Home Assistant`,
      );
    }
  });

  test('the Home Assistant nodes are of the current schema (the editor offers no upgrade for them)', () => {
    for (const [file, flow] of examples) {
      for (const n of flow.filter((node) => 'server' in node)) {
        const what = `${file}: ${n.type} "${n.name}"`;
        assert.ok(n.type in HA_VERSIONS, `${what}: a Home Assistant node type the examples do not use yet`);
        assert.equal(n.version, HA_VERSIONS[n.type], `${what}: schema version`);
        assert.deepEqual(
          HA_DEPRECATED.filter((property) => property in n),
          [],
          `${what}: properties of an older schema`,
        );
        if (n.type === 'server-state-changed') {
          const entities = n.entities as Record<string, unknown>;
          for (const kind of ['entity', 'substring', 'regex']) assert.ok(Array.isArray(entities?.[kind]), `${what}: entities.${kind}`);
          assert.ok(!('entityId' in n), `${what}: entityId (version 5) instead of entities`);
        }
        if (n.type === 'poll-state') assert.equal(typeof n.entityId, 'string', `${what}: entityId`);
        if (n.type === 'api-call-service') {
          assert.match(String(n.action), /^[a-z_]+\.[a-z_]+$/, `${what}: action`);
          for (const target of ['floorId', 'areaId', 'deviceId', 'entityId', 'labelId']) assert.ok(Array.isArray(n[target]), `${what}: ${target}`);
          assert.equal(typeof n.blockInputOverrides, 'boolean', `${what}: blockInputOverrides`);
        }
        // get entities writes its results to outputLocation; the others have custom output properties
        if (n.type === 'ha-get-entities') assert.equal(typeof n.outputLocation, 'string', `${what}: outputLocation`);
        else assert.ok(Array.isArray(n.outputProperties), `${what}: outputProperties`);
      }
    }
  });
});
