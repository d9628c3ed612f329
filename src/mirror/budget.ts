/**
 * The git budget: Bitbucket meters git over HTTPS separately from REST (60,000 requests/hour against
 * 1,000). Everything the sidecar sends to Bitbucket's git endpoints counts — mirror clones and
 * fetches, and clones streamed through to upstream for clients — in one sliding hour. Mirror
 * refreshes ask before they run: a refresh someone waits for may use the whole limit, a scheduled
 * one only `backgroundShare` of it, so a long scan never starves Jenkins' own checkouts.
 */
export interface GitBudgetSettings {
  requestsPerHour: number;
  backgroundShare: number;
}

const HOUR_MS = 3_600_000;

export class GitBudget {
  /** Request times in the last hour (ascending), one entry per request. */
  private readonly log: number[] = [];
  readonly counted = { mirror: 0, proxied: 0 };
  readonly refused = { foreground: 0, background: 0 };

  constructor(
    private readonly settings: GitBudgetSettings,
    private readonly now: () => number,
  ) {}

  /** Takes `cost` requests for a mirror refresh, or refuses (nothing is taken then). */
  take(cost: number, priority: 'foreground' | 'background'): boolean {
    const t = this.now();
    this.prune(t);
    const limit = priority === 'background' ? Math.floor(this.settings.requestsPerHour * this.settings.backgroundShare) : this.settings.requestsPerHour;
    if (this.log.length + cost > limit) {
      this.refused[priority]++;
      return false;
    }
    for (let i = 0; i < cost; i++) this.log.push(t);
    this.counted.mirror += cost;
    return true;
  }

  /** Counts a request that went upstream regardless (a client's clone streamed through). */
  note(cost = 1): void {
    const t = this.now();
    this.prune(t);
    for (let i = 0; i < cost; i++) this.log.push(t);
    this.counted.proxied += cost;
  }

  used(): number {
    this.prune(this.now());
    return this.log.length;
  }

  get limit(): number {
    return this.settings.requestsPerHour;
  }

  private prune(t: number): void {
    let i = 0;
    while (i < this.log.length && this.log[i] <= t - HOUR_MS) i++;
    if (i > 0) this.log.splice(0, i);
  }
}
