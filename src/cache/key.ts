import { createHash } from 'node:crypto';
import { callKey } from '../routes/call';
import type { ApiCall } from '../core/call';

/**
 * A short, stable identifier of the upstream credential for cache keys. Answers fetched with one
 * credential are never served for another (a rotated or different token may see other data), and
 * the credential itself never appears in a key, a log line or a metric.
 */
export function credentialId(authorization: string): string {
  return createHash('sha256').update('bitbucket-sidecar cache key\0').update(authorization).digest('hex').slice(0, 16);
}

/**
 * The cache key: upstream credential id + `GET` + the canonical upstream URL (path built from the
 * canonical parameters, only the route's allowed query parameters, sorted by name then value).
 * HEAD shares GET's key. Two spellings of one request (`?b=1&a=2` / `?a=2&b=1`, `%7B…%7D` / uuid
 * already resolved to a slug, upper/lower-case slugs) therefore hit the same entry.
 */
export function cacheKey(call: ApiCall, credential: string): string {
  return `${credential} ${callKey(call)}`;
}

/**
 * Invalidation tags of a stored answer: `ws:` and `repo:` for everything about a workspace or a
 * repository, and what the route's row adds (the vocabulary is in src/routes/tags.ts).
 */
export function tagsOf(call: ApiCall): string[] {
  const { ws, repo } = call.params;
  if (!ws) return [];
  const tags = [`ws:${ws}`];
  if (!repo) return tags;
  tags.push(`repo:${ws}/${repo}`);
  const more = call.route.cache.tags;
  return more ? [...tags, ...more(call.params, call.query)] : tags;
}

/** Tags a write makes stale: what the write changes, and nothing it does not. */
export function tagsChangedBy(call: ApiCall): string[] {
  const { ws, repo } = call.params;
  if (!ws || !repo) return [];
  // A write the catalog does not know the effect of: drop everything about the repository.
  return call.route.invalidates ? call.route.invalidates(call.params) : [`repo:${ws}/${repo}`];
}
