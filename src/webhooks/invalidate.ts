import type { Delivery } from './delivery';

/** The part of the response cache's invalidation API the relay uses (src/cache/cache.ts). */
export interface Invalidator {
  invalidateRepository(ws: string, repo: string): number;
  invalidateRef(ws: string, repo: string, ref: string): number;
  invalidateTags(tags: readonly string[]): number;
}

/**
 * Marks stale what a delivery says changed, before it is forwarded (so the requests Jenkins makes
 * in reaction never see the old state):
 *
 *  - repo:push — every changed ref: its answers by name (`refs/branches/{name}`, `refs/tags/{name}`,
 *    `src/{name}/…`, `?at={name}`, `?at=tags/{name}` for tags) and the answers that enumerate refs
 *    (branch and tag lists, pull requests — their source commits move — and commit ranges). The
 *    repository object is left alone: no field of it the plugin reads changes with a push, and
 *    dropping everything tagged with the repository would also drop `src` at every other branch.
 *    A push that names no change (Jenkins then re-indexes the repository) drops the repository;
 *  - pullrequest:* — the repository's pull request lists and that pull request (and the other
 *    ref-enumerating answers, which share the tag), the destination branch, and for a fork the
 *    source branch on the fork (no push hook of ours reports it);
 *  - anything else about a repository (repo:updated, …) — the repository.
 *
 * Returns how many stored answers were marked.
 */
export function invalidateFor(cache: Invalidator, d: Delivery): number {
  const { workspace: ws, repository: repo } = d;
  let n = 0;
  if (d.eventKey === 'repo:push') {
    n += cache.invalidateTags([`refs:${ws}/${repo}`]);
    for (const r of d.refs) {
      n += cache.invalidateRef(ws, repo, r.name);
      if (r.type === 'tag') n += cache.invalidateRef(ws, repo, `tags/${r.name}`);
    }
    if (d.refs.length === 0) n += cache.invalidateRepository(ws, repo);
    return n;
  }
  if (d.eventKey.startsWith('pullrequest:')) {
    n += cache.invalidateTags([`refs:${ws}/${repo}`]);
    const pr = d.pullRequest;
    if (pr?.destinationBranch) n += cache.invalidateRef(ws, repo, pr.destinationBranch);
    const src = pr?.source;
    if (src?.branch) n += cache.invalidateRef(src.workspace, src.repository, src.branch);
    return n;
  }
  if (d.eventKey.startsWith('repo:')) return cache.invalidateRepository(ws, repo);
  return 0;
}
