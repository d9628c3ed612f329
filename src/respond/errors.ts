import type { ServerResponse } from 'node:http';
import type { ApiAnswer } from '../core/call';

export const BASIC_CHALLENGE = 'Basic realm="Bitbucket.org HTTP"';

/** Bitbucket's error body: {"type":"error","error":{"message":"..."}}. */
export function errorBody(message: string): Buffer {
  return Buffer.from(JSON.stringify({ type: 'error', error: { message } }));
}

export function errorAnswer(status: number, message: string, headers: Record<string, string> = {}): ApiAnswer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: errorBody(message) };
}

export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, head = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(message);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, ...headers });
  res.end(head ? undefined : body);
}

/** Upstream errors that are not Bitbucket-shaped JSON (an HTML 500, a truncated body) are rewrapped. */
export function ensureErrorShape(answer: ApiAnswer): ApiAnswer {
  if (answer.status < 400) return answer;
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { type?: unknown; error?: { message?: unknown } };
    if (parsed && parsed.type === 'error' && typeof parsed.error?.message === 'string') return answer;
  } catch {
    // fall through
  }
  const text = answer.status === 429 ? 'Rate limit for this resource has been exceeded' : `Bitbucket answered HTTP ${answer.status}`;
  const keep: Record<string, string> = {};
  if (answer.headers['retry-after']) keep['retry-after'] = answer.headers['retry-after'];
  return { ...errorAnswer(answer.status, text, keep), cacheStatus: answer.cacheStatus, ageSeconds: answer.ageSeconds };
}
