/** A row of the route table (src/routes/catalog.ts) and what matching a request against it yields. */
import type { Permission } from './client';

export type Face = 'api' | 'web';
/** `lfs`: Git LFS (src/lfs/); the row's `lfs` field says which endpoint. */
export type Handler = 'proxy' | 'identity' | 'git' | 'oauth' | 'avatar' | 'lfs';
/** How long an answer may be reused (the `cache.freshness` classes); `none`: never stored. */
export type CacheClass = 'immutable' | 'metadata' | 'list' | 'none';
export type Query = readonly (readonly [string, string])[];

/** How the cache treats a route's answers. Tag functions and predicates live in src/routes/. */
export interface RouteCache {
  class: CacheClass;
  /** True when this call names content by commit id and so never changes: stored as `immutable`. */
  immutableWhen?: (params: RouteParams, query: Query) => boolean;
  /** Invalidation tags besides `ws:` and `repo:` (src/routes/tags.ts names the vocabulary). */
  tags?: (params: RouteParams, query: Query) => string[];
  /** `fields=mainbranch.name` is answered from the stored full object, without asking upstream. */
  derive?: 'mainbranch';
}

/** Which of Bitbucket's hourly rate-limit buckets a call is counted in. */
export type BudgetClass = 'repository' | 'webhook' | 'other';

/**
 * What an answer teaches beyond the facts every JSON body gives (workspaces, repositories, projects):
 *  - `pull-requests`: pull requests answered for this repository (fork grants);
 *  - `open-pull-requests`: a complete list of open ones (grants of closed pull requests end);
 *  - `commit-hash` / `ref-target`: the full hash of a fork's commit, at `hash` or `target.hash`;
 *  - `repository-page` / `repository-object`: repository objects the mirror's index keeps.
 */
export type Teaching = 'pull-requests' | 'open-pull-requests' | 'commit-hash' | 'ref-target' | 'repository-page' | 'repository-object';

/** What the mirror can compute a route's answer from (src/mirror/answers.ts keeps the functions). */
export type MirrorCapability = 'branch-list' | 'branch-one' | 'tag-list' | 'tag-one' | 'commit-one' | 'commit-range' | 'source' | 'repository-index';

/** The git smart-HTTP endpoint a git route is: the ref advertisement, a fetch or a push. */
export type GitEndpoint = 'advertise' | 'upload-pack' | 'receive-pack';

/**
 * The ids of the route table's rows. src/routes/catalog.ts fills this in (declaration merging),
 * so that `RouteId` is derived from the table while core/ imports nothing above it.
 */
export interface RouteIds {}
/** A row's id: one of the table's (any string only while the table is not part of the program). */
export type RouteId = [keyof RouteIds] extends [never] ? string : keyof RouteIds & string;

export interface RouteDef<Id extends string = RouteId> {
  id: Id;
  face: Face;
  methods: readonly ('GET' | 'POST' | 'PUT' | 'DELETE')[];
  pattern: string;
  /** The trailing "/" the plugin sends in `/{repo}/?fields=mainbranch.name` and `src/{hash}/`. */
  trailingSlash?: 'optional';
  handler: Handler;
  /** Permission the client needs on the target, besides being in scope. */
  permission: Permission | 'none';
  /**
   * A stricter permission some requests need (`info/refs?service=git-receive-pack` is a push; an
   * LFS batch whose `operation` is not `download` is an upload). `body`: the write body the pipeline read.
   */
  permissionFor?: (query: Query, body?: Buffer) => Permission | undefined;
  cache: RouteCache;
  /** Tags a successful write makes stale; a write without it drops everything about its repository. */
  invalidates?: (params: RouteParams) => string[];
  budget: BudgetClass;
  teaches?: readonly Teaching[];
  /** `repository-listing`: filtered to what each client may see before it is passed on. */
  shape?: 'repository-listing';
  mirror?: MirrorCapability;
  git?: GitEndpoint;
  /** Kept warm by the refresher; `vouchedBy`: the webhook family whose deliveries prove it current. */
  warm?: { vouchedBy?: 'push' | 'pullrequest' };
  /** Query parameters forwarded upstream; every other parameter is dropped. */
  query: readonly string[];
  /** Schema a write body must satisfy (routes/bodies.ts). */
  body?: 'build-status' | 'hook' | 'lfs-batch';
  /** The body is streamed by the handler (git, LFS object transfers), never read by the pipeline. */
  streamed?: true;
  /** The Git LFS endpoint a row is (src/lfs/): the batch API, the locks API, or an object transfer (its action). */
  lfs?: 'batch' | 'locks' | 'download' | 'upload' | 'verify';
  /** Reachable by a fork that is the source of an open PR into an in-scope repository. */
  forkAccess?: 'branch' | 'commit' | 'src' | 'git';
}

/** A route with its parameters as the client named them (uuid forms not yet resolved). */
export interface RouteMatch {
  route: RouteDef;
  params: RouteParams;
  trailingSlash: boolean;
}

export interface RouteParams {
  ws?: string;
  repo?: string;
  name?: string;
  rev?: string;
  hash?: string;
  id?: string;
  hook?: string;
  path?: string;
  /** An LFS object transfer id the sidecar handed out (src/lfs/transfers.ts). */
  transfer?: string;
}
