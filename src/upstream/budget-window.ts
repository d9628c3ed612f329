/** Bitbucket rate-limit classes: `/2.0/repositories/*` data, webhook management, and the rest. */
export type BudgetClass = 'repository' | 'webhook' | 'other';

/**
 * Where the budget governor keeps its count of upstream calls in the rolling window: the port
 * between the governor's decisions (queueing, pacing, refusals) and the storage of the count.
 *
 *  - `MemoryBudgetWindow` (default): this sidecar's own calls — the governor as it always was.
 *  - A shared window (src/cache/shared/budget-window.ts, `cache.shared.redis`): every sidecar's
 *    calls made with the same upstream credential, so that together they stay within Bitbucket's
 *    per-credential limit. Its `confirm` is the atomic check the governor waits for before a call
 *    goes; while the shared store cannot be reached it counts only this sidecar's calls against a
 *    conservative share of the limit.
 */
export interface BudgetWindow {
  /** Dispatch times (ascending) of the calls of `cls` counted in the window ending at `t`. */
  calls(cls: BudgetClass, t: number): readonly number[];
  /** Records a call granted at `t` (before `confirm`, so that decisions taken meanwhile see it). */
  add(cls: BudgetClass, t: number): void;
  /** The limit to enforce for a class whose hourly limit is `limit`. */
  limit(cls: BudgetClass, limit: number): number;
  /** How many sidecars (this one included) draw on the window: pacing spaces each one's calls by as much. Default 1. */
  sharers?(cls: BudgetClass, t: number): number;
  /**
   * Shared windows only: counts the call added at `t` against every sidecar's calls, atomically.
   * Resolves false when the shared window already held `limit` calls: the call must not be made
   * (it was taken out again, and `calls` now shows the other sidecars' calls).
   */
  confirm?(cls: BudgetClass, t: number, limit: number): Promise<boolean>;
}

/** This sidecar's calls, in memory. */
export class MemoryBudgetWindow implements BudgetWindow {
  private readonly logs: Record<BudgetClass, number[]> = { repository: [], webhook: [], other: [] };

  constructor(private readonly windowMs: number) {}

  calls(cls: BudgetClass, t: number): readonly number[] {
    return pruneWindow(this.logs[cls], t, this.windowMs);
  }

  add(cls: BudgetClass, t: number): void {
    this.logs[cls].push(t);
  }

  limit(_cls: BudgetClass, limit: number): number {
    return limit;
  }
}

/** Drops (in place) the times that left the window ending at `t`; returns `log`. */
export function pruneWindow(log: number[], t: number, windowMs: number): number[] {
  let i = 0;
  while (i < log.length && log[i] <= t - windowMs) i++;
  if (i > 0) log.splice(0, i);
  return log;
}
