import { randomBytes } from 'node:crypto';
import type { Client, Permission } from '../core/client';
import { sha256Hex } from './tokens';

/**
 * Short-lived Git LFS tokens: what `git-lfs-authenticate` answers over SSH, and the header the
 * sidecar puts on the object transfer links of a batch answer. A token is bound to one client, one
 * repository and one operation; the web face accepts it on the LFS routes only (src/listen/pipeline.ts),
 * and the client it names is looked up in the current configuration on every use, so a reload that
 * removes the client or its `git:push` ends what its tokens could do.
 *
 * Held in memory only, keyed by their SHA-256 (the secret itself is kept just long enough to be
 * handed out again to the same client for the same repository and operation), bounded per client
 * and in total; the oldest go first when a bound is reached.
 */
export type LfsOperation = 'download' | 'upload';

export interface LfsGrant {
  client: string;
  ws: string;
  repo: string;
  operation: LfsOperation;
  expiresAt: number;
}

export interface LfsTokenSettings {
  /** How long a token is accepted. */
  ttlMs?: number;
  /** Tokens held in total. */
  maxTokens?: number;
  /** Tokens held per client. */
  maxPerClient?: number;
  now?: () => number;
}

/** Recognisable by secret scanners, and never mistaken for a configured sidecar token (`bbsc_`). */
export const LFS_TOKEN_PREFIX = 'bbsc-lfs-';
export const LFS_TOKEN_TTL_MS = 10 * 60_000;
const TOKEN_SHAPE = /^bbsc-lfs-[A-Za-z0-9_-]{43}$/;

interface Held extends LfsGrant {
  token: string;
  reuseKey: string;
}

export class LfsTokens {
  readonly ttlMs: number;
  private readonly maxTokens: number;
  private readonly maxPerClient: number;
  private readonly now: () => number;
  /** By token digest, in issue order (every token lives as long, so this is expiry order too). */
  private readonly byDigest = new Map<string, Held>();
  /** client, repository and operation → digest of the token handed out for them. */
  private readonly byUse = new Map<string, string>();
  private readonly perClient = new Map<string, number>();

  constructor(settings: LfsTokenSettings = {}) {
    this.ttlMs = settings.ttlMs ?? LFS_TOKEN_TTL_MS;
    this.maxTokens = settings.maxTokens ?? 10_000;
    this.maxPerClient = settings.maxPerClient ?? 1_000;
    this.now = settings.now ?? Date.now;
  }

  get size(): number {
    return this.byDigest.size;
  }

  /**
   * A token for this client, repository and operation. One issued earlier that has more than half
   * its life left is handed out again, so that repeated batches do not grow the table.
   */
  issue(client: string, ws: string, repo: string, operation: LfsOperation): { token: string; expiresInSeconds: number } {
    const now = this.now();
    this.sweep(now);
    const reuseKey = `${client}\0${ws}\0${repo}\0${operation}`;
    const known = this.byDigest.get(this.byUse.get(reuseKey) ?? '');
    if (known && known.expiresAt - now > this.ttlMs / 2) return { token: known.token, expiresInSeconds: Math.floor((known.expiresAt - now) / 1000) };
    if ((this.perClient.get(client) ?? 0) >= this.maxPerClient) this.dropOldest((h) => h.client === client);
    if (this.byDigest.size >= this.maxTokens) this.dropOldest(() => true);
    const token = LFS_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const held: Held = { client, ws, repo, operation, expiresAt: now + this.ttlMs, token, reuseKey };
    const digest = sha256Hex(token);
    this.byDigest.set(digest, held);
    this.byUse.set(reuseKey, digest);
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    return { token, expiresInSeconds: Math.floor(this.ttlMs / 1000) };
  }

  /** The grant of a token still within its life, or undefined. */
  verify(secret: string): LfsGrant | undefined {
    if (!TOKEN_SHAPE.test(secret)) return undefined;
    const held = this.byDigest.get(sha256Hex(secret));
    if (!held) return undefined;
    if (held.expiresAt <= this.now()) {
      this.remove(sha256Hex(secret), held);
      return undefined;
    }
    return { client: held.client, ws: held.ws, repo: held.repo, operation: held.operation, expiresAt: held.expiresAt };
  }

  private sweep(now: number): void {
    for (const [digest, held] of this.byDigest) {
      if (held.expiresAt > now) break;
      this.remove(digest, held);
    }
  }

  private dropOldest(which: (h: Held) => boolean): void {
    for (const [digest, held] of this.byDigest) {
      if (!which(held)) continue;
      this.remove(digest, held);
      return;
    }
  }

  private remove(digest: string, held: Held): void {
    this.byDigest.delete(digest);
    if (this.byUse.get(held.reuseKey) === digest) this.byUse.delete(held.reuseKey);
    const n = (this.perClient.get(held.client) ?? 1) - 1;
    if (n <= 0) this.perClient.delete(held.client);
    else this.perClient.set(held.client, n);
  }
}

/** May a request needing `permission` on ws/repo be made with this grant? Uploads cover downloads. */
export function grantCovers(grant: LfsGrant, ws: string | undefined, repo: string | undefined, permission: Permission | 'none'): boolean {
  if (grant.ws !== ws || grant.repo !== repo) return false;
  if (permission === 'read') return true;
  return permission === 'git:push' && grant.operation === 'upload';
}

/** What `git-lfs-authenticate` prints (the Git LFS SSH authentication answer). */
export interface LfsAuthenticateAnswer {
  href: string;
  header: { Authorization: string };
  expires_in: number;
}

/**
 * The answer to `git-lfs-authenticate {ws}/{repo}.git {download|upload}` over SSH: the repository's
 * LFS endpoint on the sidecar's HTTPS face and a short-lived header for it. The caller has already
 * decided the client may reach ws/repo (the same scope gate as git); an upload is still refused at
 * the batch unless the client holds `git:push`. `baseUrl`: the web face as the client reaches it
 * (`https://bitbucket.org`); `ws` and `repo` are canonical (lower-case) slugs.
 */
export function lfsAuthenticateAnswer(
  tokens: LfsTokens,
  args: { client: Pick<Client, 'id'> | string; ws: string; repo: string; operation: LfsOperation; baseUrl: string },
): LfsAuthenticateAnswer {
  const id = typeof args.client === 'string' ? args.client : args.client.id;
  const { token, expiresInSeconds } = tokens.issue(id, args.ws, args.repo, args.operation);
  const base = args.baseUrl.replace(/\/+$/, '');
  return { href: `${base}/${encodeURIComponent(args.ws)}/${encodeURIComponent(args.repo)}.git/info/lfs`, header: { Authorization: `Bearer ${token}` }, expires_in: expiresInSeconds };
}
