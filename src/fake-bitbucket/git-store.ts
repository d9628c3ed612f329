/**
 * Builds real git repositories fast: all seed history goes through ONE `git fast-import` into a shared
 * object store; every repository is then a small bare directory whose `objects/info/alternates` points at
 * that store and whose refs are written as a `packed-refs` file. Pushes land in each repository's own
 * object directory, so repositories stay independent after start.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git, runGit } from './git-exec';
import type { PlanCommit, PlanFile, PlanPerson, PlanTagObject } from './seed-plan';

const NULL_SHA = '0'.repeat(40);

/** C-style quoting for fast-import paths when needed. */
export function fastImportPath(p: string): string {
  if (!/["\\\n]/.test(p) && !p.startsWith('"')) return p;
  return `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function ident(p: PlanPerson, time: number): string {
  const clean = (s: string): string => s.replace(/[<>\n]/g, '');
  return `${clean(p.name)} <${clean(p.email)}> ${time} +0000`;
}

function data(s: string): string {
  return `data ${Buffer.byteLength(s, 'utf8')}\n${s}\n`;
}

function fileCommand(f: PlanFile): string {
  if (f.gitlink) return `M 160000 ${f.gitlink} ${fastImportPath(f.path)}\n`;
  return `M ${f.mode ?? '100644'} inline ${fastImportPath(f.path)}\n${data(f.content ?? '')}`;
}

/** The fast-import stream for a set of commits and annotated tags (parents must come first). */
export function fastImportStream(commits: PlanCommit[], tags: PlanTagObject[], tempRef: string): { stream: string; marks: Map<string, number> } {
  const marks = new Map<string, number>();
  const parts: string[] = [];
  let next = 1;
  for (const c of commits) {
    if (marks.has(c.id)) throw new Error(`duplicate plan commit ${c.id}`);
    const parentMarks = c.parents.map((p) => {
      const m = marks.get(p);
      if (m === undefined) throw new Error(`commit ${c.id}: parent ${p} must come first`);
      return m;
    });
    const mark = next++;
    marks.set(c.id, mark);
    if (parentMarks.length === 0) parts.push(`reset ${tempRef}\n`);
    parts.push(`commit ${tempRef}\nmark :${mark}\n`);
    parts.push(`author ${ident(c.author, c.time)}\ncommitter ${ident(c.author, c.time)}\n`);
    parts.push(data(c.message));
    parentMarks.forEach((m, i) => parts.push(i === 0 ? `from :${m}\n` : `merge :${m}\n`));
    for (const d of c.deletes ?? []) parts.push(`D ${fastImportPath(d)}\n`);
    for (const f of c.files) parts.push(fileCommand(f));
    parts.push('\n');
  }
  for (const t of tags) {
    const target = marks.get(t.target);
    if (target === undefined) throw new Error(`tag ${t.id}: unknown target ${t.target}`);
    const mark = next++;
    marks.set(t.id, mark);
    parts.push(`tag ${t.name}\nmark :${mark}\nfrom :${target}\ntagger ${ident(t.tagger, t.time)}\n${data(t.message)}`);
    // forget the ref fast-import would create (tag names repeat across repositories); the object stays
    parts.push(`reset refs/tags/${t.name}\nfrom ${NULL_SHA}\n\n`);
  }
  parts.push(`reset ${tempRef}\nfrom ${NULL_SHA}\n\ndone\n`);
  return { stream: parts.join(''), marks };
}

/** Run fast-import into `gitDir`; returns plan id → sha. */
export async function fastImport(gitDir: string, commits: PlanCommit[], tags: PlanTagObject[], tempRef = 'refs/fake/seed'): Promise<Map<string, string>> {
  const { stream, marks } = fastImportStream(commits, tags, tempRef);
  const marksFile = join(gitDir, `fake-marks-${process.pid}-${Date.now()}`);
  const r = await runGit(['fast-import', '--quiet', '--done', `--export-marks=${marksFile}`], {
    gitDir,
    input: stream,
  });
  if (r.code !== 0) throw new Error(`git fast-import failed: ${r.stderr}`);
  const text = await readFile(marksFile, 'utf8');
  await rm(marksFile, { force: true });
  const byMark = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^:(\d+) ([0-9a-f]{40})$/.exec(line);
    if (m) byMark.set(Number(m[1]), m[2] as string);
  }
  const out = new Map<string, string>();
  for (const [id, mark] of marks) {
    const sha = byMark.get(mark);
    if (!sha) throw new Error(`fast-import did not report mark :${mark} (${id})`);
    out.set(id, sha);
  }
  return out;
}

export const REPO_CONFIG = `[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
[http]
\treceivepack = true
\tuploadpack = true
[uploadpack]
\tallowFilter = true
[receive]
\tdenyDeleteCurrent = warn
`;

/** `git init --bare` for the shared store. */
export async function createStore(storeDir: string): Promise<void> {
  await mkdir(storeDir, { recursive: true });
  await git(['init', '--quiet', '--bare', storeDir]);
}

export interface RepoRef {
  /** full ref name */
  ref: string;
  sha: string;
  /** peeled commit for annotated tags */
  peeled?: string;
}

/** Create a bare repository directory by hand (much faster than `git init` for hundreds). */
export async function createRepoDir(gitDir: string, storeObjects: string, mainBranch: string, refs: RepoRef[], description = ''): Promise<void> {
  await Promise.all([
    mkdir(join(gitDir, 'objects', 'info'), { recursive: true }),
    mkdir(join(gitDir, 'objects', 'pack'), { recursive: true }),
    mkdir(join(gitDir, 'refs', 'heads'), { recursive: true }),
    mkdir(join(gitDir, 'refs', 'tags'), { recursive: true }),
  ]);
  const sorted = [...refs].sort((a, b) => Buffer.compare(Buffer.from(a.ref), Buffer.from(b.ref)));
  const packed = ['# pack-refs with: peeled fully-peeled sorted \n'];
  for (const r of sorted) {
    packed.push(`${r.sha} ${r.ref}\n`);
    if (r.peeled) packed.push(`^${r.peeled}\n`);
  }
  await Promise.all([
    writeFile(join(gitDir, 'HEAD'), `ref: refs/heads/${mainBranch}\n`),
    writeFile(join(gitDir, 'config'), REPO_CONFIG),
    writeFile(join(gitDir, 'description'), `${description || 'Unnamed repository'}\n`),
    writeFile(join(gitDir, 'objects', 'info', 'alternates'), `${storeObjects}\n`),
    writeFile(join(gitDir, 'packed-refs'), packed.join('')),
  ]);
}

/** Run `fn` over items with at most `limit` in flight. */
export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
