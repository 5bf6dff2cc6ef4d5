// The README and docs/*.md against the files they describe: every example file is listed and every
// example the text names exists, the counts the text states (examples, Home Assistant examples, nodes)
// are the counts of the files, the node table names every node type of package.json, the error-code
// table holds exactly the codes of nodes/lib/errors.ts, and every relative link (a file, and the
// heading it points at) resolves.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

const root = path.join(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const NODE_TYPES: string[] = Object.keys(pkg['node-red'].nodes);
/** cache-store is a config node: it sits in no palette category of flow nodes. */
const FLOW_NODE_TYPES = NODE_TYPES.filter((type) => type !== 'cache-store');

const docsDir = path.join(root, 'docs');
/** Every page: README.md and docs/*.md, by its path from the repository root. */
const PAGES = [
  'README.md',
  ...fs
    .readdirSync(docsDir)
    .filter((file) => file.endsWith('.md'))
    .sort()
    .map((file) => `docs/${file}`),
];
const text = new Map(PAGES.map((page) => [page, fs.readFileSync(path.join(root, page), 'utf8')]));

function read(page: string): string {
  const content = text.get(page);
  assert.ok(content !== undefined, `${page} is missing`);
  return content;
}

/** Text outside fenced code blocks, with each line break a space (a sentence may wrap anywhere). */
function prose(page: string): string {
  return read(page)
    .replace(/^```[\s\S]*?^```/gm, '')
    .replace(/\s*\n\s*/g, ' ');
}

const examplesDir = path.join(root, 'examples');
const FOLDERS = fs
  .readdirSync(examplesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const EXAMPLES = FOLDERS.flatMap((folder) =>
  fs
    .readdirSync(path.join(examplesDir, folder))
    .filter((file) => file.endsWith('.json'))
    .map((file) => `${folder}/${file}`),
).sort();
const inFolder = (folder: string) => EXAMPLES.filter((file) => file.startsWith(`${folder}/`)).length;

const WORDS = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
  'twenty',
];
/** A count written as digits or as an English word; undefined when the word is no number ("the", "all"). */
function count(word: string): number | undefined {
  if (/^\d+$/.test(word)) return Number(word);
  const tens = /^(twenty|thirty)-(\w+)$/i.exec(word);
  if (tens) {
    const unit = WORDS.indexOf(tens[2].toLowerCase());
    return unit > 0 && unit < 10 ? (tens[1].toLowerCase() === 'twenty' ? 20 : 30) + unit : undefined;
  }
  const index = WORDS.indexOf(word.toLowerCase());
  return index >= 0 ? index : undefined;
}

/**
 * Each "<count> <noun>" the prose of every page states, with the page, the words around it and the
 * pattern's other groups; the count is group `group` of the pattern.
 */
function statements(pattern: RegExp, group = 1): { page: string; n: number; where: string; groups: string[] }[] {
  const found: { page: string; n: number; where: string; groups: string[] }[] = [];
  for (const page of PAGES) {
    const body = prose(page);
    for (const match of body.matchAll(pattern)) {
      const n = count(match[group]);
      if (n === undefined) continue;
      const at = match.index ?? 0;
      found.push({ page, n, where: body.slice(Math.max(0, at - 40), at + match[0].length + 20), groups: match.slice(1) });
    }
  }
  return found;
}

describe('docs: the examples', () => {
  test('docs/examples.md lists every example file by its folder and name', () => {
    const page = read('docs/examples.md');
    const missing = EXAMPLES.filter((file) => !page.includes(`\`${file}\``));
    assert.deepEqual(missing, [], `docs/examples.md does not list ${missing.join(', ')}`);
  });

  test('the tab each example brings is named in docs/examples.md as the file names it', () => {
    const page = read('docs/examples.md');
    const wrong: string[] = [];
    for (const file of EXAMPLES) {
      const flow = JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as { type: string; label?: string }[];
      const tab = flow.find((n) => n.type === 'tab')?.label;
      const row = page.split('\n').find((line) => line.startsWith(`| \`${file}\` |`));
      const shown = row ? /^\| `[^`]+` \| \*(.+?)\* \|/.exec(row)?.[1] : undefined;
      if (shown !== tab) wrong.push(`${file}: the table says ${JSON.stringify(shown)}, the file ${JSON.stringify(tab)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('every example file the pages name exists', () => {
    const named = new RegExp(`\\b(?:${FOLDERS.map((f) => f.replace(/[-]/g, '\\-')).join('|')})/[\\w.-]+\\.json\\b`, 'g');
    const wrong: string[] = [];
    for (const page of PAGES) {
      for (const match of read(page).matchAll(named)) {
        if (!EXAMPLES.includes(match[0])) wrong.push(`${page}: ${match[0]}`);
      }
      // the menu path: Import > Examples > node-red-contrib-flow-cache > <folder> > <file>
      for (const match of prose(page).matchAll(/node-red-contrib-flow-cache\s*>\s*([\w-]+)\s*>\s*([\w-]+)/g)) {
        if (!EXAMPLES.includes(`${match[1]}/${match[2]}.json`)) wrong.push(`${page}: menu ${match[1]} > ${match[2]}`);
      }
    }
    assert.deepEqual(wrong, [], 'these examples do not exist');
  });

  test('the counts of examples stated anywhere are the counts of the files', () => {
    const wrong: string[] = [];
    // "`cooldown-gate/` holds four examples": that folder's count
    for (const s of statements(/`([\w-]+)\/` holds (\S+) examples?\b/g, 2)) {
      const folder = s.groups[0];
      if (s.n !== inFolder(folder)) wrong.push(`${s.page}: "${s.where}" (${folder}/ holds ${inFolder(folder)})`);
    }
    const ha = inFolder('home-assistant');
    for (const s of statements(/\b(\S+) Home Assistant examples\b/g)) {
      if (s.n !== ha) wrong.push(`${s.page}: "${s.where}" (there are ${ha})`);
    }
    // any other "<n> examples" is all of them ("no id is in two examples" counts nothing)
    for (const s of statements(/(?<!(?:` holds|\bin) )\b(\S+) examples\b/g)) {
      if (s.n !== EXAMPLES.length) wrong.push(`${s.page}: "${s.where}" (there are ${EXAMPLES.length})`);
    }
    for (const s of statements(/\bexamples in (\S+) folders\b/g)) {
      if (s.n !== FOLDERS.length) wrong.push(`${s.page}: "${s.where}" (there are ${FOLDERS.length} folders)`);
    }
    assert.deepEqual(wrong, [], 'stated counts that are not the files');
    // the counts this test checks are stated at all
    assert.ok(statements(/\b(\S+) Home Assistant examples\b/g).length > 0, 'no page states how many Home Assistant examples there are');
    assert.ok(
      statements(/\b(\S+) examples\b/g).some((s) => s.n === EXAMPLES.length),
      'no page states how many examples there are',
    );
  });

  test('every Home Assistant node type the examples use is named in docs/examples.md', () => {
    const types = new Set<string>();
    for (const file of EXAMPLES.filter((f) => f.startsWith('home-assistant/'))) {
      const flow = JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as { type: string }[];
      for (const node of flow) {
        if (['server-state-changed', 'poll-state', 'api-call-service', 'trigger-state', 'server-events', 'api-current-state'].includes(node.type))
          types.add(node.type);
      }
    }
    const page = read('docs/examples.md');
    const missing = [...types].filter((type) => !page.includes(`\`${type}\``));
    assert.deepEqual(missing, [], 'node types of the Home Assistant examples not named');
  });
});

describe('docs: the nodes', () => {
  test("the README's node table names every node type of package.json, and no other", () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('## The nodes'), readme.indexOf('\n## ', readme.indexOf('## The nodes') + 3));
    const rows = [...section.matchAll(/^\| \[?`([\w-]+)`/gm)].map((m) => m[1]);
    assert.deepEqual([...rows].sort(), [...NODE_TYPES].sort());
  });

  test('every node type has a page in docs/ that the README links', () => {
    const readme = read('README.md');
    const pages: Record<string, string> = {};
    for (const match of readme.matchAll(/\[`([\w-]+)`\]\((docs\/[\w-]+\.md)\)/g)) pages[match[1]] = match[2];
    for (const type of NODE_TYPES) {
      assert.ok(pages[type], `the README links no page for ${type}`);
      assert.match(read(pages[type]).split('\n')[0], new RegExp(`^# .*\\b${type}\\b`), `the title of ${pages[type]} does not name ${type}`);
    }
  });

  test('the counts of nodes stated anywhere are the counts of package.json', () => {
    const wrong: string[] = [];
    for (const s of statements(/\b(\S+) flow nodes\b/g)) {
      if (s.n !== FLOW_NODE_TYPES.length) wrong.push(`${s.page}: "${s.where}" (there are ${FLOW_NODE_TYPES.length} flow nodes)`);
    }
    for (const s of statements(/\b(\S+) (?:node types|nodes of this package)\b/g)) {
      if (s.n !== NODE_TYPES.length) wrong.push(`${s.page}: "${s.where}" (there are ${NODE_TYPES.length})`);
    }
    assert.deepEqual(wrong, []);
  });
});

describe('docs: the error codes', () => {
  test('docs/troubleshooting.md lists exactly the codes of nodes/lib/errors.ts', () => {
    const source = fs.readFileSync(path.join(root, 'nodes', 'lib', 'errors.ts'), 'utf8');
    const union = /export type ErrorCode\s*=([^;]+);/.exec(source);
    assert.ok(union, 'no ErrorCode type in nodes/lib/errors.ts');
    const codes = [...union[1].matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]).sort();
    assert.ok(codes.length > 10, `only ${codes.length} codes read from errors.ts`);
    const page = read('docs/troubleshooting.md');
    const start = page.indexOf('## Error codes');
    assert.ok(start >= 0, 'docs/troubleshooting.md has no "Error codes" section');
    const section = page.slice(start, page.indexOf('\n## ', start + 3) >= 0 ? page.indexOf('\n## ', start + 3) : undefined);
    const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
    assert.deepEqual(listed, codes);
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2... */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const match of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = match[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    result.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return result;
}

describe('docs: links', () => {
  test('every relative link and image in the README and docs/ resolves, to a heading where it names one', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const body = read(page).replace(/^```[\s\S]*?^```/gm, '');
      for (const match of body.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = match[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [file, anchor] = target.split('#', 2);
        const resolved = file === '' ? path.join(root, page) : path.resolve(path.dirname(path.join(root, page)), decodeURIComponent(file));
        if (!resolved.startsWith(root + path.sep) || !fs.existsSync(resolved)) {
          broken.push(`${page}: ${target} (no such file)`);
          continue;
        }
        if (anchor !== undefined) {
          if (!resolved.endsWith('.md')) broken.push(`${page}: ${target} (an anchor in a file that is not Markdown)`);
          else if (!anchors(fs.readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  test('every page in docs/ is linked from the README', () => {
    const readme = read('README.md');
    const unlinked = PAGES.filter((page) => page.startsWith('docs/') && !readme.includes(`](${page}`));
    assert.deepEqual(unlinked, []);
  });

  test('the README is a landing page of at most 300 lines', () => {
    const lines = read('README.md').split('\n').length;
    assert.ok(lines <= 300, `README.md has ${lines} lines`);
  });
});
