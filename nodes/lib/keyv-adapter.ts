// The store as a Keyv storage adapter: `new Keyv({ store: new FlowCacheKeyv({ file }) })` gives keyv
// users the same file, lock, group commit, size limit and expiry sweep the Node-RED nodes use.
import { EventEmitter } from 'node:events';
import { messageOf } from './errors';
import type { StoreOptions } from './options';
import { acquireStore, type StoreLease } from './registry';
import type { Store } from './store';

export interface FlowCacheKeyvOptions extends StoreOptions {
  /** The database file; stores of one file are shared (one Store per file in a process). */
  file: string;
}

/** Keyv's own namespace (set on the adapter by Keyv) becomes a store namespace of its own, so `clear()` removes only it. */
const NAMESPACE_PREFIX = 'keyv:';

/**
 * A Keyv storage adapter backed by the flow-cache store. Keyv serializes values and handles their
 * expiry stamp; the adapter keeps the text and passes Keyv's TTL (ms) to the store, whose sweep then
 * removes expired rows from the file. `disconnect()` lets go of the file.
 */
export class FlowCacheKeyv extends EventEmitter {
  readonly opts: FlowCacheKeyvOptions;
  /** Set by Keyv from its `namespace` option. */
  namespace?: string;
  private lease: Promise<StoreLease> | undefined;
  private released = false;

  constructor(options: FlowCacheKeyvOptions) {
    super();
    if (!options || typeof options.file !== 'string' || options.file === '') throw new TypeError('FlowCacheKeyv needs a database file: { file }');
    // Keyv uses an adapter's own iterator for the dialects it knows to have one: this is an SQLite file
    this.opts = { ...options, dialect: 'sqlite', url: `sqlite://${options.file}` } as FlowCacheKeyvOptions;
  }

  private store(): Promise<Store> {
    if (this.released) return Promise.reject(new Error('FlowCacheKeyv: disconnected'));
    if (!this.lease) {
      const { file, ...options } = this.opts;
      const opening = acquireStore(file, options);
      this.lease = opening;
      opening.catch((error: unknown) => {
        if (this.lease === opening) this.lease = undefined;
        this.emit('error', error);
      });
    }
    return this.lease.then((lease) => lease.store);
  }

  private get space(): string {
    return `${NAMESPACE_PREFIX}${this.namespace ?? ''}`;
  }

  async get<Value>(key: string): Promise<Value | undefined> {
    const entry = await (await this.store()).get(this.space, key);
    return entry?.value as Value | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<(Value | undefined)[]> {
    const store = await this.store();
    return Promise.all(keys.map(async (key) => (await store.get(this.space, key))?.value as Value | undefined));
  }

  async has(key: string): Promise<boolean> {
    return (await (await this.store()).get(this.space, key)) !== undefined;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    const store = await this.store();
    return Promise.all(keys.map(async (key) => (await store.get(this.space, key)) !== undefined));
  }

  /** `ttl` in milliseconds, as Keyv gives it; none or 0: kept until deleted. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const seconds = typeof ttl === 'number' && ttl > 0 ? ttl / 1000 : undefined;
    await (await this.store()).set(this.space, key, value, seconds);
    return true;
  }

  async setMany(values: { key: string; value: unknown; ttl?: number }[]): Promise<void> {
    // the store groups concurrent writes into one commit
    await Promise.all(values.map(({ key, value, ttl }) => this.set(key, value, ttl)));
  }

  async delete(key: string): Promise<boolean> {
    return (await this.store()).delete(this.space, key);
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    const store = await this.store();
    const deleted = await Promise.all(keys.map((key) => store.delete(this.space, key)));
    return deleted.some(Boolean);
  }

  async clear(): Promise<void> {
    await (await this.store()).clear(this.space);
  }

  /** Every live entry of a namespace, as [key, value] pairs (Keyv passes its namespace). */
  async *iterator<Value>(namespace?: string): AsyncGenerator<[string, Value], void> {
    const space = `${NAMESPACE_PREFIX}${namespace ?? this.namespace ?? ''}`;
    const entries = await (await this.store()).entries(space);
    for (const [key, entry] of entries) yield [key, entry.value as Value];
  }

  /** Lets go of the database file (closing it when no one else in this process uses it). */
  async disconnect(): Promise<void> {
    this.released = true;
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    try {
      await (await lease).release();
    } catch (error) {
      this.emit('error', new Error(`FlowCacheKeyv: closing failed: ${messageOf(error)}`));
    }
  }
}
