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
const LINK_KEYS = new Set(['href', 'next', 'previous']);

export function rewriteUrl(url: string, b: LinkBases): string {
  const m = URL_PARTS.exec(url);
  if (!m) return url;
  const origin = `${m[1].toLowerCase()}://${m[2].toLowerCase()}`;
  const rest = m[3];
  const isApiPath = rest === '/2.0' || rest.startsWith('/2.0/') || rest.startsWith('/2.0?');
  if (origin === b.upstreamApi.toLowerCase() && (isApiPath || b.upstreamApi.toLowerCase() !== b.upstreamWeb.toLowerCase())) return b.clientApi + rest;
  if (origin === b.upstreamWeb.toLowerCase()) return (isApiPath ? b.clientApi : b.clientWeb) + rest;
  // Some other host: keep it, but never hand out user information.
  return `${m[1]}://${m[2]}${rest}`;
}

export function rewriteLinks(value: unknown, b: LinkBases, key?: string): unknown {
  if (typeof value === 'string') return key !== undefined && LINK_KEYS.has(key) ? rewriteUrl(value, b) : value;
  if (Array.isArray(value)) return value.map((v) => rewriteLinks(v, b));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = rewriteLinks(v, b, k);
    return out;
  }
  return value;
}
