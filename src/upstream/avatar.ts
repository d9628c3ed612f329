import { LRUCache } from 'lru-cache';
import { upstreamDispatcher, type OutboundProxy } from './proxy';
import { request, type Dispatcher } from './undici';
import type { ClientDirectory } from '../auth/clients';
import type { StreamHandler } from '../core/stream';
import { sendError } from '../respond/errors';


/** What upstream answered for one workspace's avatar: the image, or the status we answer instead. */
type Avatar = { ok: true; type: string; data: Buffer } | { ok: false; status: 404 | 502; message: string };

export interface AvatarSettings {
  webUrl: string;
  /** How long an avatar is reused (the metadata freshness). */
  ttlSeconds: number;
  /** Bound on the bytes of all kept avatars. */
  maxBytes?: number;
  /** The outbound proxy for the web origin. */
  proxy?: OutboundProxy;
}

/** An avatar larger than this is passed on but not kept. */
const MAX_AVATAR_BYTES = 512 * 1024;
/** Refusals (404, upstream trouble) are kept briefly, so they cannot be turned into an upstream call per request either. */
const REFUSAL_TTL_MS = 30_000;

/**
 * Workspace avatars (#24): the plugin fetches them without credentials, so they are served to
 * anyone — but only for workspaces some client is scoped to; others answer 404. Whatever the
 * caller's `ts=` (a cache-buster), one workspace costs at most one upstream call per freshness
 * period: answers are kept per workspace, bounded in bytes, and concurrent misses share one fetch.
 */
export function avatarHandler(settings: AvatarSettings, directory: () => ClientDirectory): StreamHandler {
  const agent = upstreamDispatcher(settings.proxy, { keepAliveTimeout: 4_000 });
  const avatars = new LRUCache<string, Avatar>({
    maxSize: settings.maxBytes ?? 8 * 1024 * 1024,
    maxEntrySize: MAX_AVATAR_BYTES,
    sizeCalculation: (a) => (a.ok ? a.data.length : 0) + 256,
    ttl: Math.max(1, settings.ttlSeconds) * 1000,
    fetchMethod: async (ws, _stale, { options }): Promise<Avatar> => {
      const avatar = await fetchAvatar(settings.webUrl, ws, agent);
      if (!avatar.ok) options.ttl = REFUSAL_TTL_MS;
      return avatar;
    },
  });

  return async (req, res, ctx) => {
    const ws = ctx.match.params.ws;
    const head = req.method === 'HEAD';
    if (!ws || ws.startsWith('{') || !directory().clients.some((c) => c.scope.some((r) => r.workspace === ws))) {
      ctx.audit.decision = 'out-of-scope';
      return sendError(res, 404, 'Resource not found', {}, head);
    }
    ctx.audit.decision = 'allow';
    const cached = avatars.has(ws);
    let avatar: Avatar | undefined;
    try {
      avatar = await avatars.fetch(ws);
    } catch {
      avatar = undefined;
    }
    ctx.audit.cache = cached ? 'hit' : 'miss';
    if (!avatar) return sendError(res, 502, 'Bitbucket is unreachable', {}, head);
    if (!avatar.ok) return sendError(res, avatar.status, avatar.message, {}, head);
    res.writeHead(200, { 'content-type': avatar.type, 'content-length': avatar.data.length, 'cache-control': 'max-age=3600' });
    res.end(head ? undefined : avatar.data);
  };
}

async function fetchAvatar(webUrl: string, ws: string, agent: Dispatcher): Promise<Avatar> {
  const url = `${webUrl}/workspaces/${encodeURIComponent(ws)}/avatar/`;
  try {
    const up = await request(url, agent, { method: 'GET', headersTimeout: 15_000, bodyTimeout: 15_000 });
    if (up.statusCode !== 200) {
      await up.body.dump();
      return up.statusCode === 404 ? { ok: false, status: 404, message: 'Resource not found' } : { ok: false, status: 502, message: 'Bitbucket did not return the avatar' };
    }
    const type = String(up.headers['content-type'] ?? 'application/octet-stream');
    if (!/^image\//i.test(type)) {
      await up.body.dump();
      return { ok: false, status: 502, message: 'Bitbucket did not return an image' };
    }
    return { ok: true, type, data: Buffer.from(await up.body.arrayBuffer()) };
  } catch {
    return { ok: false, status: 502, message: 'Bitbucket is unreachable' };
  }
}
