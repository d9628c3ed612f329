/**
 * Credentials: REST answers `Basic email:apiToken`; git answers `Basic x-bitbucket-api-token-auth:apiToken`
 * or `Basic x-token-auth:apiToken`. Anything else → 401 with Bitbucket's WWW-Authenticate realm.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FakeCredentials } from './types';

export const WWW_AUTHENTICATE = 'Basic realm="Bitbucket.org HTTP"';
export const GIT_USERNAMES = ['x-bitbucket-api-token-auth', 'x-token-auth'];

/**
 * A fixed 192-character test token shaped like an Atlassian user API token (the Jenkins plugin only treats
 * e-mail + 192-char passwords as user API tokens).
 */
export const DEFAULT_API_TOKEN =
  'ATATT3xFfGF0FakeBitbucketTestToken0123456789FakeBitbucketTestToken0123456789FakeBitbucketTestToken0123456789FakeBitbucketTestToken0123456789FakeBitbucketTestToken0123456789FakeBitbuck=0A1B2C3D';

export const DEFAULT_CREDENTIALS: FakeCredentials = { email: 'jdoe@example.com', apiToken: DEFAULT_API_TOKEN };

export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Identity key of a valid REST credential (used by the rate limiter), or undefined. */
export function checkApiAuth(header: string | undefined, creds: FakeCredentials): string | undefined {
  const b = parseBasic(header);
  if (!b) return undefined;
  if (b.user.toLowerCase() !== creds.email.toLowerCase() || !same(b.password, creds.apiToken)) return undefined;
  return `user:${creds.email.toLowerCase()}`;
}

export function checkGitAuth(header: string | undefined, creds: FakeCredentials): string | undefined {
  const b = parseBasic(header);
  if (!b) return undefined;
  if (!GIT_USERNAMES.includes(b.user) || !same(b.password, creds.apiToken)) return undefined;
  return b.user;
}
