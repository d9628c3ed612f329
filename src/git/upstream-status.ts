import type { IncomingHttpHeaders } from 'node:http';

export interface GitFailure {
  status: number;
  /** Shown to the git user (git prints text/plain bodies as `remote: ...`). */
  message: string;
  headers?: Record<string, string>;
  /** Set when the operator should hear about it. */
  log?: string;
}

/**
 * Turns an upstream non-2xx answer into our own message. Upstream bodies are never passed on: they
 * may name the upstream account (the person whose credential the sidecar holds), and a `Location`
 * or `WWW-Authenticate` from upstream would send the client somewhere we have not checked.
 */
export function upstreamFailure(status: number, headers: IncomingHttpHeaders, target: { ws: string; repo: string; service: string }): GitFailure {
  const repo = `${target.ws}/${target.repo}`;
  if (status === 401) {
    // Our upstream credential was refused. Answering 401 would make git ask Jenkins for a
    // different password, which cannot help: the fix is in the sidecar's configuration.
    return {
      status: 502,
      message: 'Bitbucket rejected the sidecar\'s own git credential (upstream.gitAuth). This is a sidecar configuration problem, not a problem with your token; tell the sidecar operator.',
      log: 'Bitbucket rejected the upstream git credential (check upstream.gitAuth)',
    };
  }
  if (status >= 300 && status < 400) {
    return {
      status: 502,
      message: `Bitbucket redirected the git request for ${repo}; the sidecar does not follow or pass on redirects.`,
      log: 'Bitbucket redirected a git request',
    };
  }
  if (status === 403) {
    const what = target.service === 'git-receive-pack' ? 'push to' : 'read';
    return {
      status: 403,
      message: `Bitbucket does not let the sidecar's account ${what} ${repo}.`,
      log: 'Bitbucket refused a git request for the upstream credential',
    };
  }
  if (status === 404) return { status: 404, message: 'Repository not found' };
  if (status === 429) {
    const retry = typeof headers['retry-after'] === 'string' && /^[0-9]{1,6}$/.test(headers['retry-after']) ? headers['retry-after'] : undefined;
    return {
      status: 429,
      message: 'Bitbucket\'s rate limit for git requests has been reached; try again later.',
      headers: retry ? { 'retry-after': retry } : undefined,
      log: 'Bitbucket rate-limited a git request',
    };
  }
  if (status === 413) return { status: 413, message: 'Bitbucket refused the git request as too large.' };
  if (status >= 500) {
    return { status: 502, message: `Bitbucket answered the git request with HTTP ${status}; try again.`, log: 'Bitbucket failed a git request' };
  }
  return { status: status >= 400 && status < 500 ? status : 502, message: `Bitbucket refused the git request (HTTP ${status}).`, log: 'Bitbucket refused a git request' };
}
