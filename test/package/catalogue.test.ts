// The message catalogues against the code that reads them: every key the editor (node .html files, the
// shared editor script) or the runtime (nodes/**/*.ts) asks for is in the en-US and the de catalogue,
// every catalogue key is asked for somewhere, de has exactly the keys of en-US with the same
// placeholders, and every node has its help in both languages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

const root = path.join(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const MODULE: string = pkg.name;
/** The node sets (one per node type); each has locales/<lang>/<set>.json and .html. */
const SETS: string[] = Object.keys(pkg['node-red'].nodes);
const LANGS = ['en-US', 'de'];
/** The shared editor script's own texts live in this set's catalogue, under SHARED_EDITOR; the runtime's shared texts under SHARED_RUNTIME. */
const SHARED_SET = 'cache-store';
const SHARED_EDITOR = 'cache-store.editor';
const SHARED_RUNTIME = 'cache-store.runtime';
const EDITOR_SCRIPT = 'resources/flow-cache-editor.js';

type Catalogue = Record<string, unknown>;

/** A use of a catalogue text: `set` is the node set (or 'node-red' for Node-RED's own nodes); a key ending in "." is a prefix completed at run time. */
interface Use {
  set: string;
  key: string;
  where: string;
}

function read(file: string): string {
  return fs.readFileSync(path.join(root, file), 'utf8');
}

function catalogue(lang: string, set: string): Catalogue {
  return JSON.parse(read(`locales/${lang}/${set}.json`));
}

/** Every leaf key of a catalogue ("cache-get.label.node") with its text. */
function leaves(object: unknown, prefix = ''): Map<string, unknown> {
  const found = new Map<string, unknown>();
  if (object !== null && typeof object === 'object' && !Array.isArray(object)) {
    for (const [name, value] of Object.entries(object)) {
      for (const [key, text] of leaves(value, prefix === '' ? name : `${prefix}.${name}`)) found.set(key, text);
    }
  } else {
    found.set(prefix, object);
  }
  return found;
}

/** Whether `key` (or, for a prefix, at least one key below it) is a non-empty text of the catalogue. */
function present(cat: Catalogue, key: string): boolean {
  const all = leaves(cat);
  if (key.endsWith('.')) return [...all.keys()].some((k) => k.startsWith(key));
  const text = all.get(key);
  return typeof text === 'string' && text.trim() !== '';
}

/** Whether a catalogue key is asked for by one of `uses` (exactly, or below a prefix). */
function used(set: string, key: string, uses: Use[]): boolean {
  // "<key>_plural" is the form i18next picks for a count other than 1 where "<key>" is asked for with a count
  const base = key.endsWith('_plural') ? key.slice(0, -'_plural'.length) : key;
  return uses.some((u) => u.set === set && (u.key === base || (u.key.endsWith('.') && base.startsWith(u.key))));
}

/** "<module>/<set>:<key>" or "node-red:<key>" to a use; a key without namespace belongs to `ownSet`. */
function qualified(ref: string, ownSet: string, where: string): Use {
  const colon = ref.indexOf(':');
  if (colon === -1) return { set: ownSet, key: ref, where };
  const ns = ref.slice(0, colon);
  const key = ref.slice(colon + 1);
  if (ns === 'node-red') return { set: 'node-red', key, where };
  if (ns.startsWith(`${MODULE}/`)) return { set: ns.slice(MODULE.length + 1), key, where };
  return { set: `unknown namespace ${ns}`, key, where };
}

/** A string argument: 'text', or 'prefix.' + something (then the key is the prefix). */
const ARGUMENT = `'([^']*)'(\\s*\\+)?`;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * The catalogue keys editor code asks for (a node's .html, or a script in resources/): data-i18n
 * attributes; this._() / node._() / RED._(); FlowCacheEditor.text() (the shared editor texts) and
 * FlowCacheEditor.nodeText('<set>', ...); and calls of a local helper that puts a fixed prefix before its
 * argument: `function t(id) { return RED._(MODULE + '/<set>:<prefix>' + id); }` or
 * `function text(id) { return FlowCacheEditor.nodeText('<set>', id); }`. A key without namespace
 * belongs to `ownSet` (the node whose .html it is).
 */
function editorUses(ownSet: string, source: string, where = `nodes/${ownSet}.html`): Use[] {
  const uses: Use[] = [];
  for (const match of source.matchAll(/data-i18n="([^"]+)"/g)) {
    for (const part of match[1].split(';')) uses.push(qualified(part.replace(/^\[[^\]]*\]/, '').trim(), ownSet, where));
  }
  for (const match of source.matchAll(new RegExp(`(?:this|node|RED)\\._\\(\\s*${ARGUMENT}`, 'g'))) uses.push(qualified(match[1], ownSet, where));
  for (const match of source.matchAll(new RegExp(`FlowCacheEditor\\.text\\(\\s*${ARGUMENT}`, 'g'))) {
    uses.push({ set: SHARED_SET, key: `${SHARED_EDITOR}.${match[1]}`, where });
  }
  for (const match of source.matchAll(new RegExp(`FlowCacheEditor\\.nodeText\\(\\s*'([^']+)',\\s*${ARGUMENT}`, 'g'))) {
    uses.push({ set: match[1], key: `${match[1]}.${match[2]}`, where });
  }
  const module = `(?:MODULE \\+ '|'${escapeRegExp(MODULE)})`;
  const helpers = [
    ...[
      ...source.matchAll(
        new RegExp(`function (\\w+)\\((\\w+)[^)]*\\)\\s*\\{\\s*return RED\\._\\(\\s*${module}/([a-z-]+):([A-Za-z0-9_.-]*)' \\+ (\\w+)\\b`, 'g'),
      ),
    ]
      .filter((m) => m[2] === m[5])
      .map((m) => ({ name: m[1], set: m[3], prefix: m[4] })),
    ...[...source.matchAll(/function (\w+)\((\w+)[^)]*\)\s*\{\s*return FlowCacheEditor\.nodeText\(\s*'([a-z-]+)',\s*(\w+)\b/g)]
      .filter((m) => m[2] === m[4])
      .map((m) => ({ name: m[1], set: m[3], prefix: `${m[3]}.` })),
  ];
  for (const helper of helpers) {
    for (const match of source.matchAll(new RegExp(`(?<![.\\w])${helper.name}\\(\\s*${ARGUMENT}`, 'g'))) {
      uses.push({ set: helper.set, key: `${helper.prefix}${match[1]}`, where });
    }
  }
  return uses.filter((u) => u.key !== '');
}

/**
 * The keys the shared editor script asks for: as any editor script, and `nodeText(type, ...)` for each
 * set in `flowSets` (the flow nodes, whose palette label it makes).
 */
function sharedScriptUses(script: string, flowSets: string[], where = EDITOR_SCRIPT): Use[] {
  const uses = editorUses('', script, where);
  for (const match of script.matchAll(new RegExp(`(?<![.\\w])nodeText\\(\\s*type,\\s*${ARGUMENT}`, 'g'))) {
    for (const set of flowSets) uses.push({ set, key: `${set}.${match[1]}`, where });
  }
  return uses;
}

/**
 * Keys the runtime code (nodes/**\/*.ts) asks for by name, through the helpers of nodes/red/i18n.ts:
 * `text(RED, '<set>', '<key>')`, `shared('<key>')` (the runtime's shared texts), a function made by
 * `textsOf(RED, '<set>')` and a local function that returns `text(..., '<set>', <its argument>)`.
 */
function runtimeUses(source: string, where: string): Use[] {
  const uses: Use[] = [];
  for (const match of source.matchAll(new RegExp(`\\btext\\(\\s*\\w+,\\s*'([a-z-]+)',\\s*${ARGUMENT}`, 'g'))) {
    uses.push({ set: match[1], key: `${match[1]}.${match[2]}`, where });
  }
  for (const match of source.matchAll(new RegExp(`\\bshared\\(\\s*${ARGUMENT}`, 'g')))
    uses.push({ set: SHARED_SET, key: `${SHARED_RUNTIME}.${match[1]}`, where });
  const bound = [
    ...[...source.matchAll(/\b(\w+) = textsOf\(\s*\w+,\s*'([a-z-]+)'\)/g)].map((m) => [m[1], m[2]]),
    ...[...source.matchAll(/function (\w+)\((\w+)[^)]*\)[^{]*\{\s*return text\(\s*\w+,\s*'([a-z-]+)',\s*(\w+)\b/g)]
      .filter((m) => m[2] === m[4])
      .map((m) => [m[1], m[3]]),
  ];
  for (const [name, set] of bound) {
    for (const match of source.matchAll(new RegExp(`(?<![.\\w])${name}\\(\\s*${ARGUMENT}`, 'g'))) uses.push({ set, key: `${set}.${match[1]}`, where });
  }
  return uses;
}

/** What runtime code names: its quoted literals ('hit', 'errors.url', `io.${...}` as "io.") and its words (identifiers included). */
function runtimeLiterals(source: string): Set<string> {
  const found = new Set<string>();
  for (const match of source.matchAll(/(['"`])([A-Za-z0-9_.-]+)(\$\{|\1)/g)) found.add(match[2]);
  for (const match of source.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) found.add(match[0]);
  return found;
}

/**
 * Whether a key is referenced by runtime code in a way the finder above cannot follow. Its path below
 * the set appears there as a literal (a key chosen by a condition: `tf(a ? 'errors.x' : 'errors.y')`),
 * or the key is in a section the runtime reads (named there as '<section>.' or '<section>.<name>') and
 * its last part is named there: a key an error carries (`{ text: 'unstorable' }`, `io.${action}` with
 * 'create' among the actions, `option.${name}`).
 */
function runtimeReferenced(key: string, literals: Set<string>): boolean {
  const parts = key.split('.');
  if (literals.has(parts.slice(1).join('.'))) return true;
  for (let depth = 2; depth < parts.length; depth++) {
    const section = `${parts.slice(1, depth).join('.')}.`;
    if (![...literals].some((l) => l.startsWith(section))) continue;
    if (literals.has(parts[parts.length - 1])) return true;
  }
  return false;
}

function filesUnder(dir: string, extension: string): string[] {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) return [];
  return (fs.readdirSync(full, { recursive: true }) as string[])
    .filter((file) => file.endsWith(extension) && !file.endsWith('.d.ts'))
    .map((file) => path.join(dir, file).split(path.sep).join('/'));
}

/** Sets whose palette label the shared editor script makes (the flow nodes: palette entry, key, store). */
function flowSets(): string[] {
  return SETS.filter((set) => /FlowCacheEditor\.paletteLabel\(/.test(read(`nodes/${set}.html`)));
}

/** Keys Node-RED itself asks a flow node's catalogue for: its palette category's name. */
function nodeRedUses(): Use[] {
  const categories = new Set(flowSets().map((set) => /\bcategory: '([^']+)'/.exec(read(`nodes/${set}.html`))?.[1]));
  assert.equal(categories.size, 1, `the flow nodes name one palette category: ${[...categories].join(', ')}`);
  const [category] = [...categories];
  assert.ok(category, 'the flow nodes name their palette category');
  // Node-RED looks up "<set>:palette.label.<category with _ for spaces>" for whichever set adds the category first.
  const key = `palette.label.${category.replace(/[^-0-9A-Z_a-z\u0080-\uffff]/g, '_')}`;
  return flowSets().map((set) => ({ set, key, where: 'Node-RED palette category' }));
}

function runtimeSources(): string[] {
  return filesUnder('nodes', '.ts').map(read);
}

function allUses(): Use[] {
  const uses: Use[] = [];
  for (const set of SETS) uses.push(...editorUses(set, read(`nodes/${set}.html`)));
  uses.push(...sharedScriptUses(read(EDITOR_SCRIPT), flowSets()));
  for (const file of filesUnder('resources', '.js').filter((f) => f !== EDITOR_SCRIPT)) uses.push(...editorUses('', read(file), file));
  for (const file of filesUnder('nodes', '.ts')) uses.push(...runtimeUses(read(file), file));
  uses.push(...nodeRedUses());
  return uses;
}

/** Node-RED's own node catalogue (namespace "node-red") of an installed line. */
function coreCatalogue(packageDir: string, lang: string): Catalogue {
  return JSON.parse(fs.readFileSync(path.join(packageDir, 'locales', lang, 'messages.json'), 'utf8'));
}

function coreNodesDirs(): string[] {
  const four = path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [root] }));
  const fiveRoot = path.dirname(require.resolve('node-red5/package.json', { paths: [root] }));
  const five = path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [fiveRoot] }));
  return [four, five];
}

/** The __name__ placeholders and the HTML tags of a text, sorted, for comparing a translation with its original. */
function shape(text: unknown): { placeholders: string[]; tags: string[] } {
  const value = String(text);
  return {
    placeholders: [...value.matchAll(/__(\w+)__/g)].map((m) => m[1]).sort(),
    tags: [...value.matchAll(/<\/?([a-z0-9]+)/gi)].map((m) => m[0].toLowerCase()).sort(),
  };
}

describe('message catalogues', () => {
  const uses = allUses();

  test('each node set has a catalogue and help in every language, with one section named after it', () => {
    for (const lang of LANGS) {
      for (const set of SETS) {
        const cat = catalogue(lang, set);
        assert.ok(set in cat, `locales/${lang}/${set}.json has a "${set}" section`);
        const extra = Object.keys(cat).filter((section) => section !== set && section !== 'palette');
        assert.deepEqual(extra, [], `locales/${lang}/${set}.json: sections of other nodes would resolve only by luck`);
        assert.match(read(`locales/${lang}/${set}.html`), new RegExp(`data-help-name="${set}"`), `locales/${lang}/${set}.html`);
      }
    }
  });

  for (const lang of LANGS) {
    test(`every key the editor and the runtime ask for is in the ${lang} catalogue`, () => {
      const missing = uses
        .filter((u) => u.set !== 'node-red')
        .filter((u) => !SETS.includes(u.set) || !present(catalogue(lang, u.set), u.key))
        .map((u) => `${u.set}:${u.key} (${u.where})`);
      assert.deepEqual([...new Set(missing)], [], `keys missing from locales/${lang}`);
    });
  }

  test("keys of Node-RED's own catalogue exist in the en-US and de catalogues of Node-RED 4.1 and 5", () => {
    const core = uses.filter((u) => u.set === 'node-red');
    assert.ok(core.length > 0, 'the dialogs use Node-RED\'s "Name" label');
    for (const dir of coreNodesDirs()) {
      for (const lang of LANGS) {
        const cat = coreCatalogue(dir, lang);
        const missing = core.filter((u) => !present(cat, u.key)).map((u) => `${u.key} (${u.where})`);
        assert.deepEqual(missing, [], `${dir} ${lang}`);
      }
    }
  });

  test('every en-US catalogue key is used by the editor, the runtime or Node-RED', () => {
    const literals = new Set(runtimeSources().flatMap((source) => [...runtimeLiterals(source)]));
    const unused: string[] = [];
    for (const set of SETS) {
      for (const key of leaves(catalogue('en-US', set)).keys()) {
        if (!used(set, key, uses) && !runtimeReferenced(key, literals)) unused.push(`${set}:${key}`);
      }
    }
    assert.deepEqual(unused, [], 'catalogue keys nothing asks for');
  });

  test('de has exactly the keys of en-US, each translated with the same placeholders and markup', () => {
    for (const set of SETS) {
      const english = leaves(catalogue('en-US', set));
      const german = leaves(catalogue('de', set));
      assert.deepEqual([...german.keys()].sort(), [...english.keys()].sort(), `locales/de/${set}.json has the keys of en-US`);
      for (const [key, text] of english) {
        const translated = german.get(key);
        assert.equal(typeof translated, 'string', `de ${set}:${key} is a text`);
        assert.notEqual((translated as string).trim(), '', `de ${set}:${key} is not empty`);
        assert.deepEqual(shape(translated), shape(text), `de ${set}:${key} keeps the placeholders and markup of "${text}"`);
        // A text left in English: the same words as en-US (a file name, a URL or "__key__: __count__" may stay as they are).
        const words = String(text)
          .replace(/__\w+__/g, '')
          .split(/\s+/)
          .filter((word) => /^[a-z]+$/.test(word));
        assert.ok(translated !== text || words.length < 3, `de ${set}:${key} is still the English "${text}"`);
      }
    }
  });

  test('every node has its help in de: the same sections and message properties as en-US, in German', () => {
    for (const set of SETS) {
      const english = read(`locales/en-US/${set}.html`);
      const german = read(`locales/de/${set}.html`);
      const headings = (html: string) => [...html.matchAll(/<h3>/g)].length;
      assert.equal(headings(german), headings(english), `${set}: as many sections in de as in en-US`);
      const properties = (html: string) => [...html.matchAll(/<dt[^>]*>\s*([\w.]+)/g)].map((m) => m[1]);
      if (set !== SHARED_SET) assert.deepEqual(properties(german), properties(english), `${set}: the same message properties`);
      assert.match(german, /<h3>Details<\/h3>/, `${set}: de help has Details`);
      if (set !== SHARED_SET) {
        assert.match(german, /<h3>Eingangsdaten<\/h3>/, `${set}: de help names its inputs as Node-RED's German help does`);
        assert.match(german, /<h3>Ausgangsdaten<\/h3>/, `${set}: de help names its outputs as Node-RED's German help does`);
      }
      assert.doesNotMatch(german, /\b(the|which|when|with)\b/, `${set}: de help has no English sentences left`);
    }
  });

  for (const set of SETS) {
    test(`${set}: an editor script that registers it, help with a summary and sections, and (for a flow node) an icon`, () => {
      const html = read(`nodes/${set}.html`);
      assert.match(html, new RegExp(`data-template-name="${set}"`));
      assert.match(html, new RegExp(`RED\\.nodes\\.registerType\\(\\s*'${set}'`));
      assert.match(html, /<script type="text\/javascript" src="resources\/node-red-contrib-flow-cache\/flow-cache-editor\.js"><\/script>/);
      const help = read(`locales/en-US/${set}.html`);
      assert.match(help, /<p>[\s\S]+?<\/p>/, 'help starts with a summary paragraph');
      assert.match(help, /<h3>Details<\/h3>/);
      if (!flowSets().includes(set)) return;
      assert.match(help, /<h3>Inputs<\/h3>/);
      assert.match(help, /<h3>Outputs<\/h3>/);
      const svg = read(`icons/${set}.svg`);
      assert.match(svg, /<svg[^>]*viewBox="0 0 40 60"/, `${set}.svg has the core icons' viewBox`);
    });
  }

  test('the key finders see each form of use, so a key cannot hide from these checks', () => {
    const html = `<span data-i18n="x-y.label.a"></span><input data-i18n="[placeholder]x-y.placeholder.b;[title]node-red:common.label.name">
      <span data-i18n="${MODULE}/cache-store:cache-store.editor.label.key"></span>
      <script>this._('x-y.short.' + u); node._('x-y.label.d'); RED._('${MODULE}/other:other.label.e');
      FlowCacheEditor.text('units.seconds'); FlowCacheEditor.nodeText('x-y', 'errors.f');
      function say(id) { return FlowCacheEditor.nodeText('x-y', id); } say('errors.g');</script>`;
    assert.deepEqual(
      editorUses('x-y', html, 'test')
        .map((u) => `${u.set}:${u.key}`)
        .sort(),
      [
        'x-y:x-y.label.a',
        'x-y:x-y.placeholder.b',
        'node-red:common.label.name',
        'cache-store:cache-store.editor.label.key',
        'x-y:x-y.short.',
        'x-y:x-y.label.d',
        'other:other.label.e',
        'cache-store:cache-store.editor.units.seconds',
        'x-y:x-y.errors.f',
        'x-y:x-y.errors.g',
      ].sort(),
    );
    assert.deepEqual(
      sharedScriptUses(
        "function text(id, values) { return RED._(MODULE + '/cache-store:cache-store.editor.' + id, values); } text('store.hint'); x.text(text('units.' + unit)); nodeText(type, 'label.palette');",
        ['a', 'b'],
        'test',
      )
        .map((u) => `${u.set}:${u.key}`)
        .sort(),
      ['cache-store:cache-store.editor.store.hint', 'cache-store:cache-store.editor.units.', 'a:a.label.palette', 'b:b.label.palette'].sort(),
    );
    const runtime = `const t = textsOf(RED, 'cache-get'); t('status.hit', { key }); text(RED, 'cache-store', 'errors.scope', { scope });
      shared('keyEmpty', { where }); function tf(key: string, values?: Substitutions): string { return text(undefined, 'ttl-fetch', key, values); }
      tf('errors.url'); const file = 'cache-store.ts'; other.t('not.this');`;
    assert.deepEqual(
      runtimeUses(runtime, 'test')
        .map((u) => `${u.set}:${u.key}`)
        .sort(),
      [
        'cache-get:cache-get.status.hit',
        'cache-store:cache-store.errors.scope',
        'cache-store:cache-store.runtime.keyEmpty',
        'ttl-fetch:ttl-fetch.errors.url',
      ].sort(),
    );
    const literals = runtimeLiterals(
      [
        "throw new StoreIOError('create', file);",
        'const detail = { text: `io.$',
        '{action}` };',
        'const key = `store.$',
        "{detail.text}`; tf(a ? 'errors.x' : 'errors.y');",
      ].join(''),
    );
    assert.equal(runtimeReferenced('cache-store.store.io.create', literals), true, 'a key an error carries counts as used');
    assert.equal(runtimeReferenced('cache-store.store.io.delete', literals), false);
    assert.equal(runtimeReferenced('cache-store.label.create', literals), false, 'a section the runtime does not read');
    assert.equal(runtimeReferenced('ttl-fetch.errors.y', literals), true, 'a key chosen by a condition');
    assert.equal(runtimeReferenced('ttl-fetch.errors.z', literals), false);
  });

  test('a missing or unused key is reported (the checks can fail)', () => {
    const cat = { 'x-y': { label: { a: 'A', spare: 'S' }, short: { day: 'd' } } };
    const found = editorUses('x-y', `<span data-i18n="x-y.label.a"></span><script>this._('x-y.label.gone'); this._('x-y.short.' + p)</script>`, 'test');
    assert.deepEqual(
      found.filter((u) => !present(cat, u.key)).map((u) => u.key),
      ['x-y.label.gone'],
    );
    assert.deepEqual(
      [...leaves(cat).keys()].filter((key) => !used('x-y', key, found)),
      ['x-y.label.spare'],
    );
    assert.notDeepEqual(shape('get __key__'), shape('lesen'), 'a lost placeholder is seen');
  });
});
