import express, { type Express } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface OpsDeps {
  /** `skip`: checks left out for this probe (`?upstream=skip` → ['upstream']). */
  ready: (options?: { skip?: string[] }) => Promise<{ ok: boolean; checks: Record<string, string> }>;
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** The webhook relay (src/webhooks): `POST {webhooks.path}`, authenticated by its signature, not by a token. */
  webhook?: { path: string; handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> };
}

/** `/_sidecar/*` on every listener: health and readiness need no credentials. */
export function opsRouter(deps: OpsDeps): Express {
  const r = express();
  r.disable('x-powered-by');
  r.disable('etag');
  r.get('/_sidecar/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/_sidecar/ready', async (req, res) => {
    const query = new URL(req.originalUrl ?? req.url, 'http://sidecar.invalid').searchParams;
    const skip = [...query.entries()].filter(([, v]) => v === 'skip').map(([k]) => k);
    const { ok, checks } = await deps.ready({ skip });
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', checks });
  });
  if (deps.metrics) {
    const metrics = deps.metrics;
    r.get('/_sidecar/metrics', async (_req, res) => {
      const m = await metrics();
      res.set('content-type', m.contentType).send(m.body);
    });
  }
  if (deps.webhook) {
    const { path, handler } = deps.webhook;
    r.post(path, (req, res) => handler(req, res));
  }
  r.use((_req, res) => {
    res.status(404).json({ type: 'error', error: { message: 'Resource not found' } });
  });
  return r;
}
