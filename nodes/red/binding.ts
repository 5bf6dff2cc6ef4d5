// A node's hold on its cache-store: which file and namespace, opened on first use, released on close.
import { CacheError, formatBytes } from '../lib/errors';
import { acquireRedis } from '../lib/redis-registry';
import { RedisNamespace } from '../lib/redis-store';
import { acquireStore, CacheNamespace } from '../lib/registry';
import type { CacheSpace, SpaceBackend, SpaceHealth } from '../lib/space';
import type { EvictionRound } from '../lib/store';
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

/** A store held open for a binding, whichever backend: its namespaces, and the hold to let go of. */
interface Lease {
  backend: SpaceBackend;
  space(name: string, defaultTtl: number): CacheSpace;
  release(): Promise<void>;
}

/**
 * One node's access to its store: resolves the config node, opens (shares) the store on first
 * use and retries a failed open on the next message, so fixing a permission problem is enough.
 * A Redis store is opened as the node starts, so its status says "disconnected" while the server
 * cannot be reached; the client reconnects by itself and the node works again without a redeploy.
 *
 * A binding holds at most one lease and releases it exactly once. Once its node starts closing
 * it opens nothing: a message that still arrives (Node-RED delivers until every close handler has
 * finished) works on the store already held, or fails with NODE_CLOSING when none is held.
 */
export class StoreBinding {
  private lease: Promise<Lease> | undefined;
  private opened: CacheSpace | undefined;
  private state: 'open' | 'closing' | 'closed' = 'open';
  readonly settings: StoreSettings;
  private readonly tabId: string;

  /** The name of the node's namespace in its store: the shared one, or its flow tab's. */
  get namespaceName(): string {
    return this.settings.scope === 'shared' ? `shared:${this.settings.namespace}` : `flow:${this.tabId}`;
  }
  private watched: { backend: SpaceBackend; stop: () => void } | undefined;
  /** The cache-store config node, where one is named: a Redis server's comings and goings are logged under its name. */
  private readonly configNode: CacheStoreNode | undefined;

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
      if (configNode.configError || !configNode.settings)
        throw new CacheError('STORE_INVALID', shared('storeInvalid', { reason: configNode.configError ?? '' }));
      this.settings = configNode.settings;
      this.configNode = configNode;
    } else {
      this.settings = defaultStoreSettings(RED);
    }
    // the status follows the store from the start: whatever the node this one replaced left is cleared
    // (a deploy that fixed the store's settings), and a Redis store says at once whether it is reachable
    status?.fresh();
    if (this.settings.backend === 'redis') Promise.resolve(this.namespace()).catch(() => undefined);
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
  namespace(): CacheSpace | Promise<CacheSpace> {
    if (this.state === 'closed') return Promise.reject(this.closedError());
    if (this.opened) return this.opened;
    if (!this.lease) {
      if (this.state === 'closing') return Promise.reject(this.closedError());
      const opening = this.open();
      this.lease = opening;
      opening.catch(() => {
        if (this.lease === opening) this.lease = undefined;
      });
    }
    const lease = this.lease;
    return lease.then((held) => {
      const namespace = held.space(this.namespaceName, this.settings.defaultTtl);
      if (this.lease === lease) {
        this.opened = namespace;
        this.watch(held.backend);
      }
      return namespace;
    });
  }

  /** Opens (shares) the store the settings name: the SQLite file, or the client of the Redis server. */
  private async open(): Promise<Lease> {
    const logger = { warn: (m: string) => this.node.warn(m), error: (m: string) => this.node.error(m) };
    const redis = this.settings.redis;
    if (this.settings.backend === 'redis' && redis) {
      // the server lost or back is news of the store, not of whichever node happened to connect first
      const store = this.configNode ?? this.node;
      const logger = { warn: (m: string) => store.warn(m), error: (m: string) => store.error(m) };
      const { url, database, username, password, prefix } = redis;
      const lease = await acquireRedis({ url, database, username, password, logger });
      return { backend: lease.backend, space: (name, ttl) => new RedisNamespace(lease.backend, name, prefix, ttl), release: () => lease.release() };
    }
    const lease = await acquireStore(this.settings.file, { ...this.settings.options, logger });
    return { backend: lease.store, space: (name, ttl) => new CacheNamespace(lease.store, name, ttl), release: () => lease.release() };
  }

  /**
   * Shows on this node what happens to its store: writes failing or the server disconnected (red until
   * they succeed again or it is back), evictions (for a few seconds).
   */
  private watch(backend: SpaceBackend): void {
    const status = this.status;
    if (!status || this.watched?.backend === backend) return;
    this.watched?.stop();
    const onHealth = (health: SpaceHealth) => {
      // back: a failure the node showed for a message (the server was away) is over too
      if (health.ok) status.liftFailure();
      status.alert(
        health.ok
          ? undefined
          : { fill: 'red', shape: 'ring', text: shared(health.disconnected ? 'disconnected' : 'cannotWrite', { cause: shortCause(health.error) }) },
      );
    };
    const onEvicted = (round: EvictionRound) =>
      status.notice({
        fill: 'yellow',
        shape: 'ring',
        text: shared('evicted', { entries: round.entries, bytes: formatBytes(round.bytes) }),
      });
    backend.on('health', onHealth);
    backend.on('evicted', onEvicted);
    if (!backend.healthy) onHealth(backend.health ?? { ok: false, error: new Error(shared('writesFailing')) });
    this.watched = {
      backend,
      stop: () => {
        backend.removeListener('health', onHealth);
        backend.removeListener('evicted', onEvicted);
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
    let held: Lease;
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
