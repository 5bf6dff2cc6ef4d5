// The store as a library, for code outside Node-RED (scripts, function nodes via functionExternalModules).
export { now, setClock } from './clock';
export * from './errors';
export { acquireStore, CacheNamespace, type StoreLease } from './registry';
export { decodeValue, encodeValue } from './serialize';
export * from './store';
