import type { Logger } from 'pino';
import { callKey } from '../routes/call';
import type { ApiAnswer, ApiCall, CallContext, Source } from '../core/call';
import type { Clock } from '../upstream/budget-clock';
import { HOUR_MS } from '../upstream/budget';
import type { Delivery } from './delivery';

/** The top-level `refresh:` configuration section (src/config/schema.ts). */
export interface RefreshSettings {
  enabled: boolean;
  /** At most this share of the repository class's hourly limit, in any rolling hour. */
  budgetShare: number;
  /** Refresh this long before an answer expires (at most half its lifetime). */
  leadSeconds: number;
  /** How often the refresher looks for answers about to expire. */
  intervalSeconds: number;
  /** Answers tracked at most (least recently asked for are forgotten first). */
  maxKeys: number;
  /** An answer no client asked for in this long is no longer refreshed. */
  forgetAfterSeconds: number;
  /** With verified webhooks: a delivery for the repository within this long vouches for its lists. */
  confirmedSeconds: number;
}

/** What the refresher needs of the response cache (src/cache/cache.ts). */
export interface WarmCache {
  peekEntry(call: ApiCall): { status: number; storedAt: number; freshUntil: number; invalidated: boolean } | undefined;
  refresh(call: ApiCall): Promise<'stored' | 'refused' | 'failed' | 'busy'>;
  renew(call: ApiCall): boolean;
}

export interface RefresherDeps {
  cache: WarmCache;
  clock: Clock;
  logger: Logger;
  /** The repository class's hourly limit now (configured, or learnt from Bitbucket). */
  hourlyLimit(): number;
  /** Whether some client's scope still holds what the call is about (a reload may shrink scopes). */
  inScope(call: ApiCall): boolean;
}

export interface RefresherStats {
  refreshed: number;
  renewed: number;
  refused: number;
  failed: number;
  /** Passes cut short because the refresher's budget share was spent. */
  budgetSpent: number;
}

interface Tracked {
  call: ApiCall;
  lastAsked: number;
  /** Not before (after a failure). */
  retryAt: number;
  failures: number;
}

/**
 * The warm refresher (docs/webhooks.md). It remembers the list and metadata requests
 * clients made (bounded: `maxKeys`, forgotten after `forgetAfterSeconds` without a request) and,
 * shortly before a stored answer expires, gets it again at the budget governor's background
 * priority — which yields to every request a client waits for and stops at the governor's
 * `backgroundShare` — while spending at most `budgetShare` of the hourly limit itself. So a re-index
 * finds fresh answers instead of waiting on upstream.
 *
 * With verified webhooks, an answer whose repository had a delivery of the matching kind within
 * `confirmedSeconds` (a push for branch and tag lists, a pull request event for pull request lists)
 * and that no delivery invalidated is renewed without an upstream call: the hook is known to work,
 * so any change would have invalidated it. Invalidated answers are refreshed at once.
 */
export class WarmRefresher {
  readonly stats: RefresherStats = { refreshed: 0, renewed: 0, refused: 0, failed: 0, budgetSpent: 0 };
  private readonly tracked = new Map<string, Tracked>();
  private readonly confirmed = new Map<string, number>();
  /** Times of the refresher's own upstream calls in the last hour. */
  private readonly spent: number[] = [];
  private timer?: () => void;
  private running?: Promise<void>;
  private closed = false;

  constructor(
    readonly settings: RefreshSettings,
    private readonly deps: RefresherDeps,
  ) {}

  /** Wraps the cached source: remembers the warmable requests clients make. */
  observe(inner: Source): Source {
    return async (call: ApiCall, ctx?: CallContext): Promise<ApiAnswer> => {
      const answer = await inner(call, ctx);
      // Derived answers (`/{repo}/?fields=mainbranch.name` from the stored repository) stay derived.
      const derived = /detail=derived/.test(answer.cacheStatus ?? '');
      // Rows with `warm`: what an organization re-index asks for besides answers addressed by commit id.
      if (!call.background && (call.method === 'GET' || call.method === 'HEAD') && call.route.warm !== undefined && answer.status === 200 && !derived) this.track(call);
      return answer;
    };
  }

  /** A verified delivery about a repository in some client's scope. */
  confirm(d: Delivery, at: number): void {
    const family = d.eventKey === 'repo:push' ? 'push' : d.eventKey.startsWith('pullrequest:') ? 'pullrequest' : undefined;
    if (!family) return;
    this.confirmed.set(`${family} ${d.workspace}/${d.repository}`, at);
    if (this.confirmed.size > this.settings.maxKeys) this.confirmed.delete(this.confirmed.keys().next().value as string);
  }

  get trackedCount(): number {
    return this.tracked.size;
  }

  start(): void {
    if (!this.settings.enabled || this.closed || this.timer) return;
    this.schedule();
  }

  /** One pass now (tests and benchmarks drive it; the timer does otherwise). */
  runOnce(): Promise<void> {
    if (!this.running) {
      this.running = this.pass().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.();
    this.timer = undefined;
    await this.idle();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.deps.clock.setTimer(this.settings.intervalSeconds * 1000, () => {
      this.timer = undefined;
      void this.runOnce().finally(() => this.schedule());
    });
  }

  private track(call: ApiCall): void {
    const key = callKey(call);
    const now = this.deps.clock.now();
    const t = this.tracked.get(key);
    if (t) this.tracked.delete(key); // re-insert: most recently asked last
    const { background: _b, body: _body, ...rest } = call;
    this.tracked.set(key, { call: { ...rest, method: 'GET' }, lastAsked: now, retryAt: t?.retryAt ?? 0, failures: t?.failures ?? 0 });
    while (this.tracked.size > this.settings.maxKeys) this.tracked.delete(this.tracked.keys().next().value as string);
  }

  private allowance(now: number): number {
    while (this.spent.length > 0 && this.spent[0] <= now - HOUR_MS) this.spent.shift();
    return Math.floor(this.settings.budgetShare * this.deps.hourlyLimit()) - this.spent.length;
  }

  private async pass(): Promise<void> {
    const now = this.deps.clock.now();
    const leadMs = this.settings.leadSeconds * 1000;
    const due: { key: string; t: Tracked; at: number }[] = [];
    for (const [key, t] of this.tracked) {
      if (now - t.lastAsked > this.settings.forgetAfterSeconds * 1000 || !this.deps.inScope(t.call)) {
        this.tracked.delete(key);
        continue;
      }
      if (t.retryAt > now) continue;
      const e = this.deps.cache.peekEntry(t.call);
      const lead = e ? Math.min(leadMs, Math.max(0, (e.freshUntil - e.storedAt) / 2)) : 0;
      if (!e || e.invalidated || e.freshUntil - lead <= now) due.push({ key, t, at: e && !e.invalidated ? e.freshUntil : -Infinity });
    }
    due.sort((a, b) => a.at - b.at); // invalidated and missing first, then the soonest to expire
    for (const { t } of due) {
      if (this.closed) return;
      // A recent verified delivery of the events that would invalidate the answer vouches for it.
      const family = t.call.route.warm?.vouchedBy;
      const { ws, repo } = t.call.params;
      const vouched = family && ws && repo ? this.confirmed.get(`${family} ${ws}/${repo}`) : undefined;
      if (vouched !== undefined && now - vouched <= this.settings.confirmedSeconds * 1000 && this.deps.cache.renew(t.call)) {
        this.stats.renewed++;
        continue;
      }
      const at = this.deps.clock.now();
      if (this.allowance(at) <= 0) {
        this.stats.budgetSpent++;
        return;
      }
      this.spent.push(at);
      const result = await this.deps.cache.refresh(t.call);
      if (result === 'stored') {
        this.stats.refreshed++;
        t.failures = 0;
        t.retryAt = 0;
      } else if (result === 'refused') {
        // The governor wants background work to wait: the call was not made.
        this.spent.pop();
        this.stats.refused++;
        return;
      } else if (result === 'failed') {
        this.stats.failed++;
        t.failures++;
        t.retryAt = this.deps.clock.now() + Math.min(30_000 * 2 ** Math.min(t.failures - 1, 7), HOUR_MS);
      }
    }
  }
}
