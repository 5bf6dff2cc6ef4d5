// What a cache-store config node (or its absence) means: the file, the namespace scope and the store options.
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../lib/errors';
import { resolveStoreOptions, STORE_DEFAULTS, type StoreOptions } from '../lib/options';
import { redisUrlHasSecret, shownRedisUrl } from '../lib/redis-url';
import type { BackendKind } from '../lib/space';
import type { Node, NodeAPI } from './api';
import { localize, text } from './i18n';
import { isBlank } from './input';
import { isValidZone } from './time';

/** Where a Redis-backed store lives: the server, the database, the key prefix and who logs in (from the node's credentials). */
export interface RedisSettings {
  url: string;
  database: number;
  prefix: string;
  username?: string;
  password?: string;
}

/** The key prefix of a Redis store whose dialog gives none. */
export const DEFAULT_REDIS_PREFIX = 'flow-cache:';
const MAX_REDIS_DB = 65_535;
const MAX_REDIS_PREFIX = 256;

/** What a `cache-store` config node resolves to (also what "no config node" means). */
export interface StoreSettings {
  /** 'sqlite' (the default): a database file; 'redis': a Redis server several Node-RED processes share. */
  backend: BackendKind;
  /** The database file (SQLite); '' for Redis. */
  file: string;
  /** Redis only. */
  redis?: RedisSettings;
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
  backend?: string;
  redisUrl?: string;
  redisDb?: number | string;
  redisPrefix?: string;
}

/** A cache-store node's credentials (never in the flow file): who logs in to Redis. */
export interface CacheStoreCredentials {
  username?: string;
  password?: string;
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
  return { backend: 'sqlite', file: defaultDatabaseFile(RED), scope: 'flow', namespace: '', defaultTtl: STORE_DEFAULTS.defaultTtl, timezone: '', options: {} };
}

/** Reads a number property of a node's configuration; '' or undefined gives the default. */
export function configNumber(value: unknown, fallback: number): number {
  if (isBlank(value)) return fallback;
  return typeof value === 'number' ? value : Number(value);
}

/** Checks the Redis fields of a cache-store; a URL is only ever shown without its user and password. */
export function redisSettings(RED: NodeAPI, config: CacheStoreConfig, credentials: CacheStoreCredentials = {}): RedisSettings {
  const raw = typeof config.redisUrl === 'string' ? config.redisUrl.trim() : '';
  if (raw === '') throw new InputError(text(RED, 'cache-store', 'errors.redisUrlMissing'));
  // a password in the query or the fragment would be kept in the flow file and shown: it belongs in the Password field
  if (redisUrlHasSecret(raw)) throw new InputError(text(RED, 'cache-store', 'errors.redisUrlSecret'));
  // a login of any shape (a space, '@' or '/' in it, no scheme before it) is a login, URL or not
  if (raw.includes('@')) throw new InputError(text(RED, 'cache-store', 'errors.redisUrlUserInfo'));
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(text(RED, 'cache-store', 'errors.redisUrl', { value: shownRedisUrl(raw) }));
  }
  // text with no scheme:// ("localhost:6379") is no URL; a scheme is named only when it is written as one
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw)) throw new InputError(text(RED, 'cache-store', 'errors.redisUrl', { value: shownRedisUrl(raw) }));
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new InputError(text(RED, 'cache-store', 'errors.redisUrlProtocol', { value: `${url.protocol}//` }));
  if (url.username || url.password) throw new InputError(text(RED, 'cache-store', 'errors.redisUrlUserInfo'));
  if (url.hostname === '') throw new InputError(text(RED, 'cache-store', 'errors.redisUrl', { value: shownRedisUrl(raw) }));
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new InputError(text(RED, 'cache-store', 'errors.redisUrlPath', { value: shownRedisUrl(raw) }));
  }
  const database = configNumber(config.redisDb, 0);
  if (!Number.isInteger(database) || database < 0 || database > MAX_REDIS_DB) {
    throw new InputError(text(RED, 'cache-store', 'errors.redisDb', { max: MAX_REDIS_DB, value: String(config.redisDb) }));
  }
  const prefix = typeof config.redisPrefix === 'string' && config.redisPrefix !== '' ? config.redisPrefix : DEFAULT_REDIS_PREFIX;
  if (prefix.length > MAX_REDIS_PREFIX || [...prefix].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new InputError(text(RED, 'cache-store', 'errors.redisPrefix', { max: MAX_REDIS_PREFIX }));
  }
  const settings: RedisSettings = { url: `${url.protocol}//${url.host}`, database, prefix };
  const username = typeof credentials.username === 'string' ? credentials.username.trim() : '';
  if (username) settings.username = username;
  if (typeof credentials.password === 'string' && credentials.password !== '') settings.password = credentials.password;
  return settings;
}

/** Checks a cache-store configuration and turns it into store settings; throws a readable error. */
export function storeSettings(RED: NodeAPI, config: CacheStoreConfig, credentials?: CacheStoreCredentials): StoreSettings {
  const backend = config.backend || 'sqlite';
  if (backend !== 'sqlite' && backend !== 'redis') throw new InputError(text(RED, 'cache-store', 'errors.backend', { value: String(backend) }));
  const scope = config.scope || STORE_DEFAULTS.scope;
  if (scope !== 'flow' && scope !== 'shared') throw new InputError(text(RED, 'cache-store', 'errors.scope', { scope }));
  const namespace = (config.namespace ?? '').trim();
  if (scope === 'shared' && namespace === '') throw new InputError(text(RED, 'cache-store', 'errors.namespace'));
  const defaultTtl = configNumber(config.defaultTtl, STORE_DEFAULTS.defaultTtl);
  if (!Number.isFinite(defaultTtl) || defaultTtl < 0) throw new InputError(text(RED, 'cache-store', 'errors.defaultTtl', { value: String(config.defaultTtl) }));
  const timezone = (config.timezone ?? '').trim();
  if (timezone && !isValidZone(timezone)) throw new InputError(text(RED, 'cache-store', 'errors.timezone', { value: timezone }));
  // Redis keeps its own size cap (maxmemory) and durability (its persistence settings): the file's options do not apply
  if (backend === 'redis') return { backend, file: '', redis: redisSettings(RED, config, credentials), scope, namespace, defaultTtl, timezone, options: {} };
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
  return { backend, file, scope, namespace, defaultTtl, timezone, options };
}
