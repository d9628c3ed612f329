import type { ApiAnswer, ApiCall } from '../core/call';
import { neverBackwards, systemClock, type Clock } from './budget-clock';
import { MemoryBudgetWindow, type BudgetClass, type BudgetWindow } from './budget-window';

/**
 * The budget governor. Bitbucket counts REST calls per credential in a
 * rolling one-hour window per resource class (repository data 1,000/h by default, webhooks 1,000/h);
 * past it, it answers 429 and the plugin backs off for minutes to hours. The governor keeps our own
 * count of calls made in the last hour and decides, per call, whether it may go to Bitbucket now:
 *
 *  - never more than the class's limit in any one-hour window (a hard check on the call log);
 *  - once `burstShare` of the limit is used, the remaining calls are spread over the time until the
 *    oldest call leaves the window, so a long scan is paced instead of spending everything in a
 *    burst and then stalling for most of an hour;
 *  - at most `maxConcurrent` upstream calls at once;
 *  - requests a client waits for (foreground) queue, in order, for at most `maxQueueWaitMs`;
 *    background refreshes never queue and only run while the window is below `backgroundShare`;
 *  - after an upstream 429 it stops calling that class until `Retry-After` (or a doubling backoff
 *    when Bitbucket sends none) has passed;
 *  - `X-RateLimit-Limit` from Bitbucket (scaled limits, access tokens) replaces the configured
 *    limit; `X-RateLimit-NearLimit: true` pauses background refreshes and starts pacing.
 *
 * A call that cannot go within the queue bound is refused with the exact number of seconds until it
 * could (`Retry-After`, capped by `maxRetryAfterSeconds`), which the plugin honours to the second.
 */
export interface BudgetConfig {
  repositoryRequestsPerHour: number;
  webhookRequestsPerHour: number;
  maxConcurrent: number;
  maxQueueWaitMs: number;
  maxRetryAfterSeconds: number;
  backgroundShare: number;
  burstShare: number;
  /**
   * Calls are held in our window this much longer than an hour: Bitbucket counts a call when it
   * arrives, a little after we send it, so at the boundary its window is a bit behind ours.
   */
  windowMarginMs: number;
}

export const DEFAULT_BUDGET: BudgetConfig = {
  repositoryRequestsPerHour: 1000,
  webhookRequestsPerHour: 1000,
  maxConcurrent: 20,
  maxQueueWaitMs: 30_000,
  maxRetryAfterSeconds: 600,
  backgroundShare: 0.5,
  burstShare: 0.3,
  windowMarginMs: 1000,
};

export type Priority = 'foreground' | 'background';

/** The route's row says which of Bitbucket's buckets counts the call. */
export function budgetClassOf(call: Pick<ApiCall, 'route'>): BudgetClass {
  return call.route.budget;
}

export const HOUR_MS = 3_600_000;
const FIRST_BACKOFF_MS = 10_000;
const NEAR_LIMIT_HOLD_MS = 60_000;

export type Refusal = { ok: false; retryAfterSeconds: number; reason: 'budget' | 'backoff' | 'busy' | 'background' };
export type Permit = { ok: true; release(answer?: Pick<ApiAnswer, 'status' | 'headers'>): void };
export type Admission = Permit | Refusal;
/** A permit knows when it was granted (the time its call is counted at). */
type InternalPermit = Permit & { at: number };

/** A refused request that has not come back this long after its Retry-After gave up (its slot is free again). */
const PROMISE_GRACE_MS = 60_000;
const MAX_PROMISES = 10_000;

/** How often a call granted here may be overtaken by other sidecars in the shared window before it is refused. */
const MAX_SHARED_ATTEMPTS = 5;

/** Calls stay counted this long: an hour, plus the margin for Bitbucket counting a call a little later than we send it. */
export function budgetWindowMs(cfg: Pick<BudgetConfig, 'windowMarginMs'>): number {
  return HOUR_MS + cfg.windowMarginMs;
}

interface ClassState {
  limit: number;
  /** This sidecar's latest call (pacing spaces its calls from it). */
  lastCall: number;
  blockedUntil: number;
  backoffMs: number;
  nearLimitUntil: number;
}

interface Waiter {
  cls: BudgetClass;
  /** The client it is charged to (fair shares): it is paced by its own calls, not by others'. */
  client?: string;
  /** Came back at the time a refusal told it (Retry-After): goes before requests that did not wait yet. */
  promised: boolean;
  ticket?: string;
  deadline: number;
  resolve(a: Admission): void;
  cancelDeadline(): void;
}

/**
 * Fair shares: each client may spend `weight / (sum of the weights of the clients that called in
 * the window, itself included)` of a class's hourly limit, so a client alone may spend the whole
 * hour. What keeps room for the next client is pacing: past `burstShare` the calls are spread over
 * the hour, and once another client calls, the first is held to its share and its queued and
 * promised calls beyond that share no longer go before the newcomer's. Counted per sidecar (with
 * a shared window, the total still is every sidecar's).
 */
export interface BudgetShares {
  weight(client: string): number;
  /** Ids of the configured clients. */
  clients(): readonly string[];
}

export interface BudgetSnapshot {
  inFlight: number;
  queued: number;
  classes: Record<BudgetClass, { limit: number; usedInWindow: number; blockedUntil: number; queued: number }>;
}

export class BudgetGovernor {
  private readonly classes: Record<BudgetClass, ClassState>;
  private readonly queue: Waiter[] = [];
  /**
   * Retry-After given to refused requests, by ticket (the request's URL): the slot each was told
   * to come back for. New requests count them as ahead, so twenty refused requests are told twenty
   * successive times instead of one time they would all come back at and collide again.
   */
  private readonly promises = new Map<string, { cls: BudgetClass; at: number; client?: string }>();
  private inFlight = 0;
  private readonly windowMs: number;
  private wake?: { at: number; cancel(): void };
  /** Calls made (granted), by class; for metrics and benchmarks. */
  readonly granted: Record<BudgetClass, number> = { repository: 0, webhook: 0, other: 0 };
  readonly refused: Record<Refusal['reason'], number> = { budget: 0, backoff: 0, busy: 0, background: 0 };
  /** Of the budget refusals, those of a client past its own share. */
  refusedOverShare = 0;

  /**
   * `window` keeps the count of calls (default: this sidecar's, in memory; `cache.shared.redis`:
   * every sidecar's, see src/upstream/budget-window.ts).
   */
  private readonly clock: Clock;

  /** Times of the calls granted to each client in the window, per class (this sidecar's). */
  private readonly byClient = new Map<string, Record<BudgetClass, number[]>>();

  constructor(
    private readonly cfg: BudgetConfig,
    clock: Clock = systemClock,
    private readonly window: BudgetWindow = new MemoryBudgetWindow(budgetWindowMs(cfg)),
    private readonly shares?: BudgetShares,
  ) {
    this.clock = neverBackwards(clock);
    this.windowMs = budgetWindowMs(cfg);
    const state = (limit: number): ClassState => ({ limit, lastCall: -Infinity, blockedUntil: -Infinity, backoffMs: FIRST_BACKOFF_MS, nearLimitUntil: -Infinity });
    this.classes = {
      repository: state(cfg.repositoryRequestsPerHour),
      webhook: state(cfg.webhookRequestsPerHour),
      other: state(Infinity),
    };
  }

  /**
   * Asks to make one upstream call now; resolves when it may go, or with a refusal. `ticket`
   * identifies the request across the client's retries (the same URL again after Retry-After).
   */
  acquire(cls: BudgetClass, priority: Priority = 'foreground', ticket?: string, client?: string): Promise<Admission> {
    const share = client !== undefined && priority === 'foreground' && this.shares !== undefined;
    // A slot promised to one client is not another's: two clients asking the same URL hold two tickets.
    const local = share ? this.withinShare(cls, client!, ticket === undefined ? undefined : `${client} ${ticket}`) : this.acquireHere(cls, priority, ticket);
    const confirmed = this.window.confirm ? local.then((a) => this.confirmShared(a, cls, priority, 1)) : local;
    if (!share) return confirmed;
    return confirmed.then((a) => {
      if (a.ok) this.charge(cls, client!, (a as InternalPermit).at);
      return a;
    });
  }

  /**
   * A shared window has the last word: a call granted here goes only once the shared count
   * (every sidecar's calls) took it. When another sidecar got there first, the window now shows
   * its calls, and the request asks again (queueing or refused with the exact wait, as always).
   */
  private async confirmShared(a: Admission, cls: BudgetClass, priority: Priority, attempt: number): Promise<Admission> {
    if (!a.ok) return a;
    const granted = a as InternalPermit;
    if (await this.window.confirm!(cls, granted.at, this.limitOf(cls))) return a;
    this.granted[cls]--;
    granted.release();
    if (attempt >= MAX_SHARED_ATTEMPTS) return this.refuse(cls, Math.max(1000, this.eligibleAt(cls, this.clock.now(), 0) - this.clock.now()), this.clock.now());
    return this.confirmShared(await this.acquireHere(cls, priority), cls, priority, attempt + 1);
  }

  /**
   * A client past its share waits, in the queue, for its own oldest calls to leave the window
   * (within the queue bound) or is refused with the exact wait; the other clients' calls are not
   * held up by it (its queued calls block only its own, see `pump`).
   */
  private withinShare(cls: BudgetClass, client: string, ticket?: string): Promise<Admission> {
    const t = this.clock.now();
    const wait = this.shareWaitMs(cls, client, t);
    if (wait > this.cfg.maxQueueWaitMs) {
      // Alone in the window its share is the whole hour: that refusal is the budget's, not a share's.
      if (this.sharing(cls, client, t)) this.refusedOverShare++;
      return Promise.resolve(this.refuse(cls, wait, t));
    }
    return this.acquireHere(cls, 'foreground', ticket, client);
  }

  /** How long until `client` may make one more call of the class within its share (0: now). */
  shareWaitMs(cls: BudgetClass, client: string, t: number): number {
    const limit = this.limitOf(cls);
    if (!this.shares || !Number.isFinite(limit)) return 0;
    const mine = this.callsOf(client, cls, t);
    const share = Math.floor(this.shareOf(cls, client, t) * limit);
    const mustLeave = mine.length + 1 - Math.max(1, share);
    return mustLeave <= 0 ? 0 : mine[mustLeave - 1] + this.windowMs - t;
  }

  /** Another client of the budget called in the window: shares, not the whole hour, pace this one. */
  private sharing(cls: BudgetClass, client: string, t: number): boolean {
    return this.shares !== undefined && this.shares.clients().some((c) => c !== client && this.callsOf(c, cls, t).length > 0);
  }

  /** Pacing within a share: past `burstShare` of it, the rest is spread until the client's oldest call leaves. */
  private sharePacedAt(cls: BudgetClass, client: string, t: number, limit: number): number {
    const mine = this.callsOf(client, cls, t);
    const share = Math.max(1, Math.floor(this.shareOf(cls, client, t) * limit));
    const left = share - mine.length;
    if (mine.length === 0 || left <= 0 || (mine.length < this.cfg.burstShare * share && this.classes[cls].nearLimitUntil <= t)) return t;
    return mine[mine.length - 1] + (mine[0] + this.windowMs - t) / left;
  }

  /**
   * The client's fraction of the class's limit now: its weight over those of the clients active in
   * the window (and of `asking`, a client about to call, counted as active).
   */
  shareOf(cls: BudgetClass, client: string, t: number, asking?: string): number {
    const shares = this.shares!;
    let total = shares.weight(client);
    for (const other of shares.clients()) if (other !== client && (other === asking || this.callsOf(other, cls, t).length > 0)) total += shares.weight(other);
    return shares.weight(client) / total;
  }

  /** Calls `client` may still make within its share once `asking` calls too (0 when past it). */
  private roomOf(cls: BudgetClass, client: string, t: number, asking: string): number {
    const limit = this.limitOf(cls);
    if (!Number.isFinite(limit)) return Infinity;
    return Math.max(0, Math.max(1, Math.floor(this.shareOf(cls, client, t, asking) * limit)) - this.callsOf(client, cls, t).length);
  }

  private callsOf(client: string, cls: BudgetClass, t: number): number[] {
    const rec = this.byClient.get(client);
    if (!rec) return [];
    const calls = rec[cls];
    let old = 0;
    while (old < calls.length && calls[old] + this.windowMs <= t) old++;
    if (old > 0) calls.splice(0, old);
    if (rec.repository.length + rec.webhook.length + rec.other.length === 0) this.byClient.delete(client);
    return calls;
  }

  private charge(cls: BudgetClass, client: string, at: number): void {
    if (!Number.isFinite(this.limitOf(cls))) return;
    let rec = this.byClient.get(client);
    if (!rec) this.byClient.set(client, (rec = { repository: [], webhook: [], other: [] }));
    rec[cls].push(at);
  }

  /** Calls of each client in the window, by class (metrics). */
  clientUse(): { client: string; cls: BudgetClass; used: number; share: number }[] {
    const t = this.clock.now();
    const out: { client: string; cls: BudgetClass; used: number; share: number }[] = [];
    if (!this.shares) return out;
    for (const client of this.shares.clients()) {
      for (const cls of ['repository', 'webhook'] as const) {
        const used = this.callsOf(client, cls, t).length;
        if (used > 0) out.push({ client, cls, used, share: this.shareOf(cls, client, t) });
      }
    }
    return out;
  }

  private acquireHere(cls: BudgetClass, priority: Priority, ticket?: string, client?: string): Promise<Admission> {
    const t = this.clock.now();
    if (priority === 'background') {
      const a = this.tryBackground(cls, t);
      if (!a.ok) this.refused[a.reason]++;
      return Promise.resolve(a);
    }
    this.forgetPromises(t);
    const promised = ticket !== undefined && this.promises.get(ticket)?.cls === cls;
    if (promised) this.promises.delete(ticket!);
    const ahead = this.ahead(cls, t, promised, client);
    if (ahead === 0 && this.inFlight < this.cfg.maxConcurrent && this.eligibleAt(cls, t, 0, client) <= t) return Promise.resolve(this.grant(cls, t));
    const at = this.eligibleAt(cls, t, ahead, client);
    if (at - t > this.cfg.maxQueueWaitMs) return Promise.resolve(this.refuse(cls, at - t, t, ticket, client));
    return new Promise<Admission>((resolve) => {
      const waiter: Waiter = {
        cls,
        client,
        promised,
        ticket,
        deadline: t + this.cfg.maxQueueWaitMs,
        resolve,
        cancelDeadline: () => undefined,
      };
      waiter.cancelDeadline = this.clock.setTimer(this.cfg.maxQueueWaitMs, () => {
        this.pump(); // a wake-up due at the same moment may not have run yet
        const i = this.queue.indexOf(waiter);
        if (i < 0) return;
        this.queue.splice(i, 1);
        const now = this.clock.now();
        const before = this.claims(cls, now, client, this.queue.slice(0, i), !promised);
        resolve(this.refuse(cls, this.eligibleAt(cls, now, before, client) - now, now, ticket, client));
        this.pump();
      });
      if (promised) {
        const firstUnpromised = this.queue.findIndex((w) => !w.promised);
        this.queue.splice(firstUnpromised < 0 ? this.queue.length : firstUnpromised, 0, waiter);
      } else {
        this.queue.push(waiter);
      }
      this.pump();
    });
  }

  /** Calls of the class that go before a new request: queued ones, and (unless it was promised a slot itself) promised ones. */
  private ahead(cls: BudgetClass, t: number, promised: boolean, client?: string): number {
    return this.claims(cls, t, client, promised ? this.queue.filter((w) => w.promised) : this.queue, !promised);
  }

  /**
   * How many of `waiters` (and of the promised slots, with `withPromises`) of the class go before a
   * request of `client`. Its own and those of no client all count; another client's count only up
   * to what its share still allows, so a client spending past its share is not ahead of the others.
   */
  private claims(cls: BudgetClass, t: number, client: string | undefined, waiters: readonly Waiter[], withPromises: boolean): number {
    if (client === undefined || !this.shares) {
      const queued = waiters.filter((w) => w.cls === cls).length;
      return withPromises ? queued + this.livePromises(cls) : queued;
    }
    let mine = 0;
    const others = new Map<string, number>();
    const count = (c: string | undefined) => (c === undefined || c === client ? mine++ : others.set(c, (others.get(c) ?? 0) + 1));
    for (const w of waiters) if (w.cls === cls) count(w.client);
    if (withPromises) for (const p of this.promises.values()) if (p.cls === cls) count(p.client);
    for (const [other, n] of others) mine += Math.min(n, this.roomOf(cls, other, t, client));
    return mine;
  }

  private livePromises(cls: BudgetClass): number {
    let n = 0;
    for (const p of this.promises.values()) if (p.cls === cls) n++;
    return n;
  }

  private forgetPromises(t: number): void {
    for (const [ticket, p] of this.promises) if (p.at + PROMISE_GRACE_MS < t) this.promises.delete(ticket);
  }

  /** True when a foreground call of this class could not go to Bitbucket right now. */
  wouldWait(cls: BudgetClass): boolean {
    const t = this.clock.now();
    this.forgetPromises(t);
    return this.queue.some((w) => w.cls === cls) || this.livePromises(cls) > 0 || this.inFlight >= this.cfg.maxConcurrent || this.eligibleAt(cls, t, 0) > t;
  }

  /** Seconds until a foreground call of this class could go (0 when it could go now), capped. */
  retryAfterSeconds(cls: BudgetClass): number {
    const t = this.clock.now();
    const ahead = this.queue.filter((w) => w.cls === cls).length;
    const wait = this.eligibleAt(cls, t, ahead) - t;
    return wait <= 0 ? 0 : this.capSeconds(wait);
  }

  snapshot(): BudgetSnapshot {
    const t = this.clock.now();
    const cls = (c: BudgetClass) => {
      const s = this.classes[c];
      return { limit: this.limitOf(c), usedInWindow: this.window.calls(c, t).length, blockedUntil: s.blockedUntil, queued: this.queue.filter((w) => w.cls === c).length };
    };
    return { inFlight: this.inFlight, queued: this.queue.length, classes: { repository: cls('repository'), webhook: cls('webhook'), other: cls('other') } };
  }

  // --- decisions --------------------------------------------------------------------------------

  /**
   * Earliest time at which a call of class `cls` could go with `ahead` calls of the class queued
   * before it (ignoring concurrency, which frees within one upstream round trip).
   */
  private eligibleAt(cls: BudgetClass, t: number, ahead: number, client?: string): number {
    const s = this.classes[cls];
    const limit = this.limitOf(cls);
    let at = Math.max(t, s.blockedUntil);
    if (!Number.isFinite(limit)) return at;
    const log = this.window.calls(cls, t);
    const n = log.length;
    // Hard window: the call after `ahead` others needs n + ahead + 1 <= limit, i.e. the
    // (n + ahead + 1 - limit) oldest calls must have left the window.
    const mustLeave = n + ahead + 1 - limit;
    if (mustLeave > 0) at = Math.max(at, mustLeave <= n ? log[mustLeave - 1] + this.windowMs : t + this.windowMs);
    // Several clients drawing on the hour: each is paced within its own share by its own calls.
    if (client !== undefined && this.sharing(cls, client, t)) return Math.max(at, t + this.shareWaitMs(cls, client, t), this.sharePacedAt(cls, client, t, limit));
    const spacing = this.spacing(cls, t, log, limit);
    // Pacing spreads the calls still free in the window; a position beyond them waits for old calls
    // to leave (the hard window above), not for more pacing on top.
    const paced = Math.min(ahead, Math.max(0, limit - n - 1));
    if (spacing !== undefined) {
      // With a shared window, the pace is one call per spacing / k after the latest call of any
      // sidecar; a sidecar whose own latest call is a full spacing back goes anyway. Alone (k = 1)
      // the latest call is this sidecar's, and both are the same time.
      const k = this.window.sharers?.(cls, t) ?? 1;
      at = Math.max(at, Math.min(s.lastCall + spacing * (paced + 1), log[log.length - 1] + (spacing / k) * (paced + 1)));
    }
    return at;
  }

  /**
   * Pacing: past the burst share, spread what is left over the time until the oldest call leaves.
   * When k sidecars draw on a shared window, each spaces its own calls k times as far apart: together
   * they keep the pace, and none waits on the others' luck. Undefined when not pacing.
   */
  private spacing(cls: BudgetClass, t: number, log: readonly number[] = this.window.calls(cls, t), limit = this.limitOf(cls)): number | undefined {
    if (!Number.isFinite(limit)) return undefined;
    const n = log.length;
    if (!this.pacing(this.classes[cls], n, limit, t)) return undefined;
    const remaining = limit - n;
    if (remaining <= 0 || n === 0) return undefined;
    return ((log[0] + this.windowMs - t) / remaining) * (this.window.sharers?.(cls, t) ?? 1);
  }

  private pacing(s: ClassState, used: number, limit: number, t: number): boolean {
    return used >= this.cfg.burstShare * limit || s.nearLimitUntil > t;
  }

  /** The class's limit as the window enforces it (a share of it while a shared window is unreachable). */
  private limitOf(cls: BudgetClass): number {
    const limit = this.classes[cls].limit;
    return Number.isFinite(limit) ? this.window.limit(cls, limit) : limit;
  }

  private tryBackground(cls: BudgetClass, t: number): Admission {
    const s = this.classes[cls];
    const limit = this.limitOf(cls);
    if (this.queue.length > 0 || this.inFlight >= this.cfg.maxConcurrent) return { ok: false, retryAfterSeconds: 1, reason: 'busy' };
    if (s.blockedUntil > t) return { ok: false, retryAfterSeconds: this.capSeconds(s.blockedUntil - t), reason: 'backoff' };
    if (Number.isFinite(limit) && (this.window.calls(cls, t).length >= this.cfg.backgroundShare * limit || s.nearLimitUntil > t || this.eligibleAt(cls, t, 0) > t)) {
      return { ok: false, retryAfterSeconds: this.capSeconds(Math.max(1000, this.eligibleAt(cls, t, 0) - t)), reason: 'background' };
    }
    return this.grant(cls, t);
  }

  private grant(cls: BudgetClass, t: number, queued = false): Permit {
    const s = this.classes[cls];
    // A queued call granted late (its wake-up timer fired after its time) keeps its slot in the
    // pacing schedule, so lateness does not add up along the queue; at most one interval is made up.
    const spacing = queued ? this.spacing(cls, t) : undefined;
    s.lastCall = spacing === undefined ? t : Math.min(t, Math.max(s.lastCall + spacing, t - spacing));
    this.window.add(cls, t);
    this.inFlight++;
    this.granted[cls]++;
    let released = false;
    const permit: InternalPermit = {
      ok: true,
      at: t,
      release: (answer) => {
        if (released) return;
        released = true;
        this.inFlight--;
        if (answer) this.learn(cls, answer);
        this.pump();
      },
    };
    return permit;
  }

  private refuse(cls: BudgetClass, waitMs: number, t: number, ticket?: string, client?: string): Refusal {
    const s = this.classes[cls];
    const reason: Refusal['reason'] = s.blockedUntil > t ? 'backoff' : waitMs > 0 ? 'budget' : 'busy';
    this.refused[reason]++;
    const retryAfterSeconds = this.capSeconds(Math.max(waitMs, 1));
    if (ticket !== undefined && (this.promises.size < MAX_PROMISES || this.promises.has(ticket))) {
      this.promises.delete(ticket);
      this.promises.set(ticket, { cls, at: t + retryAfterSeconds * 1000, client });
    }
    return { ok: false, retryAfterSeconds, reason };
  }

  private capSeconds(ms: number): number {
    return Math.min(this.cfg.maxRetryAfterSeconds, Math.max(1, Math.ceil(ms / 1000)));
  }

  /** What an upstream answer says about the budget: 429 backoff, scaled limits, near-limit. */
  private learn(cls: BudgetClass, answer: Pick<ApiAnswer, 'status' | 'headers'>): void {
    const s = this.classes[cls];
    const t = this.clock.now();
    const limit = Number(answer.headers['x-ratelimit-limit']);
    if (Number.isInteger(limit) && limit > 0 && Number.isFinite(s.limit)) s.limit = limit;
    if (/^true$/i.test(answer.headers['x-ratelimit-nearlimit'] ?? '')) s.nearLimitUntil = t + NEAR_LIMIT_HOLD_MS;
    if (answer.status === 429) {
      const ra = parseRetryAfter(answer.headers['retry-after'], t);
      const wait = ra ?? s.backoffMs;
      s.blockedUntil = Math.max(s.blockedUntil, t + Math.min(wait, this.cfg.maxRetryAfterSeconds * 1000));
      if (ra === undefined) s.backoffMs = Math.min(s.backoffMs * 2, this.cfg.maxRetryAfterSeconds * 1000);
    } else if (answer.status < 500) {
      s.backoffMs = FIRST_BACKOFF_MS;
    }
  }

  /** Grants queued calls that may go now, in order within each class; schedules the next wake-up. */
  private pump(): void {
    const t = this.clock.now();
    // A class is blocked for everyone behind a waiter that may not go yet — or, for a waiter paced
    // by its client's share, only for that client's waiters.
    const blocked = new Set<string>();
    let nextAt = Infinity;
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i];
      if (this.inFlight >= this.cfg.maxConcurrent) break;
      if (blocked.has(w.cls) || (w.client !== undefined && blocked.has(`${w.cls} ${w.client}`))) {
        i++;
        continue;
      }
      const at = this.eligibleAt(w.cls, t, 0, w.client);
      if (at > t) {
        blocked.add(w.client !== undefined && this.sharing(w.cls, w.client, t) ? `${w.cls} ${w.client}` : w.cls);
        nextAt = Math.min(nextAt, at);
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      w.cancelDeadline();
      w.resolve(this.grant(w.cls, t, true));
    }
    if (this.wake && (this.wake.at !== nextAt || this.queue.length === 0)) {
      this.wake.cancel();
      this.wake = undefined;
    }
    if (!this.wake && Number.isFinite(nextAt) && this.queue.length > 0) {
      const at = nextAt;
      this.wake = {
        at,
        cancel: this.clock.setTimer(at - t, () => {
          if (this.wake?.at === at) this.wake = undefined;
          this.pump();
        }),
      };
    }
  }
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined if absent/invalid. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const d = Date.parse(v);
  if (Number.isNaN(d)) return undefined;
  return Math.max(0, d - now);
}
