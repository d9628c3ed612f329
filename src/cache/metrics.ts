/**
 * Prometheus metrics of the per-client cache shares, read at scrape time from the cache's own
 * counters. Labels: client ids (`sidecar` for what the sidecar stored for nobody) and fixed words.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ResponseCache } from './cache';
import type { RedisCacheTier } from './shared/tier';

const P = 'bitbucket_sidecar_';

export const CACHE_SHARE_METRICS = {
  clientBytes: { name: `${P}cache_client_bytes`, help: 'Bytes of the memory cache each client’s entries take (its share of cache.maxBytes bounds it).' },
  sharedClientBytes: { name: `${P}shared_cache_client_bytes`, help: 'Bytes this sidecar wrote to Redis for each client and that have not expired (its share of cache.shared.maxBytes bounds it).' },
  notStored: {
    name: `${P}cache_not_stored_total`,
    help: 'Answers not stored, by reason: negative-too-large (a 404 over cache.negativeMaxBytes), over-share (larger than the client’s share), local-not-shared (made without an upstream call: memory only), shared-over-share (the client’s share of cache.shared.maxBytes is used: memory only).',
  },
  evictions: { name: `${P}cache_share_evictions_total`, help: 'Memory entries evicted to store another, by whose: own (the storing client was at its share) or other (the cache was full; the client furthest past its share lost one).' },
} as const;

const label = (owner: string) => owner || 'sidecar';

export function registerCacheShareMetrics(registry: Registry, cache: ResponseCache, tier: RedisCacheTier | undefined): void {
  const registers = [registry];
  const gauge = (k: 'clientBytes' | 'sharedClientBytes', values: () => { owner: string; bytes: number }[]) =>
    new Gauge({
      name: CACHE_SHARE_METRICS[k].name,
      help: CACHE_SHARE_METRICS[k].help,
      labelNames: ['client'],
      registers,
      collect() {
        this.reset();
        for (const u of values()) this.set({ client: label(u.owner) }, u.bytes);
      },
    });
  gauge('clientBytes', () => cache.store.usage());
  if (tier) gauge('sharedClientBytes', () => tier.ledger.usage());
  const counter = (k: 'notStored' | 'evictions', labelName: string, values: () => Record<string, number>) =>
    new Counter({
      name: CACHE_SHARE_METRICS[k].name,
      help: CACHE_SHARE_METRICS[k].help,
      labelNames: [labelName],
      registers,
      collect() {
        this.reset();
        for (const [l, v] of Object.entries(values())) this.inc({ [labelName]: l }, v);
      },
    });
  counter('notStored', 'reason', () => ({
    'negative-too-large': cache.notStored.negativeTooLarge,
    'over-share': cache.notStored.overShare,
    'local-not-shared': cache.notStored.sharedLocal,
    'shared-over-share': tier?.stats.overShare ?? 0,
  }));
  counter('evictions', 'whose', () => ({ ...cache.store.evictions }));
}
