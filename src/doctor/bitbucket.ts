/**
 * What Bitbucket says of the sidecar's own credentials: one cheap read per workspace some client is
 * scoped to (never anything outside every scope), the rate-limit headers seen, and one git
 * advertisement of a repository in scope with the git credential.
 */
import { toClient } from '../auth/clients';
import type { Config } from '../config/schema';
import { decideRepository } from '../scope/policy';
import { credentialName } from '../upstream/credential-health';
import { upstreamCredentials } from '../upstream/credentials';
import { upstreamDispatcher, type ProxyChooser } from '../upstream/proxy';
import { request, type Dispatcher } from '../upstream/undici';
import { errorCode, fail, pass, type CheckResult } from './check';

interface Listing {
  values?: { slug?: unknown; project?: { key?: unknown } | null }[];
  size?: unknown;
}

const FIX_REJECTED = 'replace upstream.auth with a valid credential (an API token with repository read scope, or a workspace/repository access token); see docs/operations.md#troubleshooting';

function statusProblem(status: number, ws: string, what: string): { detail: string; fix: string } {
  if (status === 401) return { detail: `Bitbucket rejected the upstream credential (HTTP 401) reading ${what}`, fix: FIX_REJECTED };
  if (status === 403) return { detail: `the upstream credential may not read ${what} (HTTP 403)`, fix: `give the credential read access to the repositories of ${ws} (token scopes, workspace membership)` };
  if (status === 404) return { detail: `workspace ${ws} is unknown or not visible to the upstream credential (HTTP 404)`, fix: `check the workspace slug in clients[].scope and that the credential's account or token reaches ${ws}` };
  if (status === 429) return { detail: `Bitbucket refused with 429: the credential's hourly allowance is spent`, fix: 'wait for the rolling hour to pass, and lower upstream.budget.repositoryRequestsPerHour if other tools share the credential' };
  return { detail: `Bitbucket answered HTTP ${status} reading ${what}`, fix: 'retry later; check https://bitbucket.status.atlassian.com' };
}

export interface BitbucketCheckOptions {
  timeoutMs: number;
}

export async function checkBitbucket(config: Config, choose: ProxyChooser, opts: BitbucketCheckOptions): Promise<CheckResult[]> {
  const creds = upstreamCredentials(config.upstream);
  const name = credentialName(config.upstream.auth);
  const clients = config.clients.map(toClient);
  const workspaces = [...new Set(clients.flatMap((c) => c.scope.map((r) => r.workspace)))].sort();
  const dispatcherOptions = { connect: { timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs };
  const api: Dispatcher = upstreamDispatcher(choose(config.upstream.apiUrl), dispatcherOptions);
  const web: Dispatcher = upstreamDispatcher(choose(config.upstream.webUrl), dispatcherOptions);
  const results: CheckResult[] = [];
  let rateLimit: Record<string, string> | undefined;
  let gitTarget: { ws: string; repo: string } | undefined;
  try {
    for (const ws of workspaces) {
      const check = `credential reads ${ws}`;
      let status: number;
      let body: Listing | undefined;
      try {
        const res = await request(`${config.upstream.apiUrl}/2.0/repositories/${encodeURIComponent(ws)}?pagelen=100`, api, { method: 'GET', headers: { authorization: creds.rest, accept: 'application/json' } });
        status = res.statusCode;
        if (status === 200) body = (await res.body.json()) as Listing;
        else await res.body.dump();
        if (!rateLimit && status === 200) {
          rateLimit = {};
          for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-nearlimit', 'x-ratelimit-resource']) {
            const v = res.headers[h];
            if (typeof v === 'string') rateLimit[h] = v;
          }
        }
      } catch (e) {
        results.push(fail(check, `no answer from ${config.upstream.apiUrl} (${errorCode(e)})`, 'fix the network checks above first'));
        continue;
      }
      if (status !== 200) {
        const p = statusProblem(status, ws, `workspace ${ws}`);
        results.push(fail(check, `${p.detail} with ${name}`, p.fix));
        continue;
      }
      const size = typeof body?.size === 'number' ? `${body.size} repositories visible` : 'listing read';
      results.push(pass(check, `${name}: ${size}`));
      if (!gitTarget) {
        for (const v of body?.values ?? []) {
          if (typeof v.slug !== 'string') continue;
          const project = typeof v.project?.key === 'string' ? v.project.key : null;
          if (clients.some((c) => decideRepository(c, ws, v.slug as string, project) === 'allow')) {
            gitTarget = { ws, repo: v.slug };
            break;
          }
        }
      }
    }
    if (workspaces.length === 0) results.push(fail('credential', 'no client is scoped to any workspace', 'give clients[].scope at least one workspace'));
    results.push(rateLimitCheck(rateLimit, config));
    results.push(await gitCheck(config, web, creds.git.header, gitTarget));
  } finally {
    await Promise.all([api.close().catch(() => undefined), web.close().catch(() => undefined)]);
  }
  return results;
}

function rateLimitCheck(seen: Record<string, string> | undefined, config: Config): CheckResult {
  const budget = config.upstream.budget.repositoryRequestsPerHour;
  if (!seen) return pass('rate limit', 'not read (no workspace answered)');
  const limit = seen['x-ratelimit-limit'];
  if (limit) {
    const rest = ['x-ratelimit-remaining', 'x-ratelimit-nearlimit'].filter((h) => seen[h]).map((h) => `${h.slice(12)} ${seen[h]}`);
    return pass('rate limit', `Bitbucket says ${limit} requests/hour${rest.length ? ` (${rest.join(', ')})` : ''}; the sidecar budgets by it`);
  }
  return pass('rate limit', `no X-RateLimit headers (Bitbucket sends them to access tokens only); the sidecar budgets ${budget} repository requests/hour (upstream.budget)`);
}

async function gitCheck(config: Config, web: Dispatcher, header: string, target: { ws: string; repo: string } | undefined): Promise<CheckResult> {
  const check = 'git credential';
  if (!target) return pass(check, 'not checked: no repository in any client scope was in the first listing page');
  const url = `${config.upstream.webUrl}/${encodeURIComponent(target.ws)}/${encodeURIComponent(target.repo)}.git/info/refs?service=git-upload-pack`;
  try {
    const res = await request(url, web, { method: 'GET', headers: { authorization: header, 'user-agent': 'git/2 (bitbucket-sidecar doctor)' } });
    await res.body.dump();
    const type = String(res.headers['content-type'] ?? '');
    if (res.statusCode === 200 && type.startsWith('application/x-git-upload-pack-advertisement')) return pass(check, `git over HTTPS reads ${target.ws}/${target.repo}`);
    if (res.statusCode === 401 || res.statusCode === 403) return fail(check, `Bitbucket rejected the git credential (HTTP ${res.statusCode}) for ${target.ws}/${target.repo}`, 'set upstream.gitAuth (API tokens: user x-bitbucket-api-token-auth; access tokens: x-token-auth) or fix upstream.auth');
    return fail(check, `git advertisement of ${target.ws}/${target.repo} answered HTTP ${res.statusCode} (${type || 'no content type'})`, `check upstream.webUrl (${config.upstream.webUrl})`);
  } catch (e) {
    return fail(check, `no answer from ${config.upstream.webUrl} (${errorCode(e)})`, 'fix the network checks above first');
  }
}
