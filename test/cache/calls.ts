import { canonicalQuery } from '../../src/routes/call';
import type { ApiCall, Method } from '../../src/core/call';
import { matchRoute } from '../../src/routes/match';
import { parseRequestTarget } from '../../src/routes/canonical';

/** The canonical call the scope gate would build for an API-face request (slugs already resolved). */
export function callFor(method: Method, url: string, body?: string): ApiCall {
  const target = parseRequestTarget(url, 8192);
  const found = matchRoute('api', method, target);
  if (found.kind !== 'match') throw new Error(`no route for ${method} ${url}`);
  const { route, params, trailingSlash } = found.match;
  return {
    method,
    route,
    params: { ...params },
    trailingSlash,
    query: canonicalQuery(target.query, route.query),
    ...(body !== undefined ? { body: Buffer.from(body), contentType: 'application/json; charset=UTF-8' } : {}),
  };
}
