import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { GitEndpoint } from './target';

/**
 * Which client request headers reach Bitbucket, and which upstream response headers reach the
 * client. Both lists are closed: anything not named here (Cookie, Authorization, Proxy-*,
 * X-Forwarded-*, Expect, Connection and the other hop-by-hop headers) is dropped.
 */

/** What git's smart-HTTP client sends as Content-Type for each POST service. */
const REQUEST_TYPES: Partial<Record<GitEndpoint, string>> = {
  'upload-pack': 'application/x-git-upload-pack-request',
  'receive-pack': 'application/x-git-receive-pack-request',
};

/** Visible ASCII and spaces, bounded: enough for every header git sends. */
const PRINTABLE = /^[\x20-\x7e]{1,512}$/;
/** `Git-Protocol: version=2` (colon-separated key[=value] pairs, gitprotocol-http(5)). */
const GIT_PROTOCOL = /^[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?(:[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?)*$/;

export type RequestHeaderResult = { ok: true; headers: OutgoingHttpHeaders } | { ok: false; status: 411 | 415; message: string };

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The client-derived part of the upstream request headers, built from scratch. Host and the
 * upstream credential are added by the proxy itself (they never sit on the client's request
 * object). Request bodies are streamed unchanged, so the framing headers (Content-Length or
 * chunked Transfer-Encoding) and Content-Encoding: gzip are kept exactly as the client sent them;
 * the body's meaning is Bitbucket's to check.
 */
export function upstreamRequestHeaders(client: IncomingHttpHeaders, endpoint: GitEndpoint, method: string, defaultUserAgent: string): RequestHeaderResult {
  const out: OutgoingHttpHeaders = {};

  const ua = single(client['user-agent']);
  out['user-agent'] = ua && PRINTABLE.test(ua) ? ua : defaultUserAgent;

  const accept = single(client.accept);
  if (accept && PRINTABLE.test(accept)) out.accept = accept;

  const protocol = single(client['git-protocol']);
  if (protocol && protocol.length <= 256 && GIT_PROTOCOL.test(protocol)) out['git-protocol'] = protocol;

  // Pack data is already compressed; gzip is worth it for ref advertisements and is the only
  // coding git (curl) and Bitbucket share that we pass through without interpreting it.
  if (acceptsGzip(single(client['accept-encoding']))) out['accept-encoding'] = 'gzip';

  if (method !== 'POST') return { ok: true, headers: out };

  const expected = REQUEST_TYPES[endpoint];
  const type = single(client['content-type'])?.trim().toLowerCase();
  if (!expected || type !== expected) {
    return { ok: false, status: 415, message: `Expected Content-Type ${expected ?? '(none)'} for git-${endpoint}` };
  }
  out['content-type'] = expected;

  const encoding = single(client['content-encoding'])?.trim().toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip') out['content-encoding'] = encoding;
  else if (encoding && encoding !== 'identity') return { ok: false, status: 415, message: `Content-Encoding ${encoding} is not supported; use gzip or none` };

  // Node's parser has already refused requests that carry both, or a malformed length.
  const te = single(client['transfer-encoding']);
  const length = single(client['content-length']);
  if (te !== undefined) {
    if (te.trim().toLowerCase() !== 'chunked') return { ok: false, status: 415, message: 'Only chunked Transfer-Encoding is supported' };
    out['transfer-encoding'] = 'chunked';
  } else if (length !== undefined && /^[0-9]{1,15}$/.test(length)) {
    out['content-length'] = length;
  } else {
    return { ok: false, status: 411, message: 'A git request body needs Content-Length or chunked Transfer-Encoding' };
  }
  return { ok: true, headers: out };
}

/** Response headers git relies on; Set-Cookie, Location, WWW-Authenticate and the rest stay behind. */
const RESPONSE_KEPT = ['content-type', 'content-length', 'cache-control', 'expires', 'pragma'] as const;

export type ResponseHeaderResult = { ok: true; headers: OutgoingHttpHeaders } | { ok: false; encoding: string };

export function clientResponseHeaders(upstream: IncomingHttpHeaders, gzipRequested: boolean): ResponseHeaderResult {
  const out: OutgoingHttpHeaders = {};
  for (const name of RESPONSE_KEPT) {
    const v = upstream[name];
    if (typeof v === 'string') out[name] = v;
  }
  const encoding = upstream['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    // We asked for gzip at most; any other coding would reach a client that cannot decode it.
    if (!gzipRequested || (encoding !== 'gzip' && encoding !== 'x-gzip')) return { ok: false, encoding };
    out['content-encoding'] = encoding;
    out.vary = 'Accept-Encoding';
  }
  return { ok: true, headers: out };
}

/** `Accept-Encoding` lists gzip (or x-gzip) with a non-zero weight. */
export function acceptsGzip(value: string | undefined): boolean {
  if (!value) return false;
  return value.split(',').some((item) => {
    const [name, ...params] = item.split(';').map((p) => p.trim().toLowerCase());
    if (name !== 'gzip' && name !== 'x-gzip') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
