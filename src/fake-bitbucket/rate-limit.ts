/**
 * Bitbucket's rolling one-hour window, per credential. Only admitted requests count; over the limit the
 * caller answers 429 text/plain "Rate limit for this resource has been exceeded" without Retry-After.
 */
const HOUR_MS = 3600_000;

export class RateLimiter {
  private perHour: number | null = null;
  private readonly hits = new Map<string, number[]>();

  constructor(private readonly now: () => number) {}

  set(perHour: number | null): void {
    this.perHour = perHour === null ? null : Math.max(0, Math.floor(perHour));
    this.hits.clear();
  }

  get limit(): number | null {
    return this.perHour;
  }

  /** Record a request for `key`; false when it must be rejected. */
  admit(key: string): boolean {
    if (this.perHour === null) return true;
    const t = this.now();
    const list = (this.hits.get(key) ?? []).filter((x) => x > t - HOUR_MS);
    if (list.length >= this.perHour) {
      this.hits.set(key, list);
      return false;
    }
    list.push(t);
    this.hits.set(key, list);
    return true;
  }
}
