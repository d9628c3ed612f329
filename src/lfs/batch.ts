import type { Logger } from 'pino';
import type { StreamContext } from '../core/stream';
import type { LfsOperation, LfsTokens } from '../auth/lfs-tokens';
import { encodeSegment } from '../routes/canonical';
import { request, type Dispatcher } from '../upstream/undici';
import { LFS_MEDIA_TYPE } from './answer';
import type { TransferAction, TransferTable } from './transfers';

/** A batch answer of 100 objects is a few tens of KiB; anything far larger is not one. */
export const MAX_BATCH_ANSWER_BYTES = 4 * 1024 * 1024;

export interface BatchSettings {
  webUrl: string;
  /** Authorization header value of the upstream git credential. Never logged, never returned. */
  authorization: string;
  userAgent: string;
  dispatcher: Dispatcher;
  tokens: LfsTokens;
  transfers: TransferTable;
  onUpstreamStatus?: (status: number) => void;
  logger: Logger;
}

/** What the handler answers: JSON for git-lfs, with a status and maybe `Retry-After`. */
export interface BatchReply {
  status: number;
  json: unknown;
  headers?: Record<string, string>;
}

interface UpstreamAction {
  href?: unknown;
  header?: unknown;
  expires_in?: unknown;
  expires_at?: unknown;
}

const ACTIONS: readonly TransferAction[] = ['download', 'upload', 'verify'];
const OID = /^[0-9a-f]{64}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const HEADER_VALUE = /^[\x20-\x7e]{0,8192}$/;

const fail = (status: number, message: string, headers?: Record<string, string>): BatchReply => ({ status, json: { message }, headers });

/**
 * The batch API through the scope (docs/lfs.md): the request is rebuilt from the validated body and
 * sent to Bitbucket with the upstream git credential; in the answer every transfer link becomes a
 * link to the sidecar (an opaque id in src/lfs/transfers.ts) carrying a short-lived LFS token, so
 * object bytes go through the sidecar and Bitbucket's links and headers never reach the client.
 */
export async function lfsBatch(settings: BatchSettings, ctx: StreamContext): Promise<BatchReply> {
  const call = ctx.call!;
  const client = ctx.client!;
  const ws = call.params.ws!;
  const repo = call.params.repo!;
  const asked = JSON.parse(call.body!.toString('utf8')) as { operation: LfsOperation; transfers?: string[]; ref?: { name: string } | null; objects: { oid: string; size: number }[] };
  if (asked.transfers && !asked.transfers.includes('basic')) return fail(422, 'Only the basic transfer adapter is offered through this sidecar');
  // One link per action per object (upload + verify): refuse before asking Bitbucket when they would not fit.
  const wanted = asked.objects.length * (asked.operation === 'upload' ? 2 : 1);
  if (!settings.transfers.hasRoom(client.id, wanted)) return fail(503, 'Too many Git LFS transfers are pending for this client; try again shortly.', { 'retry-after': '30' });

  const body = JSON.stringify({ operation: asked.operation, transfers: ['basic'], ...(asked.ref ? { ref: { name: asked.ref.name } } : {}), objects: asked.objects.map((o) => ({ oid: o.oid, size: o.size })), hash_algo: 'sha256' });
  const url = `${settings.webUrl.replace(/\/+$/, '')}/${encodeSegment(ws)}/${encodeSegment(repo)}.git/info/lfs/objects/batch`;
  const log = settings.logger.child({ component: 'lfs' });
  let status: number;
  let text: string;
  try {
    const res = await request(url, settings.dispatcher, {
      method: 'POST',
      headers: { authorization: settings.authorization, accept: LFS_MEDIA_TYPE, 'content-type': LFS_MEDIA_TYPE, 'user-agent': settings.userAgent },
      body,
    });
    status = res.statusCode;
    settings.onUpstreamStatus?.(status);
    ctx.audit.upstreamStatus = status;
    const read = await readBounded(res.body, MAX_BATCH_ANSWER_BYTES);
    if (read === undefined) {
      log.warn({ repository: `${ws}/${repo}` }, 'Bitbucket LFS batch answer too large');
      return fail(502, 'Bitbucket answered the Git LFS batch request with more than the sidecar accepts');
    }
    text = read;
    if (status < 200 || status >= 300) return upstreamFailure(status, res.headers, ws, repo, log);
  } catch (e) {
    log.warn({ repository: `${ws}/${repo}`, err: (e as Error).message }, 'LFS batch request to Bitbucket failed');
    ctx.audit.upstreamError = 'network';
    return fail(502, 'The sidecar could not reach Bitbucket for this Git LFS request; try again.');
  }

  let parsed: { transfer?: unknown; objects?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return fail(502, 'Bitbucket answered the Git LFS batch request with something that is not JSON');
  }
  if ((parsed.transfer !== undefined && parsed.transfer !== 'basic') || !Array.isArray(parsed.objects)) return fail(502, 'Bitbucket answered the Git LFS batch request in a form the sidecar does not pass on');

  const askedOids = new Set(asked.objects.map((o) => o.oid));
  const token = settings.tokens.issue(client.id, ws, repo, asked.operation);
  const base = `${ctx.bases.clientWeb}/${encodeSegment(ws)}/${encodeSegment(repo)}.git/info/lfs/transfer`;
  const objects: unknown[] = [];
  for (const raw of parsed.objects as Record<string, unknown>[]) {
    if (!raw || typeof raw !== 'object' || typeof raw.oid !== 'string' || !OID.test(raw.oid) || !askedOids.has(raw.oid)) continue;
    const size = typeof raw.size === 'number' && Number.isSafeInteger(raw.size) && raw.size >= 0 ? raw.size : 0;
    const err = raw.error as { code?: unknown; message?: unknown } | undefined;
    if (err && typeof err === 'object') {
      // Per-object errors (404 missing, 422 invalid) are git-lfs's to report; only their code and a short message pass.
      objects.push({ oid: raw.oid, size, error: { code: typeof err.code === 'number' ? err.code : 500, message: typeof err.message === 'string' ? err.message.slice(0, 200) : 'error' } });
      continue;
    }
    const actions: Record<string, unknown> = {};
    const given = (raw.actions ?? {}) as Record<string, UpstreamAction>;
    for (const action of ACTIONS) {
      const a = given[action];
      if (!a) continue;
      const link = upstreamLink(a, settings.webUrl);
      if (!link) return fail(502, 'Bitbucket answered the Git LFS batch request with a transfer link the sidecar does not follow');
      const ttl = upstreamTtlMs(a);
      const added = settings.transfers.add({ client: client.id, ws, repo, oid: raw.oid, action, href: link.href, headers: link.headers }, Math.min(ttl ?? Infinity, token.expiresInSeconds * 1000));
      if (!added) return fail(503, 'Too many Git LFS transfers are pending for this client; try again shortly.', { 'retry-after': '30' });
      actions[action] = { href: `${base}/${added.id}`, header: { Authorization: `Bearer ${token.token}` }, expires_in: Math.max(1, Math.floor(added.ttlMs / 1000)) };
    }
    objects.push({ oid: raw.oid, size, authenticated: true, ...(Object.keys(actions).length ? { actions } : {}) });
  }
  return { status: 200, json: { transfer: 'basic', objects, hash_algo: 'sha256' } };
}

/**
 * Bitbucket's link for an action: https (or its own web origin, the fake's plain HTTP in tests),
 * no credentials in it, headers limited to plain tokens and printable values.
 */
function upstreamLink(a: UpstreamAction, webUrl: string): { href: string; headers: Record<string, string> } | undefined {
  if (typeof a.href !== 'string' || a.href.length > 8192) return undefined;
  let url: URL;
  try {
    url = new URL(a.href);
  } catch {
    return undefined;
  }
  if (url.username || url.password) return undefined;
  if (url.protocol !== 'https:' && url.origin !== new URL(webUrl).origin) return undefined;
  const headers: Record<string, string> = {};
  if (a.header !== undefined) {
    if (!a.header || typeof a.header !== 'object') return undefined;
    const entries = Object.entries(a.header as Record<string, unknown>);
    if (entries.length > 32) return undefined;
    for (const [k, v] of entries) {
      if (!HEADER_NAME.test(k) || typeof v !== 'string' || !HEADER_VALUE.test(v)) return undefined;
      headers[k.toLowerCase()] = v;
    }
  }
  return { href: url.href, headers };
}

/** How long Bitbucket's link lives, from `expires_in` (seconds) or `expires_at` (RFC 3339). */
function upstreamTtlMs(a: UpstreamAction): number | undefined {
  if (typeof a.expires_in === 'number' && Number.isFinite(a.expires_in) && a.expires_in > 0) return a.expires_in * 1000;
  if (typeof a.expires_at === 'string') {
    const at = Date.parse(a.expires_at);
    if (Number.isFinite(at) && !a.expires_at.startsWith('0001-')) return Math.max(0, at - Date.now());
  }
  return undefined;
}

/** Upstream bodies are never passed on (they may name the upstream account); our own messages are. */
function upstreamFailure(status: number, headers: Record<string, string | string[] | undefined>, ws: string, repo: string, log: Logger): BatchReply {
  if (status === 401) {
    log.warn({ repository: `${ws}/${repo}`, upstreamStatus: status }, 'Bitbucket refused the upstream git credential for Git LFS');
    return fail(502, 'Bitbucket refused the sidecar\'s git credential (upstream.gitAuth) for Git LFS');
  }
  if (status === 403) return fail(403, `Bitbucket does not let the sidecar's account use Git LFS on ${ws}/${repo}`);
  if (status === 404) return fail(404, 'Repository not found');
  if (status === 422) return fail(422, 'Bitbucket refused the Git LFS batch request as invalid');
  if (status === 429) {
    const after = headers['retry-after'];
    const value = typeof after === 'string' && /^\d{1,6}$/.test(after) ? after : '60';
    return fail(429, 'Bitbucket rate-limited this Git LFS request; try again later.', { 'retry-after': value });
  }
  log.warn({ repository: `${ws}/${repo}`, upstreamStatus: status }, 'Bitbucket failed a Git LFS batch request');
  return fail(502, `Bitbucket answered the Git LFS batch request with HTTP ${status}`);
}

/** The body as text, or undefined when it is longer than `max` (the rest is not read). */
async function readBounded(body: Dispatcher.ResponseData['body'], max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
