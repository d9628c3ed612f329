/**
 * The read side of one bare mirror: its refs (one `git for-each-ref` per mirror generation — a
 * fetch starts a new generation), commit, tag and tree objects through the shared cat-file pool,
 * name resolution the way Bitbucket does it, and commit ranges (`git rev-list`).
 */
import type { ReaderPool } from '../git-objects/cat-file';
import { resolveRefName } from '../git-objects/refs';
import { entryAt, parseCommit, parseTag, parseTree, type CommitObject, type PathEntry, type TagObject, type TreeEntry } from '../git-objects/parse';
import { runGit } from './git-run';
import type { MirrorMemory, Refs, TagRef } from './memory';

export type { PathEntry, Refs, TagRef };

const HEX40 = /^[0-9a-f]{40}$/;

export class MirrorReader {
  private refsP?: { generation: number; p: Promise<Refs> };

  constructor(
    readonly gitDir: string,
    private readonly pool: ReaderPool,
    /** Bumped by the manager after every fetch: refs are read again. */
    private readonly generation: () => number,
    /** The byte-bounded tables shared by all mirrors (parsed objects are content-addressed). */
    private readonly memory: MirrorMemory,
  ) {}

  /**
   * Branches and tags of the current generation: kept in the byte-bounded refs table (read again
   * with `git for-each-ref` when evicted, or when too many to keep); one read at a time.
   */
  refs(): Promise<Refs> {
    const g = this.generation();
    const key = `${this.gitDir}\0${g}`;
    const kept = this.memory.refs.get(key);
    if (kept) return Promise.resolve(kept);
    if (!this.refsP || this.refsP.generation !== g) {
      const p = this.loadRefs().then((r) => {
        if (this.generation() === g) this.memory.refs.set(key, r);
        return r;
      });
      this.refsP = { generation: g, p };
      const forget = () => {
        if (this.refsP?.p === p) this.refsP = undefined;
      };
      p.then(forget, forget);
    }
    return this.refsP.p;
  }

  private async loadRefs(): Promise<Refs> {
    const r = await runGit(['for-each-ref', '--format=%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)', 'refs/heads', 'refs/tags'], { gitDir: this.gitDir, timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`git for-each-ref failed in ${this.gitDir}`);
    const branches = new Map<string, string>();
    const tagRefs = new Map<string, TagRef>();
    for (const line of r.stdout.toString('utf8').split('\n')) {
      if (!line) continue;
      const [refname, sha, type, peeled, peeledType] = line.split('\0');
      if (refname.startsWith('refs/heads/')) {
        if (type === 'commit') branches.set(refname.slice(11), sha);
        continue;
      }
      const name = refname.slice(10);
      if (type === 'commit') tagRefs.set(name, { objectSha: sha, commit: sha, annotated: false });
      else if (type === 'tag') {
        const commit = peeledType === 'commit' ? peeled : await this.peel(sha);
        if (commit) tagRefs.set(name, { objectSha: sha, commit, annotated: true });
      }
    }
    return { branches, tags: tagRefs };
  }

  private async peel(sha: string): Promise<string | undefined> {
    const o = await this.pool.request(this.gitDir, 'info', `${sha}^{commit}`);
    return o?.type === 'commit' ? o.sha : undefined;
  }

  /** A branch or tag name (also `heads/x`, `tags/x`, `refs/heads/x`, `refs/tags/x`) → commit. */
  async resolveRef(name: string): Promise<string | undefined> {
    return resolveRefName(await this.refs(), name);
  }

  /** The commit an unambiguous hex prefix (4–40 characters) names, if the mirror has it. */
  async commitByPrefix(prefix: string): Promise<string | undefined> {
    const p = prefix.toLowerCase();
    if (!/^[0-9a-f]{4,40}$/.test(p)) return undefined;
    // Always asked of this mirror: the parsed-object cache is shared by all mirrors.
    const o = await this.pool.request(this.gitDir, 'info', `${p}^{commit}`);
    return o?.type === 'commit' && o.sha.startsWith(p) ? o.sha : undefined;
  }

  /** Ref names first, then a commit id prefix (Bitbucket's order). */
  async resolve(name: string): Promise<string | undefined> {
    return (await this.resolveRef(name)) ?? (await this.commitByPrefix(name));
  }

  async commit(sha: string): Promise<CommitObject | undefined> {
    const hit = this.memory.commits.get(sha);
    if (hit) return hit;
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    if (!raw || raw.type !== 'commit' || !raw.data) return undefined;
    const c = parseCommit(raw.sha, raw.data);
    this.memory.commits.set(raw.sha, c);
    return c;
  }

  async tag(sha: string): Promise<TagObject | undefined> {
    const hit = this.memory.tags.get(sha);
    if (hit) return hit;
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    if (!raw || raw.type !== 'tag' || !raw.data) return undefined;
    const t = parseTag(raw.sha, raw.data);
    this.memory.tags.set(raw.sha, t);
    return t;
  }

  async tree(sha: string): Promise<TreeEntry[] | undefined> {
    const hit = this.memory.trees.get(sha);
    if (hit) return hit;
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    if (!raw || raw.type !== 'tree' || !raw.data) return undefined;
    const entries = parseTree(raw.data);
    this.memory.trees.set(raw.sha, entries);
    return entries;
  }

  async blobSize(sha: string): Promise<number | undefined> {
    const hit = this.memory.sizes.get(sha);
    if (hit !== undefined) return hit;
    const info = await this.pool.request(this.gitDir, 'info', sha);
    if (!info) return undefined;
    this.memory.sizes.set(sha, info.size);
    return info.size;
  }

  async blob(sha: string): Promise<Buffer | undefined> {
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    return raw?.type === 'blob' ? raw.data : undefined;
  }

  /** True when the mirror holds every object named (full ids). */
  async hasObjects(shas: readonly string[]): Promise<boolean> {
    for (const sha of shas) {
      if (!(await this.pool.request(this.gitDir, 'info', sha))) return false;
    }
    return true;
  }

  /** The entry at `path` ('' = the root) in the commit's tree. */
  async entryAt(commitSha: string, path: string): Promise<PathEntry | undefined> {
    const c = await this.commit(commitSha);
    return c ? entryAt((sha) => this.tree(sha), c.tree, path) : undefined;
  }

  /**
   * One page of `git rev-list --topo-order include… --not exclude…` over full commit ids: at most
   * `count` ids after the first `skip`. Git writes only that page (commit-graph keeps the walk
   * cheap), so the output a request reads is bounded by its page length, never the history.
   * Results depend on commit ids only and are kept in the byte-bounded rev-list table.
   */
  async revListPage(include: readonly string[], exclude: readonly string[], skip: number, count: number): Promise<string[]> {
    const args = [...include, '--not', ...exclude];
    if (!args.every((a) => a === '--not' || HEX40.test(a))) throw new Error('rev-list takes full commit ids only');
    if (!Number.isInteger(skip) || skip < 0 || !Number.isInteger(count) || count < 1) throw new Error('rev-list page out of range');
    if (include.length === 0) return [];
    const key = `${this.gitDir}\0${skip}\0${count}\0${args.join(' ')}`;
    const hit = this.memory.revLists.get(key);
    if (hit) return hit;
    const r = await runGit(['rev-list', '--topo-order', `--max-count=${count}`, `--skip=${skip}`, ...args], {
      gitDir: this.gitDir,
      timeoutMs: 120_000,
      maxStdoutBytes: count * 41 + 1024,
    });
    if (r.code !== 0) throw new Error(`git rev-list failed in ${this.gitDir}`);
    const hashes = r.stdout.toString('utf8').split('\n').filter(Boolean);
    this.memory.revLists.set(key, hashes);
    return hashes;
  }
}
