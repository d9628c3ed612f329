import { LRUCache } from 'lru-cache';
import type { Freshness } from './freshness';

/** One stored upstream answer, raw (before any per-client shaping). */
export interface Entry {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  freshness: Freshness;
  storedAt: number;
  /** Served without asking upstream until then. */
  freshUntil: number;
  /** Served while refreshing in the background until then (stale-while-revalidate). */
  revalidateUntil: number;
  /** Served when upstream fails (5xx, 429, network) until then (stale-if-error); dropped after. */
  keepUntil: number;
  /** Invalidated (webhook, write): only good as a last resort when upstream fails. */
  invalidated: boolean;
  tags: readonly string[];
}

/** Distinct header values remembered for sharing (see CacheStore.headerValues). */
const INTERNED_VALUES = 256;

/** Clocks of sidecars sharing a cache may differ by this much without entries being judged stale. */
const CLOCK_STEP_TOLERANCE_MS = 5_000;

/**
 * Bytes an entry holds besides its body, key, headers and tags: the entry object, the body's Buffer
 * and ArrayBuffer objects (~180 bytes), the LRU's and the tag index's slots, and the body's malloc
 * header. With strings counted at two bytes a character (V8 keeps most at one, and tags are shared)
 * the count errs high: after the memory benchmark's fill (bench/run.ts, 22,000 commit-addressed
 * answers kept) entries counted at 2,990 bytes held 2,670 (987 on the heap, 1,686 of body), measured
 * by clearing the cache and comparing process.memoryUsage().
 */
const ENTRY_OVERHEAD = 650;

export function entrySize(key: string, e: Entry): number {
  let n = ENTRY_OVERHEAD + key.length * 2 + e.body.length;
  for (const [k, v] of Object.entries(e.headers)) n += (k.length + v.length) * 2 + 32;
  for (const t of e.tags) n += t.length * 2 + 64;
  return n;
}

/**
 * Byte-bounded LRU of entries with a tag index for invalidation. Entries past `keepUntil` are
 * treated as absent and dropped when met; the byte bound (`cache.maxBytes`) evicts least recently
 * used entries first, so memory stays bounded whatever the key count.
 */
export class CacheStore {
  private readonly lru: LRUCache<string, Entry>;
  /**
   * Keys by tag. Most tags name one answer (a ref, a commit): those keep the key itself, not a Set
   * of one (~300 bytes each). `tag` is the one copy of the tag string all entries carrying it share.
   */
  private readonly byTag = new Map<string, { tag: string; keys: string | Set<string> }>();
  /**
   * Header values many answers share (`content-type`, Bitbucket's `x-ratelimit-*`), one copy each.
   * Values seen once (an `etag`) pass through; the table is emptied when it grows past INTERNED_VALUES.
   */
  private readonly headerValues = new Map<string, string>();

  constructor(
    maxBytes: number,
    private readonly now: () => number,
  ) {
    this.lru = new LRUCache<string, Entry>({
      maxSize: Math.max(1024, maxBytes),
      sizeCalculation: (e, key) => entrySize(key, e),
      dispose: (e, key) => this.unindex(key, e),
    });
  }

  get(key: string): Entry | undefined {
    const e = this.lru.get(key);
    if (!e) return undefined;
    const now = this.now();
    if (now >= e.keepUntil) {
      this.lru.delete(key);
      return undefined;
    }
    // The clock went back (an NTP step, a restored VM): an answer stored "in the future" would
    // otherwise stay fresh for as long as the jump. It is stale now, still usable as a fallback.
    if (e.storedAt > now + CLOCK_STEP_TOLERANCE_MS) {
      e.freshUntil = Math.min(e.freshUntil, now);
      e.revalidateUntil = Math.min(e.revalidateUntil, now);
    }
    return e;
  }

  /** Looks without touching recency (for derived answers and tests). */
  peek(key: string): Entry | undefined {
    const e = this.lru.peek(key);
    return e && this.now() < e.keepUntil ? e : undefined;
  }

  set(key: string, e: Entry): boolean {
    // What is kept for long is kept compact: one flat copy of the key, and the tags as an exact-size
    // array of the strings the tag index already holds (see `flat`).
    key = flat(key);
    e.tags = e.tags.map((t) => this.byTag.get(t)?.tag ?? flat(t));
    for (const [name, value] of Object.entries(e.headers)) e.headers[name] = this.headerValue(value);
    this.lru.set(key, e);
    if (this.lru.peek(key) !== e) return false; // larger than the whole cache allows
    for (const tag of e.tags) {
      const index = this.byTag.get(tag);
      if (!index) this.byTag.set(tag, { tag, keys: key });
      else if (typeof index.keys === 'string') {
        if (index.keys !== key) index.keys = new Set([index.keys, key]);
      } else index.keys.add(key);
    }
    return true;
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
    this.byTag.clear();
  }

  /** Keys of live entries carrying any of `tags`. */
  keysTagged(tags: readonly string[]): string[] {
    const out = new Set<string>();
    for (const t of tags) {
      const keys = this.byTag.get(t)?.keys;
      if (typeof keys === 'string') out.add(keys);
      else for (const k of keys ?? []) out.add(k);
    }
    return [...out];
  }

  get entries(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get maxBytes(): number {
    return this.lru.maxSize;
  }

  private headerValue(value: string): string {
    const known = this.headerValues.get(value);
    if (known !== undefined) return known;
    if (this.headerValues.size >= INTERNED_VALUES) this.headerValues.clear();
    this.headerValues.set(value, value);
    return value;
  }

  private unindex(key: string, e: Entry): void {
    for (const t of e.tags) {
      const index = this.byTag.get(t);
      if (!index) continue;
      if (typeof index.keys === 'string') {
        if (index.keys === key) this.byTag.delete(t);
        continue;
      }
      index.keys.delete(key);
      if (index.keys.size === 1) index.keys = index.keys.values().next().value as string;
    }
  }
}

/**
 * A flat copy of a string. V8 keeps the parts of a string built by concatenation, and the whole
 * string a slice was cut from (a tag `ref:{ws}/{repo}:{rev}` keeps the request path `rev` came from);
 * a JSON round trip makes one sequential string of exactly the same characters.
 */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
