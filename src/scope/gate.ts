import { LRUCache } from 'lru-cache';
import type { Client, Permission } from '../core/client';
import { routeById as route } from '../routes/catalog';
import type { RouteMatch } from '../core/route';
import { canonicalQuery } from '../routes/call';
import type { ApiCall, Method, Source } from '../core/call';
import { isUuidForm } from '../routes/match';
import type { ScopeFacts } from './facts';
import type { ForkGrant } from '../core/fork-grant';
import { decideRepository, workspaceInScope } from './policy';

export type GateResult =
  | { ok: true; call: ApiCall; fork?: ForkGrant; /** git through a fork: every grant the client may use on it (`fork` is the first). */ forkGrants?: ForkGrant[] }
  | { ok: false; status: 403 | 404 | 502; message: string };

/** Deliberately says nothing about what exists: the same text whether absent or out of scope. */
export const NOT_FOUND_MESSAGE =
  'You may not have access to this resource or it no longer exists. If you think it exists and you have access, make sure you are authenticated.';

/** Look-ups that found nothing, remembered so that asking again costs no upstream call. */
export const GATE_MISS_TTL_MS = 60_000;
const GATE_MISSES_MAX = 10_000;

export function requiredPermission(match: RouteMatch, query: readonly [string, string][], body?: Buffer): Permission | 'none' {
  return match.route.permissionFor?.(query, body) ?? match.route.permission;
}

/**
 * Does the client's hash name the pull request's source commit? A prefix (7+ characters) of what
 * the PR list gave; a longer hash only when it is the full hash upstream confirmed — otherwise any
 * 40 characters sharing the PR's 12-character prefix would be let through to upstream.
 */
function namesForkCommit(hash: string, grant: ForkGrant): boolean {
  const h = hash.toLowerCase();
  if (h.length < 7) return false;
  if (h.length <= grant.commit.length) return grant.commit.startsWith(h);
  return grant.fullCommit !== undefined && grant.fullCommit.startsWith(h);
}

const deny = (): GateResult => ({ ok: false, status: 404, message: NOT_FOUND_MESSAGE });

/**
 * Stage 4: turns a matched route into a canonical call, or refuses it. Uuid forms are resolved
 * only through facts learned from upstream answers about in-scope resources, so an unknown uuid
 * never causes an upstream request that names it.
 */
export class ScopeGate {
  private readonly misses = new LRUCache<string, true>({ max: GATE_MISSES_MAX, ttl: GATE_MISS_TTL_MS });

  constructor(
    private readonly facts: ScopeFacts,
    /** Source used for the gate's own look-ups (workspace, listing, repository). */
    private readonly lookup: Source,
    /** Age past which a fork grant is checked again before use: the pull request list's freshness. */
    private readonly grantRecheckMs = 30_000,
  ) {}

  /**
   * Calls admitted for a match as it came (no uuid resolved, no body): one frozen object per match,
   * method and query, so that what is derived from a call (its upstream path, its cache key) is
   * derived once for a target that is asked again (src/listen/recent-targets.ts).
   */
  private readonly calls = new WeakMap<RouteMatch, Map<Method, { rawQuery: readonly [string, string][]; call: ApiCall }>>();

  private sameCall(match: RouteMatch, method: Method, rawQuery: readonly [string, string][], build: () => ApiCall): ApiCall {
    let byMethod = this.calls.get(match);
    if (!byMethod) this.calls.set(match, (byMethod = new Map()));
    const known = byMethod.get(method);
    if (known && known.rawQuery === rawQuery) return known.call;
    const call = build();
    Object.freeze(call.params);
    call.query.forEach((pair) => Object.freeze(pair));
    Object.freeze(call.query);
    byMethod.set(method, { rawQuery, call: Object.freeze(call) });
    return call;
  }

  async admit(
    client: Client,
    match: RouteMatch,
    method: Method,
    rawQuery: readonly [string, string][],
    body?: { data: Buffer; contentType?: string },
  ): Promise<GateResult> {
    const params = { ...match.params };
    const need = requiredPermission(match, rawQuery, body?.data);
    const build = (): ApiCall => {
      const fresh = (): ApiCall => ({
        method,
        route: match.route,
        params,
        trailingSlash: match.trailingSlash,
        query: canonicalQuery(rawQuery as [string, string][], match.route.query),
        body: body?.data,
        contentType: body?.contentType,
      });
      return body || params.ws !== match.params.ws || params.repo !== match.params.repo ? fresh() : this.sameCall(match, method, rawQuery, fresh);
    };
    const permitted = (): GateResult =>
      need === 'none' || client.permissions.has(need)
        ? { ok: true, call: build() }
        : { ok: false, status: 403, message: `This sidecar token does not have the ${need} permission for this repository.` };

    if (params.ws === undefined) return permitted();

    if (isUuidForm(params.ws)) {
      const slug = await this.workspaceSlug(client, params.ws);
      if (!slug) return deny();
      params.ws = slug;
    }
    const ws = params.ws;

    if (params.repo === undefined) return workspaceInScope(client, ws) ? permitted() : deny();

    if (isUuidForm(params.repo)) {
      if (!workspaceInScope(client, ws)) return deny();
      const full = await this.repositoryByUuid(client, ws, params.repo);
      if (!full || full.split('/')[0] !== ws) return deny();
      params.repo = full.split('/')[1];
    }
    const repo = params.repo;

    const decision = await this.decide(client, ws, repo);
    if (decision === 'error') return { ok: false, status: 502, message: 'Bitbucket could not be asked which project this repository belongs to; try again.' };
    if (decision === 'allow') return permitted();

    const grants = await this.forkAccess(client, match, ws, repo, rawQuery);
    if (grants.length && need === 'read' && client.permissions.has('read')) return { ok: true, call: build(), fork: grants[0], ...(match.route.forkAccess === 'git' ? { forkGrants: grants } : {}) };
    return deny();
  }

  /**
   * A project rule needs the repository's project: when no upstream answer taught it, one targeted
   * listing query asks for the repository within the allowed projects only
   * (`q=full_name="ws/repo" AND (project.key="A" OR …)`), so the answer never carries a repository
   * outside the scope, and a miss is remembered for a minute.
   */
  private async decide(client: Client, ws: string, repo: string): Promise<'allow' | 'deny' | 'error'> {
    const full = `${ws}/${repo}`;
    // Decided without the project (no rule could match, or one matches whatever the project): final.
    const blind = decideRepository(client, ws, repo);
    if (blind !== 'needs-project') return blind;
    if (decideRepository(client, ws, repo, this.facts.projectOf(full)) === 'allow') return 'allow';
    // Not shown to be in scope. A project other clients' answers taught is not used to refuse: the
    // refusal goes the same way as for a repository nobody knows (the same targeted look-up, the same
    // 502 when it cannot be made), so a tenant cannot tell a hidden repository from an absent one.
    const projects = [...new Set(client.scope.filter((r) => r.workspace === ws).flatMap((r) => r.projects ?? []))].sort();
    const missKey = `project ${full} ${projects.join(',')}`;
    if (!this.misses.has(missKey)) {
      const within = projects.map((k) => `project.key="${k}"`).join(' OR ');
      const ok = await this.query(client, ws, `full_name="${full}" AND (${within})`);
      if (!ok) return 'error';
      if (decideRepository(client, ws, repo, this.facts.projectOf(full) ?? null) !== 'allow') this.misses.set(missKey, true);
    }
    const project = this.facts.projectOf(full);
    return decideRepository(client, ws, repo, project === undefined ? null : project) === 'allow' ? 'allow' : 'deny';
  }

  /**
   * The grants that open this request on a fork: the first that fits for REST routes; for git all
   * the client may use (git is served from a repository holding exactly their source branches).
   */
  private async forkAccess(client: Client, match: RouteMatch, ws: string, repo: string, rawQuery: readonly [string, string][]): Promise<ForkGrant[]> {
    const kind = match.route.forkAccess;
    if (!kind) return [];
    const git: ForkGrant[] = [];
    for (const held of this.facts.forkGrants(`${ws}/${repo}`)) {
      const [tws, trepo] = held.target.split('/');
      if ((await this.decide(client, tws, trepo)) !== 'allow') continue;
      const grant = await this.stillOpen(client, `${ws}/${repo}`, held);
      if (!grant) continue;
      const p = match.params;
      if (kind === 'branch' && p.name === grant.branch) return [grant];
      if (kind === 'commit' && p.hash && namesForkCommit(p.hash, grant)) return [grant];
      if (kind === 'src' && p.rev && /^[0-9a-f]{7,40}$/i.test(p.rev) && namesForkCommit(p.rev, grant) && !rawQuery.some(([k]) => k === 'at')) return [grant];
      if (kind === 'git') git.push(grant);
    }
    return git;
  }

  /**
   * A grant older than the pull request list's freshness is checked again before it is used: one
   * read of that pull request (cached like the list), which renews the grant or — declined, merged,
   * gone — ends it. Without webhooks, a grant so outlives its pull request by that long at most.
   * An upstream failure other than 404 keeps the grant (a fork build survives a Bitbucket hiccup).
   * Returns the grant as it stands after that read: its commit may have moved (new commits, or a
   * force push while this sidecar was down), and the request is decided on the current one.
   */
  private async stillOpen(client: Client, fork: string, grant: ForkGrant): Promise<ForkGrant | undefined> {
    if (this.facts.now() - grant.learnedAt < this.grantRecheckMs) return grant;
    const [ws, repo] = grant.target.split('/');
    const answer = await this.lookup({ method: 'GET', route: route('pullrequest'), params: { ws, repo, id: String(grant.prId) }, trailingSlash: false, query: [] }, { client: client.id });
    if (answer.status === 404) this.facts.dropForkGrant(grant.target, grant.prId);
    return this.facts.forkGrants(fork).find((g) => g.target === grant.target && g.prId === grant.prId);
  }

  /** At most one upstream call per workspace of the client's scope; a miss is remembered for a minute. */
  private async workspaceSlug(client: Client, uuid: string): Promise<string | undefined> {
    const known = this.facts.workspaceSlug(uuid);
    if (known) return known;
    for (const ws of new Set(client.scope.map((r) => r.workspace))) {
      // "This uuid is not workspace ws" holds for every client: the miss is kept per workspace.
      const missKey = `workspace ${ws} ${uuid}`;
      if (this.misses.has(missKey)) continue;
      const answer = await this.lookup({ method: 'GET', route: route('workspace'), params: { ws }, trailingSlash: false, query: [] }, { client: client.id });
      const found = this.facts.workspaceSlug(uuid);
      if (found) return found;
      // A look-up that failed (this client's budget share spent, Bitbucket trouble) says nothing
      // about the uuid: remembering it would refuse every other client for a minute.
      if (answer.status === 200) this.misses.set(missKey, true);
    }
    return undefined;
  }

  /** One listing query by uuid (never a walk of the workspace); a miss is remembered for a minute. */
  private async repositoryByUuid(client: Client, ws: string, uuid: string): Promise<string | undefined> {
    const known = this.facts.repository(uuid);
    const missKey = `repository ${ws} ${uuid}`;
    if (known || this.misses.has(missKey)) return known;
    const answered = await this.query(client, ws, `uuid="${uuid}"`);
    const found = this.facts.repository(uuid);
    if (!found && answered) this.misses.set(missKey, true);
    return found;
  }

  /** One page of the workspace listing filtered by `q` (teaching the facts); false when it failed. */
  /** Charged to `client`'s share of the budget: the look-up is made on its behalf. */
  private async query(client: Client, ws: string, q: string): Promise<boolean> {
    const call: ApiCall = { method: 'GET', route: route('repositories'), params: { ws }, trailingSlash: false, query: canonicalQuery([['q', q], ['pagelen', '100']], route('repositories').query) };
    const answer = await this.lookup(call, { client: client.id });
    return answer.status === 200;
  }
}
