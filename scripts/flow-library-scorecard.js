// Reads the scorecard the Flow Library validator wrote (node-red-dev validate -o) and its printed
// report, prints every check with its result, and exits 1 when a check failed other than the two
// this package accepts (say why in the table below), when a node's editor file could not be read,
// or when a node has no example.
//   node scripts/flow-library-scorecard.js <scorecard.json> <report.txt> <package.json>
const fs = require('node:fs');

const [scorecardFile, reportFile, packageFile] = process.argv.slice(2);
const scorecard = JSON.parse(fs.readFileSync(scorecardFile, 'utf8'));
const report = fs.readFileSync(reportFile, 'utf8');
const pkg = JSON.parse(fs.readFileSync(packageFile, 'utf8'));

const CHECKS = {
  P01: 'a license',
  P03: 'a repository or bugs URL',
  P04: 'a scoped package name (new packages)',
  P05: '"node-red" among the keywords',
  P06: 'compatible with the current Node-RED',
  P07: 'engines admit the oldest Node.js the current Node-RED runs on',
  P08: 'no package of a similar name',
  N01: 'node types no other package uses',
  N02: 'an example for every node',
  D01: 'at most 6 dependencies',
  D02: 'no known incompatible package among the dependencies',
  D03: 'every dependency at its latest version',
};
/** Failures this package accepts, and why (docs/development.md says more). */
const ACCEPTED = {
  P04: 'the name node-red-contrib-flow-cache is kept (not scoped): DESIGN.md names it',
  D03: 'keyv stays on 5: keyv 6.1 needs Node.js >= 22.19, and the package supports Node.js 20 and 22 before 22.19 (docs/development.md)',
};

/** Whether the catalogue of flows.nodered.org was left unasked (scripts/flow-library-offline.js says so in the report). */
const offline = /\[offline\] catalogue\.nodered\.org not asked/.test(report);
const failed = [];
console.log('\nFlow Library scorecard (node-red-dev validate):');
for (const code of Object.keys(CHECKS)) {
  const result = scorecard[code];
  if (!result) {
    console.log(`  ${code}  not run   ${CHECKS[code]}`);
    failed.push(`${code} was not run`);
    continue;
  }
  const details = Object.entries(result)
    .filter(([name]) => name !== 'test')
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(', ') : JSON.stringify(value)}`)
    .join('; ');
  // the validator may warn and still record a pass (P04: "should use a scoped name", then "a valid name")
  const warned = new RegExp(`Warning: ${code}\\b`).test(report);
  const verdict = result.test && !warned ? 'pass' : code in ACCEPTED ? (result.test ? 'warned, accepted' : 'accepted') : result.test ? 'WARNED' : 'FAIL';
  let why = code in ACCEPTED && verdict !== 'pass' ? `\n        why: ${ACCEPTED[code]}` : '';
  if ((code === 'P08' || code === 'N01') && offline) why += '\n        offline: judged against an empty catalogue (flows.nodered.org not asked)';
  console.log(`  ${code}  ${verdict.padEnd(16)}  ${CHECKS[code]}${details ? ` (${details})` : ''}${why}`);
  if (verdict === 'FAIL' || verdict === 'WARNED') failed.push(`${code} ${verdict === 'FAIL' ? 'failed' : 'warned'}: ${CHECKS[code]}`);
}

// the validator only logs a node's editor file it cannot parse, and then judges the others alone
for (const line of report.split('\n').filter((l) => /Unable to parse/.test(l))) failed.push(`the validator could not read a node: ${line.trim()}`);
const flowNodes = Object.keys(pkg['node-red'].nodes).filter((type) => type !== 'cache-store');
const withExample = scorecard.N02?.nodes ?? [];
const without = flowNodes.filter((type) => !withExample.includes(type));
if (without.length > 0) failed.push(`N02 found no example for ${without.join(', ')}`);

if (failed.length > 0) {
  console.log(`\n${failed.length} problem(s):`);
  for (const line of failed) console.log(`  ${line}`);
  process.exit(1);
}
console.log('\nEvery check passed, but those accepted above.');
