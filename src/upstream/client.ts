import { Agent, errors, request } from 'undici';
import { gunzipSync } from 'node:zlib';
import { upstreamPath, type ApiAnswer, type ApiCall } from '../routes/call';

export interface UpstreamClientSettings {
  apiUrl: string;
  authorization: string;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  userAgent: string;
  maxBodyBytes?: number;
}

/** Upstream response headers worth keeping; everything else (cookies, internals) is dropped. */
const KEPT_HEADERS = ['content-type', 'etag', 'last-modified', 'location', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-resource', 'x-ratelimit-nearlimit'];

export class UpstreamError extends Error {
  constructor(
    readonly status: 502 | 504,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Stage 6 (REST): sends a canonical call to Bitbucket with the real credential. The URL is built
 * from the call's canonical parts; nothing of the client's request (path, headers) is passed on.
 * Never retries: a retried write could be applied twice.
 */
export class UpstreamClient {
  private readonly agent: Agent;
  readonly origin: string;
  private readonly basePath: string;

  constructor(private readonly settings: UpstreamClientSettings) {
    const u = new URL(settings.apiUrl);
    this.origin = u.origin;
    this.basePath = u.pathname.replace(/\/$/, '');
    this.agent = new Agent({
      connect: { timeout: settings.connectTimeoutMs },
      keepAliveTimeout: 30_000,
      connections: 64,
      headersTimeout: settings.responseTimeoutMs,
      bodyTimeout: settings.responseTimeoutMs,
    });
  }

  async send(call: ApiCall, signal?: AbortSignal): Promise<ApiAnswer> {
    const url = `${this.origin}${this.basePath}${upstreamPath(call)}`;
    const headers: Record<string, string> = {
      authorization: this.settings.authorization,
      accept: 'application/json',
      'accept-encoding': 'gzip',
      'user-agent': this.settings.userAgent,
    };
    if (call.body !== undefined) headers['content-type'] = call.contentType ?? 'application/json; charset=UTF-8';
    try {
      const res = await request(url, {
        method: call.method === 'HEAD' ? 'GET' : call.method,
        headers,
        body: call.body,
        dispatcher: this.agent,
        signal,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      const limit = this.settings.maxBodyBytes ?? 64 * 1024 * 1024;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > limit) {
          res.body.destroy();
          throw new UpstreamError(502, 'Bitbucket answered with a body larger than the sidecar accepts');
        }
        chunks.push(chunk as Buffer);
      }
      let body = Buffer.concat(chunks);
      if (String(res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') body = gunzipSync(body);
      const kept: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const v = res.headers[name];
        if (typeof v === 'string') kept[name] = v;
      }
      // A success whose JSON does not parse was cut short (a connection that ended cleanly mid-body).
      // Handing it on would give the client a corrupt answer; for a write, it may still have been applied.
      if (res.statusCode >= 200 && res.statusCode < 300 && body.length > 0 && /json/i.test(kept['content-type'] ?? '') && !parses(body)) {
        throw new UpstreamError(
          502,
          call.method === 'GET' || call.method === 'HEAD'
            ? 'Bitbucket sent an incomplete or corrupt response'
            : 'Bitbucket sent an incomplete answer to this write; it may have been applied — check before repeating it',
        );
      }
      return { status: res.statusCode, headers: kept, body };
    } catch (e) {
      throw toUpstreamError(e);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function parses(body: Buffer): boolean {
  try {
    JSON.parse(body.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

function toUpstreamError(e: unknown): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (e instanceof errors.HeadersTimeoutError || e instanceof errors.BodyTimeoutError || e instanceof errors.ConnectTimeoutError) {
    return new UpstreamError(504, 'Bitbucket did not answer in time');
  }
  if (e instanceof Error && e.name === 'AbortError') return new UpstreamError(504, 'The request was cancelled');
  if (e instanceof Error && /gunzip|incorrect header|unexpected end/i.test(e.message)) return new UpstreamError(502, 'Bitbucket sent a corrupt response');
  return new UpstreamError(502, 'Bitbucket is unreachable or closed the connection');
}
