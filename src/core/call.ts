/** What every source layer speaks: a checked call in, an answer out (the stack is built in src/sidecar.ts). */
import type { RouteDef, RouteParams } from './route';

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
  /** The id of the client this answer was computed for from what it may see (a narrowed listing): not filtered again. */
  scopedFor?: string;
  /**
   * Set by the budget stage when it answered instead of Bitbucket (no call was made), with the
   * governor's reason: the cache then serves a stored copy if it has one. Never sent to clients.
   */
  budgetRefused?: 'budget' | 'backoff' | 'busy' | 'background';
  /**
   * Set by the upstream stage when Bitbucket gave no usable answer (DNS, connection, TLS, proxy,
   * timeout, a cut or corrupt body): what went wrong, e.g. `ENOTFOUND`. Audited and counted as an
   * error, never as an upstream status. Never sent to clients.
   */
  upstreamError?: string;
  /**
   * Set by the budget stage on an answer Bitbucket gave (a call was made). Answers without it were
   * made by the sidecar itself (a mirror, learned facts) and are never put in the shared cache tier.
   */
  upstream?: true;
}

/** Who a call is made for: the budget charges it to that client's share of the hour. */
export interface CallContext {
  client?: string;
  /** Called by the budget stage once the call is let through: from then on the cache lets other clients' identical misses share it. */
  onGranted?: () => void;
}

/** Every stage that answers calls; `ctx` is handed on unchanged by every wrapper. */
export type Source = (call: ApiCall, ctx?: CallContext) => Promise<ApiAnswer>;
