// A fresh machine with only Node.js and npm: `npm test` runs no suite that starts a redis-server or a
// browser, and each suite that does names what it needs in its npm script, where
// scripts/require-system.js checks for it before the suite starts and fails with one line per missing
// package that names the package to install.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

const root = path.join(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const scripts: Record<string, string> = pkg.scripts;
const CHECK = path.join(root, 'scripts', 'require-system.js');

/** The npm scripts a script runs (`npm run x`, `npm test`), followed through. */
function runs(name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const called = [...(scripts[name] ?? '').matchAll(/npm (?:run (\S+)|test\b)/g)].map((m) => m[1] ?? 'test');
  return [name, ...called.flatMap((next) => runs(next, seen))];
}

/** The test sources a script runs: `dist/test/<dir>/...` (or vitest's `test/<dir>`) and the runner scripts' directories. */
function sourcesOf(script: string): string[] {
  const command = scripts[script];
  const dirs = new Set<string>();
  for (const m of command.matchAll(/(?:dist\/)?test\/(\w+)/g)) dirs.add(m[1]);
  if (/scripts\/test-runtime\.js/.test(command)) dirs.add('runtime');
  if (/scripts\/test-store\.js/.test(command)) dirs.add('store');
  return [...dirs].flatMap((dir) =>
    fs
      .readdirSync(path.join(root, 'test', dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => path.join('test', dir, file)),
  );
}

/** What a test source needs from the system: a redis-server it starts, the Chromium the browser tests drive. */
function needs(file: string): Set<string> {
  const source = fs.readFileSync(path.join(root, file), 'utf8');
  const found = new Set<string>();
  // a start that only a Redis run makes (examples.test.ts with FLOW_CACHE_EXAMPLES=redis) needs nothing of npm test
  for (const line of source.split('\n')) if (/RedisServer\.start\(/.test(line) && !/\bonRedis\b/.test(line)) found.add('redis-server');
  if (/from '\.\.\/support\/redis-server'/.test(source) && /redisFixture\(|RedisServer\.start\(/.test(source) && !/\bonRedis\b/.test(source))
    found.add('redis-server');
  if (/from '(?:\.\.\/e2e\/support|\.\/support)'/.test(source) && /openBrowser|openEditor/.test(source)) found.add('chromium');
  if (/require\('\.\.\/runtime\/examples\.test'\)/.test(source) && /FLOW_CACHE_EXAMPLES = 'redis'/.test(source)) found.add('redis-server');
  return found;
}

/** The system packages a script checks for before its suite starts. */
function checked(script: string): Set<string> {
  const m = /node scripts\/require-system\.js ([\w -]+?)(?:&&|$)/.exec(scripts[script]);
  return new Set(m ? m[1].trim().split(/\s+/) : []);
}

function check(args: string[], env: NodeJS.ProcessEnv): { status: number | null; lines: string[] } {
  const run = spawnSync(process.execPath, [CHECK, ...args], { env, encoding: 'utf8' });
  return { status: run.status, lines: run.stderr.split('\n').filter(Boolean) };
}

describe('a fresh machine', () => {
  test('npm test runs no suite that needs a redis-server or Chromium', () => {
    const wrong: string[] = [];
    for (const script of runs('test')) {
      for (const file of sourcesOf(script)) for (const need of needs(file)) wrong.push(`${script}: ${file} needs ${need}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('every suite that needs a system package checks for it before it starts', () => {
    const wrong: string[] = [];
    const suites = Object.keys(scripts).filter((name) => name.startsWith('test:'));
    let needing = 0;
    for (const script of suites) {
      const wanted = new Set(sourcesOf(script).flatMap((file) => [...needs(file)]));
      if (wanted.size > 0) needing++;
      for (const need of wanted) if (!checked(script).has(need)) wrong.push(`${script} needs ${need} but does not check for it`);
    }
    assert.deepEqual(wrong, []);
    assert.ok(needing >= 3, `only ${needing} suites found needing a system package (test:redis, test:e2e, test:install do)`);
  });

  test('test:redis, without redis-server on PATH, fails at once with one line naming the package', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-nopath-'));
    try {
      const { REDIS_SERVER: _ignored, ...env } = process.env;
      const run = check(['redis-server'], { ...env, PATH: empty });
      assert.equal(run.status, 1);
      assert.deepEqual(run.lines.length, 1, run.lines.join('\n'));
      assert.match(run.lines[0], /^redis-server not found on PATH: apt-get install redis-server\b/);
      const named = check(['redis-server'], { ...env, PATH: empty, REDIS_SERVER: path.join(empty, 'redis-server') });
      assert.equal(named.status, 1);
      assert.match(named.lines[0], /^redis-server not found at REDIS_SERVER=.*: apt-get install redis-server/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  test('the fonts of the layout tests, where fontconfig knows none, are each named with their Debian package', (t) => {
    if (spawnSync('fc-list', ['--version']).error) {
      // without fontconfig the check looks for the font files themselves
      const run = check(['fonts'], { ...process.env, PATH: '' });
      const lines = run.lines.join('\n');
      for (const [file, pkgName] of [
        ['/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', 'fonts-liberation'],
        ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 'fonts-dejavu-core'],
      ]) {
        assert.equal(fs.existsSync(file), !lines.includes(`apt-get install ${pkgName}`), lines);
      }
      t.diagnostic('fontconfig is not installed: checked the font files');
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-cache-fonts-'));
    try {
      const config = path.join(dir, 'fonts.conf');
      fs.writeFileSync(config, `<?xml version="1.0"?>\n<fontconfig><cachedir>${dir}</cachedir></fontconfig>\n`);
      const run = check(['fonts'], { ...process.env, FONTCONFIG_FILE: config });
      assert.equal(run.status, 1);
      assert.deepEqual(run.lines, [
        'font Liberation Sans not found: apt-get install fonts-liberation (the editor layout tests are measured with it)',
        'font DejaVu Sans not found: apt-get install fonts-dejavu-core (the editor layout tests are measured with it)',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unknown name is refused', () => {
    const run = check(['redis'], process.env);
    assert.equal(run.status, 2);
    assert.match(run.lines[0], /unknown name redis/);
  });
});
