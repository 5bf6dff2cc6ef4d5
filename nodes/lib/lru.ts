interface Slot<V> {
  value: V;
  tick: number;
}

/**
 * A Map bounded to `capacity` entries that drops the least recently used one first. Recency is
 * approximate: a hit moves an entry to the young end only once it has aged past half the
 * capacity, so hot keys cost a lookup, not a delete and re-insert, on every read.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, Slot<V>>();
  private tick = 0;
  private readonly refreshAfter: number;

  constructor(private readonly capacity: number) {
    this.refreshAfter = Math.max(1, Math.floor(capacity / 2));
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    if (this.tick - slot.tick >= this.refreshAfter) {
      this.map.delete(key);
      slot.tick = ++this.tick;
      this.map.set(key, slot);
    }
    return slot.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, { value, tick: ++this.tick });
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  /** Gives an entry that is there a new value (its recency unchanged); false, and nothing kept, when it is not there. */
  refresh(key: K, value: V): boolean {
    const slot = this.map.get(key);
    if (slot === undefined) return false;
    slot.value = value;
    return true;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }
}
