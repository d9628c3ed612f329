/**
 * /_sidecar/* answered without Express (src/ops/routes.ts): the same answers, byte for byte but the
 * Date header, as the Express 5 router that served them before, for a list of requests — spellings
 * of the paths, methods, conditional requests, query strings, failing handlers.
 */
import express from 'express';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { opsRouter, type OpsDeps } from '../../src/ops/routes';

/** The Express router src/ops/routes.ts had, as it was. */
function expressOpsRouter(deps: OpsDeps): (req: IncomingMessage, res: ServerResponse) => void {
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

const deps: OpsDeps = {
  ready: async (options) => {
    if (options?.skip?.includes('boom')) throw Object.assign(new Error('readiness exploded'), { status: 502 });
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
};

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** One raw HTTP/1.1 exchange; the answer without its Date header. */
function exchange(server: Server, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    // The Date header differs, and so do the stack frames of an error page (a development-mode page
    // shows the stack: Express's own frames were part of it).
    s.on('close', () =>
      resolve(
        Buffer.concat(chunks)
          .toString('latin1')
          .replace(/\r\nDate: [^\r]*/i, '')
          .replace(/<br> &nbsp; &nbsp;at .*<\/pre>/, '<br>(stack)</pre>')
          .replace(/(Content-Security-Policy: default-src 'none'\r\n(?:[^\r]+\r\n)*Content-Length: )\d+/, '$1(page)'),
      ),
    );
    s.end(request);
  });
}

const req = (method: string, target: string, headers: string[] = [], body = '') =>
  `${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`;

const PATHS = [
  '/_sidecar/health',
  '/_sidecar/health/',
  '/_sidecar/HEALTH',
  '/_Sidecar/Health/',
  '/_sidecar/health//',
  '/_sidecar/health?x=1',
  '/_sidecar/health#frag',
  '/_sidecar/health.json',
  '/_sidecar/%68ealth',
  '/_sidecar//health',
  '/_sidecar/ready',
  '/_sidecar/ready?upstream=skip',
  '/_sidecar/ready/?upstream=skip&config=skip',
  '/_sidecar/ready?boom=skip',
  '/_sidecar/ready?crash=skip',
  '/_sidecar/metrics',
  '/_sidecar/metrics/',
  '/_sidecar/hooks/in',
  '/_sidecar/hooks/IN/',
  '/_sidecar/nothing',
  '/_sidecar',
  '/_sidecar/',
  '/',
  '*',
  'http://api.bitbucket.org/_sidecar/health',
  'http://api.bitbucket.org/_sidecar/ready?upstream=skip',
];

describe('/_sidecar/* without Express', () => {
  let before: Server;
  let now: Server;
  beforeAll(async () => {
    jest.spyOn(console, 'error').mockImplementation(() => undefined);
    before = await serve(expressOpsRouter(deps));
    now = await serve(opsRouter(deps));
  });
  afterAll(async () => {
    await Promise.all([before, now].map((s) => new Promise((r) => s.close(r))));
    jest.restoreAllMocks();
  });

  const cases: [string, string][] = [];
  for (const p of PATHS) {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']) cases.push([`${m} ${p}`, req(m, p, [], m === 'POST' || m === 'PUT' ? '{"a":1}' : '')]);
    cases.push([`GET ${p} If-None-Match: *`, req('GET', p, ['If-None-Match: *'])]);
    cases.push([`HEAD ${p} If-None-Match: *, no-cache`, req('HEAD', p, ['If-None-Match: *', 'Cache-Control: no-cache'])]);
    cases.push([`GET ${p} If-None-Match: "x", If-Modified-Since`, req('GET', p, ['If-None-Match: "x"', 'If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT'])]);
  }
  cases.push(['POST hook, failing handler', req('POST', '/_sidecar/hooks/in', [], '0123456789abc')]);

  it.each(cases)('%s', async (_name, request) => {
    expect(await exchange(now, request)).toBe(await exchange(before, request));
  });

  it('outside production, a failing handler shows its stack as Express did; in production its status text', async () => {
    const saved = process.env.NODE_ENV;
    try {
      for (const env of ['production', 'development']) {
        process.env.NODE_ENV = env;
        const server = await serve(opsRouter(deps));
        const a = await exchange(server, req('GET', '/_sidecar/ready?crash=skip'));
        server.close();
        expect(a).toMatch(/^HTTP\/1\.1 500 /);
        expect(a.includes('readiness crashed')).toBe(env !== 'production');
      }
    } finally {
      process.env.NODE_ENV = saved;
    }
  });
});
