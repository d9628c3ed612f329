/**
 * The read side of one bare mirror: its refs (one `git for-each-ref` per mirror generation — a
 * fetch starts a new generation), commit, tag and tree objects through the shared cat-file pool,
 * name resolution the way Bitbucket does it, and commit ranges (`git rev-list`).
 */
import { BoundedMap, parseCommit, parseTag, parseTree, type CommitObject, type ReaderPool, type TagObject, type TreeEntry } from './objects';
import { runGit } from './git-run';

export interface TagRef {
  /** The object the ref points at (a tag object for annotated tags). */
  objectSha: string;
  /** The commit it peels to. */
  commit: string;
  annotated: boolean;
}

export interface Refs {
  /** Branch name → commit, in refname (byte) order. */
  branches: Map<string, string>;
  /** Tag name → ref, in refname (byte) order. */
  tags: Map<string, TagRef>;
}

export type PathEntry = { kind: 'root'; tree: string; path: '' } | (TreeEntry & { path: string });

const HEX40 = /^[0-9a-f]{40}$/;
const commits = new BoundedMap<string, CommitObject>(100_000);
const tags = new BoundedMap<string, TagObject>(20_000);
const trees = new BoundedMap<string, TreeEntry[]>(50_000);
const sizes = new BoundedMap<string, number>(100_000);

export class MirrorReader {
  private refsP?: { generation: number; p: Promise<Refs> };
  private readonly revLists = new BoundedMap<string, Promise<string[]>>(64);

  constructor(
    readonly gitDir: string,
    private readonly pool: ReaderPool,
    /** Bumped by the manager after every fetch: refs are read again. */
    private readonly generation: () => number,
  ) {}

  refs(): Promise<Refs> {
    const g = this.generation();
    if (!this.refsP || this.refsP.generation !== g) {
      const p = this.loadRefs();
      this.refsP = { generation: g, p };
      this.revLists.clear();
      p.catch(() => {
        if (this.refsP?.p === p) this.refsP = undefined;
      });
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
    const refs = await this.refs();
    if (refs.branches.has(name)) return refs.branches.get(name);
    if (refs.tags.has(name)) return refs.tags.get(name)!.commit;
    for (const [prefix, kind] of [
      ['refs/heads/', 'b'],
      ['heads/', 'b'],
      ['refs/tags/', 't'],
      ['tags/', 't'],
    ] as const) {
      if (!name.startsWith(prefix)) continue;
      const n = name.slice(prefix.length);
      const hit = kind === 'b' ? refs.branches.get(n) : refs.tags.get(n)?.commit;
      if (hit) return hit;
    }
    return undefined;
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
    const hit = commits.get(sha);
    if (hit) return hit;
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    if (!raw || raw.type !== 'commit' || !raw.data) return undefined;
    const c = parseCommit(raw.sha, raw.data);
    commits.set(raw.sha, c);
    return c;
  }

  async tag(sha: string): Promise<TagObject | undefined> {
    const hit = tags.get(sha);
    if (hit) return hit;
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    if (!raw || raw.type !== 'tag' || !raw.data) return undefined;
    const t = parseTag(raw.sha, raw.data);
    tags.set(raw.sha, t);
    return t;
  }

  async tree(sha: string): Promise<TreeEntry[] | undefined> {
    const hit = trees.get(sha);
    if (hit) return hit;
    const raw = await this.pool.request(this.gitDir, 'contents', sha);
    if (!raw || raw.type !== 'tree' || !raw.data) return undefined;
    const entries = parseTree(raw.data);
    trees.set(raw.sha, entries);
    return entries;
  }

  async blobSize(sha: string): Promise<number | undefined> {
    const hit = sizes.get(sha);
    if (hit !== undefined) return hit;
    const info = await this.pool.request(this.gitDir, 'info', sha);
    if (!info) return undefined;
    sizes.set(sha, info.size);
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
    if (!c) return undefined;
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) return { kind: 'root', tree: c.tree, path: '' };
    let tree = c.tree;
    for (let i = 0; i < parts.length; i++) {
      const entries = await this.tree(tree);
      const e = entries?.find((x) => x.name === parts[i]);
      if (!e) return undefined;
      if (i === parts.length - 1) return { ...e, path: parts.join('/') };
      if (e.kind !== 'tree') return undefined;
      tree = e.sha;
    }
    return undefined;
  }

  /** `git rev-list --topo-order include… --not exclude…` over full commit ids. */
  revList(include: readonly string[], exclude: readonly string[]): Promise<string[]> {
    const args = [...include, '--not', ...exclude];
    if (!args.every((a) => a === '--not' || HEX40.test(a))) return Promise.reject(new Error('rev-list takes full commit ids only'));
    const key = args.join(' ');
    let p = this.revLists.get(key);
    if (!p) {
      p = (async () => {
        if (include.length === 0) return [];
        const r = await runGit(['rev-list', '--topo-order', ...args], { gitDir: this.gitDir, timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`git rev-list failed in ${this.gitDir}`);
        return r.stdout.toString('utf8').split('\n').filter(Boolean);
      })();
      this.revLists.set(key, p);
      p.catch(() => this.revLists.delete(key));
    }
    return p;
  }
}
