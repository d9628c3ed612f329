/**
 * /_sidecar/* served by express (src/ops/routes.ts), driven with supertest: path spellings, methods,
 * the ops:read gate on metrics, the webhook receiver, failing handlers.
 */
import request from 'supertest';
import { opsRouter, type OpsDeps } from '../../src/ops/routes';

const deps = (authorize?: OpsDeps['authorize']): OpsDeps => ({
  ready: async (options) => {
    if (options?.skip?.includes('crash')) throw new Error('readiness crashed');
    const upstream = options?.skip?.includes('upstream') ? 'skipped' : 'unreachable';
    return { ok: upstream === 'skipped', checks: { config: 'ok', upstream } };
  },
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# HELP x y\nx 1\n' }),
  webhook: {
    path: '/_sidecar/hooks/in',
    handler: async (req, res) => {
      let n = 0;
      for await (const chunk of req) n += (chunk as Buffer).length;
      if (n === 13) throw new Error('unlucky body');
      res.writeHead(202, { 'content-type': 'text/plain' }).end(`got ${n}`);
    },
  },
  authorize,
});

const bitbucketError = (message: string) => ({ type: 'error', error: { message } });

describe('operations endpoints', () => {
  const open = opsRouter(deps());

  it.each(['/_sidecar/health', '/_sidecar/health/', '/_SIDECAR/Health', '/_sidecar/health?x=1'])('answers health at %s', async (path) => {
    const r = await request(open).get(path);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['x-powered-by']).toBeUndefined();
    expect(r.headers.etag).toBeUndefined();
  });

  it('answers HEAD for GET routes, without a body', async () => {
    const r = await request(open).head('/_sidecar/health');
    expect(r.status).toBe(200);
    expect(r.text).toBeUndefined();
  });

  it('reports readiness with its checks; a skipped check does not count', async () => {
    const down = await request(open).get('/_sidecar/ready');
    expect(down.status).toBe(503);
    expect(down.body).toEqual({ status: 'not ready', checks: { config: 'ok', upstream: 'unreachable' } });
    const up = await request(open).get('/_sidecar/ready?upstream=skip');
    expect(up.status).toBe(200);
    expect(up.body.status).toBe('ready');
  });

  it('serves metrics in the registry\'s content type', async () => {
    const r = await request(open).get('/_sidecar/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.text).toBe('# HELP x y\nx 1\n');
  });

  it.each([
    ['an unknown path', 'get', '/_sidecar/nothing'],
    ['a POST to health', 'post', '/_sidecar/health'],
    ['a GET of the webhook path', 'get', '/_sidecar/hooks/in'],
    ['a dot segment', 'get', '/_sidecar/../_sidecar/health/x'],
  ] as const)('answers %s with a Bitbucket-shaped 404', async (_name, method, path) => {
    const r = await request(open)[method](path);
    expect(r.status).toBe(404);
    expect(r.body).toEqual(bitbucketError('Resource not found'));
  });

  it('hands the webhook path to the receiver with its body unread', async () => {
    const r = await request(open).post('/_sidecar/hooks/in').set('content-type', 'application/json').send('{"a":1}');
    expect(r.status).toBe(202);
    expect(r.text).toBe('got 7');
  });

  it('answers a failing handler with a Bitbucket-shaped 500, no stack', async () => {
    const hook = await request(open).post('/_sidecar/hooks/in').send('thirteen byte');
    expect(hook.status).toBe(500);
    expect(hook.body).toEqual(bitbucketError('The sidecar failed to handle this request'));
    const ready = await request(open).get('/_sidecar/ready?crash=skip');
    expect(ready.status).toBe(500);
    expect(ready.text).not.toContain('readiness crashed');
  });
});

describe('metrics behind ops:read', () => {
  const verdicts: Record<string, 'ok' | 'unauthenticated' | 'forbidden'> = { 'Bearer ops': 'ok', 'Bearer reader': 'forbidden' };
  const gated = opsRouter(deps((req) => verdicts[req.headers.authorization ?? ''] ?? 'unauthenticated'));

  it('asks for credentials without a token', async () => {
    const r = await request(gated).get('/_sidecar/metrics');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Basic realm="Bitbucket.org HTTP"');
    expect(r.body).toEqual(bitbucketError('This endpoint needs a sidecar token with the ops:read permission'));
  });

  it('refuses a token without the permission, and serves one with it', async () => {
    expect((await request(gated).get('/_sidecar/metrics/').set('authorization', 'Bearer reader')).status).toBe(403);
    const ok = await request(gated).get('/_sidecar/METRICS').set('authorization', 'Bearer ops');
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('x 1');
  });

  it('keeps health, readiness and the webhook receiver open', async () => {
    expect((await request(gated).get('/_sidecar/health')).status).toBe(200);
    expect((await request(gated).get('/_sidecar/ready?upstream=skip')).status).toBe(200);
    expect((await request(gated).post('/_sidecar/hooks/in').send('{}')).status).toBe(202);
  });
});
