import type { Permission } from '../core/client';
import type { Query, RouteDef } from '../core/route';
import { lfsBatchPermission } from './lfs';
import { commitById, commitRangeTags, hooksChanged, hooksTags, refByNameTags, refsTags, repositoryChanged, sourceByCommitId, sourceTags, statusesChanged } from './tags';

const PAGE = ['page', 'pagelen', 'fields'] as const;
const LIST = [...PAGE, 'q', 'sort'] as const;
const REPO = '/2.0/repositories/{ws}/{repo}';
/** Git LFS lives under the repository's git URL (`/{ws}/{repo}.git/info/lfs`; `.git` is optional). */
const LFS = '/{ws}/{repo}/info/lfs';

const NOT_CACHED = { class: 'none' } as const;
/** A list-class answer that a push or pull request event makes stale. */
const REFS_LIST = { class: 'list', tags: refsTags } as const;

/** `info/refs?service=git-receive-pack` starts a push. */
const pushWhenReceivePack = (query: Query): Permission | undefined => (query.some(([k, v]) => k === 'service' && v === 'git-receive-pack') ? 'git:push' : undefined);

/**
 * The single list of what the sidecar serves. A request that matches no row is answered 404
 * without reaching any later stage.
 *
 * Pattern segments: literals, `{ws}` / `{repo}` (slug or {uuid}), `{name}` (one segment that may
 * carry %2F), `{rev}` (a commit, or a branch with %2F), `{hash}` (hex commit id), `{id}` (digits), `{hook}` ({uuid}), `{transfer}` (an LFS transfer id), `{path*}` (the rest).
 *
 * Everything the later stages decide per route is a field of its row (src/core/route.ts says what
 * each means): no code outside src/routes/ looks at a route's id to decide anything.
 */
export const ROUTES = [
  // Identity (#none in the plugin; answered by the sidecar itself).
  { id: 'user', face: 'api', methods: ['GET'], pattern: '/2.0/user', handler: 'identity', permission: 'read', cache: NOT_CACHED, budget: 'other', query: ['fields'] },

  // #1 workspace, #2 repository listing.
  { id: 'workspace', face: 'api', methods: ['GET'], pattern: '/2.0/workspaces/{ws}', handler: 'proxy', permission: 'read', cache: { class: 'metadata' }, budget: 'other', warm: {}, query: ['fields'] },
  { id: 'repositories', face: 'api', methods: ['GET'], pattern: '/2.0/repositories/{ws}', handler: 'proxy', permission: 'read', cache: { class: 'list' }, budget: 'repository', teaches: ['repository-page'], shape: 'repository-listing', warm: {}, query: [...LIST, 'role'] },

  // #3 repository, #4 default branch (`/{repo}/?fields=mainbranch.name`).
  { id: 'repository', face: 'api', methods: ['GET'], pattern: REPO, trailingSlash: 'optional', handler: 'proxy', permission: 'read', cache: { class: 'metadata', derive: 'mainbranch' }, budget: 'repository', teaches: ['repository-object'], mirror: 'repository-index', warm: {}, query: ['fields'] },

  // #5-#7 pull requests.
  { id: 'pullrequests', face: 'api', methods: ['GET'], pattern: `${REPO}/pullrequests`, handler: 'proxy', permission: 'read', cache: REFS_LIST, budget: 'repository', teaches: ['pull-requests', 'open-pull-requests'], warm: { vouchedBy: 'pullrequest' }, query: [...LIST, 'state'] },
  { id: 'pullrequest', face: 'api', methods: ['GET'], pattern: `${REPO}/pullrequests/{id}`, handler: 'proxy', permission: 'read', cache: REFS_LIST, budget: 'repository', teaches: ['pull-requests'], query: ['fields'] },
  { id: 'pullrequest-commits', face: 'api', methods: ['GET'], pattern: `${REPO}/pullrequests/{id}/commits`, handler: 'proxy', permission: 'read', cache: REFS_LIST, budget: 'repository', query: [...PAGE] },

  // #8-#11 branches and tags.
  { id: 'branches', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/branches`, handler: 'proxy', permission: 'read', cache: REFS_LIST, budget: 'repository', mirror: 'branch-list', warm: { vouchedBy: 'push' }, query: LIST },
  { id: 'branch', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/branches/{name}`, handler: 'proxy', permission: 'read', cache: { class: 'list', tags: refByNameTags }, budget: 'repository', teaches: ['ref-target'], mirror: 'branch-one', query: ['fields'], forkAccess: 'branch' },
  { id: 'tags', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/tags`, handler: 'proxy', permission: 'read', cache: REFS_LIST, budget: 'repository', mirror: 'tag-list', warm: { vouchedBy: 'push' }, query: LIST },
  { id: 'tag', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/tags/{name}`, handler: 'proxy', permission: 'read', cache: { class: 'list', tags: refByNameTags }, budget: 'repository', mirror: 'tag-one', query: ['fields'] },

  // #12 commit, #13 commit range.
  { id: 'commit', face: 'api', methods: ['GET'], pattern: `${REPO}/commit/{hash}`, handler: 'proxy', permission: 'read', cache: { class: 'list', immutableWhen: commitById }, budget: 'repository', teaches: ['commit-hash'], mirror: 'commit-one', query: ['fields'], forkAccess: 'commit' },
  { id: 'commits', face: 'api', methods: ['GET'], pattern: `${REPO}/commits`, handler: 'proxy', permission: 'read', cache: { class: 'list', tags: commitRangeTags }, budget: 'repository', mirror: 'commit-range', query: [...PAGE, 'include', 'exclude'] },

  // #14-#17 files: meta probe, content, directory listing (`src/{hash}/` is the root).
  { id: 'src', face: 'api', methods: ['GET'], pattern: `${REPO}/src/{rev}/{path*}`, trailingSlash: 'optional', handler: 'proxy', permission: 'read', cache: { class: 'list', immutableWhen: sourceByCommitId, tags: sourceTags }, budget: 'repository', mirror: 'source', query: [...PAGE, 'format', 'at', 'max_depth', 'q', 'sort'], forkAccess: 'src' },

  // #22 build status.
  { id: 'statuses-build', face: 'api', methods: ['POST'], pattern: `${REPO}/commit/{hash}/statuses/build`, handler: 'proxy', permission: 'statuses:write', cache: NOT_CACHED, invalidates: statusesChanged, budget: 'repository', query: [], body: 'build-status' },

  // #18-#21 webhooks: URLs and secrets are sensitive, so reading needs the permission too.
  { id: 'hooks', face: 'api', methods: ['GET', 'POST'], pattern: `${REPO}/hooks`, handler: 'proxy', permission: 'webhooks:manage', cache: { class: 'list', tags: hooksTags }, invalidates: hooksChanged, budget: 'webhook', query: PAGE, body: 'hook' },
  { id: 'hook', face: 'api', methods: ['GET', 'PUT', 'DELETE'], pattern: `${REPO}/hooks/{hook}`, handler: 'proxy', permission: 'webhooks:manage', cache: { class: 'list', tags: hooksTags }, invalidates: hooksChanged, budget: 'webhook', query: ['fields'], body: 'hook' },

  // #25 OAuth client credentials, #24 workspace avatars, #26 git smart HTTP.
  { id: 'oauth-token', face: 'web', methods: ['POST'], pattern: '/site/oauth2/access_token', handler: 'oauth', permission: 'none', cache: NOT_CACHED, budget: 'other', query: [] },
  { id: 'workspace-avatar', face: 'web', methods: ['GET'], pattern: '/workspaces/{ws}/avatar', trailingSlash: 'optional', handler: 'avatar', permission: 'none', cache: { class: 'metadata' }, budget: 'other', query: ['ts'] },
  { id: 'git-info-refs', face: 'web', methods: ['GET'], pattern: '/{ws}/{repo}/info/refs', handler: 'git', permission: 'read', permissionFor: pushWhenReceivePack, cache: NOT_CACHED, budget: 'other', git: 'advertise', query: ['service'], forkAccess: 'git' },
  { id: 'git-upload-pack', face: 'web', methods: ['POST'], pattern: '/{ws}/{repo}/git-upload-pack', handler: 'git', permission: 'read', cache: NOT_CACHED, budget: 'other', git: 'upload-pack', query: [], forkAccess: 'git' },
  { id: 'git-receive-pack', face: 'web', methods: ['POST'], pattern: '/{ws}/{repo}/git-receive-pack', handler: 'git', permission: 'git:push', cache: NOT_CACHED, invalidates: repositoryChanged, budget: 'other', git: 'receive-pack', query: [] },

  // Git LFS (docs/lfs.md): the batch API (an upload needs git:push), the locks API (answered 501 by
  // the sidecar: the git plugin never locks) and the object transfers the batch answer points at.
  // Not reachable through a fork grant: an LFS object is named by its id alone, not by the PR's branch.
  { id: 'lfs-batch', face: 'web', methods: ['POST'], pattern: `${LFS}/objects/batch`, handler: 'lfs', lfs: 'batch', permission: 'read', permissionFor: lfsBatchPermission, cache: NOT_CACHED, budget: 'other', query: [], body: 'lfs-batch' },
  { id: 'lfs-locks', face: 'web', methods: ['GET', 'POST'], pattern: `${LFS}/locks`, handler: 'lfs', lfs: 'locks', permission: 'read', cache: NOT_CACHED, budget: 'other', query: [] },
  { id: 'lfs-locks-verify', face: 'web', methods: ['POST'], pattern: `${LFS}/locks/verify`, handler: 'lfs', lfs: 'locks', permission: 'read', cache: NOT_CACHED, budget: 'other', query: [] },
  { id: 'lfs-lock-unlock', face: 'web', methods: ['POST'], pattern: `${LFS}/locks/{name}/unlock`, handler: 'lfs', lfs: 'locks', permission: 'read', cache: NOT_CACHED, budget: 'other', query: [] },
  { id: 'lfs-download', face: 'web', methods: ['GET'], pattern: `${LFS}/transfer/{transfer}`, handler: 'lfs', lfs: 'download', streamed: true, permission: 'read', cache: NOT_CACHED, budget: 'other', query: [] },
  { id: 'lfs-upload', face: 'web', methods: ['PUT'], pattern: `${LFS}/transfer/{transfer}`, handler: 'lfs', lfs: 'upload', streamed: true, permission: 'git:push', cache: NOT_CACHED, budget: 'other', query: [] },
  { id: 'lfs-verify', face: 'web', methods: ['POST'], pattern: `${LFS}/transfer/{transfer}`, handler: 'lfs', lfs: 'verify', streamed: true, permission: 'git:push', cache: NOT_CACHED, budget: 'other', query: [] },
] as const satisfies readonly RouteDef<string>[];

/** The id of a row: a misspelled id does not compile. */
export type RouteId = (typeof ROUTES)[number]['id'];
type TableIds = RouteId;

declare module '../core/route' {
  // Every RouteDef (and so every call) speaks the table's ids: comparing one with a misspelled id does not compile.
  interface RouteIds extends Record<TableIds, true> {}
}

const BY_ID: ReadonlyMap<string, RouteDef> = new Map(ROUTES.map((r) => [r.id, r]));

/** The row with this id, for the calls the sidecar makes on its own (scope look-ups, listings). */
export function routeById(id: RouteId): RouteDef {
  return BY_ID.get(id)!;
}
