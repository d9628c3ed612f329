/** Result values produced by the API handlers, Bitbucket's error shape, and writing results out. */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface ApiResult {
  status: number;
  headers?: Record<string, string>;
  /** JSON body (filtered by `fields=` before serialisation) */
  json?: unknown;
  /** raw body */
  body?: Buffer | string;
}

export function json(status: number, value: unknown, headers?: Record<string, string>): ApiResult {
  return { status, json: value, headers };
}

/** `{"type":"error","error":{"message":"..."}}` */
export function apiError(status: number, message: string, extra: Record<string, unknown> = {}): ApiResult {
  return { status, json: { type: 'error', error: { message, ...extra } } };
}

export function notFound(message = 'Resource not found'): ApiResult {
  return apiError(404, message);
}

export const REPO_NOT_FOUND =
  'You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated.';

export function text(status: number, body: string | Buffer, contentType = 'text/plain'): ApiResult {
  return { status, body, headers: { 'content-type': contentType } };
}

/** Serialise a result (JSON already filtered) into status, headers and bytes. */
export function serialise(r: ApiResult): { status: number; headers: Record<string, string>; body: Buffer } {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  let body: Buffer;
  if (r.json !== undefined) {
    body = Buffer.from(JSON.stringify(r.json), 'utf8');
    if (!headers['content-type']) headers['content-type'] = 'application/json; charset=utf-8';
  } else if (r.body !== undefined) {
    body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body;
  } else {
    body = Buffer.alloc(0);
  }
  return { status: r.status, headers, body };
}

/** Write a serialised result; GET 200 answers carry an ETag and honour If-None-Match with 304. */
export function writeResult(req: IncomingMessage, res: ServerResponse, r: ApiResult): void {
  const s = serialise(r);
  const headers = { ...s.headers };
  if ((req.method === 'GET' || req.method === 'HEAD') && s.status === 200) {
    const etag = `"${createHash('sha1').update(s.body).digest('hex').slice(0, 32)}"`;
    headers.etag = etag;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
  }
  if (s.status === 204 || s.status === 304) {
    res.writeHead(s.status, headers);
    res.end();
    return;
  }
  headers['content-length'] = String(s.body.length);
  res.writeHead(s.status, headers);
  res.end(req.method === 'HEAD' ? undefined : s.body);
}

export function readBody(req: IncomingMessage, limit = 50 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
