import { LRUCache } from 'lru-cache';
import type { Freshness } from './freshness';
import { OwnerLedgers, type WeightOf } from './owners';

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

/** Clocks of sidecars sharing a cache may differ by this much without entries being judged stale. */
const CLOCK_STEP_TOLERANCE_MS = 5_000;

/**
 * What an entry costs besides its one allocation (body and record, see StoredEntry) and its key:
 * the StoredEntry, Buffer and ArrayBuffer objects (~220 bytes of heap), the allocation's bookkeeping
 * in V8 and malloc, the LRU's and the tag index's slots and the strings of the tags only it carries,
 * and the heap V8 keeps beyond what is live. Measured as whole-process memory: the memory benchmark's
 * fill (bench/run.ts, heap-cap row: 100,000 commit-addressed answers through a 64 MiB cache, 25,435
 * kept) ended at 184 MiB RSS, the same fill with a 1 KiB cache at 116 MiB: 2,800 bytes per kept
 * entry, of which its allocation and key are ~1,990 (`--entry-cost`: 583 bytes of heap used and
 * ~1,550 of Buffers per entry by emptying the cache).
 */
const ENTRY_OVERHEAD = 850;

export function entrySize(key: string, e: Entry): number {
  return ENTRY_OVERHEAD + key.length + (e instanceof StoredEntry ? e.body.buffer.byteLength : recordLength(e) + e.body.length);
}

// --- one allocation per entry -------------------------------------------------------------------

/**
 * The layout of a stored entry's one allocation (an ArrayBuffer of exactly this size):
 *
 *   [body][0-7 bytes to align][f64 storedAt][f64 freshUntil][f64 revalidateUntil][f64 keepUntil]
 *   [u16 status][u8 freshness][u8 invalidated][u16 header count h][u16 tag count t]
 *   [u32 length in UTF-16 units × (2h + t)][UTF-8 text: header names and values, then tags]
 *
 * The V8 heap holds only the StoredEntry (one field), the body's Buffer and its ArrayBuffer: an
 * entry as an object of ten properties with its header object, header and tag strings, tags array
 * and four boxed numbers took ~450 more bytes of heap each (heap snapshot after the memory
 * benchmark's fill, bench/heap-summary.ts), and the GC walked all of it.
 */
const TIMES = 0;
const STATUS = 32;
const FRESHNESS = 34;
const INVALIDATED = 35;
const HEADER_COUNT = 36;
const TAG_COUNT = 38;
const LENGTHS = 40;
const FRESHNESS_CODES: readonly Freshness[] = ['immutable', 'metadata', 'list'];

const align8 = (n: number) => (n + 7) & ~7;

/** The record's strings, in order: header names and values, then tags. */
function recordStrings(e: Entry): string[] {
  const out: string[] = [];
  for (const name in e.headers) out.push(name, e.headers[name]);
  for (const t of e.tags) out.push(t);
  return out;
}

function recordLength(e: Entry): number {
  const strings = recordStrings(e);
  return align8(e.body.length) - e.body.length + LENGTHS + 4 * strings.length + Buffer.byteLength(strings.join(''));
}

/**
 * A stored entry: its body is a Buffer over the start of one exact-size allocation, and everything
 * else is read from (and the freshness times written to) the rest of it. The body Buffer is the same
 * object on every hit, so what the memo derived from it (src/core/body-memo.ts) and the learned-at
 * mark (src/scope/learn.ts) serve every hit of the entry.
 */
export class StoredEntry implements Entry {
  /** The store's flat copy of the entry's key, and the client that stored it (src/cache/owners.ts). */
  key = '';
  owner = '';

  private constructor(readonly body: Buffer) {}

  static from(e: Entry): StoredEntry {
    const bodyLength = e.body.length;
    const strings = recordStrings(e);
    const text = strings.join('');
    const at = align8(bodyLength);
    const textAt = at + LENGTHS + 4 * strings.length;
    const all = Buffer.allocUnsafeSlow(textAt + Buffer.byteLength(text));
    e.body.copy(all, 0);
    all.write(text, textAt, 'utf8');
    const v = new DataView(all.buffer, at);
    v.setFloat64(TIMES, e.storedAt, true);
    v.setFloat64(TIMES + 8, e.freshUntil, true);
    v.setFloat64(TIMES + 16, e.revalidateUntil, true);
    v.setFloat64(TIMES + 24, e.keepUntil, true);
    v.setUint16(STATUS, e.status, true);
    v.setUint8(FRESHNESS, Math.max(0, FRESHNESS_CODES.indexOf(e.freshness)));
    v.setUint8(INVALIDATED, e.invalidated ? 1 : 0);
    v.setUint16(HEADER_COUNT, (strings.length - e.tags.length) / 2, true);
    v.setUint16(TAG_COUNT, e.tags.length, true);
    for (let i = 0; i < strings.length; i++) v.setUint32(LENGTHS + 4 * i, strings[i].length, true);
    return new StoredEntry(Buffer.from(all.buffer, 0, bodyLength));
  }

  get status(): number {
    return record(this.body).getUint16(STATUS, true);
  }
  get freshness(): Freshness {
    return FRESHNESS_CODES[record(this.body).getUint8(FRESHNESS)];
  }
  get storedAt(): number {
    return record(this.body).getFloat64(TIMES, true);
  }
  get freshUntil(): number {
    return record(this.body).getFloat64(TIMES + 8, true);
  }
  set freshUntil(t: number) {
    record(this.body).setFloat64(TIMES + 8, t, true);
  }
  get revalidateUntil(): number {
    return record(this.body).getFloat64(TIMES + 16, true);
  }
  set revalidateUntil(t: number) {
    record(this.body).setFloat64(TIMES + 16, t, true);
  }
  get keepUntil(): number {
    return record(this.body).getFloat64(TIMES + 24, true);
  }
  set keepUntil(t: number) {
    record(this.body).setFloat64(TIMES + 24, t, true);
  }
  get invalidated(): boolean {
    return record(this.body).getUint8(INVALIDATED) === 1;
  }
  set invalidated(b: boolean) {
    record(this.body).setUint8(INVALIDATED, b ? 1 : 0);
  }

  /** A new object on every read (callers may change their copy). */
  get headers(): Record<string, string> {
    if (this.body !== lastHeadersOf) {
      const strings = this.strings(record(this.body).getUint16(HEADER_COUNT, true) * 2);
      const out: Record<string, string> = {};
      for (let i = 0; i < strings.length; i += 2) out[strings[i]] = strings[i + 1];
      lastHeaders = out;
      lastHeadersOf = this.body;
    }
    return { ...lastHeaders };
  }

  get tags(): readonly string[] {
    const r = record(this.body);
    const headers = r.getUint16(HEADER_COUNT, true) * 2;
    return this.strings(headers + r.getUint16(TAG_COUNT, true)).slice(headers);
  }

  /** The first `n` strings of the record (one UTF-8 decoding of the text, cut by the lengths). */
  private strings(n: number): string[] {
    const r = record(this.body);
    const count = r.getUint16(HEADER_COUNT, true) * 2 + r.getUint16(TAG_COUNT, true);
    const textAt = align8(this.body.length) + LENGTHS + 4 * count;
    const text = Buffer.from(this.body.buffer).toString('utf8', textAt);
    const out = new Array<string>(n);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const len = r.getUint32(LENGTHS + 4 * i, true);
      out[i] = text.slice(pos, pos + len);
      pos += len;
    }
    return out;
  }
}

/** The record after `body` in its allocation; the last one is remembered (a hit reads several fields in a row). */
let lastBody: Buffer | undefined;
let lastRecord: DataView | undefined;
function record(body: Buffer): DataView {
  if (body !== lastBody || !lastRecord) {
    lastRecord = new DataView(body.buffer, align8(body.length));
    lastBody = body;
  }
  return lastRecord;
}
/** The headers last decoded, and whose (repeated hits of one answer decode them once). */
let lastHeadersOf: Buffer | undefined;
let lastHeaders: Record<string, string> = {};

/**
 * Byte-bounded LRU of entries with a tag index for invalidation. Entries past `keepUntil` are
 * treated as absent and dropped when met; the byte bound (`cache.maxBytes`) evicts least recently
 * used entries first, so memory stays bounded whatever the key count.
 *
 * Each client holds at most its share of the bound (src/cache/owners.ts): a client storing past
 * its share evicts its own least recently used entries, and when the whole cache is full the
 * entries evicted are those of the client furthest past its share. So one client's flood of
 * distinct answers never evicts another client's entries while that client is within its share.
 */
export class CacheStore {
  private readonly lru: LRUCache<string, StoredEntry>;
  private readonly owners: OwnerLedgers<StoredEntry>;
  /** Entries evicted to keep a client within its share (`own`) or the cache within its bound (`other`). */
  readonly evictions = { own: 0, other: 0 };
  /** Keys by tag. Most tags name one answer (a ref, a commit): those keep the key itself, not a Set of one (~300 bytes each). */
  private readonly byTag = new Map<string, string | Set<string>>();

  /**
   * `maxBytes`: the cache's bound (`cache.maxBytes`); `reservedBytes` of it are taken by what is kept
   * beside the entries (the memo, see ResponseCache), the entries get the rest.
   */
  constructor(
    readonly maxBytes: number,
    private readonly now: () => number,
    reservedBytes = 0,
    weightOf: WeightOf = () => 1,
  ) {
    this.owners = new OwnerLedgers<StoredEntry>(weightOf, (e) => entrySize(e.key, e));
    this.lru = new LRUCache<string, StoredEntry>({
      maxSize: Math.max(1024, maxBytes - reservedBytes),
      sizeCalculation: (e, key) => entrySize(key, e),
      dispose: (e, key) => {
        this.owners.remove(e.owner, e);
        this.unindex(key, e);
      },
    });
  }

  /**
   * The live entry for `key`. Read for `client` (another than its owner), the entry becomes the
   * sidecar's own (''): it serves several clients, and its first client's flood of its own share
   * must not evict what the others use. Such entries go only when the whole cache is full.
   */
  get(key: string, client?: string): Entry | undefined {
    const e = this.lru.get(key);
    if (!e) return undefined;
    const now = this.now();
    if (now >= e.keepUntil) {
      this.lru.delete(key);
      return undefined;
    }
    if (client !== undefined && e.owner !== '' && e.owner !== client) {
      this.owners.remove(e.owner, e);
      e.owner = '';
      this.owners.add('', e);
    } else this.owners.touch(e.owner, e);
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

  /**
   * Stores a copy of `e` (one allocation, see StoredEntry) for `owner` (the client whose request
   * brought it; default: whoever owned the key before, else the sidecar) and returns it: the stored
   * entry is what later reads return, with its own body Buffer. Undefined when larger than the
   * owner's share allows.
   */
  set(key: string, e: Entry, owner?: string): StoredEntry | undefined {
    const stored = StoredEntry.from(e);
    // One flat copy of the key is kept (see `flat`); tags live in the record and, once each, in the index.
    key = flat(key);
    const before = this.lru.peek(key);
    stored.key = key;
    // A key another client stored before serves both: it becomes the sidecar's own (see `get`).
    stored.owner = owner === undefined ? (before?.owner ?? '') : before && before.owner !== owner ? '' : owner;
    if (!this.makeRoom(stored, before)) return undefined;
    this.lru.set(key, stored);
    if (this.lru.peek(key) !== stored) return undefined;
    this.owners.add(stored.owner, stored);
    for (const t of e.tags) {
      const keys = this.byTag.get(t);
      if (keys === undefined) this.byTag.set(flat(t), key);
      else if (typeof keys === 'string') {
        if (keys !== key) this.byTag.set(t, new Set([keys, key]));
      } else keys.add(key);
    }
    return stored;
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
    this.byTag.clear();
    this.owners.clear();
  }

  /** The client an entry returned by this store belongs to ('' the sidecar's own). */
  ownerOf(e: Entry): string | undefined {
    return e instanceof StoredEntry ? e.owner : undefined;
  }

  /** Bytes each client's entries take (metrics). */
  usage(): { owner: string; bytes: number; entries: number }[] {
    return this.owners.usage();
  }

  /**
   * Evicts so that `e` fits: first the owner's own entries beyond its share, then, while the whole
   * cache is full, those of the owner furthest past its share. False when `e` alone exceeds the share.
   */
  private makeRoom(e: StoredEntry, before: StoredEntry | undefined): boolean {
    const size = entrySize(e.key, e);
    const total = this.lru.maxSize;
    // The sidecar's own entries (those several clients use) are bounded by the whole cache only:
    // capped at a share they would thrash while the rest stood empty.
    const cap = e.owner === '' ? total : this.owners.capOf(e.owner, total);
    if (size > cap) return false;
    const freed = (o: string) => (before && before.owner === o ? entrySize(before.key, before) : 0);
    while (this.owners.bytesOf(e.owner) - freed(e.owner) + size > cap) {
      const k = this.owners.oldestOf(e.owner, e.key);
      if (k === undefined) break;
      this.lru.delete(k);
      this.evictions.own++;
    }
    while (this.lru.calculatedSize - (before ? entrySize(before.key, before) : 0) + size > total) {
      const victim = this.owners.mostOverShare(total, e.owner);
      const k = victim === undefined ? undefined : this.owners.oldestOf(victim, e.key);
      if (k === undefined) break;
      this.lru.delete(k);
      if (victim === e.owner) this.evictions.own++;
      else this.evictions.other++;
    }
    return true;
  }

  /** Keys of live entries carrying any of `tags`. */
  keysTagged(tags: readonly string[]): string[] {
    const out = new Set<string>();
    for (const t of tags) {
      const keys = this.byTag.get(t);
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

  /** What the entries may take (`maxBytes` less what is reserved). */
  get entryBytes(): number {
    return this.lru.maxSize;
  }

  private unindex(key: string, e: StoredEntry): void {
    for (const t of e.tags) {
      const keys = this.byTag.get(t);
      if (keys === undefined) continue;
      if (typeof keys === 'string') {
        if (keys === key) this.byTag.delete(t);
        continue;
      }
      keys.delete(key);
      if (keys.size === 1) this.byTag.set(t, keys.values().next().value as string);
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
