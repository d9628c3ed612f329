import type { Face, RouteDef, RouteMatch, RouteParams } from '../core/route';
import type { CanonicalTarget } from '../core/target';
import { ROUTES } from './catalog';

type Matcher = (value: string) => string | undefined;

/** A "." or ".." part, with "/" or "\\" as the separator: some servers read a backslash as a slash. */
const DOT_PART = /(^|[\/\\])\.\.?([\/\\]|$)/;

const UUID_FORM = /^\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}$/;
const SLUG = /^[A-Za-z0-9._-]{1,128}$/;

/** A workspace or repository: a slug (compared lower-case) or a `{uuid}`; never contains / or \. */
const slugOrUuid: Matcher = (v) => ((SLUG.test(v) && !/^\.+$/.test(v)) || UUID_FORM.test(v) ? v.toLowerCase() : undefined);

const MATCHERS: Record<string, Matcher> = {
  ws: slugOrUuid,
  repo: slugOrUuid,
  name: (v) => (v.length <= 255 && !DOT_PART.test(v) ? v : undefined),
  rev: (v) => (v.length <= 255 && !DOT_PART.test(v) ? v : undefined),
  hash: (v) => (/^[0-9a-fA-F]{7,40}$/.test(v) ? v.toLowerCase() : undefined),
  id: (v) => (/^[1-9][0-9]{0,9}$/.test(v) ? v : undefined),
  hook: (v) => (UUID_FORM.test(v) ? v.toLowerCase() : undefined),
  // Opaque ids of src/lfs/transfers.ts: 32 base64url characters, case kept.
  transfer: (v) => (/^[A-Za-z0-9_-]{32}$/.test(v) ? v : undefined),
};

/** File paths inside a repository: no empty, "." or ".." parts once %2F (or %5C) is taken as a separator. */
function matchPath(segments: string[]): string | undefined {
  const path = segments.join('/');
  if (path === '') return '';
  if (path.length > 4096) return undefined;
  return path.split(/[\/\\]/).every((p) => p !== '' && p !== '.' && p !== '..') ? path : undefined;
}

interface Compiled {
  route: RouteDef;
  parts: { literal?: string; param?: keyof RouteParams; rest?: boolean }[];
}

const COMPILED: Compiled[] = ROUTES.map((route) => ({
  route,
  parts: route.pattern
    .split('/')
    .slice(1)
    .map((p) => {
      const m = /^\{(\w+)(\*)?\}$/.exec(p);
      if (!m) return { literal: p };
      return { param: m[1] as keyof RouteParams, rest: m[2] === '*' };
    }),
}));

function matchOne(c: Compiled, target: CanonicalTarget): RouteParams | undefined {
  const segs = target.segments;
  const params: RouteParams = {};
  for (let i = 0; i < c.parts.length; i++) {
    const part = c.parts[i];
    if (part.rest) {
      const path = matchPath(segs.slice(i));
      if (path === undefined) return undefined;
      params.path = path;
      return params;
    }
    const seg = segs[i];
    if (seg === undefined) return undefined;
    if (part.literal !== undefined) {
      if (seg !== part.literal) return undefined;
      continue;
    }
    let value = seg;
    // Git remotes name the repository `{repo}.git`; Bitbucket accepts it with or without the suffix.
    if (part.param === 'repo' && c.route.face === 'web' && value.toLowerCase().endsWith('.git')) value = value.slice(0, -4);
    const ok = MATCHERS[part.param!](value);
    if (ok === undefined) return undefined;
    params[part.param!] = ok;
  }
  if (segs.length !== c.parts.length) return undefined;
  if (target.trailingSlash && c.route.trailingSlash !== 'optional') return undefined;
  return params;
}

export type MatchResult = { kind: 'match'; match: RouteMatch } | { kind: 'method'; allowed: string[] } | { kind: 'none' };

/** Finds the route for a face and method; HEAD is served by every GET route. */
export function matchRoute(face: Face, method: string, target: CanonicalTarget): MatchResult {
  const wanted = method === 'HEAD' ? 'GET' : method;
  const allowed = new Set<string>();
  for (const c of COMPILED) {
    if (c.route.face !== face) continue;
    const params = matchOne(c, target);
    if (!params) continue;
    if ((c.route.methods as readonly string[]).includes(wanted)) {
      return { kind: 'match', match: { route: c.route, params, trailingSlash: target.trailingSlash } };
    }
    c.route.methods.forEach((m) => allowed.add(m));
  }
  if (allowed.size > 0) {
    if (allowed.has('GET')) allowed.add('HEAD');
    return { kind: 'method', allowed: [...allowed] };
  }
  return { kind: 'none' };
}

export function isUuidForm(value: string): boolean {
  return UUID_FORM.test(value);
}
