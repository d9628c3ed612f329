import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseLegacyUrl } from 'node:url';
import { BASIC_CHALLENGE } from '../respond/errors';

export interface OpsDeps {
  /** `skip`: checks left out for this probe (`?upstream=skip` → ['upstream']). */
  ready: (options?: { skip?: string[] }) => Promise<{ ok: boolean; checks: Record<string, string> }>;
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** The webhook relay (src/webhooks): `POST {webhooks.path}`, authenticated by its signature, not by a token. */
  webhook?: { path: string; handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> };
  /**
   * Decides who may read the endpoints that name clients (metrics): a client token with `ops:read`.
   * Absent on the separate ops listener (`server.ops`), which answers them to whoever reaches it.
   */
  authorize?: (req: IncomingMessage) => 'ok' | 'unauthenticated' | 'forbidden';
}

export type OpsHandler = (req: IncomingMessage, res: ServerResponse) => void;

interface Route {
  method: 'GET' | 'POST';
  /** Needs `deps.authorize` to say ok. */
  restricted?: boolean;
  /** Lower case, no trailing slash. */
  path: string;
  handle: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
}

const NOT_FOUND = { type: 'error', error: { message: 'Resource not found' } };

/**
 * `/_sidecar/*` on every listener: health and readiness need no credentials.
 *
 * A handful of fixed routes, answered the way Express 5 answered them (it served them until it
 * cost ~2.3 MB of RSS for as long as the process lives, for four routes): paths matched without
 * regard to case and with or without one trailing slash, the query ignored; GET routes answer HEAD
 * too; anything else is the JSON 404; JSON bodies as `res.json` sent them, including its 304 to
 * `If-None-Match: *`; a failing handler answered by Express's own final handler (finalhandler).
 * test/ops/routes.test.ts compares both on a list of requests.
 */
export function opsRouter(deps: OpsDeps): OpsHandler {
  const routes: Route[] = [
    { method: 'GET', path: '/_sidecar/health', handle: (req, res) => sendJson(req, res, 200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/_sidecar/ready',
      handle: async (req, res) => {
        const query = new URL(req.url ?? '/', 'http://sidecar.invalid').searchParams;
        const skip = [...query.entries()].filter(([, v]) => v === 'skip').map(([k]) => k);
        const { ok, checks } = await deps.ready({ skip });
        sendJson(req, res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', checks });
      },
    },
  ];
  if (deps.metrics) {
    const metrics = deps.metrics;
    routes.push({
      method: 'GET',
      path: '/_sidecar/metrics',
      restricted: true,
      handle: async (req, res) => {
        const m = await metrics();
        send(req, res, 200, withUtf8Charset(m.contentType), m.body);
      },
    });
  }
  if (deps.webhook) {
    const { path, handler } = deps.webhook;
    routes.push({ method: 'POST', path: path.toLowerCase(), handle: handler });
  }
  return (req, res) => {
    const route = routeFor(routes, req);
    if (!route) return sendJson(req, res, 404, NOT_FOUND);
    const verdict = route.restricted && deps.authorize ? deps.authorize(req) : 'ok';
    if (verdict === 'unauthenticated') {
      res.setHeader('WWW-Authenticate', BASIC_CHALLENGE);
      return sendJson(req, res, 401, { type: 'error', error: { message: 'This endpoint needs a sidecar token with the ops:read permission' } });
    }
    if (verdict === 'forbidden') return sendJson(req, res, 403, { type: 'error', error: { message: 'This sidecar token does not have the ops:read permission' } });
    try {
      const done = route.handle(req, res);
      if (done) done.catch((e: unknown) => fail(req, res, e));
    } catch (e) {
      fail(req, res, e);
    }
  };
}

function routeFor(routes: Route[], req: IncomingMessage): Route | undefined {
  const pathname = pathnameOf(req.url ?? '');
  if (pathname === undefined) return undefined;
  let p = pathname.toLowerCase();
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  return routes.find((r) => r.method === method && r.path === p);
}

/** The path as Express's router saw it (parseurl): up to `?`, through Node's legacy parser when the target needs it. */
function pathnameOf(url: string): string | undefined {
  if (url.startsWith('/') && !/[\t\n\f\r #\u00a0\ufeff]/.test(url.split('?', 1)[0])) return url.split('?', 1)[0];
  return parseLegacyUrl(url).pathname ?? undefined;
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown): void {
  send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/** What Express's `res.send` did with a string body (no ETag: it was disabled). */
function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  if (fresh(req, status)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Express's `req.fresh` for an answer without ETag and Last-Modified: only `If-None-Match: *`
 * (without `Cache-Control: no-cache`) makes a GET or HEAD answered 2xx "not modified".
 */
function fresh(req: IncomingMessage, status: number): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (!((status >= 200 && status < 300) || status === 304)) return false;
  const cacheControl = req.headers['cache-control'];
  if (cacheControl && /(?:^|,)\s*?no-cache\s*?(?:,|$)/.test(cacheControl)) return false;
  return req.headers['if-none-match'] === '*';
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `type` with its charset parameter set to utf-8 (Express's `res.send` of a string, through the content-type package). */
function withUtf8Charset(type: string): string {
  const [main, ...rest] = type.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    let value = p.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length > 1) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    if (!params.has(name)) params.set(name, value);
  }
  params.set('charset', 'utf-8');
  let out = main.trim().toLowerCase();
  for (const [name, value] of params) out += `; ${name}=${TOKEN.test(value) ? value : `"${value.replace(/([\\"])/g, '\\$1')}"`}`;
  return out;
}

/** A handler failed: Express's final handler answers (500 page, stack outside production), loaded only then. */
function fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  const env = process.env.NODE_ENV || 'development';
  const finalhandler = require('finalhandler') as (req: IncomingMessage, res: ServerResponse, options: { env: string; onerror: (e: Error) => void }) => (e: unknown) => void;
  finalhandler(req, res, {
    env,
    onerror: (e) => {
      if (env !== 'test') console.error(e.stack || e.toString());
    },
  })(error);
}
