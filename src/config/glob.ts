/**
 * Repository globs match slugs, which Bitbucket limits to [a-z0-9._-]. A glob may add `*` and `?`
 * and nothing else, so a pattern can never be read two ways (no classes, braces or separators).
 */
export const GLOB_SYNTAX = /^[a-z0-9._\-*?]+$/;

export function isValidGlob(glob: string): boolean {
  return GLOB_SYNTAX.test(glob.toLowerCase());
}

export function globToRegExp(glob: string): RegExp {
  if (!isValidGlob(glob)) throw new Error(`invalid glob ${JSON.stringify(glob)}`);
  const body = glob
    .toLowerCase()
    .replace(/[.\-]/g, (c) => `\\${c}`)
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}
