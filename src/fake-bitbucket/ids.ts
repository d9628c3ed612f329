/** Stable identifiers and Bitbucket-style timestamps. */
import { createHash } from 'node:crypto';

function digest(parts: string[]): string {
  return createHash('sha1').update(`fake-bitbucket\0${parts.join('\0')}`).digest('hex');
}

/** Deterministic `{xxxxxxxx-xxxx-5xxx-Yxxx-xxxxxxxxxxxx}` derived from the given parts (stable across runs). */
export function stableUuid(...parts: string[]): string {
  const h = digest(parts);
  const variant = ((parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16);
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}}`;
}

/** Atlassian-style account id: `557058:<uuid without braces>`. */
export function accountIdFor(nickname: string): string {
  return `557058:${stableUuid('account', nickname).slice(1, -1)}`;
}

/** True for `{8-4-4-4-12}` (braces required, like Bitbucket's path parameters). */
export function isBracedUuid(s: string): boolean {
  return /^\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}$/.test(s);
}

function saltDigits(salt: string, n: number): string {
  const h = digest(['salt', salt]);
  return (BigInt(`0x${h.slice(0, 15)}`) % 10n ** BigInt(n)).toString().padStart(n, '0');
}

/** `2025-01-27T14:15:58.600540+00:00` — µs precision like Bitbucket's `updated_on`. */
export function isoMicros(ms: number, salt = ''): string {
  const base = new Date(Math.floor(ms)).toISOString(); // 2025-01-27T14:15:58.600Z
  return `${base.slice(0, 23)}${saltDigits(salt, 3)}+00:00`;
}

/** `2025-08-23T15:07:25.469063524Z` — ns precision like a webhook's `created_at`. */
export function isoNanosZ(ms: number, salt = ''): string {
  const base = new Date(Math.floor(ms)).toISOString();
  return `${base.slice(0, 23)}${saltDigits(salt, 6)}Z`;
}

/** Percent-encoding for a path segment that must stay one segment (`/`→%2F, `{`→%7B, …). */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s);
}
