import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { RedisBudgetWindow } from './budget-window';
import { RedisLink, redactUrl } from './connection';
import type { SharedSettings } from '../../config/shared-settings';
import { RedisCacheTier } from './tier';

export { RedisBudgetWindow } from './budget-window';
export { RedisCacheTier } from './tier';
export { RedisLink } from './connection';
export { SHARED_DEFAULTS, type SharedSettings, type RedisSettings } from '../../config/shared-settings';

/**
 * Several sidecars, one cache and one budget (`cache.shared.redis`, docs/several-sidecars.md "Several sidecars
 * (Redis)"): the Redis connections, the second cache tier and the shared budget window, and what
 * `/_sidecar/ready` and `/_sidecar/metrics` say about them.
 *
 * Degrade, never fail: while Redis is unreachable every request is answered from the memory tier
 * and upstream with `fallbackBudgetShare` of each limit; when it returns, sharing resumes by itself.
 */
export interface Shared {
  link: RedisLink;
  tier: RedisCacheTier;
  budgetWindow: RedisBudgetWindow;
  readonly up: boolean;
  /** Resolves true once Redis is usable (false after `timeoutMs`). */
  whenUp(timeoutMs: number): Promise<boolean>;
  /** The `redis` check of `/_sidecar/ready` (informational: the sidecar stays ready without Redis). */
  describe(): string;
  /** Adds the `redis_up` gauge and the shared tier's counters to the sidecar's registry. */
  registerMetrics(registry: Registry, prefix: string): void;
  close(): Promise<void>;
}

export interface SharedDeps {
  /** `credentialId` of the upstream REST credential (budget keys; cache keys already carry it). */
  credential: string;
  now: () => number;
  logger: Logger;
  /** The budget governor's window (an hour plus its margin). */
  windowMs: number;
  /** The longest the cache keeps an answer (freshness + stale-if-error): how long invalidations are remembered. */
  maxEntryLifetimeMs: number;
  /** `cache.maxBytes`: what `cache.shared.maxBytes` defaults to. */
  cacheMaxBytes: number;
  /** A client's weight for its share of `cache.shared.maxBytes` (clients[].budgetWeight). */
  weight?: (client: string) => number;
}

export function createShared(settings: SharedSettings, deps: SharedDeps): Shared {
  const log = deps.logger.child({ component: 'redis' });
  const r = settings.redis;
  let tier: RedisCacheTier | undefined;
  const link = new RedisLink(r, log, `${r.keyPrefix}events`, (m) => tier?.receive(m));
  tier = new RedisCacheTier({
    link,
    keyPrefix: r.keyPrefix,
    now: deps.now,
    compression: settings.compression,
    memorySeconds: settings.memorySeconds,
    lockTtlMs: settings.lockTtlMs,
    lockWaitMs: settings.lockWaitMs,
    maxEntryLifetimeMs: deps.maxEntryLifetimeMs,
    maxBytes: settings.maxBytes ?? deps.cacheMaxBytes,
    weight: deps.weight,
  });
  const budgetWindow = new RedisBudgetWindow({ link, keyPrefix: r.keyPrefix, credential: deps.credential, windowMs: deps.windowMs, fallbackShare: settings.fallbackBudgetShare });
  const where = redactUrl(r.url);
  const share = `${Math.round(settings.fallbackBudgetShare * 100)}%`;
  let everUp = false;
  link.onChange((up) => {
    if (up) {
      log.info({ redis: where, resumed: everUp }, everUp ? 'redis reachable again: sharing cache, coalescing and budget' : 'redis connected: sharing cache, coalescing and budget');
      everUp = true;
    } else {
      log.warn({ redis: where, err: link.lastError }, `redis unreachable: memory cache only and ${share} of the budget until it returns`);
    }
  });
  const t = tier;
  return {
    link,
    tier: t,
    budgetWindow,
    get up() {
      return link.up;
    },
    whenUp: (ms) => link.whenUp(ms),
    describe() {
      if (link.up) return `up (${where}): cache, coalescing and budget shared`;
      const since = new Date(link.changedAt).toISOString();
      return `degraded since ${since}: ${where} unreachable${link.lastError ? ` (${link.lastError})` : ''}; memory cache only, ${share} of the budget`;
    },
    registerMetrics(registry, prefix) {
      const registers = [registry];
      new Gauge({
        name: `${prefix}redis_up`,
        help: 'Redis (cache.shared.redis) usable: 1 sharing cache, coalescing and budget; 0 degraded to memory and cache.shared.fallbackBudgetShare of the budget.',
        registers,
        collect() {
          this.set(link.up ? 1 : 0);
        },
      });
      cumulative(registry, `${prefix}shared_cache_reads_total`, 'Reads of the shared cache tier, by result (hit: a stored answer came back).', 'result', () => t.stats.reads);
      cumulative(registry, `${prefix}shared_cache_flights_total`, 'Upstream fetches coordinated across sidecars: leader (this sidecar called), follower (took another sidecar’s answer), timeout (waited lockWaitMs, called itself), busy (background refresh skipped).', 'role', () => t.stats.flights);
      cumulative(registry, `${prefix}shared_cache_invalidations_total`, 'Invalidations published to (sent) and received from other sidecars, kept while Redis was away (deferred) and dropped beyond the bound.', 'direction', () => t.stats.invalidations);
      cumulative(registry, `${prefix}shared_budget_refused_total`, 'Calls granted here but refused by the shared budget window (another sidecar took the last slot); they asked again.', undefined, () => ({ '': budgetWindow.refusedShared }));
    },
    close: () => link.close(),
  };
}

/** A counter that follows cumulative numbers kept by the module (as src/ops/metrics.ts does for evictions). */
function cumulative(registry: Registry, name: string, help: string, label: string | undefined, read: () => Record<string, number>): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: label ? [label] : [],
    registers: [registry],
    collect() {
      for (const [k, v] of Object.entries(read())) {
        const before = seen.get(k) ?? 0;
        const labels = label ? { [label]: k } : {};
        if (v > before) this.inc(labels, v - before);
        else if (!seen.has(k)) this.inc(labels, 0);
        seen.set(k, v);
      }
    },
  });
}

/** The longest the cache keeps an answer: the longest freshness plus the longest stale window. */
export function maxEntryLifetimeMs(cache: { freshness: Record<string, number>; staleWhileRevalidateSeconds: number; staleIfErrorSeconds: number }): number {
  return (Math.max(...Object.values(cache.freshness)) + Math.max(cache.staleWhileRevalidateSeconds, cache.staleIfErrorSeconds)) * 1000;
}

/** `/_sidecar/ready` with the `redis` check (`?redis=skip` leaves it out). It never makes the sidecar unready: without Redis it degrades. */
export function withRedisCheck<T extends { checks: Record<string, string> }>(answer: T, shared: Shared | undefined, options?: { skip?: readonly string[] }): T {
  if (shared && !options?.skip?.includes('redis')) answer.checks.redis = shared.describe();
  return answer;
}
