import type { CanonicalTarget } from '../core/target';

/**
 * Turns a raw HTTP request target into decoded path segments and query pairs. Everything the
 * sidecar decides (route, scope, cache key, upstream URL) is derived from this one decoding; the
 * raw target is never forwarded.
 */

export class BadTarget extends Error {
  constructor(
    readonly status: 400 | 414,
    message: string,
  ) {
    super(message);
  }
}

const FORBIDDEN_RAW = /[^\x21-\x7e]|[\\#]/;
const CONTROL = /[\x00-\x1f\x7f]/;
/** `%2F`, `%5C`, `%2E` or `%25` left in a segment after its one decoding (the client encoded it twice). */
const STILL_ENCODED = /%(2f|5c|2e|25)/i;

export function parseRequestTarget(raw: string, maxLength: number): CanonicalTarget {
  if (raw.length > maxLength) throw new BadTarget(414, 'Request URL is too long');
  let rest = raw;
  let absoluteHost: string | undefined;
  const abs = raw.startsWith('/') ? null : /^https?:\/\/([^/?#]*)/i.exec(raw);
  if (abs) {
    if (abs[1].includes('@')) throw new BadTarget(400, 'Request target must not carry user information');
    absoluteHost = abs[1];
    rest = raw.slice(abs[0].length) || '/';
  }
  if (!rest.startsWith('/')) throw new BadTarget(400, 'Request target must be an absolute path');
  if (FORBIDDEN_RAW.test(rest)) throw new BadTarget(400, 'Request URL contains characters that must be percent-encoded');

  const q = rest.indexOf('?');
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  const rawQuery = q < 0 ? '' : rest.slice(q + 1);

  const parts = rawPath.split('/').slice(1);
  let trailingSlash = false;
  if (parts.length > 0 && parts[parts.length - 1] === '') {
    trailingSlash = true;
    parts.pop();
  }
  const segments = parts.map((p) => {
    if (p === '') throw new BadTarget(400, 'Request path contains an empty segment');
    const d = decode(p, false);
    if (d === '.' || d === '..') throw new BadTarget(400, 'Request path contains a dot segment');
    // Whoever decodes the forwarded path a second time would see these as separators or dots.
    if (STILL_ENCODED.test(d)) throw new BadTarget(400, 'Request path contains a percent-encoded separator, dot or percent sign after decoding');
    return d;
  });

  const query: [string, string][] = [];
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = decode(eq < 0 ? pair : pair.slice(0, eq), true);
    const v = eq < 0 ? '' : decode(pair.slice(eq + 1), true);
    query.push([k, v]);
  }
  return { segments, trailingSlash, query, absoluteHost };
}

function decode(text: string, plusIsSpace: boolean): string {
  // The raw target holds only visible ASCII (FORBIDDEN_RAW): without escapes there is nothing to decode.
  if (!text.includes('%') && !(plusIsSpace && text.includes('+'))) return text;
  let d: string;
  try {
    d = decodeURIComponent(plusIsSpace ? text.replace(/\+/g, ' ') : text);
  } catch {
    throw new BadTarget(400, 'Request URL contains invalid percent-encoding');
  }
  if (CONTROL.test(d)) throw new BadTarget(400, 'Request URL contains control characters');
  return d;
}

/** RFC 3986 unreserved characters stay; everything else is percent-encoded (as RFC 6570 `{/var}` does). */
const UNRESERVED = /^[A-Za-z0-9._~-]*$/;

export function encodeSegment(value: string): string {
  if (UNRESERVED.test(value)) return value;
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function encodeQuery(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${encodeSegment(k)}=${encodeSegment(v)}`).join('&');
}
