import { errorAnswer } from '../respond/errors';
import { memoMaxBytes, type BodyMemo } from '../core/body-memo';
import type { ApiAnswer, ApiCall, Source } from '../core/call';
import { freshnessOf, isStorable, isUpstreamTrouble, lifetimeMs, DEFAULT_FRESHNESS, type Freshness, type FreshnessConfig } from './freshness';
import { cacheKey, tagsChangedBy, tagsOf } from './key';
import { cacheStatus, type CacheStatusParts } from '../core/cache-status';
import { CacheStore, entrySize, type Entry } from './store';
import type { SharedTier } from './tier';

/** The `cache:` configuration section. */
export interface CacheSettings {
  maxBytes: number;
  freshness: FreshnessConfig;
  staleWhileRevalidateSeconds: number;
  staleIfErrorSeconds: number;
  /**
   * A 404 whose entry (key, headers and body) would take more is not stored: a flood of distinct
   * missing paths, each key as long as its path, must not fill the cache (0: no 404 is stored).
   */
  negativeMaxBytes: number;
}

export const DEFAULT_CACHE: CacheSettings = {
  maxBytes: 256 * 1024 ** 2,
  freshness: DEFAULT_FRESHNESS,
  staleWhileRevalidateSeconds: 30,
  staleIfErrorSeconds: 86_400,
  negativeMaxBytes: 2048,
};

export interface CacheDeps {
  /** `credentialId(...)` of the upstream credential the inner source uses. */
  credential: string;
  now?: () => number;
  /**
   * True when a call for this request could not go upstream right now (budget spent, backing off
   * after a 429). A stale copy is then served at once instead of queueing.
   */
  pressure?: (call: ApiCall) => boolean;
  /** Reports failures of background refreshes (they never reach a client). */
  onBackgroundError?: (error: unknown, call: ApiCall) => void;
  /** A second tier shared by several sidecars (`cache.shared.redis`); without it, memory only. */
  shared?: SharedTier;
  /** The sidecar's body memo: the stored copy takes over the upstream body's parse. */
  memo: BodyMemo;
  /** A client's weight for its share of `cache.maxBytes` (clients[].budgetWeight; default 1). */
  weight?: (client: string) => number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  staleServed: number;
  staleIfError: number;
  revalidations: number;
  collapsed: number;
  stored: number;
  derived: number;
  writes: number;
  invalidated: number;
  /** Answers taken from the shared tier (stored there by another sidecar, or by this one earlier). */
  shared: number;
}

interface Outcome {
  answer?: ApiAnswer;
  error?: unknown;
  stored?: Entry;
  /** Refused by the budget (a background refresh that must not answer a waiting client). */
  refused?: string;
  /** Another sidecar fetched it (single flight across sidecars): `stored` is its answer. */
  shared?: boolean;
  /** Another sidecar is fetching it and this fetch (a background refresh) did not wait. */
  busy?: boolean;
}

/** Why an answer was not stored (the `cache_not_stored_total` metric). */
export interface NotStored {
  /** A 404 larger than `cache.negativeMaxBytes`. */
  negativeTooLarge: number;
  /** Larger than the client's share of `cache.maxBytes`. */
  overShare: number;
  /** Answered without an upstream call (a mirror, learned facts): kept in memory, never put in the shared tier. */
  sharedLocal: number;
}

const REPOSITORY_FIELDS_MAINBRANCH = 'mainbranch.name';

/**
 * Stage 5: the response cache, shared by all clients. The scope gate runs before it and per-client
 * shaping after it, so everything stored is the raw upstream answer for the canonical URL.
 *
 * GET/HEAD on a cached route: fresh copy → hit; stale copy inside the stale-while-revalidate window
 * (or while the budget cannot afford a call) → served at once and refreshed in the background;
 * otherwise one upstream call per key however many requests wait for it (single-flight), and if
 * upstream fails (5xx, 429, network) a stored copy is served instead (stale-if-error).
 * Writes pass straight through — never stored, coalesced or retried — and then invalidate what
 * they change.
 */
export class ResponseCache {
  readonly store: CacheStore;
  readonly stats: CacheStats = { hits: 0, misses: 0, staleServed: 0, staleIfError: 0, revalidations: 0, collapsed: 0, stored: 0, derived: 0, writes: 0, invalidated: 0, shared: 0 };
  private readonly inflight = new Map<string, Promise<Outcome>>();
  /** Misses the budget has let through, by cache key: any client's identical miss may share these. */
  private readonly granted = new Map<string, Promise<Outcome>>();
  /** Invalidation sequence, per tag: an answer fetched before its tag was invalidated is stored invalidated. */
  private seq = 0;
  private readonly tagSeq = new Map<string, number>();
  private readonly now: () => number;
  readonly notStored: NotStored = { negativeTooLarge: 0, overShare: 0, sharedLocal: 0 };

  constructor(
    readonly settings: CacheSettings,
    private readonly deps: CacheDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.store = new CacheStore(settings.maxBytes, this.now, memoShare(settings.maxBytes), deps.weight);
    deps.shared?.onInvalidation((tags) => {
      this.markInvalidated(tags);
      this.announce(tags);
    });
  }

  private readonly listeners: ((tags: readonly string[]) => void)[] = [];

  /**
   * Hears every invalidation, this sidecar's and those other sidecars published (mirrors mark
   * repositories stale, fork grants end with their pull request).
   */
  onInvalidated(listener: (tags: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  private announce(tags: readonly string[]): void {
    for (const l of this.listeners) l(tags);
  }

  /** The cache stage in front of `inner` (budget → upstream). */
  wrap(inner: Source): Source {
    // A miss is charged to the client it was made for; the calls it shares (collapsed) are not.
    return (call, ctx) => this.answer(call, (c, more) => inner(c, more ? { ...ctx, ...more } : ctx), ctx?.client);
  }

  // --- invalidation API (webhook relay, our own writes) ----------------------------------------

  /** Everything about one repository except answers addressed by a commit id (they cannot change). */
  invalidateRepository(ws: string, repo: string): number {
    return this.invalidateTags([`repo:${ws.toLowerCase()}/${repo.toLowerCase()}`]);
  }

  /** The workspace, its repository listing and everything about its repositories (commit-addressed answers stay). */
  invalidateWorkspace(ws: string): number {
    return this.invalidateTags([`ws:${ws.toLowerCase()}`]);
  }

  /**
   * A ref moved (push, branch/tag created or deleted, pull request event): answers addressed by
   * that ref name, and the answers that enumerate refs (branch and tag lists, pull requests, commit
   * ranges) of the repository.
   */
  invalidateRef(ws: string, repo: string, ref: string): number {
    const r = `${ws.toLowerCase()}/${repo.toLowerCase()}`;
    return this.invalidateTags([`ref:${r}:${ref}`, `refs:${r}`]);
  }

  invalidateHooks(ws: string, repo: string): number {
    return this.invalidateTags([`hooks:${ws.toLowerCase()}/${repo.toLowerCase()}`]);
  }

  invalidateCommitStatuses(ws: string, repo: string, hash: string): number {
    return this.invalidateTags([`statuses:${ws.toLowerCase()}/${repo.toLowerCase()}:${hash.toLowerCase().slice(0, 12)}`]);
  }

  /**
   * Marks tagged entries invalidated: no longer served as fresh, nor while revalidating, only as a
   * last resort when upstream fails. Answers addressed by a commit id (immutable 200s) are kept.
   * With a shared tier, every other sidecar's memory tier and the shared copies too.
   */
  invalidateTags(tags: readonly string[]): number {
    const n = this.markInvalidated(tags);
    this.deps.shared?.invalidate(tags);
    this.announce(tags);
    return n;
  }

  /** This sidecar's memory tier only (an invalidation another sidecar published arrives here). */
  private markInvalidated(tags: readonly string[]): number {
    const s = ++this.seq;
    for (const t of tags) this.tagSeq.set(t, s);
    const now = this.now();
    let n = 0;
    for (const key of this.store.keysTagged(tags)) {
      const e = this.store.peek(key);
      if (!e || (e.freshness === 'immutable' && e.status === 200) || e.invalidated) continue;
      e.invalidated = true;
      e.freshUntil = Math.min(e.freshUntil, now);
      e.revalidateUntil = Math.min(e.revalidateUntil, now);
      n++;
    }
    this.stats.invalidated += n;
    return n;
  }

  clear(): void {
    this.store.clear();
  }

  /** Resolves when no upstream call of the cache is in flight (background refreshes included). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight.values()]);
  }

  // --- refresh-ahead (the warm refresher, src/webhooks/refresher.ts) -----------------------------

  /** Freshness bookkeeping of the answer stored for a call, if any (never served from here). */
  peekEntry(call: ApiCall): Pick<Entry, 'status' | 'storedAt' | 'freshUntil' | 'invalidated'> | undefined {
    if (!freshnessOf(call)) return undefined;
    return this.store.peek(cacheKey(call, this.deps.credential));
  }

  /**
   * Fetches a call again through `inner` at background priority and stores the answer however fresh
   * the stored one still is, so clients never see it expire. Nothing is stored when the budget
   * refuses or upstream fails ('busy': the same call is already in flight).
   */
  async refresh(call: ApiCall, inner: Source): Promise<'stored' | 'refused' | 'failed' | 'busy'> {
    const cls = freshnessOf(call);
    if (!cls) return 'failed';
    const key = cacheKey(call, this.deps.credential);
    if (this.inflight.has(key)) return 'busy';
    this.stats.revalidations++;
    const { outcome } = await this.fetch(key, call, cls, inner, true);
    if (outcome.busy) return 'busy';
    if (outcome.refused) return 'refused';
    return outcome.stored ? 'stored' : 'failed';
  }

  /**
   * Extends a stored 200's freshness by its class lifetime without asking upstream — for answers a
   * working webhook vouches for (a change would have invalidated them). Invalidated answers are not
   * renewed; `Age` keeps counting from when upstream gave the answer.
   */
  renew(call: ApiCall): boolean {
    const cls = freshnessOf(call);
    if (!cls) return false;
    const key = cacheKey(call, this.deps.credential);
    const e = this.store.peek(key);
    if (!e || e.invalidated || e.status !== 200) return false;
    const s = this.settings;
    e.freshUntil = Math.max(e.freshUntil, this.now() + lifetimeMs(cls, e.status, s.freshness));
    e.revalidateUntil = Math.max(e.revalidateUntil, e.freshUntil + s.staleWhileRevalidateSeconds * 1000);
    e.keepUntil = Math.max(e.keepUntil, e.freshUntil + Math.max(s.staleWhileRevalidateSeconds, s.staleIfErrorSeconds) * 1000);
    this.deps.shared?.renewed(key, e);
    return true;
  }

  // --- the stage ---------------------------------------------------------------------------------

  private async answer(call: ApiCall, inner: Source, client?: string): Promise<ApiAnswer> {
    if (call.method !== 'GET' && call.method !== 'HEAD') return this.write(call, inner);
    const cls = freshnessOf(call);
    if (!cls) return inner(call);

    const key = cacheKey(call, this.deps.credential);
    const now = this.now();
    let entry = this.store.get(key, client);
    // The shared tier, unless the memory copy is fresh and recent enough to trust.
    let fromShared = false;
    const shared = this.deps.shared;
    if (shared && !(entry && now < entry.freshUntil && shared.trusts(entry, now))) {
      const found = await shared.get(key, tagsOf(call), entry);
      if (found && found !== entry) {
        const stored = this.store.set(key, found, client);
        if (stored) shared.adopt?.(found, stored);
        entry = stored ?? found;
        fromShared = true;
      }
    }
    let derived = false;
    if (!entry) {
      entry = this.derive(call);
      derived = entry !== undefined;
    }
    if (entry) {
      const ttlSeconds = Math.floor((entry.freshUntil - now) / 1000);
      const detail = derived ? 'derived' : fromShared ? 'shared' : undefined;
      if (now < entry.freshUntil) {
        this.stats.hits++;
        if (derived) this.stats.derived++;
        if (fromShared) this.stats.shared++;
        return this.fromEntry(entry, now, { hit: true, ttlSeconds, detail });
      }
      if (!entry.invalidated && (now < entry.revalidateUntil || this.deps.pressure?.(call))) {
        this.stats.staleServed++;
        this.refreshInBackground(key, call, cls, inner);
        const why = now < entry.revalidateUntil ? 'stale-while-revalidate' : 'budget';
        return this.fromEntry(entry, now, { hit: true, ttlSeconds, detail: derived ? `derived-${why}` : why });
      }
    }

    this.stats.misses++;
    let { outcome, collapsed } = await this.fetch(key, call, cls, inner, false, client);
    if (outcome.refused === 'background') ({ outcome, collapsed } = await this.fetch(key, call, cls, inner, false, client));
    if (collapsed) this.stats.collapsed++;
    if (outcome.shared && outcome.stored) {
      // Another sidecar made the call: its answer, as from the cache.
      this.stats.shared++;
      const later = this.now();
      return this.fromEntry(outcome.stored, later, { hit: true, collapsed: true, ttlSeconds: Math.floor((outcome.stored.freshUntil - later) / 1000), detail: 'shared' });
    }
    const fwd = entry ? 'stale' : 'miss';
    const troubled = outcome.error !== undefined || (outcome.answer !== undefined && isUpstreamTrouble(outcome.answer.status));
    if (troubled) {
      const fallback = this.store.get(key) ?? this.derive(call) ?? entry;
      const later = this.now();
      if (fallback && later < fallback.keepUntil) {
        this.stats.staleIfError++;
        return this.fromEntry(fallback, later, {
          fwd: 'stale',
          fwdStatus: outcome.refused ? undefined : outcome.answer?.status ?? 502,
          collapsed,
          ttlSeconds: Math.floor((fallback.freshUntil - later) / 1000),
          detail: outcome.refused ? 'stale-if-budget' : 'stale-if-error',
        });
      }
      if (outcome.error !== undefined) throw outcome.error;
    }
    const answer = outcome.answer!;
    if (outcome.refused) {
      return { ...answer, cacheStatus: cacheStatus({ fwd, collapsed, detail: 'budget-refused' }), ageSeconds: 0 };
    }
    const stored = outcome.stored;
    return {
      ...answer,
      cacheStatus: cacheStatus({ fwd, fwdStatus: answer.status, stored: stored !== undefined, collapsed, ttlSeconds: stored ? Math.floor((stored.freshUntil - this.now()) / 1000) : undefined }),
      ageSeconds: 0,
    };
  }

  private async write(call: ApiCall, inner: Source): Promise<ApiAnswer> {
    this.stats.writes++;
    const tags = tagsChangedBy(call);
    try {
      return await inner(call);
    } finally {
      // Whatever upstream answered (a 5xx may still have been applied), what it changes is stale.
      this.invalidateTags(tags);
    }
  }

  /**
   * One upstream call per key at a time; later identical requests share its outcome — another
   * client's only once the budget has let the call through: a call still waits for its own client's
   * share, and another client must not wait in that queue (or take its refusal) for an answer it
   * could fetch now.
   */
  private async fetch(key: string, call: ApiCall, cls: Freshness, inner: Source, background: boolean, client?: string): Promise<{ outcome: Outcome; collapsed: boolean }> {
    const flight = client === undefined ? key : `${key}\u0000${client}`;
    const running = this.inflight.get(flight) ?? this.granted.get(key);
    if (running) return { outcome: await running, collapsed: true };
    let p: Promise<Outcome> | undefined;
    let grantedEarly = false;
    const share = () => {
      if (p && !this.granted.has(key)) this.granted.set(key, p);
    };
    const granting: Source = (c, ctx) => inner(c, { ...ctx, onGranted: () => (p ? share() : (grantedEarly = true)) });
    p = this.deps.shared ? this.fetchShared(this.deps.shared, key, call, cls, granting, background, client) : this.callInner(key, call, cls, granting, background, client);
    if (grantedEarly) share();
    this.inflight.set(flight, p);
    try {
      return { outcome: await p, collapsed: false };
    } finally {
      this.inflight.delete(flight);
      if (this.granted.get(key) === p) this.granted.delete(key);
      // No fetch is left that started before an invalidation: the sequence numbers are not needed.
      if (this.inflight.size === 0) this.tagSeq.clear();
    }
  }

  /** Single flight across sidecars: one of them calls, the others take its stored answer. */
  private async fetchShared(shared: SharedTier, key: string, call: ApiCall, cls: Freshness, inner: Source, background: boolean, client?: string): Promise<Outcome> {
    const flight = await shared.begin(key, tagsOf(call), { wait: !background });
    if (flight.entry) {
      const copy = this.store.set(key, flight.entry, client);
      if (copy) shared.adopt?.(flight.entry, copy);
      const stored = copy ?? flight.entry;
      return { answer: { status: stored.status, headers: stored.headers, body: stored.body }, stored, shared: true };
    }
    if (flight.busy) return { refused: 'background', busy: true };
    let outcome: Outcome | undefined;
    const replaces = this.store.peek(key);
    try {
      outcome = await this.callInner(key, call, cls, inner, background, client);
      return outcome;
    } finally {
      // Only what saved an upstream call goes to the shared tier: an answer this sidecar made
      // itself (a mirror's, one built from learned facts) it can make again, and storing it for
      // others would let a client fill Redis without spending any budget.
      const stored = outcome?.stored;
      const fromUpstream = outcome?.answer?.upstream === true;
      if (stored && !fromUpstream) this.notStored.sharedLocal++;
      await flight.finish(stored && fromUpstream ? stored : undefined, { owner: (stored && this.store.ownerOf(stored)) ?? client ?? '', replaces });
    }
  }

  private async callInner(key: string, call: ApiCall, cls: Freshness, inner: Source, background: boolean, client?: string): Promise<Outcome> {
    const startSeq = this.seq;
    let answer: ApiAnswer;
    try {
      answer = await inner(background ? { ...call, background: true } : call);
    } catch (error) {
      return { error };
    }
    const refusedBy = answer.budgetRefused;
    if (refusedBy) return { answer, refused: background ? 'background' : refusedBy };
    if (!isStorable(answer.status)) return { answer };
    if (!wellFormed(answer, this.deps.memo)) return { answer: errorAnswer(502, 'Bitbucket sent an incomplete or corrupt response') };
    const entry = this.makeEntry(call, cls, answer, startSeq);
    if (answer.status === 404 && entrySize(key, entry) > this.settings.negativeMaxBytes) {
      this.notStored.negativeTooLarge++;
      return { answer };
    }
    // A background refresh stores for whoever owned the entry (the store keeps its owner).
    const stored = this.store.set(key, entry, background ? undefined : client);
    if (!stored) {
      this.notStored.overShare++;
      return { answer };
    }
    this.stats.stored++;
    // The stored copy's body answers this request too: what is derived from it now (the parse,
    // the shaped bytes, the learned facts) is what the hits that follow find in the memo.
    this.deps.memo.rememberParsedAs(answer.body, stored.body);
    return { answer: { ...answer, body: stored.body }, stored };
  }

  private refreshInBackground(key: string, call: ApiCall, cls: Freshness, inner: Source): void {
    if (this.inflight.has(key)) return;
    this.stats.revalidations++;
    this.fetch(key, call, cls, inner, true).then(
      ({ outcome }) => {
        if (outcome.error !== undefined) this.deps.onBackgroundError?.(outcome.error, call);
      },
      (error: unknown) => this.deps.onBackgroundError?.(error, call),
    );
  }

  private makeEntry(call: ApiCall, cls: Freshness, answer: ApiAnswer, startSeq: number): Entry {
    const now = this.now();
    const freshUntil = now + lifetimeMs(cls, answer.status, this.settings.freshness);
    const tags = tagsOf(call);
    const invalidated = tags.some((t) => (this.tagSeq.get(t) ?? 0) > startSeq) && !(cls === 'immutable' && answer.status === 200);
    const revalidateUntil = invalidated ? now : freshUntil + this.settings.staleWhileRevalidateSeconds * 1000;
    // A 404 is kept no longer than it may be revalidated: no stale-if-error day for "not there".
    const keepUntil = answer.status === 404 ? Math.max(revalidateUntil, freshUntil) : freshUntil + Math.max(this.settings.staleWhileRevalidateSeconds, this.settings.staleIfErrorSeconds) * 1000;
    return {
      status: answer.status,
      headers: answer.headers,
      body: answer.body,
      freshness: cls,
      storedAt: now,
      freshUntil: invalidated ? now : freshUntil,
      revalidateUntil,
      keepUntil,
      invalidated,
      tags,
    };
  }

  /**
   * `/{repo}/?fields=mainbranch.name` (the plugin's default-branch lookup) answered from a stored
   * full repository object, which the plugin fetched moments before.
   */
  private derive(call: ApiCall): Entry | undefined {
    if (call.route.cache.derive !== 'mainbranch' || call.query.length !== 1 || call.query[0][0] !== 'fields' || call.query[0][1] !== REPOSITORY_FIELDS_MAINBRANCH) return undefined;
    const full = this.store.peek(cacheKey({ ...call, query: [], trailingSlash: false }, this.deps.credential));
    if (!full || full.status !== 200) return undefined;
    let name: unknown;
    try {
      name = (JSON.parse(full.body.toString('utf8')) as { mainbranch?: { name?: unknown } }).mainbranch?.name;
    } catch {
      return undefined;
    }
    if (typeof name !== 'string') return undefined;
    return {
      status: full.status,
      headers: { 'content-type': full.headers['content-type'] ?? 'application/json; charset=utf-8' },
      body: Buffer.from(JSON.stringify({ mainbranch: { name } })),
      freshness: full.freshness,
      storedAt: full.storedAt,
      freshUntil: full.freshUntil,
      revalidateUntil: full.revalidateUntil,
      keepUntil: full.keepUntil,
      invalidated: full.invalidated,
      tags: full.tags,
    };
  }

  private fromEntry(e: Entry, now: number, status: CacheStatusParts): ApiAnswer {
    return {
      status: e.status,
      headers: { ...e.headers },
      body: e.body,
      cacheStatus: cacheStatus(status),
      ageSeconds: Math.max(0, Math.floor((now - e.storedAt) / 1000)),
    };
  }
}

/**
 * `cache.maxBytes` bounds all the memory answers take: what the memo derives from stored bodies
 * (parsed JSON, shaped bytes; src/core/body-memo.ts) is part of it, the stored answers get the rest
 * (58 of 64 MiB, 238 of 256). Small caches (tests) keep at least three quarters for answers.
 */
function memoShare(maxBytes: number): number {
  return Math.min(memoMaxBytes(maxBytes), Math.floor(maxBytes / 4));
}

/**
 * A JSON answer that does not parse was cut short (a chunked body ended early) or corrupted on the
 * way; storing it would serve the damage for the whole freshness lifetime. (The parse is the memo's:
 * learning and shaping use the same one.)
 */
function wellFormed(answer: ApiAnswer, memo: BodyMemo): boolean {
  if (!/json/i.test(answer.headers['content-type'] ?? '')) return true;
  return memo.parse(answer.body) !== undefined;
}
