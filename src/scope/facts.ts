import { LRUCache } from 'lru-cache';
import type { ForkGrant } from '../core/fork-grant';

/**
 * What upstream has told us about identifiers and relationships: uuid → slug for workspaces and
 * repositories, a repository's project, and which forks are the source of an open pull request.
 * Facts only ever come from upstream answers about in-scope resources, never from clients.
 */

const PROJECT_TTL_MS = 5 * 60_000;

/** Byte bounds of the learned facts (string lengths plus per-entry overhead): 100,000+ repositories fit. */
export const FACT_TABLE_BYTES = { workspaces: 1024 ** 2, repositories: 12 * 1024 ** 2, projects: 12 * 1024 ** 2 };
const FACT_OVERHEAD = 96;

function factTable<V extends {}>(maxSize: number, size: (v: V, k: string) => number): LRUCache<string, V> {
  return new LRUCache<string, V>({ maxSize, sizeCalculation: (v, k) => size(v, k) * 2 + FACT_OVERHEAD });
}
export const FORK_GRANT_TTL_MS = 6 * 60 * 60_000;
/** Forks with grants, and grants per fork, held at most (the oldest fork is forgotten first). */
export const MAX_GRANTED_FORKS = 10_000;
export const MAX_GRANTS_PER_FORK = 100;

/** A fork grant as it is persisted (src/scope/grant-store.ts): the grant and the fork it opens. */
export interface StoredForkGrant extends ForkGrant {
  fork: string;
}

/** fork → grants, bounded, telling a listener about every change (grants are persisted and back repositories on disk). */
class GrantTable extends Map<string, ForkGrant[]> {
  onChange?: () => void;

  override set(fork: string, grants: ForkGrant[]): this {
    if (!this.has(fork) && this.size >= MAX_GRANTED_FORKS) {
      const oldest = this.keys().next().value;
      if (oldest !== undefined) super.delete(oldest);
    }
    super.set(fork, grants.length > MAX_GRANTS_PER_FORK ? grants.slice(-MAX_GRANTS_PER_FORK) : grants);
    this.onChange?.();
    return this;
  }

  override delete(fork: string): boolean {
    const had = super.delete(fork);
    if (had) this.onChange?.();
    return had;
  }
}

export class ScopeFacts {
  // Bounded in bytes like everything else: an evicted fact is looked up again when a decision
  // needs it (facts only ever allow, so forgetting one never opens anything).
  private readonly workspaceByUuid = factTable<string>(FACT_TABLE_BYTES.workspaces, (v, k) => k.length + v.length);
  private readonly repoByUuid = factTable<string>(FACT_TABLE_BYTES.repositories, (v, k) => k.length + v.length); // uuid → "ws/repo"
  private readonly projects = factTable<{ key: string | null; at: number }>(FACT_TABLE_BYTES.projects, (v, k) => k.length + (v.key?.length ?? 0) + 16);
  private readonly forks = new GrantTable(); // "ws/repo" of the fork → grants

  constructor(readonly now: () => number = Date.now) {}

  /** Bytes and entries of each fact table (tests, diagnostics). */
  usage(): Record<'workspaces' | 'repositories' | 'projects', { bytes: number; entries: number }> {
    const of = (t: { calculatedSize: number; size: number }) => ({ bytes: t.calculatedSize, entries: t.size });
    return { workspaces: of(this.workspaceByUuid), repositories: of(this.repoByUuid), projects: of(this.projects) };
  }

  workspaceSlug(uuid: string): string | undefined {
    return this.workspaceByUuid.get(uuid.toLowerCase());
  }

  repository(uuid: string): string | undefined {
    return this.repoByUuid.get(uuid.toLowerCase());
  }

  /** undefined = unknown or too old; null = the repository has no project. */
  projectOf(fullName: string): string | null | undefined {
    const p = this.projects.get(fullName.toLowerCase());
    return p && this.now() - p.at < PROJECT_TTL_MS ? p.key : undefined;
  }

  forkGrants(fork: string): ForkGrant[] {
    const now = this.now();
    return (this.forks.get(fork.toLowerCase()) ?? []).filter((g) => now - g.learnedAt < FORK_GRANT_TTL_MS);
  }

  /** Upstream named `hash` in an answer about `fork`: it completes the grants whose commit it extends. */
  confirmForkCommit(fork: string, hash: string): void {
    const full = hash.toLowerCase();
    if (!/^[0-9a-f]{40}$/.test(full)) return;
    let changed = false;
    for (const g of this.forks.get(fork.toLowerCase()) ?? []) {
      if (full.startsWith(g.commit) && g.fullCommit !== full) {
        g.fullCommit = full;
        changed = true;
      }
    }
    if (changed) this.forks.onChange?.();
  }

  /** Called after every change to the fork grants (one listener: the sidecar fans it out). */
  onForkGrantsChanged(listener: () => void): void {
    this.forks.onChange = listener;
  }

  /** Every grant still within its TTL, with its fork (for persisting them). */
  allForkGrants(): StoredForkGrant[] {
    const now = this.now();
    const out: StoredForkGrant[] = [];
    for (const [fork, grants] of this.forks) for (const g of grants) if (now - g.learnedAt < FORK_GRANT_TTL_MS) out.push({ ...g, fork });
    return out;
  }

  /**
   * Grants persisted by an earlier run: each keeps the time it was learned, so its TTL counts from
   * then; one past its TTL (or learned "in the future") is not restored, and a grant learned since
   * start for the same pull request wins.
   */
  restoreForkGrants(stored: readonly StoredForkGrant[]): number {
    const now = this.now();
    let restored = 0;
    for (const { fork, ...g } of stored) {
      if (now - g.learnedAt >= FORK_GRANT_TTL_MS || g.learnedAt > now + 60_000) continue;
      const key = fork.toLowerCase();
      const current = this.forks.get(key) ?? [];
      if (current.some((c) => c.target === g.target && c.prId === g.prId)) continue;
      this.forks.set(key, [...current, { ...g }]);
      restored++;
    }
    return restored;
  }

  /**
   * Forgets the grant of one pull request (declined, merged, or its source moved): the one removal
   * method — the fork's repository on disk goes with it (through the change listener).
   */
  dropForkGrant(target: string, prId: number): boolean {
    const t = target.toLowerCase();
    let dropped = false;
    for (const [fork, grants] of [...this.forks]) {
      const kept = grants.filter((g) => g.target !== t || g.prId !== prId);
      if (kept.length === grants.length) continue;
      dropped = true;
      if (kept.length) this.forks.set(fork, kept);
      else this.forks.delete(fork);
    }
    return dropped;
  }

  /** Ends the grants whose source is `branch` of `fork` (the branch was deleted). */
  dropGrantsOnBranch(fork: string, branch: string): boolean {
    const key = fork.toLowerCase();
    const grants = this.forks.get(key);
    if (!grants) return false;
    const kept = grants.filter((g) => g.branch !== branch);
    if (kept.length === grants.length) return false;
    if (kept.length) this.forks.set(key, kept);
    else this.forks.delete(key);
    return true;
  }

  dropGrantsExcept(target: string, openIds: ReadonlySet<number>): void {
    for (const [fork, grants] of [...this.forks]) {
      const kept = grants.filter((g) => g.target !== target || openIds.has(g.prId));
      if (kept.length === grants.length) continue;
      if (kept.length) this.forks.set(fork, kept);
      else this.forks.delete(fork);
    }
  }

  /** Learns from one JSON answer of upstream; `answeredFor` is the repository the call named. */
  learn(json: unknown, answeredFor?: string): void {
    walk(json, (o) => this.learnObject(o, answeredFor));
  }

  private learnObject(o: Record<string, unknown>, answeredFor?: string): void {
    const type = o.type;
    if (type !== 'workspace' && type !== 'repository' && type !== 'pullrequest') return;
    const uuid = typeof o.uuid === 'string' ? o.uuid.toLowerCase() : undefined;
    if (type === 'workspace' && uuid && typeof o.slug === 'string') {
      this.workspaceByUuid.set(uuid, o.slug.toLowerCase());
    }
    if (type === 'repository' && typeof o.full_name === 'string') {
      const full = o.full_name.toLowerCase();
      if (uuid) this.repoByUuid.set(uuid, full);
      // Only a project key is learned, never its absence: an object without one may be a
      // projection, and "no project" would lock project-scoped clients out.
      const key = (o.project as { key?: unknown } | null | undefined)?.key;
      if (typeof key === 'string') this.projects.set(full, { key: key.toUpperCase(), at: this.now() });
    }
    if (type === 'pullrequest' && answeredFor) this.learnPullRequest(o, answeredFor.toLowerCase());
  }

  /**
   * A fork grant is learned or dropped only from a whole pull request: id, state, source repository,
   * branch and commit, destination repository. A partial object changes nothing.
   */
  private learnPullRequest(pr: Record<string, unknown>, target: string): void {
    const src = pr.source as { repository?: { full_name?: unknown }; branch?: { name?: unknown }; commit?: { hash?: unknown } } | undefined;
    const dst = pr.destination as { repository?: { full_name?: unknown } } | undefined;
    if (typeof pr.id !== 'number' || typeof pr.state !== 'string' || typeof src?.repository?.full_name !== 'string' || typeof src.branch?.name !== 'string' || typeof src.commit?.hash !== 'string' || typeof dst?.repository?.full_name !== 'string') return;
    const id = pr.id;
    const fork = src.repository.full_name.toLowerCase();
    const into = dst.repository.full_name.toLowerCase();
    if (into !== target || fork === target) return;
    const previous = (this.forks.get(fork) ?? []).find((g) => g.target === target && g.prId === id);
    const others = (this.forks.get(fork) ?? []).filter((g) => g !== previous);
    const branch = src.branch.name;
    const commit = src.commit.hash.toLowerCase();
    if (pr.state === 'OPEN' && /^[0-9a-f]{7,40}$/.test(commit)) {
      const fullCommit = previous?.fullCommit?.startsWith(commit) ? previous.fullCommit : commit.length === 40 ? commit : undefined;
      others.push({ target, prId: id, branch, commit, fullCommit, learnedAt: this.now() });
    }
    if (others.length) this.forks.set(fork, others);
    else this.forks.delete(fork);
  }
}

/** Visits every object down to depth 12. Plain loops: it walks every value of every answer learned from. */
function walk(value: unknown, visit: (o: Record<string, unknown>) => void, depth = 0): void {
  if (depth > 12 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (v !== null && typeof v === 'object') walk(v, visit, depth + 1);
    }
    return;
  }
  const o = value as Record<string, unknown>;
  visit(o);
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const v = o[keys[i]];
    if (v !== null && typeof v === 'object') walk(v, visit, depth + 1);
  }
}

/** The invalidation tag that says a pull request was declined or merged: its fork grant ends. */
export function pullRequestClosedTag(target: string, prId: number): string {
  return `pr-closed:${target.toLowerCase()}#${prId}`;
}

/** A signed push deleted `branch` of `fork`: grants with that source branch end. */
export function sourceBranchDeletedTag(fork: string, branch: string): string {
  return `branch-deleted:${fork.toLowerCase()}#${branch}`;
}

/** Ends the grants named by `pr-closed:` and `branch-deleted:` tags (published by the relay of any sidecar). */
export function dropClosedGrants(facts: ScopeFacts, tags: readonly string[]): void {
  for (const t of tags) {
    const m = /^pr-closed:([^#]+)#(\d+)$/.exec(t);
    if (m) facts.dropForkGrant(m[1], Number(m[2]));
    // A repository's full name holds no '#'; the branch name after it may.
    const d = /^branch-deleted:([^#]+)#(.+)$/.exec(t);
    if (d) facts.dropGrantsOnBranch(d[1], d[2]);
  }
}

/** After a complete list of open pull requests into `target`, forget forks that no longer have one. */
export function reconcileOpenPullRequests(facts: ScopeFacts, target: string, openIds: ReadonlySet<number>): void {
  facts.dropGrantsExcept(target.toLowerCase(), openIds);
}
