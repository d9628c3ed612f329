import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
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

const error = (message: string) => ({ type: 'error', error: { message } });

/**
 * `/_sidecar/*` on every listener, served by express: health and readiness for anyone, metrics for
 * `ops:read`, the webhook receiver (its own signature check). Paths match in any case and with or
 * without a trailing slash (express's defaults); everything else is a Bitbucket-shaped 404.
 */
export function opsRouter(deps: OpsDeps): OpsHandler {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  const restricted = (req: Request, res: Response, next: NextFunction) => {
    const verdict = deps.authorize ? deps.authorize(req) : 'ok';
    if (verdict === 'ok') return next();
    if (verdict === 'unauthenticated') {
      res.set('WWW-Authenticate', BASIC_CHALLENGE);
      res.status(401).json(error('This endpoint needs a sidecar token with the ops:read permission'));
      return;
    }
    res.status(403).json(error('This sidecar token does not have the ops:read permission'));
  };

  app.get('/_sidecar/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/_sidecar/ready', async (req, res) => {
    const query = new URL(req.originalUrl, 'http://sidecar.invalid').searchParams;
    const skip = [...query.entries()].filter(([, v]) => v === 'skip').map(([k]) => k);
    const { ok, checks } = await deps.ready({ skip });
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', checks });
  });
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get('/_sidecar/metrics', restricted, async (_req, res) => {
      const m = await metrics();
      res.type(m.contentType).send(m.body);
    });
  }
  if (deps.webhook) app.post(deps.webhook.path, (req, res) => deps.webhook!.handler(req, res));

  app.use((_req: Request, res: Response) => {
    res.status(404).json(error('Resource not found'));
  });
  // A failing handler: a Bitbucket-shaped 500 (express would answer an HTML page with a stack).
  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(500).json(error('The sidecar failed to handle this request'));
  });
  return (req, res) => app(req, res);
}
