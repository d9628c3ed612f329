import type { RouteDef } from '../core/route';

const PAGE = ['page', 'pagelen', 'fields'] as const;
const LIST = [...PAGE, 'q', 'sort'] as const;
const REPO = '/2.0/repositories/{ws}/{repo}';

/**
 * The single list of what the sidecar serves. A request that matches no row is answered 404
 * without reaching any later stage.
 *
 * Pattern segments: literals, `{ws}` / `{repo}` (slug or {uuid}), `{name}` (one segment that may
 * carry %2F), `{rev}` (a commit, or a branch with %2F), `{hash}` (hex commit id), `{id}` (digits), `{hook}` ({uuid}), `{path*}` (the rest).
 */
export const ROUTES: readonly RouteDef[] = [
  // Identity (#none in the plugin; answered by the sidecar itself).
  { id: 'user', face: 'api', methods: ['GET'], pattern: '/2.0/user', handler: 'identity', permission: 'read', cache: 'none', query: ['fields'] },

  // #1 workspace, #2 repository listing.
  { id: 'workspace', face: 'api', methods: ['GET'], pattern: '/2.0/workspaces/{ws}', handler: 'proxy', permission: 'read', cache: 'metadata', query: ['fields'] },
  { id: 'repositories', face: 'api', methods: ['GET'], pattern: '/2.0/repositories/{ws}', handler: 'proxy', permission: 'read', cache: 'list', query: [...LIST, 'role'] },

  // #3 repository, #4 default branch (`/{repo}/?fields=mainbranch.name`).
  { id: 'repository', face: 'api', methods: ['GET'], pattern: REPO, trailingSlash: 'optional', handler: 'proxy', permission: 'read', cache: 'metadata', query: ['fields'] },

  // #5-#7 pull requests.
  { id: 'pullrequests', face: 'api', methods: ['GET'], pattern: `${REPO}/pullrequests`, handler: 'proxy', permission: 'read', cache: 'list', query: [...LIST, 'state'] },
  { id: 'pullrequest', face: 'api', methods: ['GET'], pattern: `${REPO}/pullrequests/{id}`, handler: 'proxy', permission: 'read', cache: 'list', query: ['fields'] },
  { id: 'pullrequest-commits', face: 'api', methods: ['GET'], pattern: `${REPO}/pullrequests/{id}/commits`, handler: 'proxy', permission: 'read', cache: 'list', query: [...PAGE] },

  // #8-#11 branches and tags.
  { id: 'branches', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/branches`, handler: 'proxy', permission: 'read', cache: 'list', query: LIST },
  { id: 'branch', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/branches/{name}`, handler: 'proxy', permission: 'read', cache: 'list', query: ['fields'], forkAccess: 'branch' },
  { id: 'tags', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/tags`, handler: 'proxy', permission: 'read', cache: 'list', query: LIST },
  { id: 'tag', face: 'api', methods: ['GET'], pattern: `${REPO}/refs/tags/{name}`, handler: 'proxy', permission: 'read', cache: 'list', query: ['fields'] },

  // #12 commit, #13 commit range.
  { id: 'commit', face: 'api', methods: ['GET'], pattern: `${REPO}/commit/{hash}`, handler: 'proxy', permission: 'read', cache: 'dynamic', query: ['fields'], forkAccess: 'commit' },
  { id: 'commits', face: 'api', methods: ['GET'], pattern: `${REPO}/commits`, handler: 'proxy', permission: 'read', cache: 'list', query: [...PAGE, 'include', 'exclude'] },

  // #14-#17 files: meta probe, content, directory listing (`src/{hash}/` is the root).
  { id: 'src', face: 'api', methods: ['GET'], pattern: `${REPO}/src/{rev}/{path*}`, trailingSlash: 'optional', handler: 'proxy', permission: 'read', cache: 'dynamic', query: [...PAGE, 'format', 'at', 'max_depth', 'q', 'sort'], forkAccess: 'src' },

  // #22 build status.
  { id: 'statuses-build', face: 'api', methods: ['POST'], pattern: `${REPO}/commit/{hash}/statuses/build`, handler: 'proxy', permission: 'statuses:write', cache: 'none', query: [], body: 'build-status' },

  // #18-#21 webhooks: URLs and secrets are sensitive, so reading needs the permission too.
  { id: 'hooks', face: 'api', methods: ['GET', 'POST'], pattern: `${REPO}/hooks`, handler: 'proxy', permission: 'webhooks:manage', cache: 'list', query: PAGE, body: 'hook' },
  { id: 'hook', face: 'api', methods: ['GET', 'PUT', 'DELETE'], pattern: `${REPO}/hooks/{hook}`, handler: 'proxy', permission: 'webhooks:manage', cache: 'list', query: ['fields'], body: 'hook' },

  // #25 OAuth client credentials, #24 workspace avatars, #26 git smart HTTP.
  { id: 'oauth-token', face: 'web', methods: ['POST'], pattern: '/site/oauth2/access_token', handler: 'oauth', permission: 'none', cache: 'none', query: [] },
  { id: 'workspace-avatar', face: 'web', methods: ['GET'], pattern: '/workspaces/{ws}/avatar', trailingSlash: 'optional', handler: 'avatar', permission: 'none', cache: 'metadata', query: ['ts'] },
  { id: 'git-info-refs', face: 'web', methods: ['GET'], pattern: '/{ws}/{repo}/info/refs', handler: 'git', permission: 'read', cache: 'none', query: ['service'], forkAccess: 'git' },
  { id: 'git-upload-pack', face: 'web', methods: ['POST'], pattern: '/{ws}/{repo}/git-upload-pack', handler: 'git', permission: 'read', cache: 'none', query: [], forkAccess: 'git' },
  { id: 'git-receive-pack', face: 'web', methods: ['POST'], pattern: '/{ws}/{repo}/git-receive-pack', handler: 'git', permission: 'git:push', cache: 'none', query: [] },
];
