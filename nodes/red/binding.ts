// A node's hold on its cache-store: which file and namespace, opened on first use, released on close.
import { CacheError, formatBytes } from '../lib/errors';
import { acquireStore, CacheNamespace, type StoreLease } from '../lib/registry';
import type { EvictionRound, Store, StoreHealth } from '../lib/store';
import type { Node, NodeAPI, NodeFlow } from './api';
import { shared } from './i18n';
import { type CacheStoreNode, defaultStoreSettings, type StoreSettings } from './settings';
import { type StatusReporter, shortCause } from './status';
import { hostZone } from './time';

/** The id of the top-level flow tab holding a node; a node inside a subflow instance gets its tab's id. */
export function flowTabId(node: Node): string {
  let flow: NodeFlow | undefined = node._flow;
  while (flow && flow.TYPE === 'subflow' && flow.parent) flow = flow.parent;
  return flow?.TYPE === 'flow' && flow.id && flow.id !== 'global' ? flow.id : (node.z ?? 'global');
}

/**
 * One node's access to its store: resolves the config node, opens (shares) the store on first
 * use and retries a failed open on the next message, so fixing a permission problem is enough.
 *
 * A binding holds at most one lease and releases it exactly once. Once its node starts closing
 * it opens nothing: a message that still arrives (Node-RED delivers until every close handler has
 * finished) works on the store already held, or fails with NODE_CLOSING when none is held.
 */
export class StoreBinding {
  private lease: Promise<StoreLease> | undefined;
  private opened: CacheNamespace | undefined;
  private state: 'open' | 'closing' | 'closed' = 'open';
  readonly settings: StoreSettings;
  private readonly tabId: string;
  private watched: { store: Store; stop: () => void } | undefined;

  constructor(
    RED: NodeAPI,
    private readonly node: Node,
    storeId: string | undefined,
    /** Where the store's own news (failing writes, evictions) is shown, over the node's own status. */
    private readonly status?: StatusReporter,
  ) {
    this.tabId = flowTabId(node);
    if (storeId) {
      const configNode = RED.nodes.getNode(storeId) as CacheStoreNode | null;
      if (!configNode) throw new CacheError('STORE_MISSING', shared('storeMissing', { id: storeId }));
      if (configNode.configError || !configNode.settings) throw new CacheError('STORE_INVALID', shared('storeInvalid', { reason: configNode.configError ?? '' }));
      this.settings = configNode.settings;
    } else {
      this.settings = defaultStoreSettings(RED);
    }
  }

  /** The zone dates are shown in: the store's, else the host's. */
  get zone(): string {
    return this.settings.timezone || hostZone();
  }

  /** True once the node has started closing (redeploy or stop). */
  get closing(): boolean {
    return this.state !== 'open';
  }

  /** The namespace this node works in, opening the store if needed (the opened namespace is kept). */
  namespace(): CacheNamespace | Promise<CacheNamespace> {
    if (this.state === 'closed') return Promise.reject(this.closedError());
    if (this.opened) return this.opened;
    if (!this.lease) {
      if (this.state === 'closing') return Promise.reject(this.closedError());
      const logger = { warn: (m: string) => this.node.warn(m), error: (m: string) => this.node.error(m) };
      const opening = acquireStore(this.settings.file, { ...this.settings.options, logger });
      this.lease = opening;
      opening.catch(() => {
        if (this.lease === opening) this.lease = undefined;
      });
    }
    const lease = this.lease;
    return lease.then(({ store }) => {
      const name = this.settings.scope === 'shared' ? `shared:${this.settings.namespace}` : `flow:${this.tabId}`;
      const namespace = new CacheNamespace(store, name, this.settings.defaultTtl);
      if (this.lease === lease) {
        this.opened = namespace;
        this.watch(store);
      }
      return namespace;
    });
  }

  /** Shows on this node what happens to its store: writes failing (red until they succeed again), evictions (for a few seconds). */
  private watch(store: Store): void {
    const status = this.status;
    if (!status || this.watched?.store === store) return;
    this.watched?.stop();
    const onHealth = (health: StoreHealth) =>
      status.alert(health.ok ? undefined : { fill: 'red', shape: 'ring', text: shared('cannotWrite', { cause: shortCause(health.error) }) });
    const onEvicted = (round: EvictionRound) =>
      status.notice({
        fill: 'yellow',
        shape: 'ring',
        text: shared('evicted', { entries: round.entries, bytes: formatBytes(round.bytes) }),
      });
    store.on('health', onHealth);
    store.on('evicted', onEvicted);
    if (!store.healthy) onHealth({ ok: false, error: new Error(shared('writesFailing')) });
    this.watched = {
      store,
      stop: () => {
        store.removeListener('health', onHealth);
        store.removeListener('evicted', onEvicted);
      },
    };
  }

  /** From now on nothing new is opened; what is held stays usable until `release()`. */
  beginClose(): void {
    if (this.state === 'open') this.state = 'closing';
  }

  /** Lets go of the store (closing it if this was its last user); the binding cannot open again. */
  async release(): Promise<void> {
    this.state = 'closed';
    this.watched?.stop();
    this.watched = undefined;
    const lease = this.lease;
    this.lease = undefined;
    this.opened = undefined;
    if (!lease) return;
    let held: StoreLease;
    try {
      held = await lease;
    } catch {
      return; // the open failed: nothing to release
    }
    await held.release();
  }

  private closedError(): CacheError {
    return new CacheError('NODE_CLOSING', shared(this.state === 'closed' ? 'nodeStopped' : 'nodeStopping', { type: this.node.type }));
  }
}

