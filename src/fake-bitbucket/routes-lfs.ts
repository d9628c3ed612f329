/**
 * Git LFS on the fake: the batch API at `/{ws}/{repo}[.git]/info/lfs/objects/batch` (git
 * credentials, like Bitbucket) and a media storage at `/_lfs-media/{ws}/{repo}/{oid}[/verify]`
 * that stands for Bitbucket's storage hosts: it accepts only the signed header the batch answer
 * gave for that object and action. No locks API (404).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkGitAuth, WWW_AUTHENTICATE } from './auth';
import { readBody } from './http-util';
import { OID, type LfsStore } from './lfs-store';
import type { ParsedTarget } from './request-target';
import type { FakeState } from './state';
import type { LoggedRequest } from './types';

const MEDIA = '_lfs-media';
const LFS_TYPE = 'application/vnd.git-lfs+json';

export function isLfsTarget(t: ParsedTarget): boolean {
  return t.segments[0] === MEDIA || (t.kind === 'git' && t.segments[2] === 'info' && t.segments[3] === 'lfs');
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': LFS_TYPE, 'content-length': data.length, ...headers });
  res.end(data);
}

export async function handleLfs(state: FakeState, store: LfsStore, req: IncomingMessage, res: ServerResponse, t: ParsedTarget, entry: LoggedRequest): Promise<void> {
  const s = t.segments.filter((x) => x !== '');
  if (s[0] === MEDIA) return media(store, req, res, s.slice(1));
  const method = req.method ?? 'GET';
  if (!checkGitAuth(req.headers.authorization, state.credentials)) {
    req.resume();
    return json(res, 401, { message: 'Unauthorized' }, { 'www-authenticate': WWW_AUTHENTICATE });
  }
  const repo = state.model.findRepository(s[0] ?? '', (s[1] ?? '').replace(/\.git$/i, ''));
  if (!repo || method !== 'POST' || s.slice(2).join('/') !== 'info/lfs/objects/batch') {
    req.resume();
    return json(res, 404, { message: 'Not found' });
  }
  const body = await readBody(req, 1024 * 1024);
  entry.body = body;
  let asked: { operation?: unknown; objects?: { oid?: unknown; size?: unknown }[] };
  try {
    asked = JSON.parse(body.toString('utf8')) as typeof asked;
  } catch {
    return json(res, 422, { message: 'Invalid JSON' });
  }
  if ((asked.operation !== 'download' && asked.operation !== 'upload') || !Array.isArray(asked.objects)) return json(res, 422, { message: 'Invalid batch request' });
  const ws = repo.workspace;
  const slug = repo.slug;
  const link = (oid: string, action: string, suffix = '') => ({ href: `${state.url}/${MEDIA}/${ws}/${slug}/${oid}${suffix}`, header: { Authorization: `Bearer ${store.sign(ws, slug, oid, action)}` }, expires_in: 3600 });
  const objects = asked.objects.map((o) => {
    const oid = String(o.oid);
    const size = Number(o.size);
    if (!OID.test(oid)) return { oid, size, error: { code: 422, message: 'Invalid object id' } };
    const have = store.size(ws, slug, oid);
    if (asked.operation === 'download') return have === undefined ? { oid, size, error: { code: 404, message: 'Object does not exist' } } : { oid, size: have, actions: { download: link(oid, 'download') } };
    return have !== undefined ? { oid, size } : { oid, size, actions: { upload: link(oid, 'upload'), verify: link(oid, 'verify', '/verify') } };
  });
  json(res, 200, { transfer: 'basic', objects, hash_algo: 'sha256' });
}

async function media(store: LfsStore, req: IncomingMessage, res: ServerResponse, s: string[]): Promise<void> {
  const [ws = '', repo = '', oid = '', verify] = s;
  const method = req.method ?? 'GET';
  const action = verify === 'verify' ? 'verify' : method === 'PUT' ? 'upload' : 'download';
  if (!OID.test(oid) || (verify !== undefined && verify !== 'verify') || s.length > 4 || !store.checkSignature(req.headers.authorization, ws, repo, oid, action)) {
    req.resume();
    res.writeHead(403, { 'content-type': 'text/plain' });
    return void res.end('Forbidden\n');
  }
  if (action === 'upload') {
    const length = req.headers['content-length'];
    const result = await store.receive(ws, repo, oid, length === undefined ? undefined : Number(length), req);
    res.writeHead(result === 'ok' ? 200 : 422, { 'content-type': 'text/plain' });
    return void res.end(result === 'ok' ? '' : 'Object does not match its id\n');
  }
  if (action === 'verify') {
    const body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8') || '{}') as { oid?: unknown; size?: unknown };
    const have = store.size(ws, repo, oid);
    return json(res, have !== undefined && body.oid === oid && body.size === have ? 200 : 404, have !== undefined ? {} : { message: 'Object does not exist' });
  }
  const size = store.size(ws, repo, oid);
  if (size === undefined || (method !== 'GET' && method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    return void res.end('Not Found\n');
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range ? Math.min(Number(range[1]), size) : 0;
  res.writeHead(range ? 206 : 200, { 'content-type': 'application/octet-stream', 'content-length': size - start, ...(range ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}) });
  if (method === 'HEAD') return void res.end();
  store.read(ws, repo, oid, start).pipe(res);
}
