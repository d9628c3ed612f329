import { createHash, randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { Entry } from '../store';
import type { SharedFlight, SharedTier } from '../tier';
import { decodeEntry, encodeEntry, type Compression, type Decoded } from './codec';
import type { RedisLink } from './connection';
import { SharedLedger } from './ledger';

/**
 * The second cache tier in Redis (`cache.shared.redis`, docs/several-sidecars.md): stored answers,
 * invalidation, and single flight across sidecars.
 *
 * Keys (after `keyPrefix`):
 *   e:{name}          a stored answer (codec.ts), expiring with the entry's `keepUntil`
 *   lock:{name}       held by the one sidecar fetching the key (SET NX PX, a random token)
 *   seq               the invalidation counter
 *   t:{tag}           the counter's value at the tag's last invalidation
 *   events            pub/sub channel: invalidations, and "answer stored" for waiting sidecars
 *
 * Invalidation without fan-out: a stored copy carries the counter's value from when its fetch
 * started; a copy whose tags were invalidated later (a higher `t:{tag}`) is invalidated when read.
 * So an invalidation is one INCR and one SET per tag, however many copies it concerns, and a fetch
 * racing with an invalidation is stored invalidated, as in the memory tier. The message on
 * `events` makes every other sidecar mark its memory copies at once.
 *
 * Memory copies are trusted for `memorySeconds` after they were last compared with Redis (and only
 * while the subscription is up, since an invalidation missed while it was down would otherwise go
 * unnoticed); after that, a request looks at Redis again.
 *
 * `{name}` is the cache key, or for a key longer than MAX_KEY_CHARS (a request path can be 4 KB)
 * `h:` and its SHA-256: what a client sends is never stored in Redis at any length.
 *
 * What this sidecar writes for each client is bounded by its share of `cache.shared.maxBytes`
 * (ledger.ts); only answers that saved an upstream call are written at all (src/cache/cache.ts).
 */
const MAX_KEY_CHARS = 256;

interface Scripts {
  sidecarPeekBuffer(keys: number, ...args: (string | Buffer)[]): Promise<(Buffer | null)[]>;
  sidecarAcquireBuffer(keys: number, ...args: (string | Buffer | number)[]): Promise<[number, Buffer | null, Buffer | null, ...(Buffer | null)[]]>;
  sidecarFinish(keys: number, ...args: (string | Buffer | number)[]): Promise<number>;
  sidecarInvalidate(keys: number, ...args: (string | number)[]): Promise<number>;
}

const SCRIPTS = {
  // KEYS: entry, tags… → value, tag versions…
  sidecarPeek: `
    local r = { redis.call('GET', KEYS[1]) }
    for i = 2, #KEYS do r[#r + 1] = redis.call('GET', KEYS[i]) or '0' end
    return r`,
  // KEYS: lock, seq, entry, tags…  ARGV: token, ttl ms → won (1/0), seq, value, tag versions…
  sidecarAcquire: `
    local won = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
    local r = { won and 1 or 0, redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) }
    for i = 4, #KEYS do r[#r + 1] = redis.call('GET', KEYS[i]) or '0' end
    return r`,
  // KEYS: lock, entry  ARGV: token, value ('' = none), ttl ms, channel, message ('' = none)
  sidecarFinish: `
    if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
    if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
    if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
    return 1`,
  // KEYS: seq, tags…  ARGV: ttl ms, channel, message → the new counter value
  sidecarInvalidate: `
    local s = redis.call('INCR', KEYS[1])
    for i = 2, #KEYS do redis.call('SET', KEYS[i], s, 'PX', ARGV[1]) end
    redis.call('PUBLISH', ARGV[2], ARGV[3])
    return s`,
};

export interface TierDeps {
  link: RedisLink;
  keyPrefix: string;
  /** The sidecar's clock (freshness times in entries are in its terms). */
  now: () => number;
  compression: Compression;
  memorySeconds: number;
  lockTtlMs: number;
  lockWaitMs: number;
  /** The longest a stored answer can be kept (tag invalidations are remembered this long). */
  maxEntryLifetimeMs: number;
  /** How often a waiting sidecar looks again when no "stored" message came (default 100 ms). */
  pollMs?: number;
  /** Invalidations kept while Redis is away, published when it returns (default 10,000 tags). */
  maxPendingTags?: number;
  /** Bytes of answers this sidecar keeps in Redis, divided among clients (`cache.shared.maxBytes`). */
  maxBytes: number;
  /** A client's weight for its share of `maxBytes` (clients[].budgetWeight). */
  weight?: (client: string) => number;
}

export interface TierStats {
  reads: { hit: number; miss: number; error: number };
  writes: number;
  /** Answers not written because their client had used its share of `cache.shared.maxBytes`. */
  overShare: number;
  flights: { leader: number; follower: number; timeout: number; busy: number };
  invalidations: { sent: number; received: number; deferred: number; dropped: number };
}

interface Meta {
  checkedAt: number;
  epoch: number;
  /** The invalidation counter the copy's fetch started at (undefined: fetched while Redis was away). */
  seq?: number;
  /** What this sidecar's write of the copy counts in the ledger. */
  counted?: { owner: string; bytes: number; bucket: number };
}

export class RedisCacheTier implements SharedTier {
  readonly stats: TierStats = {
    reads: { hit: 0, miss: 0, error: 0 },
    writes: 0,
    overShare: 0,
    flights: { leader: 0, follower: 0, timeout: 0, busy: 0 },
    invalidations: { sent: 0, received: 0, deferred: 0, dropped: 0 },
  };
  /** This process's name on the channel (its own messages come back to it and are skipped). */
  readonly origin = randomBytes(8).toString('hex');
  readonly channel: string;
  private readonly redis: Redis & Scripts;
  private readonly meta = new WeakMap<Entry, Meta>();
  /** Bumped when the subscription (re)starts: copies checked before may have missed an invalidation. */
  private epoch = 0;
  private readonly listeners: ((tags: readonly string[]) => void)[] = [];
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly pending = new Set<string>();
  readonly ledger: SharedLedger;

  constructor(private readonly deps: TierDeps) {
    this.ledger = new SharedLedger(deps.maxBytes, deps.weight ?? (() => 1), deps.now);
    this.channel = `${deps.keyPrefix}events`;
    this.redis = deps.link.cmd as Redis & Scripts;
    for (const [name, lua] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { lua });
    deps.link.onChange((up) => {
      this.epoch++;
      if (up) this.flushPending();
    });
  }

  /** Handles a message from the `events` channel (RedisLink delivers them). */
  receive(message: string): void {
    let m: { o?: string; inv?: unknown; done?: unknown };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      return;
    }
    if (typeof m.done === 'string') {
      for (const wake of this.waiting.get(m.done) ?? []) wake();
      return;
    }
    if (m.o === this.origin || !Array.isArray(m.inv)) return;
    const tags = m.inv.filter((t): t is string => typeof t === 'string');
    this.stats.invalidations.received++;
    for (const fn of this.listeners) fn(tags);
  }

  // --- SharedTier ---------------------------------------------------------------------------

  async get(key: string, tags: readonly string[], local: Entry | undefined): Promise<Entry | undefined> {
    if (!this.deps.link.up) return local;
    let reply: (Buffer | null)[];
    try {
      reply = await this.redis.sidecarPeekBuffer(1 + tags.length, this.k('e', name(key)), ...tags.map((t) => this.k('t', t)));
    } catch (e) {
      return this.failed(e, local);
    }
    const now = this.deps.now();
    const found = reply[0] ? await this.read(reply[0], name(key), reply.slice(1), now) : undefined;
    if (!found) {
      this.stats.reads.miss++;
      if (local) this.checked(local, now, this.meta.get(local)?.seq);
      return local;
    }
    this.stats.reads.hit++;
    const { entry, seq } = found;
    if (local && !newer(entry, local)) {
      this.checked(local, now, this.meta.get(local)?.seq ?? (local.storedAt === entry.storedAt ? seq : undefined));
      return local;
    }
    this.checked(entry, now, seq);
    return entry;
  }

  trusts(entry: Entry, now: number): boolean {
    if (!this.deps.link.up) return true;
    const m = this.meta.get(entry);
    return m !== undefined && m.epoch === this.epoch && now - m.checkedAt < this.deps.memorySeconds * 1000;
  }

  async begin(key: string, tags: readonly string[], options: { wait: boolean }): Promise<SharedFlight> {
    if (!this.deps.link.up) return SOLO;
    const token = randomBytes(12).toString('hex');
    const deadline = Date.now() + this.deps.lockWaitMs;
    let waited = false;
    for (;;) {
      let reply: Awaited<ReturnType<Scripts['sidecarAcquireBuffer']>>;
      try {
        reply = await this.redis.sidecarAcquireBuffer(3 + tags.length, this.k('lock', name(key)), this.k('seq'), this.k('e', name(key)), ...tags.map((t) => this.k('t', t)), token, String(this.deps.lockTtlMs));
      } catch (e) {
        this.failed(e, undefined);
        return SOLO;
      }
      const [won, seqRaw, value, ...versions] = reply;
      const seq = counter(seqRaw);
      const now = this.deps.now();
      const found = value ? await this.read(value, name(key), versions, now) : undefined;
      if (found && now < found.entry.freshUntil && !found.entry.invalidated) {
        // Stored meanwhile (by the lock holder, or just before we asked): no call.
        if (won === 1) void this.release(key, token, undefined, seq);
        this.checked(found.entry, now, found.seq);
        if (waited) this.stats.flights.follower++;
        this.stats.reads.hit++;
        return { entry: found.entry, finish: NOTHING };
      }
      if (won === 1) {
        this.stats.flights.leader++;
        return { finish: (stored, o) => this.release(key, token, stored, seq, o) };
      }
      if (!options.wait) {
        this.stats.flights.busy++;
        return { busy: true, finish: NOTHING };
      }
      if (Date.now() >= deadline || !this.deps.link.up) {
        // The holder is slow (or Redis went away): call ourselves, and still share the answer.
        this.stats.flights.timeout++;
        return { finish: (stored, o) => this.release(key, '', stored, seq, o) };
      }
      waited = true;
      await this.stored(name(key), Math.min(this.deps.pollMs ?? 100, deadline - Date.now()));
    }
  }

  invalidate(tags: readonly string[]): void {
    if (tags.length === 0) return;
    if (!this.deps.link.up) {
      this.defer(tags);
      return;
    }
    this.redis.sidecarInvalidate(1 + tags.length, this.k('seq'), ...tags.map((t) => this.k('t', t)), String(this.deps.maxEntryLifetimeMs), this.channel, JSON.stringify({ o: this.origin, inv: tags })).then(
      () => void this.stats.invalidations.sent++,
      (e: unknown) => {
        this.defer(tags);
        this.deps.link.failed(e);
      },
    );
  }

  onInvalidation(fn: (tags: readonly string[]) => void): void {
    this.listeners.push(fn);
  }

  adopt(from: Entry, to: Entry): void {
    const m = this.meta.get(from);
    if (m) this.meta.set(to, m);
  }

  renewed(key: string, entry: Entry): void {
    const seq = this.meta.get(entry)?.seq;
    if (seq === undefined || !this.deps.link.up) return;
    void this.write(key, entry, seq);
  }

  // --- internals -------------------------------------------------------------------------------

  private k(kind: string, name = ''): string {
    return `${this.deps.keyPrefix}${kind}${name ? `:${name}` : ''}`;
  }

  /** A stored value as an entry, invalidated when one of its tags was invalidated after its fetch started. */
  private async read(value: Buffer, key: string, versions: (Buffer | null)[], now: number): Promise<Decoded | undefined> {
    const d = await decodeEntry(value, key);
    if (!d || now >= d.entry.keepUntil) return undefined;
    const e = d.entry;
    const immutable = e.freshness === 'immutable' && e.status === 200;
    if (!immutable && !e.invalidated && versions.some((v) => counter(v) > d.seq)) {
      e.invalidated = true;
      e.freshUntil = Math.min(e.freshUntil, now);
      e.revalidateUntil = Math.min(e.revalidateUntil, now);
    }
    return d;
  }

  private checked(e: Entry, now: number, seq: number | undefined): void {
    this.meta.set(e, { checkedAt: now, epoch: this.epoch, seq, counted: this.meta.get(e)?.counted });
  }

  private async write(key: string, e: Entry, seq: number): Promise<void> {
    try {
      const value = await encodeEntry(name(key), e, seq, this.deps.compression);
      await this.redis.set(this.k('e', name(key)), value, 'PX', this.ttl(e));
      this.stats.writes++;
    } catch (err) {
      this.deps.link.failed(err);
    }
  }

  /** Stores the answer (if any), releases the lock when `token` still holds it, and wakes the waiting sidecars. */
  private async release(key: string, token: string, stored: Entry | undefined, seq: number, options?: { owner: string; replaces?: Entry }): Promise<void> {
    try {
      let value: Buffer | '' = stored ? await encodeEntry(name(key), stored, seq, this.deps.compression) : '';
      let counted: Meta['counted'];
      if (stored && value) {
        // The write this one replaces no longer counts; past its share the client's answer stays in memory only.
        const before = options?.replaces ? this.meta.get(options.replaces)?.counted : undefined;
        if (before) this.ledger.release(before.owner, before.bytes, before.bucket);
        const owner = options?.owner ?? '';
        const bytes = value.length + this.k('e', name(key)).length;
        const admitted = this.ledger.admit(owner, bytes, this.deps.now() + this.ttl(stored));
        if (admitted) counted = { owner, bytes, bucket: admitted.bucket };
        else {
          this.stats.overShare++;
          value = '';
          stored = undefined;
        }
      }
      await this.redis.sidecarFinish(2, this.k('lock', name(key)), this.k('e', name(key)), token || '-', value, String(stored ? this.ttl(stored) : 1), this.channel, JSON.stringify({ done: name(key) }));
      if (stored) {
        this.stats.writes++;
        this.checked(stored, this.deps.now(), seq);
        const m = this.meta.get(stored);
        if (m) m.counted = counted;
      }
    } catch (e) {
      this.deps.link.failed(e);
    }
  }

  private ttl(e: Entry): number {
    return Math.max(1000, Math.ceil(e.keepUntil - this.deps.now()));
  }

  /** Resolves when the lock holder says it stored `key`, or after `ms`. */
  private stored(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      waiters.add(done);
    });
  }

  private failed(e: unknown, local: Entry | undefined): Entry | undefined {
    this.stats.reads.error++;
    this.deps.link.failed(e);
    return local;
  }

  /** Kept for when Redis returns (bounded: beyond it the oldest are dropped, and their copies elsewhere age out). */
  private defer(tags: readonly string[]): void {
    this.stats.invalidations.deferred++;
    const max = this.deps.maxPendingTags ?? 10_000;
    for (const t of tags) {
      this.pending.delete(t);
      this.pending.add(t);
    }
    while (this.pending.size > max) {
      const oldest = this.pending.values().next().value as string;
      this.pending.delete(oldest);
      this.stats.invalidations.dropped++;
    }
  }

  private flushPending(): void {
    if (this.pending.size === 0) return;
    const tags = [...this.pending];
    this.pending.clear();
    for (let i = 0; i < tags.length; i += 500) this.invalidate(tags.slice(i, i + 500));
  }
}

/** The name of `key` in Redis: the key itself, or `h:` and its SHA-256 when longer than MAX_KEY_CHARS. */
function name(key: string): string {
  return key.length <= MAX_KEY_CHARS ? key : `h:${createHash('sha256').update(key).digest('base64url')}`;
}

const NOTHING = async (): Promise<void> => undefined;
/** Redis is away: this sidecar's flight alone, nothing stored for others. */
const SOLO: SharedFlight = { finish: NOTHING };

/** A counter value from a Redis reply (bulk string as a Buffer; missing = 0). */
function counter(v: Buffer | null | undefined): number {
  const n = v ? Number(v.toString()) : 0;
  return Number.isFinite(n) ? n : 0;
}

/** Is the shared copy `a` a better answer than the memory copy `b`? */
function newer(a: Entry, b: Entry): boolean {
  if (a.storedAt !== b.storedAt) return a.storedAt > b.storedAt;
  if (a.invalidated !== b.invalidated) return a.invalidated;
  return a.freshUntil > b.freshUntil;
}
