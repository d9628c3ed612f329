/**
 * Git smart HTTP through the scope: the streaming leg of the web face (docs/architecture.md, "The git
 * path"). Authentication and the scope gate run in listen/pipeline before `handler` is called.
 */
export { createGitProxy, GIT_IDLE_TIMEOUT_MS, type GitProxy, type GitProxySettings } from './proxy';
export { gitTarget, type GitEndpoint, type GitService, type GitTarget } from './target';
export { upstreamRequestHeaders, clientResponseHeaders, acceptsGzip } from './headers';
export { upstreamFailure } from './upstream-status';
