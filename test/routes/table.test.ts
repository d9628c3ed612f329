/**
 * The route table owns everything per route: no stage outside src/routes/ decides by a route's
 * id, and every row carries the fields the stages read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROUTES, routeById, type RouteId } from '../../src/routes/catalog';
import type { RouteDef } from '../../src/core/route';
import type { ApiCall } from '../../src/core/call';

const SRC = path.resolve(__dirname, '../../src');
/** The fake Bitbucket is a separate program with routes of its own. */
const OUTSIDE = ['routes', 'fake-bitbucket'];
const IDS = ROUTES.map((r) => r.id);
const ROWS: readonly RouteDef[] = ROUTES;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const ID = `'(?:${IDS.map(escape).join('|')})'`;

/** Ways of deciding by a route id; each is a shape the switches this replaced had. */
const DECIDING: RegExp[] = [
  new RegExp(`\\bcase\\s+${ID}\\s*:`),
  new RegExp(`(?:\\.id|\\bid|\\broute)\\s*[!=]==?\\s*${ID}`),
  new RegExp(`${ID}\\s*[!=]==?\\s*[\\w.?!]*(?:\\.id|\\bid|\\broute)\\b`),
  /\broute\??\.id\s*(?:[!=]==?|\bin\b)/,
  /[!=]==?\s*[\w.?!]*\broute\??\.id\b/,
  /\bswitch\s*\([^)]*\broute\??\.id\b/,
  /\.(?:has|includes)\(\s*[\w.?!]*\broute\??\.id\b/,
  // A table keyed by route ids: a list or set naming two of them.
  new RegExp(`\\[\\s*${ID}\\s*,\\s*${ID}`),
];

function offending(text: string): string[] {
  return text.split('\n').filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line) && DECIDING.some((re) => re.test(line)));
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return dir === SRC && OUTSIDE.includes(e.name) ? [] : sources(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

describe('route table ownership', () => {
  it('recognises the switches on route ids it forbids', () => {
    const old = [
      "  switch (call.route.id) {",
      "    case 'branches':",
      "  if (call.route.id === 'hooks' || call.route.id === 'hook') return 'webhook';",
      "    if (call?.route.id === 'git-receive-pack' && call.params.ws) {",
      "    if (id !== 'repositories' && id !== 'repository') return;",
      "export const MIRROR_ROUTES = new Set(['branches', 'branch', 'tags']);",
      "      if (call.route.id in WARM_ROUTES) this.track(call);",
      "  if (route !== 'git-info-refs' && route !== 'git-upload-pack') {",
    ];
    expect(old.filter((l) => offending(l).length === 0)).toEqual([]);
    // What stays allowed: naming a route for a call of one's own, a label in a log or audit line.
    const fine = ["const REPOSITORIES = routeById('repositories');", '    record.route = match.route.id;', "    if (kind === 'branch' && p.name === grant.branch) return [grant];", "  if (target.service !== 'git-upload-pack') return;"];
    expect(fine.flatMap(offending)).toEqual([]);
  });

  it('no file outside src/routes/ decides by a route id', () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((f) => offending(readFileSync(f, 'utf8')).map((line) => `${path.relative(SRC, f)}: ${line.trim()}`));
    expect(found).toEqual([]);
  });

  it('finds each row by its typed id', () => {
    for (const id of IDS) expect(routeById(id as RouteId).id).toBe(id);
    // @ts-expect-error a misspelled id does not compile
    routeById('brnaches');
    // Nor does comparing a call's route with one: every RouteDef speaks the table's ids.
    const call: ApiCall = { method: 'GET', route: routeById('branches'), params: {}, trailingSlash: false, query: [] };
    // @ts-expect-error the types have no overlap
    expect(call.route.id === 'brnaches').toBe(false);
  });
});

describe('every row has the fields its stages read', () => {
  const has = (r: RouteDef, m: string) => (r.methods as readonly string[]).includes(m);

  it.each(ROWS.map((r) => [r.id, r] as const))('%s', (_id, r) => {
    expect(['repository', 'webhook', 'other']).toContain(r.budget);
    expect(['immutable', 'metadata', 'list', 'none']).toContain(r.cache.class);
    // Only answers to reads are stored; writes name what they invalidate or drop the repository.
    if (!has(r, 'GET')) expect(r.cache.class).toBe('none');
    if (r.cache.class === 'none') expect([r.cache.tags, r.cache.immutableWhen, r.cache.derive]).toEqual([undefined, undefined, undefined]);
    // Git rows say which smart-HTTP endpoint they are; no other row does.
    expect(r.git !== undefined).toBe(r.handler === 'git');
    if (r.forkAccess === 'git') expect(r.handler).toBe('git');
    // What is learned, mirrored or kept warm is a read answered through the source stack.
    for (const field of [r.teaches, r.mirror, r.warm, r.shape]) if (field !== undefined) expect([r.handler, has(r, 'GET')]).toEqual(['proxy', true]);
    if (r.warm) expect(r.cache.class).not.toBe('none');
    if (r.permissionFor) expect(r.permission).not.toBe('none');
    // The Bitbucket resources counted per repository are the repository routes of the API.
    if (r.face === 'web') expect(r.budget).toBe('other');
    if (r.budget === 'repository') expect(r.pattern.startsWith('/2.0/repositories/')).toBe(true);
  });

  it('tags name the repository they are about', () => {
    const params = { ws: 'acme', repo: 'api', name: 'main', rev: 'main', hash: '0123456789abcdef', id: '1', hook: '{202cf34e-7ccf-44b7-ba6b-8827a14d5324}', path: 'Jenkinsfile' };
    const query = [['include', 'main'], ['exclude', 'old'], ['at', 'feature/x']] as const;
    for (const r of ROWS) {
      const tags = [...(r.cache.tags?.(params, query) ?? []), ...(r.invalidates?.(params) ?? [])];
      for (const t of tags) expect(t).toMatch(/^(repo|refs|hooks):acme\/api$|^(ref|statuses):acme\/api:.+$/);
      // Without a repository there is nothing for a tag to name.
      expect([...(r.cache.tags?.({ ws: 'acme' }, query) ?? []), ...(r.invalidates?.({ ws: 'acme' }) ?? [])]).toEqual([]);
    }
  });

  it('a push invalidates the repository, an info/refs for a push needs git:push', () => {
    expect(routeById('git-receive-pack').invalidates?.({ ws: 'acme', repo: 'api' })).toEqual(['repo:acme/api']);
    const refs = routeById('git-info-refs');
    expect(refs.permissionFor?.([['service', 'git-receive-pack']])).toBe('git:push');
    expect(refs.permissionFor?.([['service', 'git-upload-pack']])).toBeUndefined();
  });
});
