import { helper } from '../support/harness';

/**
 * The test helper registers the catch, status and complete modules once per node of that type in the
 * flow, so a flow with two Catch nodes fails with "catch already registered". Makes each of them
 * register once per load (the helper gives each load a new `red` object).
 */
export function registerHelperModulesOnce(): void {
  const modules = (helper as unknown as { _nodeModules: Record<string, (red: unknown) => unknown> })._nodeModules;
  for (const type of ['catch', 'status', 'complete']) {
    const register = modules[type];
    if (!register || (register as { once?: boolean }).once) continue;
    let last: unknown;
    const once = (red: unknown) => {
      if (red === last) return undefined;
      last = red;
      return register(red);
    };
    (once as { once?: boolean }).once = true;
    modules[type] = once;
  }
}
