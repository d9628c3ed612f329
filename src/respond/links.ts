/**
 * Absolute upstream URLs in answers (`next`, `previous`, `links.*.href`, `Location`) are rewritten
 * to the base the client used. For the plugin that is exactly `https://api.bitbucket.org` with no
 * port: any other spelling makes it drop its credentials on page 2. User names are removed from
 * clone links (upstream puts the upstream person's name there).
 */
export interface LinkBases {
  upstreamApi: string; // origin, e.g. https://api.bitbucket.org
  upstreamWeb: string; // origin, e.g. https://bitbucket.org
  clientApi: string;
  clientWeb: string;
}

const URL_PARTS = /^(https?):\/\/(?:[^/?#@]*@)?([^/?#]*)(.*)$/i;

/** The bases as compared: lowercased once per answer, not once per link. */
interface Rewriter {
  api: string;
  web: string;
  clientApi: string;
  clientWeb: string;
}

function rewriter(b: LinkBases): Rewriter {
  return { api: b.upstreamApi.toLowerCase(), web: b.upstreamWeb.toLowerCase(), clientApi: b.clientApi, clientWeb: b.clientWeb };
}

export function rewriteUrl(url: string, b: LinkBases): string {
  return rewrite(url, rewriter(b));
}

function rewrite(url: string, r: Rewriter): string {
  const m = URL_PARTS.exec(url);
  if (!m) return url;
  const origin = `${m[1]}://${m[2]}`.toLowerCase();
  const rest = m[3];
  const isApiPath = rest === '/2.0' || rest.startsWith('/2.0/') || rest.startsWith('/2.0?');
  if (origin === r.api && (isApiPath || r.api !== r.web)) return r.clientApi + rest;
  if (origin === r.web) return (isApiPath ? r.clientApi : r.clientWeb) + rest;
  // Some other host: keep it, but never hand out user information.
  return `${m[1]}://${m[2]}${rest}`;
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
    for (let i = 0; i < value.length; i++) out[i] = walk(value[i], r, false);
    return out;
  }
  const o = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    out[k] = walk(o[k], r, k === 'href' || k === 'next' || k === 'previous');
  }
  return out;
}
