/**
 * Who stored what in a byte-bounded cache, and each one's share of the bound. An entry belongs to
 * the client whose request stored it ('' for the sidecar's own calls: background refreshes of
 * nobody's entry, the warm refresher). A client's share is its weight over the weights of the
 * clients holding entries, itself included — the notion the upstream budget's fair shares use
 * (clients[].budgetWeight, src/upstream/budget.ts) — so a client alone may use the whole cache,
 * and once others store too it is held to its share.
 *
 * Bounded: one ledger per owner (client ids from the configuration, and ''), and each ledger holds
 * only keys that are in the cache.
 */
export type WeightOf = (client: string) => number;

export interface Owned {
  /** The owner's key (the cache's own flat copy, so a ledger pins no request string). */
  readonly key: string;
}

export class OwnerLedgers<V extends Owned> {
  /** Per owner: its entries, least recently used first (a Map keeps insertion order). */
  private readonly ledgers = new Map<string, { entries: Map<string, V>; bytes: number }>();

  constructor(
    private readonly weightOf: WeightOf,
    private readonly sizeOf: (v: V) => number,
  ) {}

  bytesOf(owner: string): number {
    return this.ledgers.get(owner)?.bytes ?? 0;
  }

  add(owner: string, v: V): void {
    let l = this.ledgers.get(owner);
    if (!l) this.ledgers.set(owner, (l = { entries: new Map(), bytes: 0 }));
    const before = l.entries.get(v.key);
    if (before) {
      l.entries.delete(v.key);
      l.bytes -= this.sizeOf(before);
    }
    l.entries.set(v.key, v);
    l.bytes += this.sizeOf(v);
  }

  /** A hit: the entry becomes its owner's most recently used. */
  touch(owner: string, v: V): void {
    const l = this.ledgers.get(owner);
    if (!l || l.entries.get(v.key) !== v) return;
    l.entries.delete(v.key);
    l.entries.set(v.key, v);
  }

  /** Forgets `v` (only that value: a newer one under the same key stays). */
  remove(owner: string, v: V): void {
    const l = this.ledgers.get(owner);
    if (!l || l.entries.get(v.key) !== v) return;
    l.entries.delete(v.key);
    l.bytes -= this.sizeOf(v);
    if (l.entries.size === 0) this.ledgers.delete(owner);
  }

  clear(): void {
    this.ledgers.clear();
  }

  /** The owner's least recently used key, other than `except`. */
  oldestOf(owner: string, except?: string): string | undefined {
    for (const k of this.ledgers.get(owner)?.entries.keys() ?? []) if (k !== except) return k;
    return undefined;
  }

  /** `owner`'s share of `total` bytes now (`owner` counted as holding entries). */
  capOf(owner: string, total: number): number {
    let sum = this.weight(owner);
    for (const o of this.ledgers.keys()) if (o !== owner) sum += this.weight(o);
    return Math.floor((this.weight(owner) / sum) * total);
  }

  /** The owner furthest past its share of `total` (the one to evict from when the whole cache is full). */
  mostOverShare(total: number, asking: string): string | undefined {
    let worst: string | undefined;
    let ratio = -1;
    let sum = this.weight(asking);
    for (const o of this.ledgers.keys()) if (o !== asking) sum += this.weight(o);
    for (const [o, l] of this.ledgers) {
      if (l.entries.size === 0) continue;
      const r = l.bytes / Math.max(1, (this.weight(o) / sum) * total);
      if (r > ratio) [worst, ratio] = [o, r];
    }
    return worst;
  }

  /** Bytes and share (0..1 of the bound) per owner, for metrics. */
  usage(): { owner: string; bytes: number; entries: number }[] {
    return [...this.ledgers].map(([owner, l]) => ({ owner, bytes: l.bytes, entries: l.entries.size }));
  }

  private weight(owner: string): number {
    const w = owner === '' ? 1 : this.weightOf(owner);
    return Number.isFinite(w) && w > 0 ? w : 1;
  }
}
