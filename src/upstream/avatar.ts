import { Agent, request } from './undici';
import type { ClientDirectory } from '../auth/clients';
import type { StreamHandler } from '../listen/pipeline';
import { sendError } from '../respond/errors';

let agent: Agent | undefined;
const avatarAgent = () => (agent ??= new Agent({ keepAliveTimeout: 4_000 }));

/**
 * Workspace avatars (#24): the plugin fetches them without credentials, so they are served to
 * anyone — but only for workspaces some client is scoped to; others answer 404.
 */
export function avatarHandler(webUrl: string, directory: () => ClientDirectory): StreamHandler {
  return async (req, res, ctx) => {
    const ws = ctx.match.params.ws;
    const head = req.method === 'HEAD';
    if (!ws || ws.startsWith('{') || !directory().clients.some((c) => c.scope.some((r) => r.workspace === ws))) {
      ctx.audit.decision = 'out-of-scope';
      return sendError(res, 404, 'Resource not found', {}, head);
    }
    ctx.audit.decision = 'allow';
    const ts = ctx.target.query.find(([k]) => k === 'ts')?.[1];
    const url = `${webUrl}/workspaces/${encodeURIComponent(ws)}/avatar/${ts ? `?ts=${encodeURIComponent(ts)}` : ''}`;
    try {
      const up = await request(url, avatarAgent(), { method: 'GET', headersTimeout: 15_000, bodyTimeout: 15_000 });
      ctx.audit.upstreamStatus = up.statusCode;
      if (up.statusCode !== 200) {
        await up.body.dump();
        return sendError(res, up.statusCode === 404 ? 404 : 502, up.statusCode === 404 ? 'Resource not found' : 'Bitbucket did not return the avatar', {}, head);
      }
      const type = String(up.headers['content-type'] ?? 'application/octet-stream');
      if (!/^image\//i.test(type)) {
        await up.body.dump();
        return sendError(res, 502, 'Bitbucket did not return an image', {}, head);
      }
      const data = Buffer.from(await up.body.arrayBuffer());
      res.writeHead(200, { 'content-type': type, 'content-length': data.length, 'cache-control': 'max-age=3600' });
      res.end(head ? undefined : data);
    } catch {
      sendError(res, 502, 'Bitbucket is unreachable', {}, head);
    }
  };
}
