import path from 'node:path';
import type { NodeAPI } from './node-red';
import { configNumber, defaultDatabaseFile, isValidZone, type StoreSettings, userDir } from './node-support';
import { DURABILITIES, type Durability, EVICTION_POLICIES, type EvictionPolicy } from './store';

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

/** Checks a cache-store configuration and turns it into store settings; throws a readable error. */
export function storeSettings(RED: NodeAPI, config: CacheStoreConfig): StoreSettings {
  const scope = config.scope || 'flow';
  if (scope !== 'flow' && scope !== 'shared') throw new Error(`scope must be "flow" or "shared", got "${scope}"`);
  const namespace = (config.namespace ?? '').trim();
  if (scope === 'shared' && namespace === '') throw new Error('a shared store needs a namespace name');
  const defaultTtl = configNumber(config.defaultTtl, 0);
  if (!Number.isFinite(defaultTtl) || defaultTtl < 0) throw new Error(`default TTL must be a number of seconds >= 0, got "${config.defaultTtl}"`);
  const sizeLimitMb = configNumber(config.sizeLimitMb, 100);
  if (!Number.isFinite(sizeLimitMb) || sizeLimitMb <= 0) throw new Error(`size limit must be a number of MB > 0, got "${config.sizeLimitMb}"`);
  const evictionPolicy = (config.evictionPolicy || 'least-recently-stored') as EvictionPolicy;
  if (!EVICTION_POLICIES.includes(evictionPolicy)) throw new Error(`unknown eviction policy "${evictionPolicy}"`);
  const durability = (config.durability || 'immediate') as Durability;
  if (!DURABILITIES.includes(durability)) throw new Error(`durability must be "immediate" or "deferred", got "${durability}"`);
  const flushInterval = configNumber(config.flushInterval, 30);
  if (!Number.isFinite(flushInterval) || flushInterval <= 0) throw new Error(`flush interval must be a number of seconds > 0, got "${config.flushInterval}"`);
  const timezone = (config.timezone ?? '').trim();
  if (timezone && !isValidZone(timezone)) throw new Error(`unknown time zone "${timezone}" (use an IANA name such as Europe/Berlin)`);
  const given = (config.path ?? '').trim();
  const file = given ? path.resolve(userDir(RED), given) : defaultDatabaseFile(RED);
  return {
    file,
    scope,
    namespace,
    defaultTtl,
    timezone,
    options: { sizeLimitMb, evictionPolicy, durability, flushInterval },
  };
}

