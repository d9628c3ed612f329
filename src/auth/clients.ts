import type { ClientConfig } from '../config/schema';
import type { Client } from '../core/client';
import { globToRegExp } from '../config/glob';
import { digestsEqual, sha256Hex } from './tokens';

interface TokenEntry {
  sha256: string;
  /** Place in the client's list, from 1 (metrics name tokens by it). */
  ordinal: number;
  expiresAt?: Date;
  client: Client;
}

export function toClient(c: ClientConfig): Client {
  return {
    id: c.id,
    scope: c.scope.map((r) => ({
      workspace: r.workspace,
      projects: r.projects?.map((p) => p.toUpperCase()),
      repositories: r.repositories?.map(globToRegExp),
    })),
    permissions: new Set(c.permissions),
    budgetWeight: c.budgetWeight ?? 1,
    webhooks: c.webhooks,
  };
}

const MAX_RECENT = 256;

/** Answers "which client does this secret belong to" without storing or comparing plaintext. */
export class ClientDirectory {
  private readonly entries: TokenEntry[];
  private readonly consumers: { key: string; secretSha256: string; client: Client }[];
  private readonly lastUsed = new Map<string, number>();
  /** Secrets that matched recently → their entry, so a hit does not hash and compare again. Misses are never kept. */
  private readonly recent = new Map<string, TokenEntry>();
  readonly clients: readonly Client[];
  /** Clients that can reach a repository, and so draw on the upstream budget. */
  readonly budgetClients: readonly string[];
  private readonly ids: ReadonlyMap<string, Client>;

  constructor(configs: readonly ClientConfig[]) {
    this.clients = configs.map(toClient);
    this.ids = new Map(this.clients.map((c) => [c.id, c]));
    this.budgetClients = this.clients.filter((c) => c.scope.length > 0).map((c) => c.id);
    this.entries = configs.flatMap((c, i) =>
      [...(c.token ? [c.token] : []), ...(c.tokens ?? [])].map((t, n) => ({ sha256: t.sha256, ordinal: n + 1, expiresAt: t.expiresAt, client: this.clients[i] })),
    );
    this.consumers = configs.flatMap((c, i) => (c.oauth ? [{ key: c.oauth.key, secretSha256: c.oauth.secretSha256, client: this.clients[i] }] : []));
  }

  /** An OAuth consumer (key + secret) of a client; both compared in constant time. */
  authenticateConsumer(key: string, secret: string): Client | undefined {
    const keyDigest = sha256Hex(key);
    const secretDigest = sha256Hex(secret);
    let found: Client | undefined;
    for (const c of this.consumers) {
      const ok = digestsEqual(keyDigest, sha256Hex(c.key)) && digestsEqual(secretDigest, c.secretSha256);
      if (ok && !found) found = c.client;
    }
    return found;
  }

  /**
   * The current secret (as its digest) of a consumer key and its client: OAuth access tokens
   * issued from it stay valid only while both are unchanged.
   */
  consumerState(key: string): { clientId: string; secretSha256: string } | undefined {
    const c = this.consumers.find((x) => x.key === key);
    return c && { clientId: c.client.id, secretSha256: c.secretSha256 };
  }

  /** Every entry is compared, so the time taken does not reveal which (if any) matched. */
  authenticate(secret: string, now = Date.now()): Client | undefined {
    const found = this.recent.get(secret) ?? this.lookup(secret);
    if (!found || (found.expiresAt && found.expiresAt.getTime() <= now)) return undefined;
    this.lastUsed.set(found.sha256, now);
    return found.client;
  }

  private lookup(secret: string): TokenEntry | undefined {
    const digest = sha256Hex(secret);
    let found: TokenEntry | undefined;
    for (const e of this.entries) {
      if (digestsEqual(digest, e.sha256) && !found) found = e;
    }
    if (found) {
      if (this.recent.size >= MAX_RECENT) this.recent.clear();
      this.recent.set(secret, found);
    }
    return found;
  }

  /** Last use per token, named by its place in the client's list (never by the token or its hash). */
  tokenUsage(): { client: string; token: string; lastUsed?: number; expiresAt?: string }[] {
    return this.entries.map((e) => ({
      client: e.client.id,
      token: String(e.ordinal),
      lastUsed: this.lastUsed.get(e.sha256),
      expiresAt: e.expiresAt?.toISOString(),
    }));
  }

  byId(id: string): Client | undefined {
    return this.ids.get(id);
  }
}
