import type { Client } from '../core/client';
import type { ScopeFacts } from '../scope/facts';
import { decideRepository } from '../scope/policy';

/**
 * Per-client filtering of a repository listing page (the cache holds the unfiltered page shared by
 * all clients). A value whose scope cannot be decided from the page is dropped: fail closed.
 * `size` is removed when anything was dropped, since it would count hidden repositories.
 */
export function filterRepositoryListing(page: unknown, client: Client, facts: ScopeFacts): unknown {
  if (!page || typeof page !== 'object' || !Array.isArray((page as { values?: unknown }).values)) return page;
  const p = page as { values: unknown[]; size?: unknown };
  const kept = p.values.filter((v) => {
    const full = (v as { full_name?: unknown } | null)?.full_name;
    if (typeof full !== 'string' || !full.includes('/')) return false;
    const [ws, repo] = full.toLowerCase().split('/');
    const project = (v as { project?: { key?: unknown } | null }).project;
    const key = project === undefined ? facts.projectOf(full) : typeof project?.key === 'string' ? project.key : null;
    return decideRepository(client, ws, repo, key) === 'allow';
  });
  if (kept.length === p.values.length) return page;
  const { size: _hidden, ...rest } = p;
  return { ...rest, values: kept };
}
