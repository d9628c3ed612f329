import type { StreamHandler } from '../core/stream';

/**
 * A push through the sidecar changes the repository's refs: what the cache holds about it is
 * stale at once, without waiting for a webhook. The route's row names the tags a push drops.
 */
export function invalidateAfterPush(inner: StreamHandler, invalidate: (tags: string[]) => void): StreamHandler {
  return (req, res, ctx) => {
    const call = ctx.call;
    const tags = call?.route.invalidates?.(call.params) ?? [];
    if (tags.length > 0) {
      res.once('finish', () => {
        if (res.statusCode === 200) invalidate(tags);
      });
    }
    return inner(req, res, ctx);
  };
}
