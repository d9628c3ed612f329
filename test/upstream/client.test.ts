import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BodyMemo } from '../../src/core/body-memo';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { routeById, type RouteId } from '../../src/routes/catalog';
import type { ApiCall, Method } from '../../src/core/call';
import { UpstreamClient, UpstreamError } from '../../src/upstream/client';

/** The REST client against a local server that answers whatever each test says. */
let server: Server;
let base: string;
let handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
const seen: { method?: string; url?: string; headers: IncomingMessage['headers']; body: Buffer }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
});
afterAll(() => new Promise((r) => server.close(r)));
beforeEach(() => {
  seen.length = 0;
});

const route = (id: RouteId) => routeById(id);
const branches = (method: Method = 'GET', body?: Buffer): ApiCall => ({
  method,
  route: route('branches'),
  params: { ws: 'acme', repo: 'api' },
  trailingSlash: false,
  query: [['pagelen', '100']],
  body,
});

function client(over: Partial<ConstructorParameters<typeof UpstreamClient>[0]> = {}): UpstreamClient {
  return new UpstreamClient({ memo: new BodyMemo(), apiUrl: base, authorization: 'Basic c2VjcmV0', connectTimeoutMs: 1000, responseTimeoutMs: 300, userAgent: 'test-agent', ...over });
}

const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) => {
  const b = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': b.length, ...headers });
  res.end(b);
};

describe('UpstreamClient', () => {
  it('sends the canonical path with the real credential and keeps only the listed headers', async () => {
    handler = (_q, res) => json(res, 200, { values: [] }, { 'set-cookie': 'a=b', etag: '"x"', 'x-ratelimit-limit': '1000' });
    const c = client();
    const a = await c.send(branches());
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body.toString())).toEqual({ values: [] });
    expect(a.headers).toEqual({ 'content-type': 'application/json', etag: '"x"', 'x-ratelimit-limit': '1000' });
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/api/2.0/repositories/acme/api/refs/branches?pagelen=100' });
    expect(seen[0].headers).toMatchObject({ authorization: 'Basic c2VjcmV0', 'user-agent': 'test-agent', accept: 'application/json', 'accept-encoding': 'gzip' });
    // The body is an allocation of its own (the cache keeps it without copying).
    expect(a.body.byteOffset).toBe(0);
    expect(a.body.buffer.byteLength).toBe(a.body.length);
    await c.close();
  });

  it('sends HEAD as GET and a write with its body and content type', async () => {
    handler = (_q, res) => json(res, 201, { ok: true });
    const c = client();
    await c.send(branches('HEAD'));
    await c.send(branches('POST', Buffer.from('{"name":"x"}')));
    expect(seen.map((s) => s.method)).toEqual(['GET', 'POST']);
    expect(seen[1].body.toString()).toBe('{"name":"x"}');
    expect(seen[1].headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(seen[0].headers['content-type']).toBeUndefined();
    await c.close();
  });

  it('decompresses a gzip answer', async () => {
    handler = (_q, res) => {
      const b = gzipSync(Buffer.from('{"a":1}'));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': b.length });
      res.end(b);
    };
    const c = client();
    expect((await c.send(branches())).body.toString()).toBe('{"a":1}');
    await c.close();
  });

  it('refuses a body above maxBodyBytes (502) and goes on working', async () => {
    handler = (_q, res) => json(res, 200, { big: 'x'.repeat(5000) });
    const c = client({ maxBodyBytes: 1000 });
    await expect(c.send(branches())).rejects.toMatchObject({ status: 502, message: expect.stringMatching(/larger/) });
    handler = (_q, res) => json(res, 200, { small: 1 });
    expect((await c.send(branches())).status).toBe(200);
    await c.close();
  });

  it('reports a success whose JSON was cut short as 502, a write as possibly applied', async () => {
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked
      res.end('{"values": [');
    };
    const c = client();
    await expect(c.send(branches())).rejects.toMatchObject({ status: 502, message: 'Bitbucket sent an incomplete or corrupt response' });
    await expect(c.send(branches('POST', Buffer.from('{}')))).rejects.toMatchObject({ status: 502, message: expect.stringMatching(/may have been applied/) });
    await c.close();
  });

  it('passes error statuses and non-JSON bodies on as they are', async () => {
    handler = (_q, res) => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end('<html>down</html>');
    };
    const c = client();
    const a = await c.send(branches());
    expect(a.status).toBe(503);
    expect(a.body.toString()).toBe('<html>down</html>');
    await c.close();
  });

  it('gives up after the response timeout (504)', async () => {
    handler = (_q, res) => setTimeout(() => json(res, 200, {}), 1000);
    const c = client({ responseTimeoutMs: 100 });
    await expect(c.send(branches())).rejects.toMatchObject({ status: 504 });
    await c.close();
  });

  it('is cancelled by its signal (504)', async () => {
    handler = (_q, res) => setTimeout(() => json(res, 200, {}), 500);
    const c = client();
    const ac = new AbortController();
    const p = c.send(branches(), ac.signal);
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ status: 504, message: 'The request was cancelled' });
    const done = new AbortController();
    done.abort();
    await expect(c.send(branches(), done.signal)).rejects.toBeInstanceOf(UpstreamError);
    await c.close();
  });

  it('reports an unreachable upstream as 502', async () => {
    const c = new UpstreamClient({ memo: new BodyMemo(), apiUrl: 'http://127.0.0.1:1', authorization: 'x', connectTimeoutMs: 500, responseTimeoutMs: 500, userAgent: 't' });
    await expect(c.send(branches())).rejects.toMatchObject({ status: 502 });
    await c.close();
  });

  it('reuses keep-alive connections for sequential calls (undici pools take turns between two)', async () => {
    handler = (_q, res) => json(res, 200, {});
    const ports = new Set<number>();
    const c = client();
    const onConn = (s: import('node:net').Socket) => ports.add(s.remotePort!);
    server.on('connection', onConn);
    for (let i = 0; i < 10; i++) await c.send(branches());
    server.off('connection', onConn);
    expect(ports.size).toBeLessThanOrEqual(2);
    await c.close();
  });
});
