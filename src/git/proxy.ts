import { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Logger } from 'pino';
import type { StreamContext, StreamHandler } from '../core/stream';
import { nodeAgent, type OutboundProxy } from '../upstream/proxy';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers';
import { gitTarget, type GitTarget } from './target';
import { upstreamFailure, type GitFailure } from './upstream-status';

export interface GitProxySettings {
  /** Upstream web URL (`https://bitbucket.org`); repositories live at `{webUrl}/{ws}/{repo}.git`. */
  webUrl: string;
  /** Authorization header value of the upstream git credential. Never logged, never returned. */
  authorization: string;
  /** Sent when the client sends no usable User-Agent. */
  userAgent: string;
  /** Time allowed to open the upstream connection. */
  connectTimeoutMs: number;
  /**
   * Longest silence tolerated on the upstream connection once it is open. Bitbucket may think for
   * a long time before the first pack byte of a big clone (protocol v0 sends no keep-alives), so
   * this is minutes, not seconds.
   */
  idleTimeoutMs: number;
  /** The outbound proxy for the web origin (see upstream/proxy.ts). */
  proxy?: OutboundProxy;
  /** Sees every status Bitbucket answers (credential health). */
  onUpstreamStatus?: (status: number) => void;
  logger: Logger;
}

export const GIT_IDLE_TIMEOUT_MS = 10 * 60_000;

interface InFlight {
  target: Extract<GitTarget, { ok: true }>;
  ctx: StreamContext;
  gzipRequested: boolean;
  proxyReq?: ClientRequest;
  /** The client went away before we finished answering. */
  clientGone: boolean;
  timedOut?: 'connect' | 'idle';
}

export interface GitProxy {
  handler: StreamHandler;
  close(): void;
}

/**
 * The git smart-HTTP leg (docs/architecture.md): runs after authentication and the
 * scope gate and streams the request to Bitbucket's web host with http-proxy-middleware.
 *
 * - The upstream URL is rebuilt from the canonical call (`gitTarget`); the client's path is never used.
 * - The client's headers are replaced by a closed list (`upstreamRequestHeaders`): the client's
 *   Authorization is dropped and the upstream git credential attached.
 * - Bodies are piped both ways with backpressure, never buffered.
 * - A client that disconnects takes the upstream request down with it.
 * - Any upstream answer other than 2xx becomes a text/plain message of our own (`upstreamFailure`):
 *   git prints it, redirects are not handed on, and an upstream 401 (our credential) is a 502.
 */
export function createGitProxy(settings: GitProxySettings): GitProxy {
  const base = new URL(settings.webUrl);
  // Free sockets are dropped before a typical server's keep-alive timeout (Node's own is 5 s) so
  // that a streamed POST is never written into a connection the server is just closing.
  const agentOptions = { keepAlive: true, timeout: 4_000, scheduling: 'lifo' as const };
  const agent = nodeAgent(base, settings.proxy, agentOptions);
  const inflight = new WeakMap<IncomingMessage, InFlight>();
  const log = settings.logger.child({ component: 'git' });

  const proxy = createProxyMiddleware<IncomingMessage, ServerResponse>({
    router: (req) => inflight.get(req)?.target.url,
    ignorePath: true,
    changeOrigin: false,
    // Merged over the client-derived headers of every request; kept here rather than on the
    // client's request object, where later code could read or log it.
    headers: { host: base.host, authorization: settings.authorization },
    xfwd: false,
    selfHandleResponse: true,
    agent,
    // http-proxy's default plugins would log target URLs and write their own error pages.
    ejectPlugins: true,
    plugins: [
      (server) => {
        server.on('proxyReq', (proxyReq, req) => onProxyReq(proxyReq, req));
        server.on('proxyRes', (proxyRes, req, res) => onProxyRes(proxyRes, req, res));
        server.on('error', (err, req, res) => onError(err, req, res as ServerResponse));
        server.on('econnreset', (err, req, res) => onError(err, req, res as ServerResponse));
      },
    ],
  });

  function onProxyReq(proxyReq: ClientRequest, req: IncomingMessage): void {
    const f = inflight.get(req);
    if (!f) return void proxyReq.destroy();
    f.proxyReq = proxyReq;
    if (f.clientGone) return void proxyReq.destroy();
    const socket = proxyReq.socket as Socket | null;
    if (socket?.connecting) {
      const timer = setTimeout(() => {
        f.timedOut = 'connect';
        proxyReq.destroy(new Error('connect timeout'));
      }, settings.connectTimeoutMs);
      timer.unref();
      socket.once('connect', () => clearTimeout(timer));
      socket.once('secureConnect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    }
    proxyReq.setTimeout(settings.idleTimeoutMs, () => {
      f.timedOut = 'idle';
      proxyReq.destroy(new Error('idle timeout'));
    });
  }

  function onProxyRes(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void {
    const f = inflight.get(req);
    const status = proxyRes.statusCode ?? 502;
    settings.onUpstreamStatus?.(status);
    if (f) f.ctx.audit.upstreamStatus = status;
    if (!f || f.clientGone || res.destroyed) return void proxyRes.destroy();

    if (status >= 200 && status < 300) {
      const headers = clientResponseHeaders(proxyRes.headers, f.gzipRequested);
      if (!headers.ok) {
        proxyRes.destroy();
        log.warn({ route: f.target.route, repository: `${f.target.ws}/${f.target.repo}`, encoding: headers.encoding }, 'upstream git answer in an unexpected content coding');
        return sendText(res, 502, 'Bitbucket answered in a content coding the sidecar does not pass on', req.method === 'HEAD');
      }
      res.writeHead(status, headers.headers);
      // pipeline destroys the upstream response when the client side fails, and the reverse.
      pipeline(proxyRes, res, (err) => {
        if (err && !f.clientGone) log.warn({ route: f.target.route, repository: `${f.target.ws}/${f.target.repo}`, err: err.message }, 'git stream ended early');
      });
      return;
    }

    // Drain the error body (small; never shown to the client) so the connection can be reused.
    proxyRes.resume();
    const failure = upstreamFailure(status, proxyRes.headers, f.target);
    if (failure.log) log.warn({ route: f.target.route, repository: `${f.target.ws}/${f.target.repo}`, upstreamStatus: status }, failure.log);
    answer(res, failure, req.method === 'HEAD');
  }

  function onError(err: Error & { code?: string }, req: IncomingMessage, res: ServerResponse): void {
    const f = inflight.get(req);
    f?.proxyReq?.destroy();
    if (!f || f.clientGone) return;
    const where = { route: f.target.route, repository: `${f.target.ws}/${f.target.repo}` };
    if (res.headersSent) {
      log.warn({ ...where, err: err.code ?? err.message }, 'git stream to Bitbucket failed mid-answer');
      return void res.destroy();
    }
    if (f.timedOut === 'connect') {
      log.warn(where, 'connecting to Bitbucket for git timed out');
      return sendText(res, 504, 'The sidecar could not connect to Bitbucket in time; try again.', req.method === 'HEAD');
    }
    if (f.timedOut === 'idle') {
      log.warn(where, 'Bitbucket stayed silent on a git request for too long');
      return sendText(res, 504, 'Bitbucket did not answer the git request in time; try again.', req.method === 'HEAD');
    }
    log.warn({ ...where, err: err.code ?? err.message }, 'git request to Bitbucket failed');
    sendText(res, 502, 'The sidecar could not reach Bitbucket for this git request; try again.', req.method === 'HEAD');
  }

  const handler: StreamHandler = (req, res, ctx) => {
    const target = gitTarget(settings.webUrl, ctx.call);
    if (!target.ok) {
      sendText(res, target.status, target.message, req.method === 'HEAD');
      return Promise.resolve();
    }
    // The gate never lets a fork be pushed to; refuse here too rather than trust one layer.
    if (ctx.fork && target.service === 'git-receive-pack') {
      sendText(res, 403, 'Pushing to a pull request source fork is not allowed through this sidecar.', req.method === 'HEAD');
      return Promise.resolve();
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const headers = upstreamRequestHeaders(req.headers, target.endpoint, method, settings.userAgent);
    if (!headers.ok) {
      sendText(res, headers.status, headers.message, method === 'HEAD');
      return Promise.resolve();
    }
    const f: InFlight = { target, ctx, gzipRequested: headers.headers['accept-encoding'] === 'gzip', clientGone: false };
    inflight.set(req, f);
    // http-proxy copies `req.headers` into the upstream request; leave it only what we built
    // (the client's Authorization and everything else not on the list is gone from here on).
    req.headers = headers.headers as IncomingHttpHeaders;

    return new Promise<void>((resolve) => {
      res.once('close', () => {
        if (!res.writableFinished) {
          // The client hung up (or the stream broke): cancel the upstream request now.
          f.clientGone = true;
          f.proxyReq?.destroy();
        }
        resolve();
      });
      void proxy(req, res, (err?: unknown) => {
        if (err) onError(err instanceof Error ? err : new Error(String(err)), req, res);
      });
    });
  };

  return {
    handler,
    close: () => agent.destroy(),
  };
}

function answer(res: ServerResponse, failure: GitFailure, head: boolean): void {
  sendText(res, failure.status, failure.message, head, failure.headers);
}

/** Git shows text/plain error bodies to the user as `remote: ...` lines. */
export function sendText(res: ServerResponse, status: number, message: string, head = false, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const body = Buffer.from(`${message}\n`);
  res.writeHead(status, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-cache' });
  res.end(head ? undefined : body);
}
