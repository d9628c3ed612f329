import { randomBytes } from 'node:crypto';

/**
 * The object transfer links the sidecar hands out in place of Bitbucket's (docs/lfs.md): an opaque
 * id that stands for one real link and its headers, bound to the client, the repository, the object
 * and the action, for a short time. Held in memory, bounded per client and in total; a client that
 * reaches its bound is refused new links (its batch answers 503) rather than pushing out another's.
 */
export type TransferAction = 'download' | 'upload' | 'verify';

export interface Transfer {
  client: string;
  ws: string;
  repo: string;
  oid: string;
  action: TransferAction;
  /** Bitbucket's link (its media storage) and the headers it said to send there. Never shown to the client. */
  href: string;
  headers: Record<string, string>;
  expiresAt: number;
}

export interface TransferTableSettings {
  /** Longest life of a link; shorter when Bitbucket's own link expires sooner. */
  ttlMs?: number;
  maxEntries?: number;
  maxPerClient?: number;
  now?: () => number;
}

export const TRANSFER_TTL_MS = 15 * 60_000;

export class TransferTable {
  readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly maxPerClient: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Transfer>();
  /** client, repository, object and action → id, so that asking again reuses the link. */
  private readonly byUse = new Map<string, string>();
  private readonly perClient = new Map<string, number>();

  constructor(settings: TransferTableSettings = {}) {
    this.ttlMs = settings.ttlMs ?? TRANSFER_TTL_MS;
    this.maxEntries = settings.maxEntries ?? 50_000;
    this.maxPerClient = settings.maxPerClient ?? 10_000;
    this.now = settings.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Room for `n` more links of this client (after dropping the expired ones)? */
  hasRoom(client: string, n: number): boolean {
    const fits = () => this.entries.size + n <= this.maxEntries && (this.perClient.get(client) ?? 0) + n <= this.maxPerClient;
    this.sweep(false);
    if (fits()) return true;
    this.sweep(true);
    return fits();
  }

  /**
   * A link id for this transfer, living `upstreamTtlMs` at most (Bitbucket's own expiry), or
   * undefined when a bound is reached. The same client asking for the same object and action again
   * gets a new id and the old one is dropped, so the table does not grow with repeated batches.
   */
  add(t: Omit<Transfer, 'expiresAt'>, upstreamTtlMs?: number): { id: string; expiresAt: number; ttlMs: number } | undefined {
    this.sweep(false);
    const useKey = `${t.client}\0${t.ws}\0${t.repo}\0${t.oid}\0${t.action}`;
    const previous = this.byUse.get(useKey);
    if (previous) this.remove(previous);
    const full = () => this.entries.size >= this.maxEntries || (this.perClient.get(t.client) ?? 0) >= this.maxPerClient;
    if (full()) this.sweep(true);
    if (full()) return undefined;
    const ttl = Math.max(0, Math.min(this.ttlMs, upstreamTtlMs ?? this.ttlMs));
    const id = randomBytes(24).toString('base64url');
    const entry: Transfer = { ...t, headers: { ...t.headers }, expiresAt: this.now() + ttl };
    this.entries.set(id, entry);
    this.byUse.set(useKey, id);
    this.perClient.set(t.client, (this.perClient.get(t.client) ?? 0) + 1);
    return { id, expiresAt: entry.expiresAt, ttlMs: ttl };
  }

  /** The transfer behind an id, only for the client, repository and action it was made for. */
  take(id: string, client: string, ws: string | undefined, repo: string | undefined, action: TransferAction): Transfer | undefined {
    const t = this.entries.get(id);
    if (!t) return undefined;
    if (t.expiresAt <= this.now()) {
      this.remove(id);
      return undefined;
    }
    return t.client === client && t.ws === ws && t.repo === repo && t.action === action ? t : undefined;
  }

  private lastSweep = 0;

  /**
   * Entries expire at different times (Bitbucket's expiry may be shorter), so dropping them is a
   * full pass: made every few seconds, or at once when a bound is reached.
   */
  private sweep(force: boolean): void {
    const now = this.now();
    if (!force && now - this.lastSweep < 5_000) return;
    this.lastSweep = now;
    for (const [id, t] of this.entries) if (t.expiresAt <= now) this.remove(id);
  }

  private remove(id: string): void {
    const t = this.entries.get(id);
    if (!t) return;
    this.entries.delete(id);
    const useKey = `${t.client}\0${t.ws}\0${t.repo}\0${t.oid}\0${t.action}`;
    if (this.byUse.get(useKey) === id) this.byUse.delete(useKey);
    const n = (this.perClient.get(t.client) ?? 1) - 1;
    if (n <= 0) this.perClient.delete(t.client);
    else this.perClient.set(t.client, n);
  }
}
