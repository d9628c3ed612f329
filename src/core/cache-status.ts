/**
 * RFC 9211 `Cache-Status` values. One member, named after the sidecar; parameters say whether the
 * answer came from the cache (`hit`) or was forwarded (`fwd=miss|stale`), what upstream answered
 * (`fwd-status`), whether it was stored, its remaining freshness (`ttl`, negative when stale),
 * whether it rode on an identical request already in flight (`collapsed`) and why (`detail`).
 */
export const CACHE_NAME = 'bitbucket-sidecar';

export interface CacheStatusParts {
  hit?: boolean;
  fwd?: 'miss' | 'stale' | 'bypass';
  fwdStatus?: number;
  stored?: boolean;
  ttlSeconds?: number;
  collapsed?: boolean;
  detail?: string;
}

export function cacheStatus(p: CacheStatusParts): string {
  const parts = [CACHE_NAME];
  if (p.hit) parts.push('hit');
  if (p.fwd) parts.push(`fwd=${p.fwd}`);
  if (p.fwdStatus !== undefined) parts.push(`fwd-status=${p.fwdStatus}`);
  if (p.stored) parts.push('stored');
  if (p.collapsed) parts.push('collapsed');
  if (p.ttlSeconds !== undefined) parts.push(`ttl=${p.ttlSeconds}`);
  if (p.detail) parts.push(`detail=${p.detail}`);
  return parts.join('; ');
}
