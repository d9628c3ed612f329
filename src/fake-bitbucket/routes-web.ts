/** The web face on the same port: git smart HTTP (authenticated) and workspace/user avatars (anonymous). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkGitAuth, WWW_AUTHENTICATE } from './auth';
import { serveGit } from './http-backend';
import { encodeSegment } from './ids';
import { text, type ApiResult } from './http-util';
import type { ParsedTarget } from './request-target';
import type { FakeState } from './state';
import type { LoggedRequest } from './types';

/** A 1×1 PNG (what ImageIO needs to be happy). */
export const AVATAR_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

const GIT_BODY_LOG_LIMIT = 4 * 1024 * 1024;
const SMART_HTTP_PATHS = new Set(['info/refs', 'git-upload-pack', 'git-receive-pack']);

export function handleWeb(state: FakeState, method: string, t: ParsedTarget): ApiResult {
  const s = t.segments.filter((x, i) => !(x === '' && i === t.segments.length - 1));
  const isGet = method === 'GET' || method === 'HEAD';
  if (isGet && s[0] === 'workspaces' && s[2] === 'avatar' && s.length <= 4) {
    const ws = state.model.findWorkspace(s[1] ?? '');
    if (!ws) return text(404, 'Not Found');
    return { status: 200, body: AVATAR_PNG, headers: { 'content-type': 'image/png', 'cache-control': 'max-age=3600' } };
  }
  if (isGet && s[0] === 'account' && s[2] === 'avatar') {
    return { status: 200, body: AVATAR_PNG, headers: { 'content-type': 'image/png' } };
  }
  return text(404, 'Not Found', 'text/html; charset=utf-8');
}

/** Git smart HTTP: auth, rename redirects, then `git http-backend`. Writes the response itself. */
export async function handleGit(state: FakeState, req: IncomingMessage, res: ServerResponse, t: ParsedTarget, entry: LoggedRequest): Promise<void> {
  const user = checkGitAuth(req.headers.authorization, state.credentials);
  if (!user) {
    req.resume();
    res.writeHead(401, { 'www-authenticate': WWW_AUTHENTICATE, 'content-type': 'text/plain' });
    res.end('Unauthorized\n');
    return;
  }
  const [ws = '', repoSeg = ''] = t.segments;
  const repoId = repoSeg.replace(/\.git$/i, '');
  const rest = t.segments.slice(2);
  const repo = state.model.findRepository(ws, repoId);
  if (!repo) {
    req.resume();
    const moved = state.model.redirectFor(ws, repoId);
    if (moved) {
      const suffix = repoSeg.toLowerCase().endsWith('.git') ? '.git' : '';
      const tail = rest.map((x) => encodeSegment(x)).join('/');
      const location = `${state.url}/${moved.workspace}/${moved.slug}${suffix}${rest.length ? `/${tail}` : ''}${t.rawQuery ? `?${t.rawQuery}` : ''}`;
      res.writeHead(301, { location, 'content-type': 'text/plain' });
      res.end('Moved Permanently\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Repository not found\n');
    return;
  }
  const service = rest.join('/');
  if (!SMART_HTTP_PATHS.has(service)) {
    // only the smart protocol, like Bitbucket (no dumb-protocol object or alternates paths)
    req.resume();
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not Found\n');
    return;
  }
  const chunks: Buffer[] = [];
  let logged = 0;
  const code = await serveGit(req, res, {
    gitDir: repo.gitDir,
    pathRest: service,
    rawQuery: t.rawQuery,
    remoteUser: user,
    onBodyChunk: (c) => {
      if (logged < GIT_BODY_LOG_LIMIT) {
        chunks.push(c.subarray(0, GIT_BODY_LOG_LIMIT - logged));
        logged += c.length;
      }
    },
    beforeEnd: (exitCode) => {
      entry.body = Buffer.concat(chunks);
      if (service === 'git-receive-pack' && exitCode === 0) state.markPushed(repo);
    },
  });
  entry.body = Buffer.concat(chunks);
  if (service === 'git-receive-pack' && code !== 0) state.markPushed(repo);
}
