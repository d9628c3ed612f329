/**
 * The mirrors' memory: every table the mirror code keeps in the process (parsed commits, tags and
 * trees, blob sizes, commit-list pages from `git rev-list`, each mirror's branches and tags, the
 * repository objects of workspace listings) is an LRU bounded in bytes, each table a fixed share
 * of `mirror.memoryBytes`. Sizes are estimates of what V8 holds for an entry (strings, objects,
 * array slots), not exact heap figures; they err on the large side. An entry larger than a quarter of its table is not kept at all, so
 * one huge tree or page never flushes a table. `mirror.memoryBytes` sits beside `cache.maxBytes`:
 * the heap needs room for both.
 */
import { LRUCache } from 'lru-cache';
import type { ApiCall } from '../core/call';
import type { CommitObject, GitIdent, TagObject, TreeEntry } from '../git-objects/parse';

/** A mirror's branches and tags (read by reader.ts, kept in the refs table). */
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

/** Shares of `mirror.memoryBytes` (they sum to 1). */
export const TABLE_SHARES = {
  commits: 0.2,
  trees: 0.25,
  revLists: 0.1,
  refs: 0.15,
  tags: 0.05,
  sizes: 0.05,
  repositories: 0.2,
} as const;

export type TableName = keyof typeof TABLE_SHARES;

/** No single entry takes more than this share of its table. */
const MAX_ENTRY_SHARE = 0.25;

/** Estimated heap bytes of a string (header and characters; two bytes each beyond Latin-1). */
export function stringBytes(s: string): number {
  // eslint-disable-next-line no-control-regex
  const wide = /[^\x00-\xff]/.test(s);
  return 16 + Math.ceil(((wide ? 2 : 1) * s.length) / 8) * 8;
}

/** Heap estimate of one property or array slot holding an object (pointer, header share). */
const SLOT = 8;
const OBJECT = 24;

export interface TableStats {
  bytes: number;
  maxBytes: number;
  entries: number;
  evictions: number;
  /** Entries not kept because they alone exceeded the per-entry bound. */
  tooLarge: number;
}

/** A byte-bounded LRU table (lru-cache's maxSize with a size estimate per entry). */
export class ByteTable<V extends NonNullable<unknown>> {
  private readonly lru: LRUCache<string, V>;
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  evictions = 0;
  tooLarge = 0;

  constructor(
    maxBytes: number,
    private readonly sizeOf: (value: V, key: string) => number,
  ) {
    this.maxBytes = Math.max(1024, Math.floor(maxBytes));
    this.maxEntryBytes = Math.max(256, Math.floor(this.maxBytes * MAX_ENTRY_SHARE));
    this.lru = new LRUCache<string, V>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntryBytes,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.evictions++;
      },
    });
  }

  get(key: string): V | undefined {
    return this.lru.get(key);
  }

  peek(key: string): V | undefined {
    return this.lru.peek(key);
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  /** Keeps `value` unless it alone exceeds the per-entry bound; returns whether it was kept. */
  set(key: string, value: V): boolean {
    const size = Math.max(1, Math.ceil(this.sizeOf(value, key) + stringBytes(key) + 4 * SLOT));
    if (size > this.maxEntryBytes) {
      this.tooLarge++;
      this.lru.delete(key);
      return false;
    }
    this.lru.set(key, value, { size });
    return true;
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  keys(): string[] {
    return [...this.lru.keys()];
  }

  clear(): void {
    this.lru.clear();
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get size(): number {
    return this.lru.size;
  }

  stats(): TableStats {
    return { bytes: this.bytes, maxBytes: this.maxBytes, entries: this.size, evictions: this.evictions, tooLarge: this.tooLarge };
  }
}

const identBytes = (i: GitIdent): number => OBJECT + 4 * SLOT + stringBytes(i.name) + stringBytes(i.email) + stringBytes(i.tz);

export function commitBytes(c: CommitObject): number {
  return OBJECT + 6 * SLOT + stringBytes(c.sha) + stringBytes(c.tree) + OBJECT + c.parents.reduce((n, p) => n + SLOT + stringBytes(p), 0) + identBytes(c.author) + identBytes(c.committer) + stringBytes(c.message);
}

export function tagBytes(t: TagObject): number {
  return OBJECT + 6 * SLOT + stringBytes(t.sha) + stringBytes(t.object) + stringBytes(t.type) + stringBytes(t.tag) + (t.tagger ? identBytes(t.tagger) : 0) + stringBytes(t.message);
}

export function treeBytes(es: readonly TreeEntry[]): number {
  // `mode` and `kind` are a handful of shared strings; name and id are the entry's own.
  return OBJECT + es.reduce((n, e) => n + SLOT + OBJECT + 4 * SLOT + stringBytes(e.name) + stringBytes(e.sha), 0);
}

export function hashListBytes(hs: readonly string[]): number {
  return OBJECT + hs.reduce((n, h) => n + SLOT + stringBytes(h), 0);
}

export function refsBytes(r: Refs): number {
  let n = 2 * OBJECT;
  for (const [name, sha] of r.branches) n += 4 * SLOT + stringBytes(name) + stringBytes(sha);
  for (const [name, t] of r.tags) n += 4 * SLOT + OBJECT + 3 * SLOT + stringBytes(name) + stringBytes(t.objectSha) + (t.commit === t.objectSha ? 0 : stringBytes(t.commit));
  return n;
}

/** What the derived-repository index keeps of one repository object. */
export interface RepositoryRecord {
  /** The repository object, serialized as Bitbucket sent it (parsed again when read). */
  body: string;
  mainBranch?: string;
  learnedAt: number;
  /** The listing page it came from (one object shared by the page's repositories). */
  page?: ApiCall;
}

export function repositoryBytes(r: RepositoryRecord): number {
  return OBJECT + 4 * SLOT + stringBytes(r.body) + (r.mainBranch ? stringBytes(r.mainBranch) : 0);
}

/** The byte-bounded tables of all mirrors (one set per sidecar; keys are object ids or name the mirror). */
export class MirrorMemory {
  readonly commits: ByteTable<CommitObject>;
  readonly tags: ByteTable<TagObject>;
  readonly trees: ByteTable<TreeEntry[]>;
  readonly sizes: ByteTable<number>;
  readonly revLists: ByteTable<string[]>;
  /** Branches and tags of a mirror generation (keyed by mirror directory and generation). */
  readonly refs: ByteTable<Refs>;
  readonly repositories: ByteTable<RepositoryRecord>;

  /** `maxBytes`: `mirror.memoryBytes`, shared out by TABLE_SHARES. */
  constructor(readonly maxBytes: number) {
    const share = (t: TableName) => maxBytes * TABLE_SHARES[t];
    this.commits = new ByteTable(share('commits'), commitBytes);
    this.tags = new ByteTable(share('tags'), tagBytes);
    this.trees = new ByteTable<TreeEntry[]>(share('trees'), treeBytes);
    this.sizes = new ByteTable<number>(share('sizes'), () => SLOT);
    this.revLists = new ByteTable<string[]>(share('revLists'), hashListBytes);
    this.refs = new ByteTable(share('refs'), refsBytes);
    this.repositories = new ByteTable(share('repositories'), repositoryBytes);
  }

  tables(): Record<TableName, { stats(): TableStats }> {
    return { commits: this.commits, trees: this.trees, revLists: this.revLists, refs: this.refs, tags: this.tags, sizes: this.sizes, repositories: this.repositories };
  }

  stats(): Record<TableName, TableStats> {
    const out = {} as Record<TableName, TableStats>;
    for (const [name, t] of Object.entries(this.tables())) out[name as TableName] = t.stats();
    return out;
  }
}
