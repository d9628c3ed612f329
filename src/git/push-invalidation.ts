import type { StreamHandler } from '../core/stream';

/**
 * A push through the sidecar changes the repository's refs: what the cache holds about its branch
 * and tag lists is stale at once, without waiting for a webhook.
 */
export function invalidateAfterPush(inner: StreamHandler, invalidate: (ws: string, repo: string) => void): StreamHandler {
  return (req, res, ctx) => {
    const call = ctx.call;
    if (call?.route.id === 'git-receive-pack' && call.params.ws && call.params.repo) {
      const { ws, repo } = call.params;
      res.once('finish', () => {
        if (res.statusCode === 200) invalidate(ws, repo);
      });
    }
    return inner(req, res, ctx);
  };
}
