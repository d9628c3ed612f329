/**
 * Git through a fork grant (the fork is the source of an open pull request into a repository the
 * client may read): answered from the grant repository (fork-repo.ts), which holds only the pull
 * requests' source branches, never proxied to the fork on Bitbucket — so the ref advertisement
 * shows those branches alone and a `want` of anything else finds nothing. With or without the
 * mirror: this handler sits in front of both. Pushes through a grant are refused.
 */
import type { Logger } from 'pino';
import type { StreamHandler } from '../core/stream';
import { serveUploadPack, sendPlain } from '../mirror/serve-pack';
import { ForkRepoError, type ForkRepos } from './fork-repo';
import { gitTarget } from './target';

export const FORK_GIT_HIT = 'bitbucket-sidecar; hit; detail=fork-grant';
export const FORK_GIT_MISS = 'bitbucket-sidecar; fwd=miss; detail=fork-grant';

/**
 * Which wants upload-pack accepts: those reachable from the advertised branch heads (all the
 * repository holds), never an arbitrary object id.
 */
const UPLOAD_PACK_CONFIG = ['uploadpack.allowAnySHA1InWant=false', 'uploadpack.allowReachableSHA1InWant=true', 'uploadpack.allowTipSHA1InWant=true', 'uploadpack.allowFilter=false'];

export function forkGitHandler(deps: { repos: ForkRepos; logger: Logger }, inner: StreamHandler): StreamHandler {
  const log = deps.logger.child({ component: 'fork-git' });
  return async (req, res, ctx) => {
    if (!ctx.fork) return inner(req, res, ctx);
    const head = req.method === 'HEAD';
    // Only the route and the canonical names matter here; the URL base is never contacted.
    const target = gitTarget('http://fork.invalid', ctx.call);
    if (!target.ok) return sendText(res, target.status, target.message, head);
    if (target.service !== 'git-upload-pack') return sendText(res, 403, 'Pushing to a pull request source fork is not allowed through this sidecar.', head);
    const method = (req.method ?? 'GET').toUpperCase();
    if (target.endpoint === 'upload-pack') {
      const type = String(req.headers['content-type'] ?? '').trim().toLowerCase();
      if (method !== 'POST' || type !== 'application/x-git-upload-pack-request') return sendText(res, 415, 'Expected Content-Type application/x-git-upload-pack-request for git-upload-pack', head);
      const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (!['identity', 'gzip', 'x-gzip'].includes(encoding)) return sendText(res, 415, `Content-Encoding ${encoding} is not supported; use gzip or none`, head);
    }
    const fork = `${target.ws}/${target.repo}`;
    let lease;
    try {
      lease = await deps.repos.acquire(fork, ctx.forkGrants?.length ? ctx.forkGrants : [ctx.fork]);
    } catch (e) {
      if (e instanceof ForkRepoError) return sendText(res, e.status, e.message, head);
      log.warn({ repository: fork, err: (e as Error).message }, 'fork grant repository failed');
      return sendText(res, 503, 'The pull request source could not be prepared; try again.', head);
    }
    ctx.audit.cache = lease.fetched ? FORK_GIT_MISS : FORK_GIT_HIT;
    try {
      if (res.destroyed) return;
      await serveUploadPack(req, res, {
        dir: lease.dir,
        advertise: target.endpoint === 'advertise',
        config: UPLOAD_PACK_CONFIG,
        log,
        repository: fork,
        failure: 'The sidecar could not serve the pull request source; try again.',
      });
    } finally {
      lease.release();
    }
  };
}

function sendText(res: Parameters<StreamHandler>[1], status: number, message: string, head: boolean): Promise<void> {
  if (head && !res.headersSent) {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
    res.end();
  } else sendPlain(res, status, message);
  return Promise.resolve();
}
