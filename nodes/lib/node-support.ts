import os from 'node:os';
import path from 'node:path';
import { DateTime, IANAZone } from 'luxon';
import { now } from './clock';
import { CacheError, formatBytes, InputError } from './errors';
import type { BaseNodeConfig, DoneFunction, Node, NodeAPI, NodeFlow, NodeMessage, NodeStatus, SendFunction } from './node-red';
import { acquireStore, CacheNamespace, type StoreLease } from './registry';
import type { Durability, Entry, EvictionPolicy, EvictionRound, Store, StoreHealth, StoreOptions } from './store';

export const KEY_TYPES = ['msg', 'str', 'flow', 'global', 'env', 'jsonata'] as const;
export const MAX_KEY_LENGTH = 1024;

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

/** The default database file: <userDir>/flow-cache/cache.sqlite. */
export function defaultDatabaseFile(RED: NodeAPI): string {
  return path.join(userDir(RED), 'flow-cache', 'cache.sqlite');
}

export function userDir(RED: NodeAPI): string {
  return RED.settings.userDir || path.join(os.homedir(), '.node-red');
}

let hostZoneName: string | undefined;

/** The host's IANA zone name (what an empty `timezone` means); looked up once: an Intl.DateTimeFormat costs more than a whole message. */
export function hostZone(): string {
  hostZoneName ??= Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  return hostZoneName;
}

export function isValidZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

/** The id of the top-level flow tab holding a node; a node inside a subflow instance gets its tab's id. */
export function flowTabId(node: Node): string {
  let flow: NodeFlow | undefined = node._flow;
  while (flow && flow.TYPE === 'subflow' && flow.parent) flow = flow.parent;
  return flow?.TYPE === 'flow' && flow.id && flow.id !== 'global' ? flow.id : (node.z ?? 'global');
}

/** An unset dialog field or message property: undefined, null or ''. */
export function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A finite number from a number or numeric text (as dialogs and messages carry them); undefined otherwise. */
export function numberFrom(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** A finite number from a message or the dialog, else an InputError naming `where`. */
export function finiteNumber(value: unknown, where: string): number {
  const n = numberFrom(value);
  if (n === undefined) throw new InputError(`${where} must be a finite number, got ${describe(value)}`);
  return n;
}

/** Reads a number property of a node's configuration; '' or undefined gives the default. */
export function configNumber(value: unknown, fallback: number): number {
  if (isBlank(value)) return fallback;
  return typeof value === 'number' ? value : Number(value);
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
      if (!configNode) throw new CacheError('STORE_MISSING', `the cache-store config node ${storeId} is missing (deleted or disabled?)`);
      if (configNode.configError || !configNode.settings) throw new CacheError('STORE_INVALID', `cache-store: ${configNode.configError}`);
      this.settings = configNode.settings;
    } else {
      this.settings = {
        file: defaultDatabaseFile(RED),
        scope: 'flow',
        namespace: '',
        defaultTtl: 0,
        timezone: '',
        options: {},
      };
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
      status.alert(health.ok ? undefined : { fill: 'red', shape: 'ring', text: `store cannot write: ${shortCause(health.error)}` });
    const onEvicted = (round: EvictionRound) =>
      status.notice({ fill: 'yellow', shape: 'ring', text: `store full: evicted ${round.entries} cache entries (${formatBytes(round.bytes)})` });
    store.on('health', onHealth);
    store.on('evicted', onEvicted);
    if (!store.healthy) onHealth({ ok: false, error: new Error('writes are failing') });
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
    return new CacheError(
      'NODE_CLOSING',
      `${this.node.type} is ${this.state === 'closed' ? 'stopped' : 'stopping'} (redeploy or shutdown): message not processed, nothing written`,
    );
  }
}

/** Evaluates a TypedInput property (msg, flow, global, env, jsonata, str, num, ...). */
export function evaluate(RED: NodeAPI, node: Node, value: unknown, type: string, msg: NodeMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    try {
      RED.util.evaluateNodeProperty(value, type, node, msg, (err, result) => (err ? reject(err) : resolve(result)));
    } catch (error) {
      reject(error);
    }
  });
}

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/** Fills `{{path}}` placeholders with message properties; a missing or non-scalar one is an error. */
export function fillPlaceholders(RED: NodeAPI, template: string, msg: NodeMessage, what: string): string {
  return template.replace(PLACEHOLDER, (_match, property: string) => {
    const name = property.startsWith('msg.') ? property.slice(4) : property;
    let value: unknown;
    try {
      value = RED.util.getMessageProperty(msg, name);
    } catch {
      value = undefined;
    }
    if (value === undefined || value === null || value === '') throw new InputError(`${what} placeholder {{${property}}}: msg.${name} is not set`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new InputError(`${what} placeholder {{${property}}}: msg.${name} is a ${Array.isArray(value) ? 'array' : typeof value}, not text`);
    }
    return String(value);
  });
}

const PLAIN_NAME = /^[A-Za-z_$][\w$]*$/;

/** A property path that is one plain name (`topic`, `payload`), read and written without parsing it as an expression. */
export function isPlainName(path: string): boolean {
  return PLAIN_NAME.test(path) && path !== '__proto__' && path !== 'constructor' && path !== 'prototype';
}

/** Sets a message property by path; a plain name is a direct assignment. */
export function setMessageProperty(RED: NodeAPI, msg: NodeMessage, path: string, value: unknown): void {
  if (isPlainName(path)) msg[path] = value;
  else RED.util.setMessageProperty(msg, path, value, true);
}

/** A message property by path (the common key type, read without a callback); a malformed path reads as unset. */
function messageProperty(RED: NodeAPI, msg: NodeMessage, path: string): unknown {
  if (isPlainName(path)) return Object.hasOwn(msg, path) ? msg[path] : undefined;
  try {
    return RED.util.getMessageProperty(msg, path);
  } catch {
    return undefined;
  }
}

/** Resolves a node's key for one message; an empty or non-string key is an error. */
export async function resolveKey(RED: NodeAPI, node: Node, config: BaseNodeConfig, msg: NodeMessage): Promise<string> {
  const keyType = config.keyType || 'msg';
  const keyValue = config.key ?? (keyType === 'msg' ? 'topic' : '');
  let key: unknown;
  if (keyType === 'str') key = fillPlaceholders(RED, keyValue, msg, 'key');
  else if (keyType === 'msg') key = messageProperty(RED, msg, keyValue);
  else key = await evaluate(RED, node, keyValue, keyType, msg);
  const where = keyType === 'str' ? 'the key' : `key ${keyType}.${keyValue}`;
  if (key === undefined || key === null) throw new InputError(`${where} is not set`);
  if (typeof key !== 'string') throw new InputError(`${where} must be a string, got ${Array.isArray(key) ? 'array' : typeof key}`);
  if (key.length === 0) throw new InputError(`${where} is empty`);
  if (key.length > MAX_KEY_LENGTH) throw new InputError(`${where} is ${key.length} characters long; the limit is ${MAX_KEY_LENGTH}`);
  return key;
}

/** Checks the key property of a node's configuration; throws a readable error. */
export function checkKeyConfig(config: BaseNodeConfig): void {
  const keyType = config.keyType || 'msg';
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) throw new Error(`unknown key type "${keyType}"`);
  if (keyType !== 'msg' && keyType !== 'str') return;
  const key = config.key ?? (keyType === 'msg' ? 'topic' : '');
  if (typeof key !== 'string' || key.trim() === '') throw new Error('the key is empty');
}

/** The messages each node is working on, so closing can wait for them. */
const inProgress = new WeakMap<Node, Set<Promise<void>>>();

/**
 * Registers an input handler that ends every message: the handler's errors turn the status red
 * and reach Catch nodes through done(err); Node-RED never sees a rejected promise.
 */
export function onInput(node: Node, status: StatusReporter, handler: (msg: NodeMessage, send: SendFunction) => Promise<void>): void {
  let active = inProgress.get(node);
  if (!active) {
    active = new Set();
    inProgress.set(node, active);
  }
  const working = active;
  node.on('input', (msg, send, done: DoneFunction) => {
    let work: Promise<void>;
    try {
      work = handler(msg, send);
    } catch (error) {
      work = Promise.reject(error);
    }
    const settled = work.then(
      () => done(),
      (error: unknown) => {
        const err = error instanceof Error ? error : new Error(String(error));
        status.set({ fill: 'red', shape: 'ring', text: shorten(err.message) }, true);
        done(err);
      },
    );
    working.add(settled);
    const forget = () => working.delete(settled);
    settled.then(forget, forget);
  });
}

/** A node whose configuration is invalid still ends every message with the configuration error. */
export function rejectAll(node: Node, status: StatusReporter, message: string): void {
  status.set({ fill: 'red', shape: 'ring', text: shorten(message) }, true);
  node.error(message);
  node.on('input', (_msg, _send, done) => done(new InputError(message)));
}

/** How long closing waits for the messages a node is still working on before it lets go of the store anyway. */
export const CLOSE_DRAIN_MS = 10_000;

/**
 * Ends a node cleanly on redeploy or stop: clears its status timer, stops the binding from opening
 * anything, lets `settle` finish (node-specific in-flight work) and the messages still in
 * progress end, including those Node-RED delivers after close began, then releases the store,
 * which closes (flushing deferred writes) once its last user has gone.
 */
export function releaseOnClose(node: Node, status: StatusReporter, binding: StoreBinding, settle?: () => Promise<unknown>): void {
  node.on('close', (_removed, done) => {
    status.clear();
    binding.beginClose();
    Promise.resolve()
      .then(() => settle?.())
      .catch(() => undefined)
      .then(() => drain(node, CLOSE_DRAIN_MS))
      .then(() => binding.release())
      .catch((error: unknown) => node.error(`closing the cache store failed: ${(error as Error).message}`))
      .then(() => done());
  });
}

/** One turn of the event loop: messages Node-RED had already routed to a node are delivered by then. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Waits until `node` has no message in progress and none still on its way, at most `limitMs`;
 * warns about what is still running then. Node-RED delivers each message a turn of the event loop
 * after routing it, so messages routed to the node just before it was stopped arrive after close
 * began: two quiet turns with nothing in progress mean nothing more is coming.
 */
async function drain(node: Node, limitMs: number): Promise<void> {
  const active = inProgress.get(node) ?? new Set<Promise<void>>();
  const deadline = Date.now() + limitMs;
  for (;;) {
    await nextTurn();
    await nextTurn();
    if (active.size === 0) return;
    const left = deadline - Date.now();
    if (left <= 0) {
      node.warn(`${active.size} message(s) still in progress ${limitMs / 1000} s after close began; releasing the store without them (their writes may fail)`);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...active]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      }),
    ]);
    clearTimeout(timer);
  }
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Sets a node's status at most every `intervalMs` (the latest one always shows, a little later),
 * so a burst of messages does not flood the editor with status events.
 */
export class StatusReporter {
  static intervalMs = 250;
  /** How long a notice (an eviction round) stays before the node's own status returns. */
  static noticeMs = 5000;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private latest: NodeStatus | undefined;
  private alerting: NodeStatus | undefined;
  private noticing: NodeStatus | undefined;
  private noticeTimer: NodeJS.Timeout | undefined;

  constructor(private readonly node: Node) {}

  /** A status that stays over the node's own until it is lifted (undefined lifts it). */
  alert(status: NodeStatus | undefined): void {
    this.alerting = status;
    this.show();
  }

  /** A status shown for `noticeMs` over the node's own (an alert still wins). */
  notice(status: NodeStatus): void {
    this.noticing = status;
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      this.noticing = undefined;
      this.noticeTimer = undefined;
      this.show();
    }, StatusReporter.noticeMs);
    this.noticeTimer.unref?.();
    this.show();
  }

  set(status: NodeStatus, immediate = false): void {
    this.latest = status;
    const t = Date.now();
    if (immediate || t - this.last >= StatusReporter.intervalMs) {
      this.show();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.show(), StatusReporter.intervalMs - (t - this.last));
      this.timer.unref?.();
    }
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.noticeTimer = undefined;
  }

  private show(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.last = Date.now();
    const shown = this.alerting ?? this.noticing ?? this.latest;
    if (shown) this.node.status(shown);
  }
}

const isoMemo = new Map<string, string | null>();

/** An instant in ms as an ISO string in a zone (null stays null); repeated instants (hits on one entry) come from a small memo. */
export function isoInZone(ms: number | null | undefined, zone: string): string | null {
  if (ms === null || ms === undefined) return null;
  const memoKey = `${zone}|${ms}`;
  let iso = isoMemo.get(memoKey);
  if (iso === undefined) {
    iso = DateTime.fromMillis(ms, { zone }).toISO();
    if (isoMemo.size >= 1_000) isoMemo.clear();
    isoMemo.set(memoKey, iso);
  }
  return iso;
}

/** The `msg.cache` object of cache-get / cache-set. */
export function cacheInfo(key: string, hit: boolean, entry: Entry | undefined, zone: string) {
  return {
    key,
    hit,
    storedAt: isoInZone(entry?.storedAt, zone),
    expiresAt: isoInZone(entry?.expiresAt, zone),
    age: entry ? Math.max(0, now() - entry.storedAt) : null,
  };
}

/** Parses a TTL given in seconds (from the dialog or msg.ttl): a finite number >= 0, else an error. */
export function parseTtl(value: unknown, where: string): number {
  const n = numberFrom(value);
  if (n === undefined || n < 0) {
    throw new InputError(`${where} must be a number of seconds >= 0, got ${describe(value)}`);
  }
  return n;
}

/** A short description of a bad input for error texts. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

export type { Durability, EvictionPolicy };

/** The driver's own words for a failure (the innermost cause), without the "cannot write cache database <path>:" leads. */
function shortCause(error: Error | undefined): string {
  let inner: unknown = error;
  while (inner instanceof Error && (inner as { cause?: unknown }).cause instanceof Error) inner = (inner as { cause?: unknown }).cause;
  const text = inner instanceof Error ? inner.message : 'unknown error';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
