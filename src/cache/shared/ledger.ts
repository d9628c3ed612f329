import type { WeightOf } from '../owners';

/** Expiry times are counted per minute: at most (longest entry lifetime / 1 min) buckets per client. */
const BUCKET_MS = 60_000;

/**
 * What this sidecar has written to the shared tier for each client and is still there (counted
 * until the write's expiry), and each client's share of `cache.shared.maxBytes`: its weight over
 * the weights of the clients with bytes counted, itself included (as the memory tier's shares,
 * src/cache/owners.ts). A client past its share gets no new entries written to Redis (they stay in
 * this sidecar's memory tier); the entries of others are never touched. Redis' own `maxmemory`
 * policy, which may evict anyone's keys, stays the operator's to set.
 *
 * Bounded: one ledger per client id, each with at most one bucket per minute of the longest lifetime.
 */
export class SharedLedger {
  private readonly clients = new Map<string, { bytes: number; buckets: Map<number, number> }>();
  /** Writes skipped because their client was past its share. */
  refused = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly weightOf: WeightOf,
    private readonly now: () => number,
  ) {}

  /** Counts `bytes` kept until `expiresAt` for `client` when its share allows; false (nothing counted) when not. */
  admit(client: string, bytes: number, expiresAt: number): { bucket: number } | undefined {
    const t = this.now();
    this.expire(t);
    let l = this.clients.get(client);
    if ((l?.bytes ?? 0) + bytes > this.capOf(client)) {
      this.refused++;
      return undefined;
    }
    if (!l) this.clients.set(client, (l = { bytes: 0, buckets: new Map() }));
    const bucket = Math.ceil(expiresAt / BUCKET_MS);
    l.buckets.set(bucket, (l.buckets.get(bucket) ?? 0) + bytes);
    l.bytes += bytes;
    return { bucket };
  }

  /** A counted write was replaced (the same key written again): its bytes no longer count. */
  release(client: string, bytes: number, bucket: number): void {
    const l = this.clients.get(client);
    const b = l?.buckets.get(bucket);
    if (!l || b === undefined) return;
    const n = Math.min(b, bytes);
    if (b - n <= 0) l.buckets.delete(bucket);
    else l.buckets.set(bucket, b - n);
    l.bytes -= n;
    if (l.buckets.size === 0) this.clients.delete(client);
  }

  bytesOf(client: string): number {
    this.expire(this.now());
    return this.clients.get(client)?.bytes ?? 0;
  }

  usage(): { owner: string; bytes: number }[] {
    this.expire(this.now());
    return [...this.clients].map(([owner, l]) => ({ owner, bytes: l.bytes }));
  }

  private capOf(client: string): number {
    let sum = this.weight(client);
    for (const c of this.clients.keys()) if (c !== client) sum += this.weight(c);
    return (this.weight(client) / sum) * this.maxBytes;
  }

  private weight(client: string): number {
    const w = client === '' ? 1 : this.weightOf(client);
    return Number.isFinite(w) && w > 0 ? w : 1;
  }

  private expiredAt = -1;

  private expire(t: number): void {
    const now = Math.floor(t / BUCKET_MS);
    if (now === this.expiredAt) return;
    this.expiredAt = now;
    for (const [client, l] of this.clients) {
      for (const [bucket, bytes] of l.buckets) {
        if (bucket > now) continue;
        l.buckets.delete(bucket);
        l.bytes -= bytes;
      }
      if (l.buckets.size === 0) this.clients.delete(client);
    }
  }
}
