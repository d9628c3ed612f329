import type { ApiCall } from '../core/call';
import { encodeQuery, encodeSegment } from './canonical';

export function canonicalQuery(pairs: readonly [string, string][], allowed: readonly string[]): [string, string][] {
  return pairs
    .filter(([k]) => allowed.includes(k))
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
}

type PathParts = Pick<ApiCall, 'route' | 'params' | 'trailingSlash' | 'query'>;
/** Calls are values (a changed call is a new object), so a call's path is built once. */
const paths = new WeakMap<PathParts, string>();

/** Builds the upstream path (and query) from the route template and canonical parameters only. */
export function upstreamPath(call: PathParts): string {
  let known = paths.get(call);
  if (known === undefined) paths.set(call, (known = buildPath(call)));
  return known;
}

/** A route pattern as literal text and parameters (`{name}`, `{path*}`), split once. */
type Piece = string | { name: string; rest: boolean };
const templates = new Map<string, Piece[]>();

function template(pattern: string): Piece[] {
  let pieces = templates.get(pattern);
  if (!pieces) {
    pieces = pattern.split(/(\{\w+\*?\})/).filter((p) => p !== '').map((p) => (p.startsWith('{') ? { name: p.slice(1, -1).replace(/\*$/, ''), rest: p.endsWith('*}') } : p));
    templates.set(pattern, pieces);
  }
  return pieces;
}

function buildPath(call: PathParts): string {
  const params = call.params as Record<string, string | undefined>;
  let path = '';
  for (const piece of template(call.route.pattern)) {
    if (typeof piece === 'string') {
      path += piece;
      continue;
    }
    const v = params[piece.name];
    if (v === undefined) throw new Error(`route ${call.route.id}: parameter ${piece.name} missing`);
    if (!(piece.rest && v === '')) path += encodeSegment(v);
  }
  const trimmed = path.replace(/\/$/, '');
  const withSlash = call.trailingSlash ? `${trimmed}/` : trimmed;
  const q = encodeQuery(call.query);
  return q ? `${withSlash}?${q}` : withSlash;
}

/** The key that identifies "the same request" for caching and coalescing. */
export function callKey(call: ApiCall): string {
  return `${call.method === 'HEAD' ? 'GET' : call.method} ${upstreamPath(call)}`;
}
