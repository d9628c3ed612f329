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
 * Invalidation tags of a stored answer. A tag names something a change upstream (webhook, our own
 * write) can make stale:
 *  - `ws:{ws}`                 every answer about the workspace (its listing, its repositories)
 *  - `repo:{ws}/{repo}`        every answer about one repository
 *  - `refs:{ws}/{repo}`        answers that enumerate or resolve refs (branch/tag lists, pull
 *                              requests, commit ranges) — a push or PR event changes them
 *  - `ref:{ws}/{repo}:{name}`  answers addressed by a ref name (branch, tag, `src/{branch}`, `?at=`)
 *  - `hooks:{ws}/{repo}`       the webhook list and single hooks
 *  - `statuses:{ws}/{repo}:{hash12}` commit statuses (no read route caches them yet)
 */
export function tagsOf(call: ApiCall): string[] {
  const { ws, repo } = call.params;
  if (!ws) return [];
  const tags = [`ws:${ws}`];
  if (!repo) return tags;
  const r = `${ws}/${repo}`;
  tags.push(`repo:${r}`);
  const q = (name: string) => call.query.filter(([k]) => k === name).map(([, v]) => v);
  switch (call.route.id) {
    case 'branches':
    case 'tags':
    case 'pullrequests':
    case 'pullrequest':
    case 'pullrequest-commits':
      tags.push(`refs:${r}`);
      break;
    case 'branch':
    case 'tag':
      tags.push(`refs:${r}`);
      if (call.params.name !== undefined) tags.push(`ref:${r}:${call.params.name}`);
      break;
    case 'commits':
      tags.push(`refs:${r}`);
      for (const v of [...q('include'), ...q('exclude')]) tags.push(`ref:${r}:${v}`);
      break;
    case 'src':
      if (call.params.rev !== undefined) tags.push(`ref:${r}:${call.params.rev}`);
      for (const v of q('at')) tags.push(`ref:${r}:${v}`);
      break;
    case 'hooks':
    case 'hook':
      tags.push(`hooks:${r}`);
      break;
    default:
      break;
  }
  return tags;
}

/** Tags a write makes stale: what the write changes, and nothing it does not. */
export function tagsChangedBy(call: ApiCall): string[] {
  const { ws, repo } = call.params;
  if (!ws || !repo) return [];
  const r = `${ws}/${repo}`;
  switch (call.route.id) {
    case 'statuses-build':
      return call.params.hash ? [`statuses:${r}:${call.params.hash.slice(0, 12)}`] : [];
    case 'hooks':
    case 'hook':
      return [`hooks:${r}`];
    default:
      // A write the catalog does not know the effect of: drop everything about the repository.
      return [`repo:${r}`];
  }
}
