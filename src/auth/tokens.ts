import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Sidecar tokens are exactly 192 URL-safe characters: the plugin treats a username/password
 * credential as an API token only when the password has that length (anything else makes it call
 * anonymously). The fixed prefix lets secret scanners recognise a leaked token.
 */
export const TOKEN_PREFIX = 'bbsc_';
export const TOKEN_LENGTH = 192;
const TOKEN_SHAPE = new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{${TOKEN_LENGTH - TOKEN_PREFIX.length}}$`);

export function mintToken(): string {
  const body = randomBytes(256).toString('base64url').slice(0, TOKEN_LENGTH - TOKEN_PREFIX.length);
  return TOKEN_PREFIX + body;
}

export function looksLikeSidecarToken(value: string): boolean {
  return TOKEN_SHAPE.test(value);
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** Constant-time equality of two hex digests of the same algorithm. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomAlnum(length: number): string {
  // Rejection sampling keeps every character uniformly likely.
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALNUM[b % ALNUM.length];
    }
  }
  return out;
}

/** An OAuth consumer pair in the 18/32 shape the plugin recognises as an OAuth credential. */
export function mintOAuthConsumer(): { key: string; secret: string } {
  return { key: randomAlnum(18), secret: randomAlnum(32) };
}
