/** Access to a fork learned from an open pull request into an in-scope repository (src/scope/facts.ts). */
export interface ForkGrant {
  /** The in-scope repository the pull request targets, "ws/repo". */
  target: string;
  prId: number;
  branch: string;
  /** Source commit as Bitbucket gave it (12 or 40 hex characters). */
  commit: string;
  /**
   * The full 40-character hash of `commit`, once an upstream answer about the fork (its source
   * branch, or `commit/{short}`) has named it. A client's hash longer than `commit` must equal it.
   */
  fullCommit?: string;
  learnedAt: number;
}
