/**
 * The mirrors themselves: one bare `git clone --mirror` per in-scope repository that a client asked
 * about, under `{dir}/repos/{ws}/{repo}.git`, created on first need and refreshed with
 * `git fetch --prune` — when invalidated (webhook), when a request finds it older than
 * `freshSeconds`, and on a schedule (`refreshSeconds`). Clones and fetches run `concurrency` at a
 * time, under the git budget, through the upstream git credential (git-run.ts keeps it off
 * command lines). Disk use is measured after every fetch and bounded by `maxBytes`: the least
 * recently used mirrors are deleted first.
 *
 * "Fresh" is the one notion every answer depends on: the last fetch started less than
 * `freshSeconds` ago and nothing invalidated the repository since that fetch started (an
 * invalidation during a fetch leaves the mirror stale and fetches again).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile, readFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { GitBudget } from './budget';
import type { OutboundProxy } from '../upstream/proxy';
import { gitError, mirrorGitEnv, runGit, upstreamGitConfig } from './git-run';
import { MAX_CONTENT_BYTES } from './answers';
import { MirrorMemory } from './memory';
import { ReaderPool } from '../git-objects/cat-file';
import { MirrorReader } from './reader';
import { WalkSlots } from './walks';

export interface MirrorSettings {
  enabled: boolean;
  /** Where mirrors live (`{state.dir}/mirrors` unless set). */
  dir: string;
  maxBytes: number;
  /** A mirror fetched less than this long ago (and not invalidated since) answers ref questions. */
  freshSeconds: number;
  /** Every mirror is fetched in the background when its last fetch is this old (0: never). */
  refreshSeconds: number;
  /** How long a request waits for a clone or fetch before it goes upstream instead. */
  waitSeconds: number;
  /** A clone or fetch still running after this long is killed. */
  syncTimeoutSeconds: number;
  /** Clones and fetches at once. */
  concurrency: number;
  gitRequestsPerHour: number;
  /** Share of the git budget scheduled refreshes may use. */
  backgroundShare: number;
  workspaces: Record<string, { enabled: boolean }>;
  /** Bytes all mirror memory tables may hold together (MIRROR_MEMORY_DEFAULTS when absent). */
  memoryBytes?: number;
  /** Answers computed from mirrors at once. */
  maxConcurrentWalks?: number;
  /** Commit-list pages ending deeper than this many commits go upstream. */
  maxWalkCommits?: number;
}

export const MIRROR_MEMORY_DEFAULTS = { memoryBytes: 16 * 1024 ** 2, maxConcurrentWalks: 4, maxWalkCommits: 10_000 } as const;
/** Requests that may wait for a walk slot, per slot. */
const QUEUED_PER_WALK = 16;


/** Git requests a clone or fetch costs (protocol v0: info/refs + one upload-pack). */
export const SYNC_COST = 2;
const MAX_BACKOFF_MS = 10 * 60_000;
const TOO_LARGE_HOLD_MS = 60 * 60_000;
/** Mirrors unused this long are not refreshed on the schedule. */
const IDLE_MS = 24 * 60 * 60_000;
const SLUG = /^[a-z0-9._-]{1,128}$/;
/**
 * Repository states kept without a mirror on disk (asked about, never cloned or since deleted):
 * a client scoped to a whole workspace can name any repository in it, so these are forgotten,
 * oldest first, beyond this count (their retry backoff with them; the git budget still applies).
 */
export const MAX_IDLE_STATES = 10_000;
/** Mirrors this large get a commit-graph after each fetch; smaller histories are cheap to walk without. */
const COMMIT_GRAPH_MIN_BYTES = 1024 ** 2;

export interface MirrorState {
  ws: string;
  repo: string;
  dir: string;
  exists: boolean;
  /** Start time of the last successful clone or fetch. */
  syncedAt?: number;
  /** Bumped by every invalidation. */
  markSeq: number;
  /** `markSeq` when the last successful fetch started. */
  syncedSeq: number;
  /** Renewed after every fetch (refs are read again) and deletion; unique across all mirrors and states. */
  generation: number;
  syncing?: Promise<boolean>;
  /** Invalidated while a fetch ran: fetch again after it. */
  again: boolean;
  failures: number;
  retryAt: number;
  lastUsed: number;
  bytes: number;
  /** Requests reading it right now (never deleted under them). */
  busy: number;
  tooLargeUntil: number;
  reader?: MirrorReader;
}

export interface MirrorStats {
  clones: number;
  fetches: number;
  syncFailures: number;
  budgetRefusals: number;
  pruned: number;
  waitedOut: number;
}

export interface ManagerDeps {
  /** `upstream.webUrl`: repositories live at `{webUrl}/{ws}/{repo}.git`. */
  webUrl: string;
  /** Authorization header value of the upstream git credential. */
  gitAuthorization: string;
  /** The outbound proxy for the web origin. */
  proxy?: OutboundProxy;
  /** Whether some client may read the repository ('unknown' while its project is not known). */
  inScope: (ws: string, repo: string) => 'yes' | 'no' | 'unknown';
  /** The repository's main branch when known (the mirror's HEAD follows it). */
  mainBranch?: (ws: string, repo: string) => string | undefined;
  budget: GitBudget;
  logger: Logger;
  now?: () => number;
  /** Tests: sees every git process the manager spawns. */
  onSpawn?: (pid: number, args: readonly string[]) => void;
}

type Priority = 'foreground' | 'background';

/** A counting semaphore; foreground waiters go first. */
class Slots {
  private used = 0;
  private readonly waiting: { priority: Priority; go: () => void }[] = [];
  constructor(private readonly max: number) {}
  acquire(priority: Priority): Promise<() => void> {
    return new Promise((resolve) => {
      const go = () => {
        this.used++;
        let done = false;
        resolve(() => {
          if (done) return;
          done = true;
          this.used--;
          this.next();
        });
      };
      this.waiting.push({ priority, go });
      this.next();
    });
  }
  get queued(): number {
    return this.waiting.length;
  }
  private next(): void {
    while (this.used < this.max && this.waiting.length) {
      const i = this.waiting.findIndex((w) => w.priority === 'foreground');
      const [w] = this.waiting.splice(i < 0 ? 0 : i, 1);
      w.go();
    }
  }
}

export class MirrorManager {
  readonly stats: MirrorStats = { clones: 0, fetches: 0, syncFailures: 0, budgetRefusals: 0, pruned: 0, waitedOut: 0 };
  private readonly states = new Map<string, MirrorState>();
  private readonly pool = new ReaderPool({ env: (gitDir) => mirrorGitEnv({ GIT_DIR: gitDir }) });
  private readonly slots: Slots;
  /** Parsed objects, rev-list pages and repository objects, bounded in bytes (`mirror.memoryBytes`). */
  readonly memory: MirrorMemory;
  /** Answers computed from mirrors at once (`mirror.maxConcurrentWalks`). */
  readonly walks: WalkSlots;
  readonly maxWalkCommits: number;
  /** Raw files larger than this are read from upstream (every walk slot may hold one). */
  readonly maxContentBytes: number;
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private readonly ready: Promise<void>;
  private closed = false;
  private generations = 0;

  constructor(
    readonly settings: MirrorSettings,
    private readonly deps: ManagerDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'mirror' });
    this.slots = new Slots(Math.max(1, settings.concurrency));
    this.memory = new MirrorMemory(settings.memoryBytes ?? MIRROR_MEMORY_DEFAULTS.memoryBytes);
    const walks = Math.max(1, settings.maxConcurrentWalks ?? MIRROR_MEMORY_DEFAULTS.maxConcurrentWalks);
    this.walks = new WalkSlots(walks, walks * QUEUED_PER_WALK);
    this.maxWalkCommits = settings.maxWalkCommits ?? MIRROR_MEMORY_DEFAULTS.maxWalkCommits;
    this.maxContentBytes = Math.min(MAX_CONTENT_BYTES, Math.floor(this.memory.maxBytes / walks));
    this.ready = settings.enabled ? this.scanDisk() : Promise.resolve();
  }

  /** Resolves once the mirrors left on disk by an earlier run are known. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Starts the scheduled refreshes (and the disk bound check). */
  start(): void {
    if (!this.settings.enabled || this.timer) return;
    const every = Math.max(1000, Math.min(30_000, (this.settings.refreshSeconds || 120) * 250));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
  }

  // --- questions --------------------------------------------------------------------------------

  /** Whether mirrors serve this workspace at all (`mirror.enabled` and the per-workspace switch). */
  enabledFor(ws: string): boolean {
    return this.settings.enabled && !this.closed && this.settings.workspaces[ws]?.enabled !== false;
  }

  /** Mirrors exist only for repositories some client may read (forks of PRs stay upstream). */
  eligible(ws: string, repo: string): boolean {
    return this.enabledFor(ws) && SLUG.test(ws) && SLUG.test(repo) && !/^\.+$/.test(ws) && !/^\.+$/.test(repo) && this.deps.inScope(ws, repo) === 'yes';
  }

  isFresh(st: MirrorState): boolean {
    return st.exists && st.syncedAt !== undefined && this.now() - st.syncedAt < this.settings.freshSeconds * 1000 && st.syncedSeq === st.markSeq;
  }

  state(ws: string, repo: string): MirrorState {
    const key = `${ws}/${repo}`;
    let st = this.states.get(key);
    if (!st) {
      st = { ws, repo, dir: join(this.settings.dir, 'repos', ws, `${repo}.git`), exists: false, markSeq: 0, syncedSeq: 0, generation: this.nextGeneration(), again: false, failures: 0, retryAt: 0, lastUsed: 0, bytes: 0, busy: 0, tooLargeUntil: 0 };
      this.states.set(key, st);
      if (this.states.size > MAX_IDLE_STATES) this.forgetIdleStates(st);
    }
    return st;
  }

  /** Drops states with nothing on disk and nothing running, oldest first, down to 90 % of the bound. */
  private forgetIdleStates(keep: MirrorState): void {
    const target = Math.floor(MAX_IDLE_STATES * 0.9);
    for (const [key, st] of this.states) {
      if (this.states.size <= target) return;
      if (st === keep || st.exists || st.syncing || st.busy > 0) continue;
      this.states.delete(key);
    }
  }

  /** How many repository states are known (tests: the table stays bounded). */
  get stateCount(): number {
    return this.states.size;
  }

  private nextGeneration(): number {
    return ++this.generations;
  }

  /** The existing mirror's state, without creating one. */
  peek(ws: string, repo: string): MirrorState | undefined {
    return this.states.get(`${ws}/${repo}`);
  }

  reader(st: MirrorState): MirrorReader {
    if (!st.reader) st.reader = new MirrorReader(st.dir, this.pool, () => st.generation, this.memory);
    return st.reader;
  }

  /**
   * Makes the mirror fresh if it can within `waitMs` (clone when absent, fetch when stale or old):
   * true when it is fresh now. The clone or fetch goes on in the background after a timeout.
   */
  async ensureFresh(ws: string, repo: string, waitMs: number, priority: Priority = 'foreground'): Promise<boolean> {
    await this.ready;
    if (!this.eligible(ws, repo)) return false;
    const st = this.state(ws, repo);
    st.lastUsed = this.now();
    if (this.isFresh(st)) return true;
    const p = this.sync(st, priority);
    if (!p) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), Math.max(0, waitMs));
      timer.unref();
    });
    const outcome = await Promise.race([p, timeout]);
    if (timer) clearTimeout(timer);
    if (outcome === 'timeout') {
      this.stats.waitedOut++;
      return false;
    }
    return this.isFresh(st);
  }

  // --- invalidation API (webhook relay, cache invalidations) --------------------------------------

  /** The repository changed upstream: no ref answers from its mirror until a fetch that started after now. */
  markStale(ws: string, repo: string): void {
    const st = this.states.get(`${ws.toLowerCase()}/${repo.toLowerCase()}`);
    if (!st) return;
    st.markSeq++;
    if (st.syncing) st.again = true;
    else if (st.exists && this.enabledFor(st.ws)) void this.sync(st, 'background');
  }

  markWorkspaceStale(ws: string): void {
    const w = ws.toLowerCase();
    for (const st of this.states.values()) if (st.ws === w) this.markStale(st.ws, st.repo);
  }

  /**
   * Fetches now (clones if needed) and resolves true when the mirror is fresh afterwards — for the
   * webhook relay, which can wait for it before telling Jenkins.
   */
  async refresh(ws: string, repo: string): Promise<boolean> {
    await this.ready;
    const w = ws.toLowerCase();
    const r = repo.toLowerCase();
    if (!this.eligible(w, r)) return false;
    const st = this.state(w, r);
    st.markSeq++;
    // Asked for explicitly: not held back by the backoff after earlier failures.
    st.retryAt = 0;
    if (st.syncing) {
      st.again = true;
      await st.syncing.catch(() => false);
    }
    const p = st.syncing ?? this.sync(st, 'foreground');
    if (p) await p;
    return this.isFresh(st);
  }

  // --- disk -------------------------------------------------------------------------------------

  usage(): { mirrors: number; bytes: number; maxBytes: number; syncing: number; queued: number } {
    let mirrors = 0;
    let bytes = 0;
    let syncing = 0;
    for (const st of this.states.values()) {
      if (st.exists) {
        mirrors++;
        bytes += st.bytes;
      }
      if (st.syncing) syncing++;
    }
    return { mirrors, bytes, maxBytes: this.settings.maxBytes, syncing, queued: this.slots.queued };
  }

  /** Marks a mirror in use by a request while `fn` runs (it is not deleted meanwhile). */
  async using<T>(st: MirrorState, fn: () => Promise<T>): Promise<T> {
    st.busy++;
    st.lastUsed = this.now();
    try {
      return await fn();
    } finally {
      st.busy--;
    }
  }

  /** Deletes one mirror (out of scope, over the bound). */
  async remove(st: MirrorState, why: string): Promise<void> {
    if (st.syncing || st.busy > 0) return;
    this.pool.drop(st.dir);
    st.exists = false;
    st.syncedAt = undefined;
    st.generation = this.nextGeneration();
    const bytes = st.bytes;
    st.bytes = 0;
    await rm(st.dir, { recursive: true, force: true });
    this.stats.pruned++;
    this.log.info({ repository: `${st.ws}/${st.repo}`, bytes, why }, 'mirror deleted');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.abort.abort();
    const running = [...this.states.values()].map((s) => s.syncing).filter((p): p is Promise<boolean> => p !== undefined);
    await Promise.allSettled(running);
    this.pool.closeAll();
  }

  // --- clone and fetch --------------------------------------------------------------------------

  /** The running (or a new) clone/fetch of a mirror; undefined when it may not run now. */
  private sync(st: MirrorState, priority: Priority): Promise<boolean> | undefined {
    if (st.syncing) return st.syncing;
    const now = this.now();
    if (this.closed || now < st.retryAt || now < st.tooLargeUntil) return undefined;
    const p = this.runSync(st, priority)
      .catch((e: unknown) => {
        st.failures++;
        st.retryAt = this.now() + Math.min(MAX_BACKOFF_MS, 5000 * 2 ** (st.failures - 1));
        this.stats.syncFailures++;
        this.log.warn({ repository: `${st.ws}/${st.repo}`, err: (e as Error).message }, 'mirror refresh failed; answers come from upstream');
        return false;
      })
      .finally(() => {
        st.syncing = undefined;
        if (st.again && !this.closed) {
          st.again = false;
          if (st.syncedSeq !== st.markSeq) void this.sync(st, 'background');
        }
      });
    st.syncing = p;
    return p;
  }

  private async runSync(st: MirrorState, priority: Priority): Promise<boolean> {
    const release = await this.slots.acquire(priority);
    try {
      if (this.closed) return false;
      if (!this.deps.budget.take(SYNC_COST, priority)) {
        // Not a failure: the schedule tries again later, a waiting request goes upstream.
        this.stats.budgetRefusals++;
        return false;
      }
      const startSeq = st.markSeq;
      const started = this.now();
      st.again = false;
      const url = `${this.deps.webUrl.replace(/\/+$/, '')}/${st.ws}/${st.repo}.git`;
      const env = upstreamGitConfig(this.deps.webUrl, this.deps.gitAuthorization, this.deps.proxy);
      const common = { env, timeoutMs: this.settings.syncTimeoutSeconds * 1000, signal: this.abort.signal, onSpawn: this.deps.onSpawn, maxStdoutBytes: 1024 ** 2 };
      const creating = !st.exists;
      let ok: boolean;
      let error = '';
      if (creating) {
        const tmpRoot = join(this.settings.dir, 'tmp');
        await mkdir(tmpRoot, { recursive: true });
        const tmp = join(tmpRoot, `${st.ws}+${st.repo}-${randomBytes(4).toString('hex')}.git`);
        const r = await runGit(['clone', '--mirror', '--quiet', '--template=', '--', url, tmp], { ...common, cwd: tmpRoot }).catch((e: Error) => ({ code: -1, stderr: e.message, stdout: Buffer.alloc(0) }));
        ok = r.code === 0;
        if (ok) {
          await mkdir(join(this.settings.dir, 'repos', st.ws), { recursive: true });
          await rm(st.dir, { recursive: true, force: true });
          await rename(tmp, st.dir);
        } else {
          error = gitError(r);
          await rm(tmp, { recursive: true, force: true });
        }
        this.stats.clones++;
      } else {
        const r = await runGit(['fetch', '--prune', '--quiet', '--no-write-fetch-head', '--', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { ...common, gitDir: st.dir }).catch(
          (e: Error) => ({ code: -1, stderr: e.message, stdout: Buffer.alloc(0) }),
        );
        ok = r.code === 0;
        if (!ok) error = gitError(r);
        this.stats.fetches++;
      }
      if (!ok) {
        st.failures++;
        st.retryAt = this.now() + Math.min(MAX_BACKOFF_MS, 5000 * 2 ** (st.failures - 1));
        this.stats.syncFailures++;
        if (!this.closed) this.log.warn({ repository: `${st.ws}/${st.repo}`, op: creating ? 'clone' : 'fetch', failures: st.failures, err: error }, 'mirror refresh failed; answers come from upstream');
        return false;
      }
      st.exists = true;
      st.generation = this.nextGeneration();
      if ((await dirBytes(st.dir)) >= COMMIT_GRAPH_MIN_BYTES) await this.writeCommitGraph(st, common.signal);
      await this.followMainBranch(st);
      st.syncedAt = started;
      st.syncedSeq = startSeq;
      st.failures = 0;
      st.retryAt = 0;
      st.lastUsed = Math.max(st.lastUsed, started);
      st.bytes = await dirBytes(st.dir);
      this.log.debug({ repository: `${st.ws}/${st.repo}`, op: creating ? 'clone' : 'fetch', ms: this.now() - started, bytes: st.bytes }, 'mirror refreshed');
      await this.enforceBound(st);
      return st.exists;
    } finally {
      release();
    }
  }

  /**
   * A commit-graph (incremental after the first) lets `git rev-list --topo-order --max-count`
   * stop after the page instead of walking the whole history first.
   */
  private async writeCommitGraph(st: MirrorState, signal: AbortSignal): Promise<void> {
    const r = await runGit(['commit-graph', 'write', '--reachable', '--split'], { gitDir: st.dir, timeoutMs: this.settings.syncTimeoutSeconds * 1000, signal, maxStdoutBytes: 1024 ** 2 }).catch(
      (e: Error) => ({ code: -1, stderr: e.message, stdout: Buffer.alloc(0) }),
    );
    // Without it answers are the same, only slower to compute.
    if (r.code !== 0 && !this.closed) this.log.debug({ repository: `${st.ws}/${st.repo}`, err: gitError(r) }, 'commit-graph not written');
  }

  /** Keeps HEAD on the repository's main branch (clones of the mirror check it out). */
  private async followMainBranch(st: MirrorState): Promise<void> {
    const main = this.deps.mainBranch?.(st.ws, st.repo);
    if (!main || !/^[^\s~^:?*[\\\x00-\x1f\x7f]+$/.test(main) || main.includes('..') || main.startsWith('/') || main.endsWith('/')) return;
    try {
      const head = (await readFile(join(st.dir, 'HEAD'), 'utf8')).trim();
      if (head === `ref: refs/heads/${main}`) return;
      const refs = await this.reader(st).refs().catch(() => undefined);
      if (!refs || !refs.branches.has(main)) return;
      await writeFile(join(st.dir, 'HEAD'), `ref: refs/heads/${main}\n`);
    } catch {
      // HEAD is cosmetic for the API; clones name their refs.
    }
  }

  // --- schedule and bound -----------------------------------------------------------------------

  private async tick(): Promise<void> {
    if (this.closed) return;
    const now = this.now();
    let started = 0;
    for (const st of this.states.values()) {
      if (!st.exists || st.syncing || started >= this.settings.concurrency * 2) continue;
      if (!this.enabledFor(st.ws) || this.deps.inScope(st.ws, st.repo) !== 'yes') continue;
      // A mirror nobody asked about for a day is fetched when next used, not on the schedule.
      if (now - st.lastUsed > IDLE_MS) continue;
      const due = st.syncedSeq !== st.markSeq || (this.settings.refreshSeconds > 0 && now - (st.syncedAt ?? 0) >= this.settings.refreshSeconds * 1000);
      if (due && this.sync(st, 'background')) started++;
    }
    await this.sweep();
  }

  /**
   * Deletes the mirrors of repositories no client may read any more (a configuration reload
   * narrowed a scope) or of workspaces switched off, then enforces the disk bound. Runs on the
   * schedule; a repository whose project is not known yet is kept.
   */
  async sweep(): Promise<void> {
    for (const st of this.states.values()) {
      if (!st.exists || st.syncing) continue;
      if (!this.enabledFor(st.ws)) await this.remove(st, 'mirrors are off for the workspace');
      else if (this.deps.inScope(st.ws, st.repo) === 'no') await this.remove(st, 'no client may read the repository');
    }
    await this.enforceBound();
  }

  /** Deletes least recently used mirrors until the total is under `maxBytes` (`keep` last). */
  private async enforceBound(keep?: MirrorState): Promise<void> {
    let total = this.usage().bytes;
    if (total <= this.settings.maxBytes) return;
    const lru = [...this.states.values()].filter((s) => s.exists && s !== keep).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const st of lru) {
      if (total <= this.settings.maxBytes) return;
      if (st.busy > 0 || st.syncing) continue;
      const bytes = st.bytes;
      await this.remove(st, 'disk bound (least recently used)');
      total -= bytes;
    }
    if (keep && keep.exists && total > this.settings.maxBytes && keep.busy === 0) {
      // Larger than the whole bound on its own: keeping it would thrash; its answers come from upstream.
      keep.tooLargeUntil = this.now() + TOO_LARGE_HOLD_MS;
      const bytes = keep.bytes;
      this.pool.drop(keep.dir);
      keep.exists = false;
      keep.syncedAt = undefined;
      keep.generation = this.nextGeneration();
      keep.bytes = 0;
      await rm(keep.dir, { recursive: true, force: true });
      this.stats.pruned++;
      this.log.warn({ repository: `${keep.ws}/${keep.repo}`, bytes, maxBytes: this.settings.maxBytes }, 'repository larger than mirror.maxBytes: not mirrored');
    }
  }

  /** Mirrors left by an earlier run are known (not fresh: fetched before first use); clones cut short are removed. */
  private async scanDisk(): Promise<void> {
    try {
      await rm(join(this.settings.dir, 'tmp'), { recursive: true, force: true });
      const root = join(this.settings.dir, 'repos');
      const workspaces = await readdir(root, { withFileTypes: true }).catch(() => []);
      for (const w of workspaces) {
        if (!w.isDirectory() || !SLUG.test(w.name)) continue;
        for (const r of await readdir(join(root, w.name), { withFileTypes: true }).catch(() => [])) {
          if (!r.isDirectory() || !r.name.endsWith('.git')) continue;
          const repo = r.name.slice(0, -4);
          if (!SLUG.test(repo)) continue;
          const st = this.state(w.name, repo);
          const head = await stat(join(st.dir, 'HEAD')).catch(() => undefined);
          if (!head) {
            await rm(st.dir, { recursive: true, force: true });
            continue;
          }
          st.exists = true;
          st.lastUsed = head.mtimeMs;
          st.bytes = await dirBytes(st.dir);
        }
      }
      const u = this.usage();
      if (u.mirrors) this.log.info({ mirrors: u.mirrors, bytes: u.bytes }, 'mirrors found on disk');
      await this.enforceBound();
    } catch (e) {
      this.log.warn({ err: (e as Error).message, dir: this.settings.dir }, 'mirror directory could not be read');
    }
  }
}

/** Bytes under a directory (files and symlinks, not following them). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (e) => {
        const p = join(d, e.name);
        if (e.isDirectory()) return walk(p);
        const s = await lstat(p).catch(() => undefined);
        if (s) total += s.size;
      }),
    );
  };
  await walk(dir);
  return total;
}
