/** A row of the route table (src/routes/catalog.ts) and what matching a request against it yields. */
import type { Permission } from './client';

export type Face = 'api' | 'web';
export type Handler = 'proxy' | 'identity' | 'git' | 'oauth' | 'avatar';
/** How long an answer may be reused; `dynamic` means the cache stage decides from the parameters. */
export type CacheClass = 'immutable' | 'metadata' | 'list' | 'dynamic' | 'none';

export interface RouteDef {
  id: string;
  face: Face;
  methods: readonly ('GET' | 'POST' | 'PUT' | 'DELETE')[];
  pattern: string;
  /** The trailing "/" the plugin sends in `/{repo}/?fields=mainbranch.name` and `src/{hash}/`. */
  trailingSlash?: 'optional';
  handler: Handler;
  /** Permission the client needs on the target, besides being in scope. */
  permission: Permission | 'none';
  cache: CacheClass;
  /** Query parameters forwarded upstream; every other parameter is dropped. */
  query: readonly string[];
  /** Schema a write body must satisfy (routes/bodies.ts). */
  body?: 'build-status' | 'hook';
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
}
