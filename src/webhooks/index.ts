import type { Logger } from 'pino';
import type { Client } from '../core/client';
import type { ResponseCache } from '../cache/cache';
import type { Config } from '../config/schema';
import type { ApiCall, Source } from '../core/call';
import type { ScopeFacts } from '../scope/facts';
import { decideRepository, workspaceInScope } from '../scope/policy';
import type { BudgetGovernor } from '../upstream/budget';
import type { Clock } from '../upstream/budget-clock';
import { WarmRefresher } from './refresher';
import type { WebhookRelay } from './relay';

// The relay (and its SQLite queue, better-sqlite3) is loaded only when `webhooks:` is configured.
export type { WebhookRelay, RelaySettings, RelayStats } from './relay';
export { WarmRefresher, type RefreshSettings, type RefresherStats } from './refresher';
export { sign, verifySignature } from './signature';
export { parseDelivery, FORWARDED_EVENTS, type Delivery } from './delivery';

export interface WebhooksDeps {
  clients: () => readonly Client[];
  facts: ScopeFacts;
  cache: ResponseCache;
  /** The source behind the cache (budget → upstream): what refreshes go through. */
  upstream: Source;
  budget: BudgetGovernor;
  clock: Clock;
  logger: Logger;
  userAgent: string;
}

/** The relay (when `webhooks:` is configured) and the warm refresher (`refresh.enabled`). */
export interface Webhooks {
  relay?: WebhookRelay;
  refresher: WarmRefresher;
  /** Deliveries waiting to be forwarded (0 without a relay): the `webhook_queue_depth` gauge. */
  queueDepth(): number;
  /** Wraps the cached source so the refresher sees what clients ask for. */
  observe(inner: Source): Source;
  close(): Promise<void>;
}

export function createWebhooks(config: Config, deps: WebhooksDeps): Webhooks {
  const inScope = (call: ApiCall): boolean => {
    const { ws, repo } = call.params;
    if (!ws) return false;
    return deps.clients().some((c) => (repo ? decideRepository(c, ws, repo, deps.facts.projectOf(`${ws}/${repo}`)) !== 'deny' : workspaceInScope(c, ws)));
  };
  const refresher = new WarmRefresher(config.refresh, {
    cache: { peekEntry: (call) => deps.cache.peekEntry(call), refresh: (call) => deps.cache.refresh(call, deps.upstream), renew: (call) => deps.cache.renew(call) },
    clock: deps.clock,
    logger: deps.logger.child({ component: 'refresher' }),
    hourlyLimit: () => deps.budget.snapshot().classes.repository.limit,
    inScope,
  });
  const relay = config.webhooks
    ? new (require('./relay') as typeof import('./relay')).WebhookRelay(config.webhooks, {
        stateDir: config.state.dir,
        clients: deps.clients,
        facts: deps.facts,
        cache: deps.cache,
        clock: deps.clock,
        logger: deps.logger,
        userAgent: deps.userAgent,
        onDelivery: (d, at) => refresher.confirm(d, at),
      })
    : undefined;
  refresher.start();
  return {
    relay,
    refresher,
    queueDepth: () => relay?.queueDepth() ?? 0,
    observe: (inner) => (config.refresh.enabled ? refresher.observe(inner) : inner),
    async close() {
      await refresher.close();
      await relay?.close();
    },
  };
}
