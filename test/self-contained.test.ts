/**
 * `npm ci && npm test` must pass in a fresh clone with nothing beside it, so no test or bench source
 * may reach outside the repository: no `__dirname`/cwd-relative path or relative import that climbs
 * above the root, no `/work/…` or `../shared` literal. The one exception is the optional
 * recorded-payload access in test/helpers/recorded-payloads.ts, whose callers run an extra comparison
 * only when those payloads are present and say so when they are not.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const SCANNED = ['test', 'bench'];
const EXEMPT: Record<string, string> = {
  'test/helpers/recorded-payloads.ts': 'the optional recorded-payload comparison',
  'test/self-contained.test.ts': 'this guard (its patterns and its own failing example)',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sources(full);
    return /\.(ts|js|mjs|cjs|json|sh)$/.test(e.name) ? [full] : [];
  });
}

const inside = (p: string): boolean => p === ROOT || p.startsWith(ROOT + path.sep);

/** Where `__dirname` points when `rel` runs: test/ runs from source (ts-jest), bench/ from dist-bench/. */
function runtimeDir(rel: string): string {
  const dir = path.dirname(path.join(ROOT, rel));
  return rel.startsWith('bench/') ? path.join(ROOT, 'dist-bench', path.relative(ROOT, dir)) : dir;
}

const LITERAL = /\s*,\s*(['"])([^'"\n]*)\1/y;

/** The literal arguments that follow `start` in `text` (stops at the first non-literal one). */
function literalArgs(text: string, start: number): string[] {
  const out: string[] = [];
  LITERAL.lastIndex = start;
  for (let m = LITERAL.exec(text); m; m = LITERAL.exec(text)) out.push(m[2]);
  return out;
}

/** Findings for one source file: each a line of "file:line: what". */
function escapes(rel: string, text: string): string[] {
  const found: string[] = [];
  const lineOf = (i: number): number => text.slice(0, i).split('\n').length;
  const add = (i: number, what: string): void => void found.push(`${rel}:${lineOf(i)}: ${what}`);

  for (const m of text.matchAll(/path\.(?:join|resolve)\(\s*(__dirname|process\.cwd\(\))/g)) {
    const base = m[1] === '__dirname' ? runtimeDir(rel) : ROOT;
    const target = path.resolve(base, ...literalArgs(text, m.index! + m[0].length));
    if (!inside(target)) add(m.index!, `path outside the repository (${path.relative(ROOT, target)})`);
  }
  for (const m of text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)(['"])(\.\.?\/[^'"\n]*)\1/g)) {
    if (!inside(path.resolve(path.dirname(path.join(ROOT, rel)), m[2]))) add(m.index!, `import from outside the repository (${m[2]})`);
  }
  for (const m of text.matchAll(/(['"`])[^'"`\n]*?(\/work\/|\.\.\/shared\b|bitbucket-payloads)[^'"`\n]*\1/g)) {
    add(m.index!, `names a path beside the checkout (${m[2]})`);
  }
  for (const m of text.matchAll(/(['"])shared\1\s*,\s*(['"])reference\2/g)) add(m.index!, 'names shared/reference beside the checkout');
  return found;
}

describe('the suite is self-contained', () => {
  const files = SCANNED.flatMap((d) => sources(path.join(ROOT, d))).map((f) => path.relative(ROOT, f).split(path.sep).join('/'));

  it('scans the test and bench sources', () => {
    expect(files).toEqual(expect.arrayContaining(['test/webhooks/helpers.ts', 'bench/run.ts', ...Object.keys(EXEMPT)]));
  });

  it('no test or bench source reaches outside the repository (except the optional recorded-payload block)', () => {
    const found = files.filter((f) => !(f in EXEMPT)).flatMap((f) => escapes(f, readFileSync(path.join(ROOT, f), 'utf8')));
    expect(found).toEqual([]);
  });

  it('catches what used to break a fresh clone, and lets in-repo paths through', () => {
    const old = [
      "export const SHARED = path.resolve(__dirname, '..', '..', '..', 'shared');",
      "export const PAYLOADS = path.join(SHARED, 'reference', 'bitbucket-payloads', 'webhooks');",
    ].join('\n');
    expect(escapes('test/webhooks/helpers.ts', old)).toHaveLength(2);
    expect(escapes('test/x.test.ts', "path.join(__dirname, '../../elsewhere')")).toHaveLength(1);
    expect(escapes('test/x.test.ts', "import { a } from '../../outside/a';")).toHaveLength(1);
    expect(escapes('test/x.test.ts', "readFileSync('/work/shared/reference/x.json')")).toHaveLength(1);
    expect(escapes('test/webhooks/helpers.ts', "path.resolve(__dirname, '..', 'fixtures', 'webhooks')")).toEqual([]);
    expect(escapes('bench/run.ts', "path.join(__dirname, '..', '..', 'bench', 'RESULTS.md')")).toEqual([]);
    expect(escapes('test/webhooks/relay.test.ts', "import { x } from '../../src/webhooks/relay';")).toEqual([]);
  });

  it('the exempt recorded-payload access is optional: absent payloads are reported, not required', () => {
    const text = readFileSync(path.join(ROOT, 'test/helpers/recorded-payloads.ts'), 'utf8');
    expect(text).toMatch(/present: false[^\n]*not present/);
  });
});
