import type { Client } from '../core/client';
import { decideRepository } from '../scope/policy';

/** Where one delivery goes: a Jenkins hook URL and the secret Jenkins checks signatures with. */
export interface Target {
  url: string;
  secret?: string;
}

export interface TargetChoice {
  /** Clients whose scope holds the repository. */
  inScope: string[];
  /** Distinct targets of those clients, in configuration order. */
  targets: Target[];
}

/**
 * The targets of a delivery about `ws/repo`: every client whose scope holds the repository and that
 * has a target (its own `webhooks.forwardTo`, else the global `webhooks.forwardTo`). Clients with
 * the same URL are one target — Jenkins deduplicates nothing, so one URL gets a delivery once —
 * signed with the first secret configured for that URL (the configuration check makes them agree).
 *
 * `project`: the repository's project key as far as it is known (upstream's answers first, the
 * delivery body second); a project rule never matches an unknown project.
 */
export function chooseTargets(clients: readonly Client[], globalForwardTo: string | undefined, ws: string, repo: string, project: string | null | undefined): TargetChoice {
  const inScope: string[] = [];
  const targets: Target[] = [];
  for (const c of clients) {
    if (decideRepository(c, ws, repo, project === undefined ? null : project) !== 'allow') continue;
    inScope.push(c.id);
    const url = c.webhooks?.forwardTo ?? globalForwardTo;
    if (!url) continue;
    const existing = targets.find((t) => t.url === url);
    if (!existing) targets.push({ url, secret: c.webhooks?.secret });
    else if (!existing.secret && c.webhooks?.secret) existing.secret = c.webhooks.secret;
  }
  return { inScope, targets };
}

/** The secret for a stored target URL under the current clients (a reload may change it). */
export function secretFor(clients: readonly Client[], globalForwardTo: string | undefined, url: string): string | undefined {
  for (const c of clients) {
    if ((c.webhooks?.forwardTo ?? globalForwardTo) === url && c.webhooks?.secret) return c.webhooks.secret;
  }
  return undefined;
}
