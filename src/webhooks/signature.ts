import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * `X-Hub-Signature: <alg>=<hex>`: HMAC of the raw body, keyed with the hook secret (UTF-8), as
 * Bitbucket Cloud sends it and as the Branch Source plugin checks it: algorithms
 * sha1, sha256, sha384 and sha512; a missing header, an unknown algorithm or a wrong digest is a
 * 403, a digest that is not hex is a 400.
 */
export const SIGNATURE_ALGORITHMS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

export type SignatureCheck =
  | { ok: true; algorithm: SignatureAlgorithm }
  | { ok: false; status: 400 | 403; reason: 'missing' | 'unknown-algorithm' | 'malformed' | 'mismatch' };

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

export function sign(body: Buffer, secret: string, algorithm: SignatureAlgorithm = 'sha256'): string {
  return `${algorithm}=${createHmac(algorithm, Buffer.from(secret, 'utf8')).update(body).digest('hex')}`;
}

export function verifySignature(body: Buffer, header: string | undefined, secret: string): SignatureCheck {
  if (header === undefined || header.trim() === '') return { ok: false, status: 403, reason: 'missing' };
  const value = header.trim();
  const eq = value.indexOf('=');
  const algorithm = (eq > 0 ? value.slice(0, eq).toLowerCase() : '') as SignatureAlgorithm;
  if (!SIGNATURE_ALGORITHMS.includes(algorithm)) return { ok: false, status: 403, reason: 'unknown-algorithm' };
  const hex = value.slice(eq + 1);
  if (!HEX.test(hex)) return { ok: false, status: 400, reason: 'malformed' };
  const presented = Buffer.from(hex, 'hex');
  const expected = createHmac(algorithm, Buffer.from(secret, 'utf8')).update(body).digest();
  // timingSafeEqual needs equal lengths; the length of a digest is public (it follows from the algorithm).
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { ok: false, status: 403, reason: 'mismatch' };
  return { ok: true, algorithm };
}
