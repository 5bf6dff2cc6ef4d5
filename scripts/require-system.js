// Checks that the system packages a test suite needs are installed, before the suite starts, and fails
// with one line per missing package naming the cause and the fix:
//   node scripts/require-system.js redis-server chromium fonts
// Names: redis-server (the binary on PATH, or REDIS_SERVER), chromium (/usr/bin/chromium, which the
// browser tests drive), fonts (Liberation Sans and DejaVu Sans, the fonts the editor layout tests are
// measured with). `npm test` needs none of them; .ci/run installs all of them.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** The path of an executable on PATH, or undefined. */
function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** The font families fontconfig knows, lower case; undefined when fc-list is missing. */
function fontFamilies() {
  const listed = spawnSync('fc-list', [':', 'family'], { encoding: 'utf8' });
  if (listed.error || listed.status !== 0) return undefined;
  return new Set(listed.stdout.split(/[\n,]/).map((family) => family.trim().toLowerCase()));
}

const FONTS = [
  { family: 'Liberation Sans', file: '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', package: 'fonts-liberation' },
  { family: 'DejaVu Sans', file: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', package: 'fonts-dejavu-core' },
];

const CHECKS = {
  'redis-server': () => {
    const named = process.env.REDIS_SERVER;
    if (named) return fs.existsSync(named) ? [] : [`redis-server not found at REDIS_SERVER=${named}: apt-get install redis-server, or unset REDIS_SERVER`];
    return onPath('redis-server')
      ? []
      : ['redis-server not found on PATH: apt-get install redis-server (the Redis tests start it on a free port of 127.0.0.1)'];
  },
  chromium: () =>
    fs.existsSync('/usr/bin/chromium') ? [] : ['chromium not found at /usr/bin/chromium: apt-get install chromium (the browser tests drive it)'],
  fonts: () => {
    const families = fontFamilies();
    return FONTS.filter((font) => (families ? !families.has(font.family.toLowerCase()) : !fs.existsSync(font.file))).map(
      (font) => `font ${font.family} not found: apt-get install ${font.package} (the editor layout tests are measured with it)`,
    );
  },
};

const names = process.argv.slice(2);
const unknown = names.filter((name) => !(name in CHECKS));
if (unknown.length > 0) {
  console.error(`require-system: unknown name ${unknown.join(', ')} (${Object.keys(CHECKS).join(', ')})`);
  process.exit(2);
}
const missing = names.flatMap((name) => CHECKS[name]());
for (const line of missing) console.error(line);
process.exit(missing.length > 0 ? 1 : 0);
