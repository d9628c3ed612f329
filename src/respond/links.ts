import type { LinkBases } from '../core/links';

/**
 * Absolute upstream URLs in answers (`next`, `previous`, `links.*.href`, `Location`) are rewritten
 * to the base the client used. For the plugin that is exactly `https://api.bitbucket.org` with no
 * port: any other spelling makes it drop its credentials on page 2. User names are removed from
 * clone links (upstream puts the upstream person's name there).
 */

const URL_PARTS = /^(https?):\/\/(?:[^/?#@]*@)?([^/?#]*)(.*)$/i;

/** The bases as compared: lowercased once per answer, not once per link. */
interface Rewriter {
  api: string;
  web: string;
  clientApi: string;
  clientWeb: string;
  /** Both upstream bases are plain http(s) origins, as URL_PARTS would find them in a link. */
  fast: boolean;
}

const PLAIN_ORIGIN = /^https?:\/\/[^/?#@]*$/;

function rewriter(b: LinkBases): Rewriter {
  const api = b.upstreamApi.toLowerCase();
  const web = b.upstreamWeb.toLowerCase();
  return { api, web, clientApi: b.clientApi, clientWeb: b.clientWeb, fast: PLAIN_ORIGIN.test(api) && PLAIN_ORIGIN.test(web) };
}

export function rewriteUrl(url: string, b: LinkBases): string {
  return rewrite(url, rewriter(b));
}

/** What `.` in URL_PARTS does not match: a URL holding one is not a URL to it, and is kept as it is. */
const LINE_BREAK = /[\n\r\u2028\u2029]/;

function rewrite(url: string, r: Rewriter): string {
  // Fast path for the links upstream writes (its own origin, as configured, no user name): the
  // same result as below without the capture groups and the lowercasing.
  const origin = !r.fast ? undefined : url.startsWith(r.api) ? r.api : url.startsWith(r.web) ? r.web : undefined;
  if (origin !== undefined && url.charCodeAt(origin.length) === 0x2f /* / */) {
    const rest = url.slice(origin.length);
    if (!LINE_BREAK.test(rest)) return rebase(origin, rest, r);
  }
  const m = URL_PARTS.exec(url);
  if (!m) return url;
  const found = `${m[1]}://${m[2]}`.toLowerCase();
  if (found === r.api || found === r.web) return rebase(found, m[3], r);
  // Some other host: keep it, but never hand out user information.
  return `${m[1]}://${m[2]}${m[3]}`;
}

/** `rest` of a URL on one of the upstream origins, on the client's base. */
function rebase(origin: string, rest: string, r: Rewriter): string {
  const isApiPath = rest === '/2.0' || rest.startsWith('/2.0/') || rest.startsWith('/2.0?');
  if (origin === r.api && (isApiPath || r.api !== r.web)) return r.clientApi + rest;
  return (isApiPath ? r.clientApi : r.clientWeb) + rest;
}

/**
 * A copy of `value` with the strings under `href`, `next` and `previous` rewritten (array elements
 * are never link fields). Plain loops: this walks every value of every answer a miss shapes.
 */
export function rewriteLinks(value: unknown, b: LinkBases): unknown {
  return walk(value, rewriter(b), false);
}

function walk(value: unknown, r: Rewriter, link: boolean): unknown {
  if (typeof value === 'string') return link ? rewrite(value, r) : value;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out[i] = v !== null && typeof v === 'object' ? walk(v, r, false) : v;
    }
    return out;
  }
  const o = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const v = o[k];
    if (typeof v === 'string') out[k] = k === 'href' || k === 'next' || k === 'previous' ? rewrite(v, r) : v;
    else out[k] = v !== null && typeof v === 'object' ? walk(v, r, false) : v;
  }
  return out;
}
