/** Branches and tags by name, as both the mirrors and the fake Bitbucket hold them. */
export interface RefNames {
  branches: ReadonlyMap<string, string>;
  tags: ReadonlyMap<string, { commit: string }>;
}

const PREFIXES = [
  ['refs/heads/', 'branch'],
  ['heads/', 'branch'],
  ['refs/tags/', 'tag'],
  ['tags/', 'tag'],
] as const;

/**
 * The commit a ref name names, the way Bitbucket resolves it: a branch, then a tag, then the
 * `refs/heads/`, `heads/`, `refs/tags/` and `tags/` spellings.
 */
export function resolveRefName(refs: RefNames, name: string): string | undefined {
  const direct = refs.branches.get(name) ?? refs.tags.get(name)?.commit;
  if (direct) return direct;
  for (const [prefix, kind] of PREFIXES) {
    if (!name.startsWith(prefix)) continue;
    const n = name.slice(prefix.length);
    const hit = kind === 'branch' ? refs.branches.get(n) : refs.tags.get(n)?.commit;
    if (hit) return hit;
  }
  return undefined;
}
