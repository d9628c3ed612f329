import { encodeQuery, encodeSegment } from '../scope/canonical';
import type { RouteDef } from './catalog';
import type { RouteParams } from './match';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

/** A request that passed every check: parameters are canonical (slugs, no uuid forms). */
export interface ApiCall {
  method: Method;
  route: RouteDef;
  params: RouteParams;
  trailingSlash: boolean;
  /** Only the route's allowed parameters, sorted by name then value. */
  query: [string, string][];
  body?: Buffer;
  contentType?: string;
  /** Background refreshes yield to requests a client is waiting for. */
  background?: boolean;
}

/** An answer from a source (upstream, cache, or the sidecar itself), before per-client shaping. */
export interface ApiAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** RFC 9211 Cache-Status value describing how this answer was produced. */
  cacheStatus?: string;
  ageSeconds?: number;
}

export type Source = (call: ApiCall) => Promise<ApiAnswer>;

export function canonicalQuery(pairs: readonly [string, string][], allowed: readonly string[]): [string, string][] {
  return pairs
    .filter(([k]) => allowed.includes(k))
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
}

/** Builds the upstream path (and query) from the route template and canonical parameters only. */
export function upstreamPath(call: Pick<ApiCall, 'route' | 'params' | 'trailingSlash' | 'query'>): string {
  const params = call.params as Record<string, string | undefined>;
  const path = call.route.pattern.replace(/\{(\w+)(\*)?\}/g, (_m, name: string, rest?: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`route ${call.route.id}: parameter ${name} missing`);
    if (rest && v === '') return '';
    return encodeSegment(v);
  });
  const trimmed = path.replace(/\/$/, '');
  const withSlash = call.trailingSlash ? `${trimmed}/` : trimmed;
  const q = encodeQuery(call.query);
  return q ? `${withSlash}?${q}` : withSlash;
}

/** The key that identifies "the same request" for caching and coalescing. */
export function callKey(call: ApiCall): string {
  return `${call.method === 'HEAD' ? 'GET' : call.method} ${upstreamPath(call)}`;
}
