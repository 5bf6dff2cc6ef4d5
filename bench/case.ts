// Runs one store measurement in a fresh process, so no measurement inherits another's heap or caches:
// `node --expose-gc dist/bench/case.js <case> [--quick]` prints the result as JSON.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { profiled } from './lib';
import * as cases from './store-cases';

type CaseName = keyof typeof CASES;

const CASES = {
  'store.set.concurrent': cases.storeSetConcurrent,
  'store.set.sequential': cases.storeSetSequential,
  'store.get.hot': cases.storeGetHot,
  'store.get.cold': cases.storeGetCold,
  'store.incr': cases.storeIncrements,
  'store.startup': cases.storeStartup,
  'store.stall': cases.storeStall,
  'baseline.keyv.set.concurrent': cases.keyvSetConcurrent,
  'baseline.keyv.set.sequential': cases.keyvSetSequential,
  'baseline.keyv.get': cases.keyvGet,
  'baseline.sqlite.set.single': cases.sqliteSetSingle,
  'baseline.sqlite.set.tx': cases.sqliteSetTx,
  'baseline.sqlite.set.tx.prepared': cases.sqliteSetTxPrepared,
  'baseline.sqlite.get': cases.sqliteGet,
} as const;

/** Runs a case in a child process (with `env` added to this process's environment) and returns what it measured. */
export function runCase<T = number>(name: CaseName, quick: boolean, env: NodeJS.ProcessEnv = {}): T {
  const child = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'case.js'), name, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  if (child.status !== 0) throw new Error(`${name} exited with ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout) as T;
}

if (require.main === module) {
  const name = process.argv[2] as CaseName;
  const quick = process.argv.includes('--quick');
  const measure = CASES[name] as ((dir: string, p: cases.Plan) => Promise<unknown>) | undefined;
  if (!measure) {
    console.error(`unknown case ${name}; one of: ${Object.keys(CASES).join(', ')}`);
    process.exit(2);
  }
  profiled(name, () => measure(cases.benchDir(), cases.plan(quick)))
    .then((result) => {
      console.log(JSON.stringify(result));
      process.exit(0); // a time-boxed baseline may leave writes queued: they are of no interest
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
