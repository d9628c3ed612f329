import { memoizeRecent } from '../core/memoize';

/** What a client presented in its Authorization header; the user name is informational only. */
export type PresentedCredential =
  | { kind: 'none' }
  | { kind: 'malformed'; reason: string }
  /** A scheme other than Basic or Bearer: no credential of ours, so 401 with the challenge, as Bitbucket answers. */
  | { kind: 'unsupported' }
  | { kind: 'basic'; username: string; secret: string }
  | { kind: 'bearer'; secret: string };

const MAX_AUTHORIZATION_LENGTH = 4096;

/** Jenkins sends the same header on every request: decoding it once per header value is enough. */
const parseRecent = memoizeRecent(parse);

export function parseAuthorization(header: string | undefined): PresentedCredential {
  if (header === undefined || header === '') return { kind: 'none' };
  return parseRecent(header);
}

function parse(header: string): PresentedCredential {
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { kind: 'malformed', reason: 'Authorization header is too long' };
  const m = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  if (!m) return { kind: 'malformed', reason: 'Authorization header is malformed' };
  const scheme = m[1].toLowerCase();
  if (scheme === 'bearer') return { kind: 'bearer', secret: m[2] };
  if (scheme !== 'basic') return { kind: 'unsupported' };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(m[2])) return { kind: 'malformed', reason: 'Basic credentials are not valid base64' };
  const decoded = Buffer.from(m[2], 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { kind: 'malformed', reason: 'Basic credentials have no password' };
  return { kind: 'basic', username: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}
