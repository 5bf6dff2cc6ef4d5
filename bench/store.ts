// `npm run bench:store`: our store against keyv + @keyv/sqlite as shipped, in one run (`-- --quick` for a shorter run).
import { runCase } from './case';
import { formatNumber, keyvSqliteLoadError, storeDriver } from './lib';
import { plan } from './store-cases';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const p = plan(quick);
  const step = async (name: string, which: Parameters<typeof runCase>[0]) => {
    process.stderr.write(`  ${name} ...`);
    const value = runCase(which, quick);
    process.stderr.write(` ${formatNumber(value)}/s\n`);
    return value;
  };
  process.stderr.write(
    `store (${storeDriver()}, Node.js ${process.version}) vs keyv + @keyv/sqlite as shipped (median of ${p.repeats}${quick ? ', quick' : ''})\n`,
  );
  const store = {
    setConcurrent: await step('store set, 1,000 in flight', 'store.set.concurrent'),
    setSequential: await step('store set, one at a time', 'store.set.sequential'),
    getHot: await step('store get, hot keys', 'store.get.hot'),
    getCold: await step('store get, cold (after open)', 'store.get.cold'),
  };
  // keyv + @keyv/sqlite needs the native sqlite3 module: where it does not load, its column says so
  const keyvMissing = keyvSqliteLoadError();
  if (keyvMissing) process.stderr.write(`  keyv not measured: ${keyvMissing}\n`);
  const keyv = keyvMissing
    ? { setConcurrent: null, setSequential: null, get: null }
    : {
        setConcurrent: await step('keyv set, 1,000 in flight', 'baseline.keyv.set.concurrent'),
        setSequential: await step('keyv set, one at a time', 'baseline.keyv.set.sequential'),
        get: await step('keyv get', 'baseline.keyv.get'),
      };
  const ratio = (a: number, b: number | null) => (b === null ? null : a / b);
  const rows: [string, number, number | null, string][] = [
    ['set, 1,000 in flight (durable)', store.setConcurrent, keyv.setConcurrent, '>= 10'],
    ['set, one at a time (durable)', store.setSequential, keyv.setSequential, ''],
    ['get, hot keys', store.getHot, keyv.get, '>= 10'],
    ['get, cold (first read after open)', store.getCold, keyv.get, ''],
  ];
  const lines = [
    '| operation | store ops/s | keyv + @keyv/sqlite ops/s | ratio | target | met |',
    '|---|---:|---:|---:|---|---|',
    ...rows.map(([name, ours, theirs, target]) => {
      const r = ratio(ours, theirs);
      const met = !target ? '' : r === null ? 'not measured' : r >= 10 ? 'yes' : 'no';
      return `| ${name} | ${formatNumber(ours)} | ${theirs === null ? 'not measured' : formatNumber(theirs)} | ${r === null ? '—' : `${formatNumber(r)}x`} | ${target} | ${met} |`;
    }),
  ];
  console.log(lines.join('\n'));
  if (keyvMissing) console.log(`\nkeyv + @keyv/sqlite not measured: ${keyvMissing}`);
  console.log(
    `\nsets/s: store ${formatNumber(store.setConcurrent)} vs keyv ${formatNumber(keyv.setConcurrent)} (1,000 in flight); ` +
      `gets/s: store ${formatNumber(store.getHot)} (hot) / ${formatNumber(store.getCold)} (cold) vs keyv ${formatNumber(keyv.get)}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
