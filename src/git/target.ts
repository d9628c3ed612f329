import type { ApiCall } from '../core/call';
import type { GitEndpoint } from '../core/route';

export type { GitEndpoint };
export type GitService = 'git-upload-pack' | 'git-receive-pack';

const SLUG = /^[a-z0-9._-]{1,128}$/;

export type GitTarget =
  | { ok: true; /** The route id, for log lines. */ route: string; endpoint: GitEndpoint; service: GitService; url: string; ws: string; repo: string }
  | { ok: false; status: 400 | 403 | 500; message: string };

/**
 * The upstream URL of a git request, built only from the canonical call: the route's endpoint, workspace and
 * repository slugs, and the `service` parameter. Nothing of the client's own path or query is used,
 * so a request can only ever reach the repository the scope gate decided about.
 */
export function gitTarget(webUrl: string, call: ApiCall | undefined): GitTarget {
  if (!call) return { ok: false, status: 500, message: 'The sidecar reached the git proxy without a scope decision' };
  const route = call.route.id;
  const endpoint = call.route.git;
  if (!endpoint) return { ok: false, status: 500, message: `The git proxy cannot serve route ${route}` };
  const { ws, repo } = call.params;
  // The gate hands over lower-case slugs with uuid forms resolved; anything else is a bug upstream of us.
  if (!ws || !repo || !SLUG.test(ws) || !SLUG.test(repo) || /^\.+$/.test(ws) || /^\.+$/.test(repo)) {
    return { ok: false, status: 500, message: 'The sidecar reached the git proxy without canonical repository names' };
  }
  const base = new URL(webUrl);
  const prefix = `${base.origin}${base.pathname.replace(/\/+$/, '')}/${ws}/${repo}.git`;

  if (endpoint === 'advertise') {
    const services = call.query.filter(([k]) => k === 'service').map(([, v]) => v);
    if (services.length !== 1 || (services[0] !== 'git-upload-pack' && services[0] !== 'git-receive-pack')) {
      // Without `service` git falls back to the "dumb" protocol, which Bitbucket does not serve either.
      return { ok: false, status: 403, message: 'Only the smart HTTP protocol is served: info/refs needs service=git-upload-pack or service=git-receive-pack' };
    }
    const service = services[0];
    return { ok: true, route, endpoint, service, url: `${prefix}/info/refs?service=${service}`, ws, repo };
  }
  const service = endpoint === 'upload-pack' ? 'git-upload-pack' : 'git-receive-pack';
  return { ok: true, route, endpoint, service, url: `${prefix}/${service}`, ws, repo };
}
