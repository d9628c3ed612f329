/** Parsers for git's commit, tag and tree objects, and the walk from a root tree to a path. */

export interface GitIdent {
  name: string;
  email: string;
  /** Epoch seconds. */
  time: number;
  tz: string;
}

export interface CommitObject {
  sha: string;
  tree: string;
  parents: string[];
  author: GitIdent;
  committer: GitIdent;
  message: string;
}

export interface TagObject {
  sha: string;
  object: string;
  type: string;
  tag: string;
  tagger?: GitIdent;
  message: string;
}

export interface TreeEntry {
  mode: string;
  name: string;
  sha: string;
  kind: 'blob' | 'tree' | 'commit';
}

function parseIdent(v: string): GitIdent {
  const m = /^(.*) <([^>]*)> (\d+) ([+-]\d{4})$/.exec(v);
  if (!m) return { name: v, email: '', time: 0, tz: '+0000' };
  return { name: m[1], email: m[2], time: Number(m[3]), tz: m[4] };
}

function parseHeaders(data: Buffer): { headers: [string, string][]; message: string } {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  const headers: [string, string][] = [];
  for (const line of head.split('\n')) {
    if (line.startsWith(' ') && headers.length) {
      headers[headers.length - 1][1] += `\n${line.slice(1)}`;
      continue;
    }
    const sp = line.indexOf(' ');
    headers.push(sp < 0 ? [line, ''] : [line.slice(0, sp), line.slice(sp + 1)]);
  }
  return { headers, message };
}

export function parseCommit(sha: string, data: Buffer): CommitObject {
  const { headers, message } = parseHeaders(data);
  const c: CommitObject = { sha, tree: '', parents: [], author: parseIdent(''), committer: parseIdent(''), message };
  for (const [k, v] of headers) {
    if (k === 'tree') c.tree = v;
    else if (k === 'parent') c.parents.push(v);
    else if (k === 'author') c.author = parseIdent(v);
    else if (k === 'committer') c.committer = parseIdent(v);
  }
  return c;
}

export function parseTag(sha: string, data: Buffer): TagObject {
  const { headers, message } = parseHeaders(data);
  const t: TagObject = { sha, object: '', type: '', tag: '', message };
  for (const [k, v] of headers) {
    if (k === 'object') t.object = v;
    else if (k === 'type') t.type = v;
    else if (k === 'tag') t.tag = v;
    else if (k === 'tagger') t.tagger = parseIdent(v);
  }
  return t;
}

export function parseTree(data: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const nul = data.indexOf(0x00, sp);
    if (sp < 0 || nul < 0 || nul + 21 > data.length) break;
    const mode = data.subarray(i, sp).toString('ascii').padStart(6, '0');
    const name = data.subarray(sp + 1, nul).toString('utf8');
    const sha = data.subarray(nul + 1, nul + 21).toString('hex');
    const kind = mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob';
    out.push({ mode, name, sha, kind });
    i = nul + 21;
  }
  return out;
}

/** What a path names in a commit's tree: the root, or one entry with its normalised path. */
export type PathEntry = { kind: 'root'; tree: string; path: '' } | (TreeEntry & { path: string });

/** The entry at `path` ('' = the root) below `rootTree`, reading trees with `readTree`. */
export async function entryAt(readTree: (sha: string) => Promise<TreeEntry[] | undefined>, rootTree: string, path: string): Promise<PathEntry | undefined> {
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return { kind: 'root', tree: rootTree, path: '' };
  let tree = rootTree;
  for (let i = 0; i < parts.length; i++) {
    const entries = await readTree(tree);
    const e = entries?.find((x) => x.name === parts[i]);
    if (!e) return undefined;
    if (i === parts.length - 1) return { ...e, path: parts.join('/') };
    if (e.kind !== 'tree') return undefined;
    tree = e.sha;
  }
  return undefined;
}
