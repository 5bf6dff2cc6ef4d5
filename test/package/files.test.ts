// What `npm pack` puts in the tarball: everything Node-RED needs to load and run the package, and nothing else.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { before, describe, test } from 'node:test';

const root = path.join(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** Every file below `dir` (relative to the repository, with forward slashes), or none if it does not exist. */
function filesUnder(dir: string): string[] {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) return [];
  return (fs.readdirSync(full, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) =>
      path
        .relative(root, path.join(entry.parentPath ?? (entry as any).path, entry.name))
        .split(path.sep)
        .join('/'),
    );
}

/**
 * What the tarball must hold, derived from the sources: the compiled runtime of every nodes/**.ts, each
 * node's editor .html, the icons, the locales, the editor resources, the examples, the context store's
 * entry point (context.js, for `require('node-red-contrib-flow-cache/context')`), README, LICENSE and
 * package.json.
 */
function expectedFiles(): string[] {
  const runtime = filesUnder('nodes')
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => `dist/${file.replace(/\.ts$/, '.js')}`);
  const editor = filesUnder('nodes')
    .filter((file) => file.endsWith('.html'))
    .map((file) => `dist/${file}`);
  const icons = filesUnder('icons').map((file) => `dist/nodes/${file}`);
  const locales = filesUnder('locales').map((file) => `dist/nodes/${file}`);
  return [
    ...runtime,
    ...editor,
    ...icons,
    ...locales,
    ...filesUnder('resources'),
    ...filesUnder('examples'),
    'context.js',
    'README.md',
    'LICENSE',
    'package.json',
  ].sort();
}

describe('the npm tarball', () => {
  let packed: string[] = [];

  before(() => {
    // --ignore-scripts: the list of what `npm run build` made, without prepack's clean rebuild under the running tests
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, npm_config_loglevel: 'error' },
    });
    packed = (JSON.parse(out)[0].files as { path: string }[]).map((file) => file.path).sort();
  });

  test('holds every file Node-RED loads: each node set with its editor .html, icons, locales, editor resources, examples', () => {
    const missing = expectedFiles().filter((file) => !packed.includes(file));
    assert.deepEqual(missing, [], 'files the installed package needs but the tarball lacks');
    // The editor script every node's .html loads from resources/<package>/ (Node-RED serves it from <package>/resources/).
    for (const html of packed.filter((file) => /^dist\/nodes\/[^/]+\.html$/.test(file))) {
      const source = fs.readFileSync(path.join(root, html), 'utf8');
      for (const match of source.matchAll(/src="resources\/node-red-contrib-flow-cache\/([^"]+)"/g)) {
        assert.ok(packed.includes(`resources/${match[1]}`), `${html} loads resources/${match[1]}`);
      }
    }
    for (const [type, file] of Object.entries(pkg['node-red'].nodes as Record<string, string>)) {
      assert.ok(packed.includes(file), `node set ${type}: ${file}`);
      assert.ok(packed.includes(file.replace(/\.js$/, '.html')), `node set ${type}: its editor .html`);
      assert.ok(packed.includes(`dist/nodes/locales/en-US/${type}.json`), `node set ${type}: its messages`);
      assert.ok(packed.includes(`dist/nodes/locales/en-US/${type}.html`), `node set ${type}: its help`);
      assert.ok(packed.includes(`dist/nodes/icons/${type}.svg`), `node set ${type}: its icon`);
    }
    assert.ok(packed.includes(pkg.main), `main (${pkg.main})`);
    assert.ok(packed.includes('LICENSE'), 'LICENSE');
    assert.match(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'), /^MIT License/, 'the LICENSE file is the MIT license package.json names');
    assert.equal(pkg.license, 'MIT');
  });

  test('holds nothing else: no tests, benchmarks, source maps, TypeScript sources or output of deleted sources', () => {
    const unexpected = packed.filter((file) => !expectedFiles().includes(file));
    assert.deepEqual(unexpected, [], 'files in the tarball that nothing loads');
    const forbidden = packed.filter((file) => /^(test|bench|dist\/test|dist\/bench|docs|scripts|\.ci)\//.test(file) || /\.(map|ts)$/.test(file));
    assert.deepEqual(forbidden, []);
  });

  test('the shipped runtime requires only Node.js built-ins, its own shipped files and declared dependencies', () => {
    const declared = new Set([
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.optionalDependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}),
    ]);
    const builtins = new Set(builtinModules);
    const problems: string[] = [];
    for (const file of packed.filter((f) => f.endsWith('.js') && (f.startsWith('dist/') || !f.includes('/')))) {
      const source = fs.readFileSync(path.join(root, file), 'utf8');
      for (const match of source.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = match[1];
        if (spec.startsWith('.')) {
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
          if (![target, `${target}.js`, `${target}/index.js`].some((candidate) => packed.includes(candidate)))
            problems.push(`${file}: ${spec} is not in the tarball`);
          continue;
        }
        if (spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!declared.has(name)) problems.push(`${file}: ${spec} is not a declared dependency`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
