// What a cache-store config node (or its absence) means: the file, the namespace scope and the store options.
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../lib/errors';
import { resolveStoreOptions, STORE_DEFAULTS, type StoreOptions } from '../lib/options';
import type { Node, NodeAPI } from './api';
import { localize, text } from './i18n';
import { isBlank } from './input';
import { isValidZone } from './time';

/** What a `cache-store` config node resolves to (also what "no config node" means). */
export interface StoreSettings {
  file: string;
  scope: 'flow' | 'shared';
  namespace: string;
  defaultTtl: number;
  timezone: string;
  options: StoreOptions;
}

/** The runtime face of a `cache-store` config node, as other nodes find it with RED.nodes.getNode. */
export interface CacheStoreNode extends Node {
  settings?: StoreSettings;
  configError?: string;
}

/** A cache-store node's dialog fields, as Node-RED passes them. */
export interface CacheStoreConfig {
  id: string;
  name?: string;
  path?: string;
  scope?: string;
  namespace?: string;
  defaultTtl?: number | string;
  sizeLimitMb?: number | string;
  evictionPolicy?: string;
  durability?: string;
  flushInterval?: number | string;
  timezone?: string;
}

export function userDir(RED: NodeAPI): string {
  return RED.settings.userDir || path.join(os.homedir(), '.node-red');
}

/** The default database file: <userDir>/flow-cache/cache.sqlite. */
export function defaultDatabaseFile(RED: NodeAPI): string {
  return path.resolve(userDir(RED), STORE_DEFAULTS.path);
}

/** What a node without a cache-store uses: the default file, one namespace per flow tab. */
export function defaultStoreSettings(RED: NodeAPI): StoreSettings {
  return { file: defaultDatabaseFile(RED), scope: 'flow', namespace: '', defaultTtl: STORE_DEFAULTS.defaultTtl, timezone: '', options: {} };
}

/** Reads a number property of a node's configuration; '' or undefined gives the default. */
export function configNumber(value: unknown, fallback: number): number {
  if (isBlank(value)) return fallback;
  return typeof value === 'number' ? value : Number(value);
}

/** Checks a cache-store configuration and turns it into store settings; throws a readable error. */
export function storeSettings(RED: NodeAPI, config: CacheStoreConfig): StoreSettings {
  const scope = config.scope || STORE_DEFAULTS.scope;
  if (scope !== 'flow' && scope !== 'shared') throw new InputError(text(RED, 'cache-store', 'errors.scope', { scope }));
  const namespace = (config.namespace ?? '').trim();
  if (scope === 'shared' && namespace === '') throw new InputError(text(RED, 'cache-store', 'errors.namespace'));
  const defaultTtl = configNumber(config.defaultTtl, STORE_DEFAULTS.defaultTtl);
  if (!Number.isFinite(defaultTtl) || defaultTtl < 0) throw new InputError(text(RED, 'cache-store', 'errors.defaultTtl', { value: String(config.defaultTtl) }));
  const timezone = (config.timezone ?? '').trim();
  if (timezone && !isValidZone(timezone)) throw new InputError(text(RED, 'cache-store', 'errors.timezone', { value: timezone }));
  const options: StoreOptions = {
    sizeLimitMb: configNumber(config.sizeLimitMb, STORE_DEFAULTS.sizeLimitMb),
    evictionPolicy: (config.evictionPolicy || STORE_DEFAULTS.evictionPolicy) as StoreOptions['evictionPolicy'],
    durability: (config.durability || STORE_DEFAULTS.durability) as StoreOptions['durability'],
    flushInterval: configNumber(config.flushInterval, STORE_DEFAULTS.flushInterval),
  };
  // the store's own check, so the dialog's settings fail at deploy with the same words the store would use
  try {
    resolveStoreOptions(options);
  } catch (error) {
    throw localize(error);
  }
  const given = (config.path ?? '').trim();
  const file = given ? path.resolve(userDir(RED), given) : defaultDatabaseFile(RED);
  return { file, scope, namespace, defaultTtl, timezone, options };
}
