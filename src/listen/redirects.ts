import type { ApiAnswer, ApiCall, CallContext, Source } from '../core/call';
import { matchRoute } from '../routes/match';
import type { RouteMatch } from '../core/route';
import { errorAnswer } from '../respond/errors';
import { BadTarget, parseRequestTarget } from '../routes/canonical';
import type { CanonicalTarget } from '../core/target';
import { NOT_FOUND_MESSAGE } from '../scope/gate';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_HOPS = 3;

/**
 * Upstream redirects (renamed repositories) are followed here, within the upstream API host only,
 * and each target passes the scope gate again. The client never sees an upstream redirect.
 */
export async function followRedirects(
  call: ApiCall,
  source: Source,
  admit: (next: { match: RouteMatch; target: CanonicalTarget }) => Promise<ApiCall | undefined>,
  upstreamApi: string,
  ctx?: CallContext,
): Promise<ApiAnswer> {
  let current = call;
  for (let hop = 0; ; hop++) {
    const answer = await source(current, ctx);
    if (!REDIRECTS.has(answer.status)) return answer;
    if (current.method !== 'GET' && current.method !== 'HEAD') {
      return errorAnswer(502, 'Bitbucket redirected this write (was the repository renamed?); it was not applied by the sidecar');
    }
    if (hop >= MAX_HOPS) return errorAnswer(502, 'Bitbucket redirected too many times');
    const location = answer.headers.location;
    if (!location) return errorAnswer(502, 'Bitbucket sent a redirect without a location');
    let next: URL;
    try {
      next = new URL(location, upstreamApi);
    } catch {
      return errorAnswer(502, 'Bitbucket sent an invalid redirect');
    }
    if (next.origin !== new URL(upstreamApi).origin || next.username || next.password) {
      return errorAnswer(502, 'Bitbucket redirected to another host; the sidecar does not follow it');
    }
    const base = new URL(upstreamApi).pathname.replace(/\/$/, '');
    if (base && !next.pathname.startsWith(`${base}/`)) return errorAnswer(404, NOT_FOUND_MESSAGE);
    let target: CanonicalTarget;
    try {
      target = parseRequestTarget(next.pathname.slice(base.length) + next.search, 8192);
    } catch (e) {
      if (e instanceof BadTarget) return errorAnswer(502, 'Bitbucket sent an invalid redirect');
      throw e;
    }
    const found = matchRoute('api', 'GET', target);
    if (found.kind !== 'match') return errorAnswer(404, NOT_FOUND_MESSAGE);
    const admitted = await admit({ match: found.match, target });
    if (!admitted) return errorAnswer(404, NOT_FOUND_MESSAGE);
    current = { ...admitted, method: current.method };
  }
}
