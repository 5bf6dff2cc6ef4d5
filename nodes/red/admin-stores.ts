// Which stores the admin API shows, how each is named, and what each namespace of a store belongs to.
// A store is one database file: the default one, those of the cache-store config nodes (several config
// nodes may share one file) and any other store open in this process (the context store). Stores are
// named by id ('default', a config node id, or 'open-<hash>' for a file only opened by something else);
// a request never names a file.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { acquireStore, openStoreFiles } from '../lib/registry';
import type { Store, StoreOptions } from '../lib/store';
import type { NodeAPI } from './api';
import { type CacheStoreConfig, type CacheStoreNode, defaultDatabaseFile, type StoreSettings, storeSettings } from './settings';

/** A node's configuration as the deployed flows hold it. */
export interface FlowConfig {
  id: string;
  type: string;
  z?: string;
  name?: string;
  label?: string;
  store?: string;
  [property: string]: unknown;
}

/** The parts of the runtime the admin API uses beyond what nodes use. */
export interface AdminRuntime extends NodeAPI {
  nodes: NodeAPI['nodes'] & {
    eachNode?(callback: (config: FlowConfig) => void): void;
    getCredentials?(id: string): Record<string, unknown> | undefined;
  };
}

/** The node types of this package that keep data in a store. */
export const CACHE_NODE_TYPES = ['cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'];

export interface ConfigNodeInfo {
  id: string;
  name: string;
  scope: 'flow' | 'shared';
  namespace: string;
  /** The config node's settings are invalid: no node can use it. */
  error?: string;
}

/** One store as the admin API knows it. */
export interface StoreRef {
  id: string;
  /** The database file; undefined for a config node whose settings are invalid. */
  file?: string;
  isDefault: boolean;
  /** The options the store is opened with, if the admin API opens it. */
  options: StoreOptions;
  /** '' = the host's zone. */
  timezone: string;
  configNodes: ConfigNodeInfo[];
  /** Only open in this process (no config node names its file). */
  openOnly: boolean;
  error?: string;
}

/** Every node of the deployed flows. */
export function deployedNodes(RED: AdminRuntime): FlowConfig[] {
  const nodes: FlowConfig[] = [];
  RED.nodes.eachNode?.((config) => nodes.push(config));
  return nodes;
}

function settingsOf(RED: AdminRuntime, config: FlowConfig): StoreSettings | string {
  const running = RED.nodes.getNode(config.id) as CacheStoreNode | null;
  if (running?.settings) return running.settings;
  if (running?.configError) return running.configError;
  try {
    return storeSettings(RED, config as unknown as CacheStoreConfig);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The stores there are now, the default first. */
export function storeCatalogue(RED: AdminRuntime, nodes: FlowConfig[] = deployedNodes(RED)): StoreRef[] {
  const defaultFile = path.resolve(defaultDatabaseFile(RED));
  const stores: StoreRef[] = [{ id: 'default', file: defaultFile, isDefault: true, options: {}, timezone: '', configNodes: [], openOnly: false }];
  const byFile = new Map<string, StoreRef>([[defaultFile, stores[0]]]);
  for (const config of nodes) {
    if (config.type !== 'cache-store') continue;
    const settings = settingsOf(RED, config);
    const info: ConfigNodeInfo = {
      id: config.id,
      name: String(config.name ?? ''),
      scope: config.scope === 'shared' ? 'shared' : 'flow',
      namespace: String(config.namespace ?? '').trim(),
    };
    if (typeof settings === 'string') {
      info.error = settings;
      stores.push({ id: config.id, isDefault: false, options: {}, timezone: '', configNodes: [info], openOnly: false, error: settings });
      continue;
    }
    // a Redis store has no file: the sidebar lists the SQLite files only
    if (settings.backend === 'redis') continue;
    const file = path.resolve(settings.file);
    let store = byFile.get(file);
    if (!store) {
      store = { id: config.id, file, isDefault: false, options: settings.options, timezone: settings.timezone, configNodes: [], openOnly: false };
      byFile.set(file, store);
      stores.push(store);
    }
    if (store.timezone === '' && settings.timezone !== '') store.timezone = settings.timezone;
    store.configNodes.push(info);
  }
  for (const file of openStoreFiles()) {
    if (byFile.has(file)) continue;
    const id = `open-${createHash('sha256').update(file).digest('hex').slice(0, 12)}`;
    const store: StoreRef = { id, file, isDefault: false, options: {}, timezone: '', configNodes: [], openOnly: true };
    byFile.set(file, store);
    stores.push(store);
  }
  return stores;
}

/** The store a request names: by its id, or the id of any config node that uses its file. */
export function findStore(stores: StoreRef[], id: string): StoreRef | undefined {
  return stores.find((store) => store.id === id) ?? stores.find((store) => store.configNodes.some((node) => node.id === id));
}

/** Whether a store's file is there (or open): a store that was never written holds nothing, and reading it must not create it. */
export function storeExists(store: StoreRef): boolean {
  if (!store.file) return false;
  return openStoreFiles().includes(store.file) || fs.existsSync(store.file);
}

/**
 * Runs `task` on the store, sharing it with the nodes that use it (or opening it with its config
 * node's options, and closing it again after, when nothing else has it open).
 */
export async function withStore<T>(RED: AdminRuntime, ref: StoreRef, task: (store: Store) => Promise<T>): Promise<T> {
  if (!ref.file) throw new Error(ref.error ?? 'store has no file');
  const alreadyOpen = openStoreFiles().includes(ref.file);
  // a store others hold keeps the options it was opened with: ask for it quietly
  const logger = alreadyOpen ? undefined : { warn: (m: string) => RED.log.warn(m), error: (m: string) => RED.log.error(m) };
  const lease = await acquireStore(ref.file, { ...ref.options, logger });
  try {
    return await task(lease.store);
  } finally {
    await lease.release();
  }
}

export type NamespaceKind = 'flow' | 'shared' | 'context' | 'other';

/** What a namespace belongs to. */
export interface NamespaceInfo {
  /** The name as the store keeps it, hex-encoded (as routes name it). */
  namespace: string;
  name: string;
  kind: NamespaceKind;
  /** A flow tab's label, a shared namespace's name, a context scope. */
  label: string;
  /** The flow tab of a flow namespace (or of a flow's context). */
  flowId?: string;
  /** Nothing deployed uses it: its flow tab was deleted, or no config node names a shared namespace any more. */
  orphaned: boolean;
  /** Kept by Node-RED's context store (which holds it in memory too): changed from the Context sidebar, not here. */
  readOnly: boolean;
  /** Config nodes of this store that name the namespace (shared ones). */
  configNodes: string[];
}

export function hexName(name: string): string {
  return Buffer.from(name, 'utf8').toString('hex');
}

/** A namespace named in a URL (hex, as the store keeps it); undefined if it is not well-formed. */
export function namespaceFromHex(hex: string): string | undefined {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return undefined;
  const name = Buffer.from(hex, 'hex').toString('utf8');
  return hexName(name) === hex ? name : undefined;
}

/** Describes a namespace of `store` by what the deployed flows hold. */
export function describeNamespace(name: string, store: StoreRef, nodes: FlowConfig[]): NamespaceInfo {
  const info: NamespaceInfo = { namespace: hexName(name), name, kind: 'other', label: name, orphaned: false, readOnly: false, configNodes: [] };
  const colon = name.indexOf(':');
  const head = colon === -1 ? '' : name.slice(0, colon);
  const rest = colon === -1 ? name : name.slice(colon + 1);
  const container = (id: string) => nodes.find((n) => n.id === id && (n.type === 'tab' || n.type === 'subflow'));
  if (head === 'flow') {
    info.kind = 'flow';
    info.flowId = rest;
    const tab = container(rest);
    info.label = tab ? String(tab.label || tab.name || rest) : rest;
    info.orphaned = !tab && rest !== 'global';
  } else if (head === 'shared') {
    info.kind = 'shared';
    info.label = rest;
    info.configNodes = store.configNodes.filter((c) => c.scope === 'shared' && c.namespace === rest).map((c) => c.id);
    info.orphaned = info.configNodes.length === 0;
  } else if (head === 'context') {
    info.kind = 'context';
    info.readOnly = true;
    // a scope is 'global', a flow id, or '<node id>:<flow id>'
    const flowId = rest.includes(':') ? rest.slice(rest.lastIndexOf(':') + 1) : rest;
    const tab = rest === 'global' ? undefined : container(flowId);
    if (tab) info.flowId = flowId;
    info.label =
      rest === 'global'
        ? 'global'
        : tab
          ? `${String(tab.label || tab.name || flowId)}${rest.includes(':') ? ` (${rest.slice(0, rest.lastIndexOf(':'))})` : ''}`
          : rest;
  }
  return info;
}

/** The namespaces the deployed cache nodes of `store` work in, stored or not yet. */
export function usedNamespaces(store: StoreRef, nodes: FlowConfig[]): string[] {
  const names = new Set<string>();
  const configs = new Map(store.configNodes.map((c) => [c.id, c]));
  const parents = new Map(nodes.filter((n) => n.type === 'tab').map((n) => [n.id, n]));
  for (const node of nodes) {
    if (!CACHE_NODE_TYPES.includes(node.type)) continue;
    const storeId = typeof node.store === 'string' ? node.store : '';
    const config = storeId ? configs.get(storeId) : undefined;
    if (storeId ? !config : !store.isDefault) continue;
    if (config?.error) continue;
    if (config?.scope === 'shared') names.add(`shared:${config.namespace}`);
    else if (node.z && parents.has(node.z)) names.add(`flow:${node.z}`);
  }
  return [...names];
}
