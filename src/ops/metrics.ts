/**
 * Prometheus metrics served at `/_sidecar/metrics` (prom-client, one registry per sidecar).
 *
 * Two ways in:
 *  - **push**: modules that see events increment counters through this API
 *    (`metrics.upstreamCalls.inc({ class: 'repository', status: '200' })`, `metrics.gitBytes.inc(...)`,
 *    `metrics.cacheEvictions.inc()`), or are wrapped here (`countUpstreamCalls`, `countGitBytes`);
 *  - **pull**: state that already lives in a module (cache size, budget window, webhook queue, token
 *    last use) is read when Prometheus scrapes, through the `track*` providers.
 *
 * Labels are low-cardinality on purpose: route ids from the closed catalog, decision words, a
 * reduced cache status, client ids and a token's place in its client's list. Never a path, a token
 * or anything derived from one (not even a hash prefix), an upstream identity or an upstream URL.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { AuditRecord } from '../core/audit';
import type { StreamHandler } from '../core/stream';
import { memoizeRecent } from '../core/memoize';
import { DurationHistogram, PendingCounts } from './request-metrics';
import type { ApiCall, Source } from '../core/call';

export const METRIC_PREFIX = 'bitbucket_sidecar_';

/** Every metric this module defines, with its help text: docs/operations.md's metrics reference is checked against it. */
export const METRICS = {
  requests: { name: `${METRIC_PREFIX}requests_total`, type: 'counter', labels: ['route', 'decision', 'cache', 'status'], help: 'Requests answered, by catalog route, decision, cache outcome and HTTP status.' },
  requestDuration: { name: `${METRIC_PREFIX}request_duration_seconds`, type: 'histogram', labels: ['route', 'decision', 'cache'], help: 'Time from request to the end of the answer (git streams included).' },
  upstreamCalls: { name: `${METRIC_PREFIX}upstream_calls_total`, type: 'counter', labels: ['class', 'status'], help: 'REST calls sent to Bitbucket, by rate-limit class and upstream status ("error" when no answer).' },
  budgetRemaining: { name: `${METRIC_PREFIX}upstream_budget_remaining`, type: 'gauge', labels: ['class'], help: 'Calls left in the rolling one-hour window of a Bitbucket rate-limit class.' },
  budgetLimit: { name: `${METRIC_PREFIX}upstream_budget_limit`, type: 'gauge', labels: ['class'], help: 'The hourly limit of a rate-limit class (configured, or learnt from X-RateLimit-Limit).' },
  budgetQueued: { name: `${METRIC_PREFIX}upstream_budget_queued`, type: 'gauge', labels: ['class'], help: 'Requests waiting for the budget governor.' },
  cacheBytes: { name: `${METRIC_PREFIX}cache_bytes`, type: 'gauge', labels: [], help: 'Bytes held by the response cache.' },
  cacheMaxBytes: { name: `${METRIC_PREFIX}cache_max_bytes`, type: 'gauge', labels: [], help: 'The cache byte bound (cache.maxBytes).' },
  cacheEntries: { name: `${METRIC_PREFIX}cache_entries`, type: 'gauge', labels: [], help: 'Entries in the response cache.' },
  cacheEvictions: { name: `${METRIC_PREFIX}cache_evictions_total`, type: 'counter', labels: [], help: 'Entries evicted to stay within cache.maxBytes.' },
  gitBytes: { name: `${METRIC_PREFIX}git_bytes_total`, type: 'counter', labels: ['direction'], help: 'Git smart-HTTP bytes streamed: "download" to Jenkins (pack data), "upload" from Jenkins (request bodies).' },
  webhookQueueDepth: { name: `${METRIC_PREFIX}webhook_queue_depth`, type: 'gauge', labels: [], help: 'Webhook deliveries waiting to be forwarded to Jenkins.' },
  tokenLastUsed: { name: `${METRIC_PREFIX}token_last_used_timestamp_seconds`, type: 'gauge', labels: ['client', 'token'], help: 'Unix time a client token was last accepted (0: not since start). token = its place in the client\'s token list, from 1.' },
  tokenExpiry: { name: `${METRIC_PREFIX}token_expiry_timestamp_seconds`, type: 'gauge', labels: ['client', 'token'], help: 'Unix time a client token expires (only tokens with expiresAt). token = its place in the client\'s token list, from 1.' },
} as const;

export type BudgetClassName = 'repository' | 'webhook' | 'other';

/** What the budget governor's `snapshot()` returns (structural, so this module does not depend on it). */
export interface BudgetView {
  classes: Partial<Record<BudgetClassName, { limit: number; usedInWindow: number; queued: number }>>;
}
export interface CacheView {
  bytes: number;
  entries: number;
  maxBytes?: number;
  /** Cumulative evictions, when the cache counts them itself (otherwise use `cacheEvictions.inc()`). */
  evictions?: number;
}
export interface TokenUsageView {
  client: string;
  /** The token's place in its client's list (`token`, then `tokens[]`), from 1: never derived from the secret. */
  token: string;
  lastUsed?: number;
  expiresAt?: string;
}

export interface SidecarMetrics {
  registry: Registry;
  requests: Counter<'route' | 'decision' | 'cache' | 'status'>;
  requestDuration: DurationHistogram;
  upstreamCalls: Counter<'class' | 'status'>;
  cacheEvictions: Counter<string>;
  gitBytes: Counter<'direction'>;
  /** The pipeline's `onFinished` hook. */
  observeRequest(record: AuditRecord, seconds: number): void;
  trackBudget(view: () => BudgetView): void;
  trackCache(view: () => CacheView): void;
  trackWebhookQueue(depth: () => number): void;
  trackTokens(usage: () => TokenUsageView[]): void;
  /** The body and content type for `/_sidecar/metrics`. */
  render(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  /** Node process metrics (memory, CPU, event loop lag, GC) with the same prefix. Default true. */
  processMetrics?: boolean;
}

/** Buckets from a cache hit (sub-millisecond) to a long clone (minutes). */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createMetrics(options: MetricsOptions = {}): SidecarMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  let budget: (() => BudgetView) | undefined;
  let cache: (() => CacheView) | undefined;
  let webhookQueue: (() => number) | undefined;
  let tokens: (() => TokenUsageView[]) | undefined;
  let evictionsSeen = 0;

  const m = (k: keyof typeof METRICS) => ({ name: METRICS[k].name, help: METRICS[k].help, labelNames: [...METRICS[k].labels] as string[], registers });

  const pendingRequests = new PendingCounts();
  const requests = new Counter({
    ...m('requests'),
    collect() {
      pendingRequests.flushInto(this);
    },
  }) as Counter<'route' | 'decision' | 'cache' | 'status'>;
  const requestDuration = new DurationHistogram(METRICS.requestDuration.name, METRICS.requestDuration.help, DURATION_BUCKETS, registry);
  const upstreamCalls = new Counter(m('upstreamCalls')) as Counter<'class' | 'status'>;
  const cacheEvictions = new Counter({
    ...m('cacheEvictions'),
    collect() {
      const total = cache?.().evictions;
      if (total !== undefined && total > evictionsSeen) {
        this.inc(total - evictionsSeen);
        evictionsSeen = total;
      }
    },
  });
  const gitBytes = new Counter(m('gitBytes')) as Counter<'direction'>;

  const budgetGauge = (key: 'budgetRemaining' | 'budgetLimit' | 'budgetQueued', value: (c: { limit: number; usedInWindow: number; queued: number }) => number) =>
    new Gauge({
      ...m(key),
      collect() {
        this.reset();
        const view = budget?.();
        if (!view) return;
        for (const [cls, c] of Object.entries(view.classes)) {
          if (!c || !Number.isFinite(c.limit)) continue; // "other" has no limit
          this.set({ class: cls }, value(c));
        }
      },
    });
  budgetGauge('budgetRemaining', (c) => Math.max(0, c.limit - c.usedInWindow));
  budgetGauge('budgetLimit', (c) => c.limit);
  budgetGauge('budgetQueued', (c) => c.queued);

  new Gauge({
    ...m('cacheBytes'),
    collect() {
      this.set(cache?.().bytes ?? 0);
    },
  });
  new Gauge({
    ...m('cacheMaxBytes'),
    collect() {
      const max = cache?.().maxBytes;
      if (max !== undefined) this.set(max);
    },
  });
  new Gauge({
    ...m('cacheEntries'),
    collect() {
      this.set(cache?.().entries ?? 0);
    },
  });
  new Gauge({
    ...m('webhookQueueDepth'),
    collect() {
      this.set(webhookQueue?.() ?? 0);
    },
  });
  new Gauge({
    ...m('tokenLastUsed'),
    collect() {
      this.reset();
      for (const t of tokens?.() ?? []) this.set({ client: t.client, token: t.token }, t.lastUsed ? Math.floor(t.lastUsed / 1000) : 0);
    },
  });
  new Gauge({
    ...m('tokenExpiry'),
    collect() {
      this.reset();
      for (const t of tokens?.() ?? []) {
        if (t.expiresAt) this.set({ client: t.client, token: t.token }, Math.floor(Date.parse(t.expiresAt) / 1000));
      }
    },
  });

  // Seen at once on the first scrape, before any traffic.
  gitBytes.inc({ direction: 'download' }, 0);
  gitBytes.inc({ direction: 'upload' }, 0);

  return {
    registry,
    requests,
    requestDuration,
    upstreamCalls,
    cacheEvictions,
    gitBytes,
    observeRequest(record, seconds) {
      const route = record.route ?? 'none';
      const { decision } = record;
      const cache = cacheLabel(record.cache);
      const status = String(record.status ?? 0);
      const key = `${route} ${decision} ${cache}`;
      requestDuration.observe(key, () => ({ route, decision, cache }), seconds);
      pendingRequests.add(`${key} ${status}`, () => ({ route, decision, cache, status }));
    },
    trackBudget: (view) => void (budget = view),
    trackCache: (view) => void (cache = view),
    trackWebhookQueue: (depth) => void (webhookQueue = depth),
    trackTokens: (usage) => void (tokens = usage),
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/**
 * The cache outcome of an RFC 9211 `Cache-Status` value (src/core/cache-status.ts), reduced to a label:
 * hit | stale (served stale, refreshed in the background) | stale-fallback (upstream failed or the
 * budget refused; a stored copy answered) | miss | bypass | none (not a cached route) | other.
 */
export function cacheLabel(status: string | undefined): string {
  return status ? cacheLabelRecent(status) : 'none';
}

// `ttl=` makes many values unique: the table is only a shortcut for the ones repeated.
const cacheLabelRecent = memoizeRecent(parseCacheLabel, 1024);

function parseCacheLabel(status: string): string {
  const params = new Map<string, string>();
  for (const part of status.split(';').slice(1)) {
    const [k, v = ''] = part.trim().split('=');
    if (k) params.set(k.trim(), v.trim());
  }
  const detail = params.get('detail') ?? '';
  if (params.has('hit')) return /stale|budget/.test(detail) ? 'stale' : 'hit';
  if (detail === 'stale-if-error' || detail === 'stale-if-budget') return 'stale-fallback';
  const fwd = params.get('fwd');
  if (fwd === 'bypass') return 'bypass';
  if (fwd === 'miss' || fwd === 'stale') return 'miss';
  return 'other';
}

/**
 * Counts the REST calls that actually reach Bitbucket: wrap the innermost source (the upstream
 * client), inside the cache and the budget governor, so hits and refusals are not counted.
 */
export function countUpstreamCalls(inner: Source, metrics: Pick<SidecarMetrics, 'upstreamCalls'>, classOf: (call: ApiCall) => string): Source {
  return async (call, ctx) => {
    const cls = classOf(call);
    try {
      const answer = await inner(call, ctx);
      // No answer from Bitbucket (network, timeout): an error, not the 502/504 the sidecar made of it.
      metrics.upstreamCalls.inc({ class: cls, status: answer.upstreamError === undefined ? String(answer.status) : 'error' });
      return answer;
    } catch (e) {
      metrics.upstreamCalls.inc({ class: cls, status: 'error' });
      throw e;
    }
  };
}

/**
 * Counts the bytes of a git stream: what is written to the client (pack data) and what the client
 * sent (the socket's read count while the handler runs; the request head was read before, so this
 * is the request body as it came over the wire).
 */
export function countGitBytes(handler: StreamHandler, metrics: Pick<SidecarMetrics, 'gitBytes'>): StreamHandler {
  return (req: IncomingMessage, res: ServerResponse, ctx) => {
    const socket = req.socket;
    const readAtStart = socket?.bytesRead ?? 0;
    let written = 0;
    const count = (chunk: unknown, encoding?: unknown) => {
      if (typeof chunk === 'string') written += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      else if (chunk instanceof Uint8Array) written += chunk.byteLength;
    };
    const write = res.write;
    const end = res.end;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      count(chunk, rest[0]);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof res.write;
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (chunk !== undefined && typeof chunk !== 'function') count(chunk, rest[0]);
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } as typeof res.end;
    res.once('close', () => {
      metrics.gitBytes.inc({ direction: 'download' }, written);
      const read = (socket?.bytesRead ?? readAtStart) - readAtStart;
      if (read > 0) metrics.gitBytes.inc({ direction: 'upload' }, read);
    });
    return handler(req, res, ctx);
  };
}
