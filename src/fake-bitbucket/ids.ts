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

/** Commit dates: `2018-09-21T14:09:51+00:00` (UTC, whole seconds). */
export function isoSeconds(epochSeconds: number): string {
  return `${new Date(epochSeconds * 1000).toISOString().slice(0, 19)}+00:00`;
}

/** Percent-encoding for a path segment that must stay one segment (`/`→%2F, `{`→%7B, …). */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s);
}

/**
 * Bitbucket's encoding of ref names inside `links` (recorded:
 * `refs/tags/special-%22$;%3E%3C&%23_=@!%7C.,/test`): like encodeURI but also `#` and `?`.
 */
export function encodeRefForLink(name: string): string {
  return encodeURI(name).replace(/#/g, '%23').replace(/\?/g, '%3F');
}
