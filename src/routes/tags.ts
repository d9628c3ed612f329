import type { Query, RouteParams } from '../core/route';

/**
 * Invalidation tags of stored answers, and which route's answers carry which. A tag names
 * something a change upstream (webhook, our own write) can make stale:
 *  - `ws:{ws}`                 every answer about the workspace (its listing, its repositories)
 *  - `repo:{ws}/{repo}`        every answer about one repository
 *  - `refs:{ws}/{repo}`        answers that enumerate or resolve refs (branch/tag lists, pull
 *                              requests, commit ranges) — a push or PR event changes them
 *  - `ref:{ws}/{repo}:{name}`  answers addressed by a ref name (branch, tag, `src/{branch}`, `?at=`)
 *  - `hooks:{ws}/{repo}`       the webhook list and single hooks
 *  - `statuses:{ws}/{repo}:{hash12}` commit statuses (no read route caches them yet)
 * Every answer about a workspace or repository carries `ws:` and `repo:` (src/cache/key.ts); the
 * functions here give the rest, and each row of the catalog names the ones it needs.
 */

type Tags = (params: RouteParams, query: Query) => string[];

const repoOf = (p: RouteParams): string | undefined => (p.ws && p.repo ? `${p.ws}/${p.repo}` : undefined);
const values = (query: Query, name: string): string[] => query.filter(([k]) => k === name).map(([, v]) => v);

/** Lists and look-ups that a push or pull request event changes. */
export const refsTags: Tags = (p) => {
  const r = repoOf(p);
  return r ? [`refs:${r}`] : [];
};

/** A branch or tag by name. */
export const refByNameTags: Tags = (p, q) => {
  const r = repoOf(p);
  if (!r) return [];
  return p.name !== undefined ? [...refsTags(p, q), `ref:${r}:${p.name}`] : refsTags(p, q);
};

/** `commits?include=&exclude=`: the ref list, and every ref the range names. */
export const commitRangeTags: Tags = (p, q) => {
  const r = repoOf(p);
  if (!r) return [];
  return [...refsTags(p, q), ...[...values(q, 'include'), ...values(q, 'exclude')].map((v) => `ref:${r}:${v}`)];
};

/** `src/{rev}/…?at=`: the revision and the `at=` ref, whichever names a branch. */
export const sourceTags: Tags = (p, q) => {
  const r = repoOf(p);
  if (!r) return [];
  const tags = p.rev !== undefined ? [`ref:${r}:${p.rev}`] : [];
  return [...tags, ...values(q, 'at').map((v) => `ref:${r}:${v}`)];
};

export const hooksTags: Tags = (p) => {
  const r = repoOf(p);
  return r ? [`hooks:${r}`] : [];
};

/** A build status written changes that commit's statuses only. */
export const statusesChanged = (p: RouteParams): string[] => {
  const r = repoOf(p);
  return r && p.hash ? [`statuses:${r}:${p.hash.slice(0, 12)}`] : [];
};

export const hooksChanged = (p: RouteParams): string[] => hooksTags(p, []);

/** A push can change anything about the repository. */
export const repositoryChanged = (p: RouteParams): string[] => {
  const r = repoOf(p);
  return r ? [`repo:${r}`] : [];
};

const COMMIT_ID = /^[0-9a-f]{12,40}$/i;

/** `commit/{hash}` named by a commit id of at least 12 hex characters. */
export const commitById = (p: RouteParams): boolean => p.hash !== undefined && COMMIT_ID.test(p.hash);

/** `src/{hash}/…` without `at=` (the plugin sends the branch there, so `at=` is never immutable). */
export const sourceByCommitId = (p: RouteParams, q: Query): boolean => p.rev !== undefined && COMMIT_ID.test(p.rev) && !q.some(([k]) => k === 'at');
