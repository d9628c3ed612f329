/**
 * Read side of one real git repository: refs snapshot (per generation, read from disk), reachability,
 * commit/tag/tree objects (cat-file, cached by hash) and rev-list. `invalidate()` (called after every
 * push) bumps the generation and drops everything that depends on the refs.
 */
import { runGit } from './git-exec';
import { readRefsFromDisk } from './git-refs';
import { BoundedMap } from '../core/bounded-map';
import { resolveRefName } from '../git-objects/refs';
import type { RawObject, ReaderPool } from '../git-objects/cat-file';
import { type CommitObject, type PathEntry, type TagObject, type TreeEntry, entryAt, parseCommit, parseTag, parseTree } from '../git-objects/parse';

export type { PathEntry };

export interface TagRef {
  name: string;
  /** sha the ref points at (tag object for annotated tags) */
  objectSha: string;
  /** peeled commit */
  commit: string;
  annotated: boolean;
}

export interface RefsSnapshot {
  generation: number;
  /** branch name → commit, in refname order */
  branches: Map<string, string>;
  tags: Map<string, TagRef>;
}

const commitCache = new BoundedMap<string, CommitObject>(50000);
const tagCache = new BoundedMap<string, TagObject>(20000);
const treeCache = new BoundedMap<string, TreeEntry[]>(20000);
const sizeCache = new BoundedMap<string, number>(50000);

const HEX40 = /^[0-9a-f]{40}$/;

export class RepoReader {
  generation = 0;
  private refsP: Promise<RefsSnapshot> | undefined;
  private reachP: Promise<Set<string>> | undefined;
  private revCache = new Map<string, Promise<string[]>>();

  /**
   * @param storeDir the shared object store the seed was imported into: objects are looked up there first
   * (one long-lived process for every repository), then in the repository itself (pushed objects).
   */
  constructor(
    readonly gitDir: string,
    private readonly pool: ReaderPool,
    private readonly storeDir?: string,
  ) {}

  invalidate(): void {
    this.generation++;
    this.refsP = undefined;
    this.reachP = undefined;
    this.revCache = new Map();
    this.pool.drop(this.gitDir);
  }

  private async object(kind: 'info' | 'contents', sha: string): Promise<RawObject | undefined> {
    if (this.storeDir) {
      const o = await this.pool.request(this.storeDir, kind, sha);
      if (o) return o;
    }
    return this.pool.request(this.gitDir, kind, sha);
  }

  refs(): Promise<RefsSnapshot> {
    if (!this.refsP) {
      const p = this.loadRefs(this.generation);
      this.refsP = p;
      p.catch(() => {
        if (this.refsP === p) this.refsP = undefined;
      });
    }
    return this.refsP;
  }

  private async loadRefs(generation: number): Promise<RefsSnapshot> {
    const disk = await readRefsFromDisk(this.gitDir);
    const branches = new Map<string, string>();
    const tags = new Map<string, TagRef>();
    for (const [refname, d] of disk) {
      if (refname.startsWith('refs/heads/')) {
        branches.set(refname.slice(11), d.sha);
        continue;
      }
      const name = refname.slice(10);
      if (d.peeled) {
        const commit = await this.peelToCommit(d.peeled);
        if (commit) tags.set(name, { name, objectSha: d.sha, commit, annotated: true });
      } else if (d.fullyPeeled) {
        tags.set(name, { name, objectSha: d.sha, commit: d.sha, annotated: false });
      } else {
        const info = await this.object('info', d.sha);
        if (info?.type === 'commit') tags.set(name, { name, objectSha: d.sha, commit: d.sha, annotated: false });
        else if (info?.type === 'tag') {
          const commit = await this.peelToCommit(d.sha);
          if (commit) tags.set(name, { name, objectSha: d.sha, commit, annotated: true });
        }
      }
    }
    return { generation, branches, tags };
  }

  private async peelToCommit(sha: string): Promise<string | undefined> {
    for (let i = 0; i < 10; i++) {
      const info = await this.object('info', sha);
      if (!info) return undefined;
      if (info.type === 'commit') return sha;
      if (info.type !== 'tag') return undefined;
      const t = await this.tag(sha);
      if (!t) return undefined;
      sha = t.object;
    }
    return undefined;
  }

  /** Every commit reachable from this repository's refs (walked through the cached commit objects). */
  reachable(): Promise<Set<string>> {
    if (!this.reachP) {
      const p = (async () => {
        const refs = await this.refs();
        const seen = new Set<string>();
        let frontier = [...refs.branches.values(), ...[...refs.tags.values()].map((t) => t.commit)];
        while (frontier.length) {
          const fresh = [...new Set(frontier)].filter((s) => !seen.has(s));
          fresh.forEach((s) => seen.add(s));
          const commits = await Promise.all(fresh.map((s) => this.commit(s)));
          frontier = commits.flatMap((c) => c?.parents ?? []);
        }
        return seen;
      })();
      this.reachP = p;
      p.catch(() => {
        if (this.reachP === p) this.reachP = undefined;
      });
    }
    return this.reachP;
  }

  /** Full hash of a reachable commit named by an unambiguous hex prefix (4–40 chars). */
  async lookupCommitPrefix(prefix: string): Promise<string | undefined> {
    const p = prefix.toLowerCase();
    if (!/^[0-9a-f]{4,40}$/.test(p)) return undefined;
    const all = await this.reachable();
    if (p.length === 40) return all.has(p) ? p : undefined;
    let found: string | undefined;
    for (const sha of all) {
      if (sha.startsWith(p)) {
        if (found) return undefined; // ambiguous
        found = sha;
      }
    }
    return found;
  }

  /** A ref name (branch, tag, `heads/x`, `tags/x`, `refs/heads/x`, `refs/tags/x`) → commit. */
  async resolveRefName(name: string): Promise<string | undefined> {
    return resolveRefName(await this.refs(), name);
  }

  /** Branch/tag name first, then a commit hash prefix. */
  async resolveCommitish(s: string): Promise<string | undefined> {
    return (await this.resolveRefName(s)) ?? (await this.lookupCommitPrefix(s));
  }

  async commit(sha: string): Promise<CommitObject | undefined> {
    const cached = commitCache.get(sha);
    if (cached) return cached;
    const raw = await this.object('contents', sha);
    if (!raw || raw.type !== 'commit' || !raw.data) return undefined;
    const c = parseCommit(raw.sha, raw.data);
    if (HEX40.test(sha)) commitCache.set(raw.sha, c);
    return c;
  }

  async tag(sha: string): Promise<TagObject | undefined> {
    const cached = tagCache.get(sha);
    if (cached) return cached;
    const raw = await this.object('contents', sha);
    if (!raw || raw.type !== 'tag' || !raw.data) return undefined;
    const t = parseTag(raw.sha, raw.data);
    tagCache.set(raw.sha, t);
    return t;
  }

  async tree(sha: string): Promise<TreeEntry[] | undefined> {
    const cached = treeCache.get(sha);
    if (cached) return cached;
    const raw = await this.object('contents', sha);
    if (!raw || raw.type !== 'tree' || !raw.data) return undefined;
    const entries = parseTree(raw.data);
    treeCache.set(raw.sha, entries);
    return entries;
  }

  async blobSize(sha: string): Promise<number | undefined> {
    const cached = sizeCache.get(sha);
    if (cached !== undefined) return cached;
    const info = await this.object('info', sha);
    if (!info) return undefined;
    sizeCache.set(sha, info.size);
    return info.size;
  }

  async blob(sha: string): Promise<Buffer | undefined> {
    const raw = await this.object('contents', sha);
    return raw && raw.type === 'blob' ? raw.data : undefined;
  }

  /** Entry at `path` ('' = root) in the commit's tree. */
  async entryAt(commitSha: string, path: string): Promise<PathEntry | undefined> {
    const c = await this.commit(commitSha);
    return c ? entryAt((sha) => this.tree(sha), c.tree, path) : undefined;
  }

  /** `git rev-list --topo-order include… --not exclude…` (all arguments must be full hashes). */
  revList(include: string[], exclude: string[]): Promise<string[]> {
    const args = [...include, '--not', ...exclude].filter((a) => a === '--not' || HEX40.test(a));
    const key = args.join(' ');
    let p = this.revCache.get(key);
    if (!p) {
      p = (async () => {
        if (include.length === 0) return [];
        const r = await runGit(['rev-list', '--topo-order', ...args], { gitDir: this.gitDir });
        if (r.code !== 0) throw new Error(`rev-list failed: ${r.stderr}`);
        return r.stdout.toString('utf8').split('\n').filter(Boolean);
      })();
      this.revCache.set(key, p);
    }
    return p;
  }
}
