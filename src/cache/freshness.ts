import type { ApiCall } from '../core/call';

/** How long answers of each class stay fresh (seconds). Names are the `cache.freshness` config keys. */
export interface FreshnessConfig {
  /** Addressed by a commit id of at least 12 hex characters: `commit/{hash}`, `src/{hash}/…` without `at=`. */
  immutableSeconds: number;
  /** Workspace and repository objects. */
  metadataSeconds: number;
  /** Repository listings, branches, tags, pull requests, hooks, `src` at a branch name. */
  listSeconds: number;
  /** 404 answers of any class. */
  notFoundSeconds: number;
}

export const DEFAULT_FRESHNESS: FreshnessConfig = {
  immutableSeconds: 86_400,
  metadataSeconds: 300,
  listSeconds: 30,
  notFoundSeconds: 60,
};

export type Freshness = 'immutable' | 'metadata' | 'list';

/**
 * The freshness class of a GET, or undefined when it is never cached. A route whose row says when
 * a call names content by commit id (commit, src) is immutable for those calls.
 */
export function freshnessOf(call: ApiCall): Freshness | undefined {
  if (call.method !== 'GET' && call.method !== 'HEAD') return undefined;
  const { class: cls, immutableWhen } = call.route.cache;
  if (cls === 'none') return undefined;
  return immutableWhen?.(call.params, call.query) ? 'immutable' : cls;
}

/** Statuses worth storing: success and "not there" (a 404 is an answer the plugin acts on). */
export function isStorable(status: number): boolean {
  return status === 200 || status === 404;
}

/** Freshness lifetime in milliseconds of an answer with `status` in class `cls`. */
export function lifetimeMs(cls: Freshness, status: number, cfg: FreshnessConfig): number {
  if (status === 404) return cfg.notFoundSeconds * 1000;
  switch (cls) {
    case 'immutable':
      return cfg.immutableSeconds * 1000;
    case 'metadata':
      return cfg.metadataSeconds * 1000;
    case 'list':
      return cfg.listSeconds * 1000;
  }
}

/** Upstream trouble during which a stored copy is served instead (stale-if-error). */
export function isUpstreamTrouble(status: number): boolean {
  return status === 429 || status >= 500;
}
