import type { Entry } from './store';

/**
 * A second cache tier shared by several sidecars (`cache.shared.redis`, src/cache/shared/): the
 * port the response cache talks to. The memory store stays in front of it (a short-lived first
 * tier); both use the same keys, entries and freshness classes.
 *
 * Every method degrades instead of failing: while the tier cannot be reached, reads find nothing,
 * writes and invalidations are dropped or kept for later, and flights are this sidecar's alone.
 */
export interface SharedTier {
  /**
   * The answer to use for `key`: the shared copy when it is newer than `local` or says `local`
   * was invalidated, otherwise `local` (also when the tier cannot be reached). `tags` are the
   * key's invalidation tags (`tagsOf(call)`).
   */
  get(key: string, tags: readonly string[], local: Entry | undefined): Promise<Entry | undefined>;
  /** True while a memory copy may be served without looking at the shared tier. */
  trusts(entry: Entry, now: number): boolean;
  /**
   * Single flight across sidecars, around one upstream fetch of `key`: the answer another sidecar
   * stored meanwhile (`entry`: do not call), `busy` (another sidecar is fetching it and `wait` was
   * false), or a flight to report this sidecar's outcome through (`finish`, always called).
   */
  begin(key: string, tags: readonly string[], options: { wait: boolean }): Promise<SharedFlight>;
  /** Marks tags invalidated in the shared tier and tells every other sidecar (pub/sub). */
  invalidate(tags: readonly string[]): void;
  /** `fn` runs for invalidations other sidecars published (memory tier only: do not publish again). */
  onInvalidation(fn: (tags: readonly string[]) => void): void;
  /**
   * The memory tier stored its own copy `to` of `from` (an entry this tier returned): what was
   * checked about `from` holds for `to`.
   */
  adopt?(from: Entry, to: Entry): void;
  /** A stored answer's freshness was extended without upstream (the warm refresher's renew). */
  renewed(key: string, entry: Entry): void;
}

export interface SharedFlight {
  entry?: Entry;
  busy?: boolean;
  /**
   * Stores this sidecar's answer (when storable) for all, releases the lock and wakes waiters.
   * `owner` is the client the answer is stored for (its share of what this sidecar keeps in the
   * tier), `replaces` the memory copy the answer replaces (its bytes are no longer counted). Never throws.
   */
  finish(stored: Entry | undefined, options?: { owner: string; replaces?: Entry }): Promise<void>;
}
