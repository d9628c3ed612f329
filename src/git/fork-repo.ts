/**
 * Grant repositories: what git through a fork grant is served from. For the grants a client may
 * use on a fork (usually one open pull request), a bare repository under
 * `{dir}/repos/<hash>.git` holds exactly the pull requests' source branches — fetched from
 * Bitbucket with `+refs/heads/<branch>:refs/heads/<branch>` and nothing else — so the objects in it
 * are those reachable from those branch heads and no `want` a client sends can reach anything
 * else of the fork (other branches, declined pull requests, unrelated work).
 *
 * - The upstream git credential reaches git only through the environment (git-run.ts): never on a
 *   command line, never in the repository's config (the fetch names the URL, no remote is saved).
 * - After each fetch the pull request's commit must be the branch head or reachable from it.
 * - A fetch that is not a fast-forward of what the repository held builds it again from empty, so
 *   objects of a force-pushed-away history do not stay behind.
 * - Refetched when a grant's commit changes; deleted when a grant it serves is dropped.
 * - Bounded on disk (`maxBytes`, `maxRepositories`): the least recently used go first. They are a
 *   cache: removed at start (grants themselves persist, grant-store.ts) and fetched again on use.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ForkGrant } from '../core/fork-grant';
import { gitError, runGit, upstreamGitConfig, type GitResult } from '../mirror/git-run';
import type { OutboundProxy } from '../upstream/proxy';
import { dirBytes } from '../mirror/manager';

export interface ForkRepoSettings {
  /** `{state.dir}/fork-grants`. */
  dir: string;
  webUrl: string;
  /** Authorization header value of the upstream git credential. Never logged. */
  authorization: string;
  /** The outbound proxy for the web origin. */
  proxy?: OutboundProxy;
  maxBytes: number;
  maxRepositories: number;
  /** A fetch still running after this long is killed. */
  fetchTimeoutMs: number;
  /** Fetches at once. */
  concurrency: number;
  logger: Logger;
  now?: () => number;
  /** Counts the git requests a fetch costs against the git budget. */
  noteUpstream?: (requests: number) => void;
  onSpawn?: (pid: number, args: readonly string[]) => void;
}

/** A refusal to show the client as git text (`remote: ...`). */
export class ForkRepoError extends Error {
  constructor(
    readonly status: 404 | 409 | 502 | 503,
    message: string,
  ) {
    super(message);
  }
}

interface Entry {
  key: string;
  fork: string;
  /** What the repository serves: the grants it was built for (target, PR, branch, commit). */
  grants: ForkGrant[];
  dir?: string;
  /** branch → full hash of its head as fetched. */
  heads: Map<string, string>;
  /** The grants' commits the repository was fetched for. */
  signature?: string;
  bytes: number;
  lastUsed: number;
  /** The fetch running for it. */
  syncing?: Promise<void>;
  removed: boolean;
}

export interface ForkRepoLease {
  dir: string;
  /** The repository was fetched for this request (a miss) rather than found current. */
  fetched: boolean;
  release(): void;
}

/** Branch names git accepts and that cannot turn a refspec into a pattern or an option. */
const BRANCH = /^(?![-/])(?!.*\.\.)(?!.*@\{)(?!.*\/\/)(?!.*\.lock(\/|$))(?!.*\/\.)(?!\.)[^\s~^:?*[\\\x00-\x1f\x7f]{1,255}(?<![/.])$/;
const SLUG = /^[a-z0-9._-]{1,128}$/;

export function branchAllowed(branch: string): boolean {
  return BRANCH.test(branch);
}

export class ForkRepos {
  private readonly entries = new Map<string, Entry>();
  /** Directories in use: path → readers. */
  private readonly busy = new Map<string, number>();
  /** Directories to delete once their last reader is done. */
  private readonly doomed = new Set<string>();
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly ready: Promise<void>;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly abort = new AbortController();
  private closed = false;
  private timer?: NodeJS.Timeout;
  readonly stats = { fetches: 0, rebuilds: 0, served: 0, refused: 0, removed: 0 };

  constructor(private readonly settings: ForkRepoSettings) {
    this.now = settings.now ?? Date.now;
    this.log = settings.logger.child({ component: 'fork-git' });
    // A cache: what an earlier run left is not trusted to match today's grants.
    this.ready = rm(join(settings.dir, 'repos'), { recursive: true, force: true }).then(
      () => undefined,
      (e: Error) => this.log.warn({ err: e.message }, 'fork grant repositories left by an earlier run could not be removed'),
    );
  }

  /** Repositories on disk and their bytes. */
  usage(): { repositories: number; bytes: number } {
    let repositories = 0;
    let bytes = 0;
    for (const e of this.entries.values()) {
      if (!e.dir) continue;
      repositories++;
      bytes += e.bytes;
    }
    return { repositories, bytes };
  }

  /**
   * The repository serving `grants` (all on `fork`), current for their commits: fetched first
   * when absent or when a grant's commit changed. Release the lease when the answer is done.
   */
  async acquire(fork: string, grants: readonly ForkGrant[]): Promise<ForkRepoLease> {
    await this.ready;
    if (this.closed) throw new ForkRepoError(503, 'The sidecar is shutting down; try again.');
    const [ws, repo] = fork.split('/');
    if (!ws || !repo || !SLUG.test(ws) || !SLUG.test(repo) || grants.length === 0) throw new ForkRepoError(404, 'Repository not found');
    const usable = [...grants].sort((a, b) => (a.branch < b.branch ? -1 : a.branch > b.branch ? 1 : a.target < b.target ? -1 : 1));
    for (const g of usable) if (!branchAllowed(g.branch)) throw new ForkRepoError(404, 'The pull request source branch cannot be fetched through the sidecar.');
    const key = createHash('sha256')
      .update(`${fork}\n${usable.map((g) => `${g.target}#${g.prId}#${g.branch}`).join('\n')}`)
      .digest('hex')
      .slice(0, 32);
    const signature = usable.map((g) => g.commit).join(',');
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { key, fork, grants: usable, heads: new Map(), bytes: 0, lastUsed: this.now(), removed: false };
      this.entries.set(key, entry);
    }
    entry.lastUsed = this.now();
    let fetched = false;
    // A grant's commit may change while a fetch runs: check again after it.
    for (let round = 0; round < 3 && (entry.signature !== signature || !entry.dir); round++) {
      if (entry.syncing) {
        await entry.syncing.catch(() => undefined);
        continue;
      }
      entry.grants = usable;
      const e = entry;
      const p = this.fetch(e, signature).finally(() => {
        e.syncing = undefined;
      });
      e.syncing = p;
      await p;
      fetched = true;
    }
    if (entry.removed || !entry.dir || entry.signature !== signature) throw new ForkRepoError(503, 'The pull request source could not be prepared; try again.');
    const dir = entry.dir;
    this.busy.set(dir, (this.busy.get(dir) ?? 0) + 1);
    this.stats.served++;
    let released = false;
    return {
      dir,
      fetched,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.busy.get(dir) ?? 1) - 1;
        if (n > 0) this.busy.set(dir, n);
        else {
          this.busy.delete(dir);
          if (this.doomed.has(dir)) void this.deleteDir(dir);
          void this.enforceBound();
        }
      },
    };
  }

  /**
   * Deletes the repositories that serve a grant no longer held: `current(fork)` are the fork's
   * grants now. Called after every grant change (a PR declined, merged, expired, or evicted).
   */
  reconcile(current: (fork: string) => readonly ForkGrant[]): void {
    for (const e of [...this.entries.values()]) {
      const now = current(e.fork);
      const held = e.grants.every((g) => now.some((n) => n.target === g.target && n.prId === g.prId && n.branch === g.branch));
      if (!held) this.remove(e, 'grant dropped');
    }
  }

  /** Checks every few minutes for grants that expired (no change event tells of those). */
  watch(current: (fork: string) => readonly ForkGrant[], everyMs = 5 * 60_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.reconcile(current), everyMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.abort.abort();
    await Promise.allSettled([...this.entries.values()].map((e) => e.syncing));
  }

  // --- fetching ---------------------------------------------------------------------------------

  private async slot(): Promise<() => void> {
    if (this.running >= Math.max(1, this.settings.concurrency)) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    return () => {
      this.running--;
      this.waiting.shift()?.();
    };
  }

  private async fetch(e: Entry, signature: string): Promise<void> {
    const release = await this.slot();
    try {
      if (this.closed || e.removed) return;
      const url = `${this.settings.webUrl.replace(/\/+$/, '')}/${e.fork}.git`;
      const refspecs = [...new Set(e.grants.map((g) => `+refs/heads/${g.branch}:refs/heads/${g.branch}`))];
      const old = e.dir;
      let dir = old;
      let rebuilt = false;
      let r: GitResult | undefined;
      if (dir) {
        r = await this.git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', '--', url, ...refspecs], dir);
        if (r.code === 0 && !(await this.fastForward(dir, e.heads))) {
          // The branch was rewritten: its old objects must not stay reachable by hash.
          dir = undefined;
        }
      }
      if (!dir) {
        dir = await this.createEmpty(e.key);
        rebuilt = old !== undefined;
        r = await this.git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', '--', url, ...refspecs], dir);
      }
      this.stats.fetches++;
      this.settings.noteUpstream?.(2);
      if (!r || r.code !== 0) {
        if (dir !== old) await rm(dir, { recursive: true, force: true });
        const err = r ? gitError(r) : 'no fetch';
        this.log.warn({ repository: e.fork, err }, 'fetching the pull request source branch from Bitbucket failed');
        throw /couldn't find remote ref|not found|does not appear to be a git repository/i.test(err)
          ? new ForkRepoError(404, 'The pull request source branch was not found on Bitbucket.')
          : new ForkRepoError(502, 'The sidecar could not fetch the pull request source branch from Bitbucket; try again.');
      }
      const heads = new Map<string, string>();
      for (const g of e.grants) {
        const head = await this.resolve(dir, `refs/heads/${g.branch}`);
        if (!head || !(await this.holdsCommit(dir, head, g))) {
          if (dir !== old) await rm(dir, { recursive: true, force: true });
          this.log.warn({ repository: e.fork, target: g.target, pr: g.prId }, "the pull request's source commit is not on its branch");
          throw new ForkRepoError(409, "The pull request's source commit is no longer on its branch; read the pull request again.");
        }
        heads.set(g.branch, head);
      }
      // HEAD names a granted branch so that a clone checks it out (and HEAD never names anything else).
      await writeFile(join(dir, 'HEAD'), `ref: refs/heads/${e.grants[0].branch}\n`);
      if (e.removed) {
        await this.deleteDir(dir);
        return;
      }
      if (old && dir !== old) this.retire(old);
      if (rebuilt) this.stats.rebuilds++;
      e.dir = dir;
      e.heads = heads;
      e.signature = signature;
      e.bytes = await dirBytes(dir);
      this.log.debug({ repository: e.fork, bytes: e.bytes, rebuilt }, 'fork grant repository fetched');
    } finally {
      release();
    }
    await this.enforceBound(e);
  }

  private git(args: string[], gitDir: string): Promise<GitResult> {
    return runGit(args, {
      gitDir,
      env: upstreamGitConfig(this.settings.webUrl, this.settings.authorization, this.settings.proxy),
      timeoutMs: this.settings.fetchTimeoutMs,
      signal: this.abort.signal,
      onSpawn: this.settings.onSpawn,
      maxStdoutBytes: 1024 ** 2,
    }).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: Buffer.alloc(0) }));
  }

  private async createEmpty(key: string): Promise<string> {
    const root = join(this.settings.dir, 'repos');
    await mkdir(root, { recursive: true, mode: 0o700 });
    const tmp = join(root, `.${key}-${randomBytes(4).toString('hex')}.tmp`);
    const r = await runGit(['init', '--quiet', '--bare', '--template=', tmp], { signal: this.abort.signal });
    if (r.code !== 0) throw new ForkRepoError(503, 'The sidecar could not prepare the pull request source; try again.');
    const dir = join(root, `${key}-${randomBytes(4).toString('hex')}.git`);
    await rename(tmp, dir);
    return dir;
  }

  private async resolve(dir: string, rev: string): Promise<string | undefined> {
    const r = await runGit(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { gitDir: dir });
    const out = r.stdout.toString('utf8').trim();
    return r.code === 0 && /^[0-9a-f]{40}$/.test(out) ? out : undefined;
  }

  /** The grant's commit is `head` or an ancestor of it (the branch moved on since the PR list). */
  private async holdsCommit(dir: string, head: string, g: ForkGrant): Promise<boolean> {
    const want = g.fullCommit ?? g.commit;
    if (head.startsWith(want)) return true;
    const full = await this.resolve(dir, want);
    if (!full || !full.startsWith(want)) return false;
    const r = await runGit(['merge-base', '--is-ancestor', full, head], { gitDir: dir });
    return r.code === 0;
  }

  /** Every branch's previous head is an ancestor of its new one. */
  private async fastForward(dir: string, previous: ReadonlyMap<string, string>): Promise<boolean> {
    for (const [branch, old] of previous) {
      const head = await this.resolve(dir, `refs/heads/${branch}`);
      if (!head) return false;
      if (head === old) continue;
      const r = await runGit(['merge-base', '--is-ancestor', old, head], { gitDir: dir });
      if (r.code !== 0) return false;
    }
    return true;
  }

  // --- removal and bound ------------------------------------------------------------------------

  private remove(e: Entry, why: string): void {
    if (e.removed) return;
    e.removed = true;
    this.entries.delete(e.key);
    if (e.dir) this.retire(e.dir);
    e.dir = undefined;
    this.stats.removed++;
    this.log.info({ repository: e.fork, why }, 'fork grant repository removed');
  }

  /** Deletes a directory now, or when its last reader is done. */
  private retire(dir: string): void {
    if ((this.busy.get(dir) ?? 0) > 0) this.doomed.add(dir);
    else void this.deleteDir(dir);
  }

  private async deleteDir(dir: string): Promise<void> {
    this.doomed.delete(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * Least recently used repositories go until both bounds hold; busy ones and `keep` (just fetched
   * for a request) wait — the bound is enforced again when their readers are done.
   */
  private async enforceBound(keep?: Entry): Promise<void> {
    const over = () => {
      const u = this.usage();
      return u.bytes > this.settings.maxBytes || u.repositories > this.settings.maxRepositories;
    };
    if (!over()) return;
    const lru = [...this.entries.values()].filter((e) => e.dir && !e.syncing && e !== keep).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of lru) {
      if (!over()) return;
      if ((this.busy.get(e.dir!) ?? 0) > 0) continue;
      this.remove(e, 'disk bound (least recently used)');
    }
  }
}
