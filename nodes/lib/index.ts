// The store as a library, for code outside Node-RED (scripts, function nodes via functionExternalModules),
// and as a Keyv storage adapter.
export { now, setClock } from './clock';
export * from './errors';
export { FlowCacheKeyv, type FlowCacheKeyvOptions } from './keyv-adapter';
export { EVICTION_POLICY_TABLE, resolveStoreOptions, STORE_DEFAULTS } from './options';
export { acquireStore, CacheNamespace, type StoreLease } from './registry';
export { decodeValue, encodeValue } from './serialize';
export * from './store';
