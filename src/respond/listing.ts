import type { Client } from '../core/client';
import { cacheStatus } from '../core/cache-status';
import { routeById } from '../routes/catalog';
import { canonicalQuery } from '../routes/call';
import type { ApiAnswer, ApiCall, Source } from '../core/call';
import { encodeQuery, encodeSegment } from '../routes/canonical';
import { decideRepository, rulesForWorkspace } from '../scope/policy';
import { errorAnswer } from './errors';
import { applyFields } from '../core/fields';
import type { BodyMemo } from '../core/body-memo';

/**
 * The repository listing a client with project or repository rules sees: computed by the sidecar
 * from the repositories it may see, so that nothing in it — values, `size`, pages, what a `q=`
 * matches — depends on the repositories hidden from it.
 *
 * Upstream is read without the client's `fields=`, `q=` or `sort=` (per allowed project with
 * `q=project.key="K"`, or the whole workspace when a rule has globs without projects), every page,
 * through the shared cache. The visible repositories, sorted by full name, are then paginated with
 * the client's `page` / `pagelen`, and its `fields=` applied last. The only `q=` accepted is the
 * plugin's own `project.key="KEY"`; any other `q=` or a `sort=` is refused (400) before any
 * upstream call, since evaluating it upstream would match hidden repositories.
 */

/** Upstream pages read for one listing at most; a larger workspace is answered 502. */
export const MAX_LISTING_PAGES = 50;
const UPSTREAM_PAGELEN = 100;
const DEFAULT_PAGELEN = 10;
const MAX_PAGELEN = 100;
const ROLES = new Set(['member', 'contributor', 'admin', 'owner']);
const PROJECT_Q = /^\s*project\.key\s*=\s*"([A-Za-z0-9_]+)"\s*$/;
const REPOSITORIES = routeById('repositories');

/** True when the client's rules for the workspace leave some repositories out. */
export function isNarrowed(client: Client, ws: string): boolean {
  const rules = rulesForWorkspace(client, ws);
  return rules.length > 0 && rules.every((r) => r.projects !== undefined || r.repositories !== undefined);
}

interface Wanted {
  page: number;
  pagelen: number;
  role?: string;
  project?: string;
  fields?: string;
}

function readQuery(query: readonly [string, string][]): Wanted | string {
  const one = (k: string) => {
    const v = query.filter(([key]) => key === k).map(([, value]) => value);
    return v.length > 1 ? null : v[0];
  };
  const ints = (k: string, d: number): number | string => {
    const v = one(k);
    if (v === null) return `Give ${k} once`;
    if (v === undefined) return d;
    return /^[1-9][0-9]{0,5}$/.test(v) ? Number(v) : `${k} must be a positive integer`;
  };
  if (query.some(([k]) => k === 'sort')) return 'This sidecar token may not sort repository listings (sort= is not supported for it)';
  const q = one('q');
  if (q === null) return 'Give q once';
  let project: string | undefined;
  if (q !== undefined) {
    const m = PROJECT_Q.exec(q);
    if (!m) return 'This sidecar token may filter repository listings only with q=project.key="KEY"';
    project = m[1].toUpperCase();
  }
  const page = ints('page', 1);
  if (typeof page === 'string') return page;
  const pagelen = ints('pagelen', DEFAULT_PAGELEN);
  if (typeof pagelen === 'string') return pagelen;
  const role = one('role');
  if (role === null || (role !== undefined && !ROLES.has(role))) return 'role must be one of member, contributor, admin, owner';
  const fields = one('fields');
  if (fields === null) return 'Give fields once';
  return { page, pagelen: Math.min(pagelen, MAX_PAGELEN), role, project, fields };
}

interface Repo {
  full_name: string;
  project?: { key?: unknown } | null;
}

/** Answers `GET /2.0/repositories/{ws}` for a narrowed client; `apiBase` is upstream's API origin (links are rewritten later). */
export async function visibleListing(call: ApiCall, client: Client, source: Source, apiBase: string, memo: BodyMemo): Promise<ApiAnswer> {
  const ws = call.params.ws!;
  const wanted = readQuery(call.query);
  if (typeof wanted === 'string') return errorAnswer(400, wanted);

  const rules = rulesForWorkspace(client, ws);
  const whole = rules.some((r) => r.projects === undefined);
  const allowed = [...new Set(rules.flatMap((r) => r.projects ?? []))];
  // Each entry: the project to ask upstream for, or undefined for the whole workspace.
  const reads: (string | undefined)[] = whole ? [wanted.project] : wanted.project ? (allowed.includes(wanted.project) ? [wanted.project] : []) : allowed;

  const seen = new Map<string, Repo>();
  for (const project of reads) {
    for (let page = 1; ; page++) {
      if (page > MAX_LISTING_PAGES) return errorAnswer(502, `The workspace has more than ${MAX_LISTING_PAGES * UPSTREAM_PAGELEN} repositories to list for this token; narrow it with q=project.key="KEY"`);
      const query: [string, string][] = [['pagelen', String(UPSTREAM_PAGELEN)]];
      if (page > 1) query.push(['page', String(page)]);
      if (project) query.push(['q', `project.key="${project}"`]);
      if (wanted.role) query.push(['role', wanted.role]);
      const answer = await source({ method: 'GET', route: REPOSITORIES, params: { ws }, trailingSlash: false, query: canonicalQuery(query, REPOSITORIES.query), background: call.background }, { client: client.id });
      if (answer.status !== 200) return answer;
      const json = /json/i.test(answer.headers['content-type'] ?? '') ? (memo.parse(answer.body) as { values?: unknown; next?: unknown } | undefined) : undefined;
      if (!json || !Array.isArray(json.values)) return errorAnswer(502, 'Bitbucket sent a repository listing that could not be read');
      for (const v of json.values as Repo[]) {
        if (!v || typeof v.full_name !== 'string') continue;
        const full = v.full_name.toLowerCase();
        const [owner, slug] = full.split('/');
        if (owner !== ws || !slug) continue;
        const key = typeof v.project?.key === 'string' ? v.project.key : null;
        if (decideRepository(client, ws, slug, key) === 'allow' && (!wanted.project || key?.toUpperCase() === wanted.project)) seen.set(full, v);
      }
      if (typeof json.next !== 'string') break;
    }
  }

  const visible = [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  const { page, pagelen } = wanted;
  const link = (p: number) => {
    const q: [string, string][] = [];
    if (wanted.fields !== undefined) q.push(['fields', wanted.fields]);
    q.push(['page', String(p)], ['pagelen', String(pagelen)]);
    if (wanted.project) q.push(['q', `project.key="${wanted.project}"`]);
    if (wanted.role) q.push(['role', wanted.role]);
    return `${apiBase}/2.0/repositories/${encodeSegment(ws)}?${encodeQuery(q)}`;
  };
  const body: Record<string, unknown> = { values: visible.slice((page - 1) * pagelen, page * pagelen), pagelen, size: visible.length, page };
  if (page * pagelen < visible.length) body.next = link(page + 1);
  if (page > 1) body.previous = link(page - 1);
  const shaped = wanted.fields !== undefined ? applyFields(body, wanted.fields) : body;
  return {
    status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: Buffer.from(JSON.stringify(shaped)),
    // One cache status whatever the pages were: a hit (and its ttl) would tell that another client
    // listed the same project lately, hence that the project exists, though it is hidden from this one.
    cacheStatus: cacheStatus({ detail: 'visible-listing' }),
    scopedFor: client.id,
  };
}
