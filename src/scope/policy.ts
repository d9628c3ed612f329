import type { Client, ScopeRule } from '../core/client';

/** Pure scope decisions over canonical slugs. */
export function rulesForWorkspace(client: Client, ws: string): ScopeRule[] {
  return client.scope.filter((r) => r.workspace === ws);
}

export function workspaceInScope(client: Client, ws: string): boolean {
  return rulesForWorkspace(client, ws).length > 0;
}

export type RepoDecision = 'allow' | 'deny' | 'needs-project';

/**
 * `project` is undefined when not known yet; null when the repository has none.
 * A rule with projects never matches a repository whose project is unknown.
 */
export function decideRepository(client: Client, ws: string, repo: string, project?: string | null): RepoDecision {
  let needsProject = false;
  for (const rule of rulesForWorkspace(client, ws)) {
    if (rule.repositories && !rule.repositories.some((g) => g.test(repo))) continue;
    if (!rule.projects) return 'allow';
    if (project === undefined) needsProject = true;
    else if (project !== null && rule.projects.includes(project.toUpperCase())) return 'allow';
  }
  return needsProject ? 'needs-project' : 'deny';
}

/** Whether the repository could be in scope before its project is known (used to avoid lookups). */
export function mayBeInScope(client: Client, ws: string, repo: string): boolean {
  return decideRepository(client, ws, repo) !== 'deny';
}
