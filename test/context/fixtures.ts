import path from 'node:path';
import { type ContextStoreConfig, FlowCacheContext, namespaceOf } from '../../nodes/context/context-store';
import type { NodeRedUtilModule } from '../../nodes/context/node-red-util';
import { freshDir, onDisk } from '../store/fixtures';
import { nodeRedLine } from '../support/harness';

export { freshDir, onDisk };

/** The README's bound: a synchronous set is on disk this long after it was made. */
export const SYNC_COMMIT_BOUND_MS = 250;

/** The @node-red/util of the Node-RED line under test (NODE_RED_LINE), as the running Node-RED would give it. */
export function nodeRedUtilOfLine(): NodeRedUtilModule {
  const base = path.dirname(require.resolve(nodeRedLine === '5' ? 'node-red5/package.json' : 'node-red/package.json'));
  return require(require.resolve('@node-red/util', { paths: [base] })) as NodeRedUtilModule;
}

/** A logger that keeps what it was told. */
export class Recorded {
  readonly infos: string[] = [];
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  info(message: string): void {
    this.infos.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.errors.push(message);
  }
}

/** A context store as Node-RED makes one (config plus settings.userDir), with Node-RED's util and a recording logger. */
export function contextStore(userDir: string, config: Omit<ContextStoreConfig, 'settings'> = {}, logger = new Recorded()): FlowCacheContext {
  return new FlowCacheContext({ ...config, settings: { userDir } }, { util: nodeRedUtilOfLine().util, logger });
}

/** set() with a callback, as a promise. */
export function setAsync(ctx: FlowCacheContext, scope: string, key: string | string[], value: unknown): Promise<void> {
  return new Promise((resolve, reject) => ctx.set(scope, key, value, (error) => (error ? reject(error) : resolve())));
}

/** get() with a callback: every argument the callback received (error first). */
export function getArgs(ctx: FlowCacheContext, scope: string, key: string | string[]): Promise<unknown[]> {
  return new Promise((resolve) => ctx.get(scope, key, (...args: unknown[]) => resolve(args)));
}

/** get() with a callback, as a promise of the one value. */
export function getAsync(ctx: FlowCacheContext, scope: string, key: string): Promise<unknown> {
  return new Promise((resolve, reject) => ctx.get(scope, key, (error, value) => (error ? reject(error) : resolve(value))));
}

/** keys() with a callback, as a promise. */
export function keysAsync(ctx: FlowCacheContext, scope: string): Promise<string[]> {
  return new Promise((resolve, reject) => ctx.keys(scope, (error, keys) => (error ? reject(error) : resolve(keys as string[]))));
}

/** The context file of a userDir when no path is configured. */
export function defaultFile(userDir: string): string {
  return path.join(userDir, 'flow-cache', 'context.sqlite');
}

/** Every context row on disk (read through a second connection): scope -> key -> stored value (decoded JSON, tags as stored). */
export async function onDiskContext(file: string): Promise<Record<string, Record<string, unknown>>> {
  const rows = await onDisk(file, (db) => db.all<{ key: string; value: string }>('SELECT key, value FROM keyv ORDER BY key'));
  const out: Record<string, Record<string, unknown>> = {};
  for (const row of rows) {
    const colon = row.key.indexOf(':');
    const namespace = Buffer.from(row.key.slice(0, colon), 'hex').toString('utf8');
    if (!namespace.startsWith('context:')) continue;
    const scope = namespace.slice('context:'.length);
    out[scope] ??= {};
    out[scope][row.key.slice(colon + 1)] = JSON.parse(row.value).v;
  }
  return out;
}

export { namespaceOf };
