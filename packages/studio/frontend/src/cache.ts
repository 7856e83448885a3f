// An LRU map bounded by both an entry count and a byte budget. Evicted values go through
// `onEvict` (object URLs are revoked there), so memory really is given back.

export interface CacheLimits {
  maxEntries: number;
  maxBytes: number;
}

export interface CacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

export const MB = 1024 * 1024;

export class BudgetCache<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private total = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(
    private limits: CacheLimits,
    private readonly onEvict: (key: K, value: V) => void = () => {},
  ) {
    BudgetCache.check(limits);
  }

  private static check(limits: CacheLimits): void {
    if (!(limits.maxEntries >= 0) || !(limits.maxBytes >= 0)) {
      throw new RangeError(`cache limits must be >= 0 (got ${limits.maxEntries} entries, ${limits.maxBytes} bytes)`);
    }
  }

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.total;
  }

  get currentLimits(): CacheLimits {
    return { ...this.limits };
  }

  stats(): CacheStats {
    return { entries: this.map.size, bytes: this.total, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** The value (marked most recently used) or undefined. */
  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  /** Without touching recency. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  /**
   * Stores a value of `bytes` bytes. A value larger than the whole byte budget is not kept:
   * it is handed straight to `onEvict` and `false` is returned.
   */
  set(key: K, value: V, bytes: number): boolean {
    const size = Math.max(0, bytes);
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.total -= old.bytes;
      if (old.value !== value) this.onEvict(key, old.value);
    }
    if (size > this.limits.maxBytes || this.limits.maxEntries === 0) {
      this.evictions++;
      this.onEvict(key, value);
      return false;
    }
    this.map.set(key, { value, bytes: size });
    this.total += size;
    this.trim();
    return true;
  }

  delete(key: K): boolean {
    const hit = this.map.get(key);
    if (!hit) return false;
    this.map.delete(key);
    this.total -= hit.bytes;
    this.onEvict(key, hit.value);
    return true;
  }

  clear(): void {
    const items = [...this.map.entries()];
    this.map.clear();
    this.total = 0;
    for (const [k, v] of items) this.onEvict(k, v.value);
  }

  setLimits(limits: CacheLimits): void {
    BudgetCache.check(limits);
    this.limits = { ...limits };
    this.trim();
  }

  private trim(): void {
    while (this.map.size > this.limits.maxEntries || this.total > this.limits.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const hit = this.map.get(oldest.value)!;
      this.map.delete(oldest.value);
      this.total -= hit.bytes;
      this.evictions++;
      this.onEvict(oldest.value, hit.value);
    }
  }
}
