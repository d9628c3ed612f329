import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { Logger } from 'pino';
import type { StreamContext } from '../core/stream';
import { request, type Dispatcher } from '../upstream/undici';
import { sendLfsError } from './answer';
import type { TransferAction, TransferTable } from './transfers';

export interface TransferSettings {
  transfers: TransferTable;
  /** The dispatcher for a link's origin (direct, or through the outbound proxy for it). */
  dispatcherFor: (href: string) => Dispatcher;
  userAgent: string;
  logger: Logger;
}

/** What of the client's request reaches the storage besides Bitbucket's headers for the link. */
const RANGE = /^bytes=\d{1,19}-\d{0,19}$/;
const LENGTH = /^\d{1,19}$/;
/** What of the storage's answer reaches the client. */
const ANSWER_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges'];

/**
 * One object transfer through the sidecar: the id is looked up for this client, repository and
 * action (anything else is 404), and the request streams to Bitbucket's link with the headers
 * Bitbucket gave for it — both ways with backpressure, never buffered; a client that goes away
 * cancels the upstream request.
 */
export async function lfsTransfer(settings: TransferSettings, action: TransferAction, req: IncomingMessage, res: ServerResponse, ctx: StreamContext): Promise<void> {
  const call = ctx.call!;
  const head = req.method === 'HEAD';
  const t = settings.transfers.take(call.params.transfer!, ctx.client!.id, call.params.ws, call.params.repo, action);
  if (!t) {
    req.resume();
    return sendLfsError(res, 404, 'This Git LFS transfer link is unknown or has expired; run the command again.', {}, head);
  }
  const headers: Record<string, string> = { ...t.headers, 'user-agent': settings.userAgent };
  const range = req.headers.range;
  if (action === 'download' && typeof range === 'string' && RANGE.test(range)) headers.range = range;
  if (action !== 'download') {
    const type = req.headers['content-type'];
    if (typeof type === 'string' && type.length <= 128) headers['content-type'] = type;
    const length = req.headers['content-length'];
    if (typeof length === 'string' && LENGTH.test(length)) headers['content-length'] = length;
  }
  const log = settings.logger.child({ component: 'lfs', repository: `${t.ws}/${t.repo}` });
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  let answer: Dispatcher.ResponseData;
  try {
    answer = await request(t.href, settings.dispatcherFor(t.href), {
      method: action === 'download' ? (head ? 'HEAD' : 'GET') : action === 'upload' ? 'PUT' : 'POST',
      headers,
      body: action === 'download' ? undefined : req,
      signal: abort.signal,
    });
  } catch (e) {
    if (abort.signal.aborted) return;
    log.warn({ action, err: (e as Error).message }, 'LFS transfer to Bitbucket storage failed');
    ctx.audit.upstreamError = 'network';
    return sendLfsError(res, 502, 'The sidecar could not reach Bitbucket storage for this Git LFS transfer; try again.', {}, head);
  }
  ctx.audit.upstreamStatus = answer.statusCode;
  if (answer.statusCode < 200 || answer.statusCode >= 300) {
    // Storage error bodies are not passed on (they may carry signed URLs); ours say what happened.
    answer.body.resume();
    log.warn({ action, upstreamStatus: answer.statusCode }, 'Bitbucket storage refused a Git LFS transfer');
    const status = answer.statusCode === 404 ? 404 : answer.statusCode === 403 || answer.statusCode === 401 ? 403 : answer.statusCode === 422 || answer.statusCode === 400 ? 422 : 502;
    return sendLfsError(res, status, `Bitbucket storage answered the Git LFS ${action} with HTTP ${answer.statusCode}`, {}, head);
  }
  const out: Record<string, string> = { 'cache-control': 'no-store' };
  for (const name of ANSWER_HEADERS) {
    const v = answer.headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  res.writeHead(answer.statusCode, out);
  if (head) {
    answer.body.resume();
    return void res.end();
  }
  await new Promise<void>((resolve) => {
    pipeline(answer.body, res, (err) => {
      if (err && !abort.signal.aborted) log.warn({ action, err: err.message }, 'LFS transfer stream ended early');
      resolve();
    });
  });
}
