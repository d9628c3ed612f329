import type { IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { upstreamDispatcher, type OutboundProxy } from './proxy';
import { errors, type Dispatcher } from './undici';
import type { BodyMemo } from '../core/body-memo';
import { upstreamPath } from '../routes/call';
import type { ApiAnswer, ApiCall } from '../core/call';

export interface UpstreamClientSettings {
  apiUrl: string;
  authorization: string;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  userAgent: string;
  maxBodyBytes?: number;
  /** The outbound proxy for the API origin (see upstream/proxy.ts). */
  proxy?: OutboundProxy;
  /** The sidecar's body memo: the parse that checks an answer is the one the later stages reuse. */
  memo: BodyMemo;
}

/** Upstream response headers worth keeping; everything else (cookies, internals) is dropped. */
const KEPT_HEADERS = ['content-type', 'etag', 'last-modified', 'location', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-resource', 'x-ratelimit-nearlimit'];

export class UpstreamError extends Error {
  constructor(
    readonly status: 502 | 504,
    message: string,
    /** What went wrong instead of an answer, for the audit line (`ENOTFOUND`, `timeout`, …). */
    readonly code = 'error',
  ) {
    super(message);
  }
}

/** The system or undici code of a network failure (`ENOTFOUND`, `ECONNREFUSED`, …), when it has one. */
function networkCode(e: unknown): string {
  for (let x: unknown = e, depth = 0; x && depth < 4; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,39}$/.test(code)) return code;
  }
  return 'network';
}

/**
 * Stage 6 (REST): sends a canonical call to Bitbucket with the real credential. The URL is built
 * from the call's canonical parts; nothing of the client's request (path, headers) is passed on.
 * Never retries: a retried write could be applied twice.
 */
export class UpstreamClient {
  private readonly agent: Dispatcher;
  readonly origin: string;
  private readonly basePath: string;
  /** The same for every call (a write adds its content type to a copy). */
  private readonly headers: Record<string, string>;

  constructor(private readonly settings: UpstreamClientSettings) {
    const u = new URL(settings.apiUrl);
    this.origin = u.origin;
    this.basePath = u.pathname.replace(/\/$/, '');
    this.agent = upstreamDispatcher(settings.proxy, {
      connect: { timeout: settings.connectTimeoutMs },
      keepAliveTimeout: 30_000,
      connections: 64,
      headersTimeout: settings.responseTimeoutMs,
      bodyTimeout: settings.responseTimeoutMs,
    });
    this.headers = {
      authorization: settings.authorization,
      accept: 'application/json',
      'accept-encoding': 'gzip',
      'user-agent': settings.userAgent,
    };
  }

  /**
   * One call, through the keep-alive pool. Dispatched with a handler of our own rather than
   * `request()`: no body stream and async iterator per call, the answer is collected as its chunks
   * arrive and settled from the parser's callbacks (a fraction of a miss's added latency).
   */
  send(call: ApiCall, signal?: AbortSignal): Promise<ApiAnswer> {
    if (signal?.aborted) return Promise.reject(new UpstreamError(504, 'The request was cancelled', 'cancelled'));
    const limit = this.settings.maxBodyBytes ?? 64 * 1024 * 1024;
    const headers = call.body === undefined ? this.headers : { ...this.headers, 'content-type': call.contentType ?? 'application/json; charset=UTF-8' };
    return new Promise<ApiAnswer>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let cancelled: UpstreamError | undefined;
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      let chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const onAbort = () => stop(new UpstreamError(504, 'The request was cancelled', 'cancelled'));
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const fail = (e: unknown) => {
        if (settle()) reject(toUpstreamError(e));
      };
      /** Gives up on the call: the connection's answer is abandoned (undici closes it). */
      const stop = (e: UpstreamError) => {
        if (controller && !controller.aborted) controller.abort(e);
        else cancelled = e; // not on a connection yet: abort as soon as it is
        fail(e);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.agent.dispatch(
        { origin: this.origin, path: `${this.basePath}${upstreamPath(call)}`, method: call.method === 'HEAD' ? 'GET' : call.method, headers, body: call.body ?? null },
        {
          onRequestStart: (c) => {
            controller = c;
            if (cancelled) c.abort(cancelled);
            status = 0;
            chunks = [];
            size = 0;
          },
          onResponseStart: (_c, statusCode, h) => {
            status = statusCode;
            responseHeaders = h;
          },
          onResponseData: (_c, chunk) => {
            if (settled) return;
            size += chunk.length;
            if (size > limit) return stop(new UpstreamError(502, 'Bitbucket answered with a body larger than the sidecar accepts', 'too-large'));
            chunks.push(chunk);
          },
          onResponseEnd: () => {
            if (settled) return;
            try {
              const answer = this.answerOf(call, status, responseHeaders, chunks, size);
              if (settle()) resolve(answer);
            } catch (e) {
              fail(e);
            }
          },
          onResponseError: (_c, e) => fail(e),
        },
      );
    });
  }

  private answerOf(call: ApiCall, status: number, headers: IncomingHttpHeaders, chunks: Buffer[], size: number): ApiAnswer {
    // An allocation of its own (not a slice of a shared pool): the cache can keep it as it is.
    let body = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const c of chunks) at += c.copy(body, at);
    if (String(headers['content-encoding'] ?? '').toLowerCase() === 'gzip') body = gunzipSync(body);
    const kept: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const v = headers[name];
      if (typeof v === 'string') kept[name] = v;
    }
    // A success whose JSON does not parse was cut short (a connection that ended cleanly mid-body).
    // Handing it on would give the client a corrupt answer; for a write, it may still have been applied.
    // (Parsed once: the cache, learning and shaping take the same parse from the memo.)
    if (status >= 200 && status < 300 && body.length > 0 && /json/i.test(kept['content-type'] ?? '') && this.settings.memo.parse(body) === undefined) {
      throw new UpstreamError(
        502,
        call.method === 'GET' || call.method === 'HEAD'
          ? 'Bitbucket sent an incomplete or corrupt response'
          : 'Bitbucket sent an incomplete answer to this write; it may have been applied — check before repeating it',
        'corrupt',
      );
    }
    return { status, headers: kept, body };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function toUpstreamError(e: unknown): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError || e instanceof errors.ConnectTimeoutError) {
    return new UpstreamError(504, 'Bitbucket did not answer in time', 'timeout');
  }
  // Our own cancellations arrive as UpstreamError (above); a refused proxy tunnel is undici's only other abort.
  const refused = e instanceof Error ? /^Proxy response \((\d{3})\)/.exec(e.message) : null;
  if (refused) return new UpstreamError(502, `The outbound proxy refused the connection to Bitbucket (${refused[1]}); check upstream.proxy or HTTPS_PROXY`, `proxy-${refused[1]}`);
  if (e instanceof Error && e.name === 'AbortError') return new UpstreamError(504, 'The request was cancelled', 'cancelled');
  if (e instanceof Error && /gunzip|incorrect header|unexpected end/i.test(e.message)) return new UpstreamError(502, 'Bitbucket sent a corrupt response', 'corrupt');
  return new UpstreamError(502, 'Bitbucket is unreachable or closed the connection', networkCode(e));
}
