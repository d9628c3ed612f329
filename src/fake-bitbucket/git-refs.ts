/**
 * Reads a repository's refs straight from disk (`packed-refs` + loose files under refs/heads and
 * refs/tags), which is what `git for-each-ref` does, without spawning a process per repository.
 * Loose refs override packed ones; `*.lock` files and symbolic refs are ignored.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskRef {
  sha: string;
  /** peeled object from packed-refs (`^sha` line), for annotated tags */
  peeled?: string;
  /** true when the ref came from packed-refs written with `fully-peeled` (absence of `peeled` is then meaningful) */
  fullyPeeled: boolean;
}

const SHA = /^[0-9a-f]{40}$/;

async function readPacked(gitDir: string, out: Map<string, DiskRef>): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(gitDir, 'packed-refs'), 'utf8');
  } catch {
    return;
  }
  let fullyPeeled = false;
  let last: DiskRef | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      fullyPeeled = / fully-peeled /.test(`${line} `);
      continue;
    }
    if (line.startsWith('^')) {
      if (last) last.peeled = line.slice(1).trim();
      continue;
    }
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const sha = line.slice(0, sp);
    const ref = line.slice(sp + 1).trim();
    if (!SHA.test(sha)) continue;
    last = { sha, fullyPeeled };
    out.set(ref, last);
  }
}

async function readLoose(gitDir: string, prefix: string, out: Map<string, DiskRef>): Promise<void> {
  let entries;
  try {
    entries = await readdir(join(gitDir, prefix), { withFileTypes: true });
  } catch {
    return;
  }
  await Promise.all(
    entries.map(async (e) => {
      const ref = `${prefix}/${e.name}`;
      if (e.isDirectory()) return readLoose(gitDir, ref, out);
      if (!e.isFile() || e.name.endsWith('.lock')) return;
      let content: string;
      try {
        content = (await readFile(join(gitDir, ref), 'utf8')).trim();
      } catch {
        return;
      }
      if (SHA.test(content)) out.set(ref, { sha: content, fullyPeeled: false });
    }),
  );
}

/** Every ref under refs/heads and refs/tags → where it points (sorted by refname, byte order). */
export async function readRefsFromDisk(gitDir: string): Promise<Map<string, DiskRef>> {
  const packed = new Map<string, DiskRef>();
  await readPacked(gitDir, packed);
  const loose = new Map<string, DiskRef>();
  await Promise.all([readLoose(gitDir, 'refs/heads', loose), readLoose(gitDir, 'refs/tags', loose)]);
  const all = new Map<string, DiskRef>();
  for (const [k, v] of packed) if (k.startsWith('refs/heads/') || k.startsWith('refs/tags/')) all.set(k, v);
  for (const [k, v] of loose) all.set(k, v);
  return new Map([...all].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}
