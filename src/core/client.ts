/** What a client may do, besides being in scope. `ops:read`: the operations endpoints that name clients (metrics); it reaches no repository. */
export const PERMISSIONS = ['read', 'statuses:write', 'webhooks:manage', 'git:push', 'ops:read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface ScopeRule {
  workspace: string;
  /** Upper-case project keys; undefined = every project. */
  projects?: readonly string[];
  /** undefined = every repository of the workspace. */
  repositories?: readonly RegExp[];
}

export interface Client {
  id: string;
  scope: readonly ScopeRule[];
  permissions: ReadonlySet<Permission>;
  /** Weight in the fair shares of the upstream budget. */
  budgetWeight?: number;
  webhooks?: { forwardTo?: string; secret?: string };
}
