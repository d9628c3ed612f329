import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { validateConfig } from '../../src/config/load';
import { createLogger } from '../../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../../src/serve';
import { lineCollector, scriptedUpstream, until } from './helpers';

/**
 * The git leg against a scripted upstream, so that what reaches "Bitbucket" can be inspected byte
 * by byte and upstream misbehaviour (401, redirects, 5xx, stalls) can be staged. The real protocol
 * end to end (real git, git http-backend) is in clone.test.ts.
 */

type Upstream = Awaited<ReturnType<typeof scriptedUpstream>>;

const GIT_PASSWORD = 'upstream-git-secret-0123456789';
const UPSTREAM_GIT_HEADER = `Basic ${Buffer.from(`x-bitbucket-api-token-auth:${GIT_PASSWORD}`).toString('base64')}`;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body && opts.chunked) {
      // Two writes without a length: Node sends Transfer-Encoding: chunked.
      req.write(opts.body.subarray(0, 10));
      req.end(opts.body.subarray(10));
    } else req.end(opts.body);
  });
}

describe('git proxy (scripted upstream)', () => {
  let upstream: Upstream;
  let sidecar: RunningSidecar;
  let logs: string[];
  const token = mintToken();
  const pusher = mintToken();
  let auth: string;

  beforeAll(async () => {
    upstream = await scriptedUpstream();
    const collector = lineCollector();
    logs = collector.lines;
    const config = validateConfig({
      server: { http: { host: '127.0.0.1', port: 0 } },
      upstream: {
        apiUrl: upstream.url,
        webUrl: upstream.url,
        auth: { type: 'basic', username: 'owner@example.com', password: 'rest-secret-abcdefghijklmnop' },
        gitAuth: { username: 'x-bitbucket-api-token-auth', password: GIT_PASSWORD },
      },
      clients: [
        { id: 'reader', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }], permissions: ['read'] },
        { id: 'pusher', token: { sha256: sha256Hex(pusher) }, scope: [{ workspace: 'acme' }], permissions: ['read', 'git:push'] },
      ],
    });
    sidecar = await startSidecar(config, { logger: createLogger({ level: 'info', destination: collector.stream }) });
    auth = `Basic ${Buffer.from(`x-bitbucket-api-token-auth:${token}`).toString('base64')}`;
  });
  afterAll(async () => {
    await sidecar.stop(200);
    await upstream.close();
  });
  beforeEach(() => {
    upstream.seen.length = 0;
    upstream.respond((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' });
      res.end('001e# service=git-upload-pack\n0000');
    });
  });

  it('rebuilds the upstream request from canonical parts and a closed header list', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/x-git-upload-pack-advertisement',
        'cache-control': 'no-cache',
        'set-cookie': 'session=upstream-person',
        'x-upstream-internal': 'yes',
        'www-authenticate': 'Basic realm="upstream"',
      });
      res.end('001e# service=git-upload-pack\n0000');
    });
    const r = await request(sidecar.httpUrl, '/ACME/Service-API.git/info/refs?service=git-upload-pack&evil=../../other&service2=x', {
      headers: {
        authorization: auth,
        'user-agent': 'git/2.39.5',
        'git-protocol': 'version=2',
        accept: '*/*',
        'accept-encoding': 'deflate, gzip, br, zstd',
        cookie: 'jenkins=1',
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-host': 'evil.example',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        forwarded: 'for=10.0.0.1',
        'x-custom': 'leak',
        pragma: 'no-cache',
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('001e# service=git-upload-pack\n0000');
    expect(r.headers['content-type']).toBe('application/x-git-upload-pack-advertisement');
    expect(r.headers['cache-control']).toBe('no-cache');
    for (const h of ['set-cookie', 'x-upstream-internal', 'www-authenticate']) expect(r.headers[h]).toBeUndefined();

    expect(upstream.seen).toHaveLength(1);
    const seen = upstream.seen[0];
    expect(seen.method).toBe('GET');
    expect(seen.url).toBe('/acme/service-api.git/info/refs?service=git-upload-pack');
    expect(seen.headers.authorization).toBe(UPSTREAM_GIT_HEADER);
    expect(seen.headers.host).toBe(new URL(upstream.url).host);
    expect(seen.headers['git-protocol']).toBe('version=2');
    expect(seen.headers['user-agent']).toBe('git/2.39.5');
    expect(seen.headers['accept-encoding']).toBe('gzip');
    const names = Object.keys(seen.headers).sort();
    expect(names.every((n) => ['host', 'authorization', 'user-agent', 'accept', 'git-protocol', 'accept-encoding', 'connection'].includes(n))).toBe(true);
  });

  it('accepts the repository without .git and always asks upstream for {repo}.git', async () => {
    const r = await request(sidecar.httpUrl, '/acme/infra/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(r.status).toBe(200);
    expect(upstream.seen.map((s) => s.url)).toEqual(['/acme/infra.git/info/refs?service=git-upload-pack']);
  });

  it('refuses the dumb protocol (info/refs without service) without asking upstream', async () => {
    const r = await request(sidecar.httpUrl, '/acme/infra.git/info/refs', { headers: { authorization: auth } });
    expect(r.status).toBe(403);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(upstream.seen).toHaveLength(0);
  });

  it('streams a gzip request body unchanged, with its framing, and a chunked one too', async () => {
    const payload = Buffer.from('0032want 0123456789012345678901234567890123456789\n00000009done\n');
    const gz = gzipSync(payload);
    upstream.respond((req, res) => {
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result' });
        res.end('0008NAK\n');
      });
      req.resume();
    });
    const headers = { authorization: auth, 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip', accept: 'application/x-git-upload-pack-result' };
    const fixed = await request(sidecar.httpUrl, '/acme/service-api.git/git-upload-pack', { method: 'POST', headers: { ...headers, 'content-length': String(gz.length) }, body: gz });
    expect(fixed.status).toBe(200);
    expect(fixed.body.toString()).toBe('0008NAK\n');
    const chunked = await request(sidecar.httpUrl, '/acme/service-api.git/git-upload-pack', { method: 'POST', headers, body: gz, chunked: true });
    expect(chunked.status).toBe(200);

    expect(upstream.seen).toHaveLength(2);
    for (const s of upstream.seen) {
      expect(s.url).toBe('/acme/service-api.git/git-upload-pack');
      expect(s.headers['content-encoding']).toBe('gzip');
      expect(s.headers['content-type']).toBe('application/x-git-upload-pack-request');
      expect(s.body.equals(gz)).toBe(true);
    }
    expect(upstream.seen[0].headers['content-length']).toBe(String(gz.length));
    expect(upstream.seen[1].headers['transfer-encoding']).toBe('chunked');
  });

  it('refuses a POST with the wrong content type or an unknown content coding', async () => {
    const base = { authorization: auth, 'content-type': 'application/x-git-upload-pack-request' };
    const wrongType = await request(sidecar.httpUrl, '/acme/service-api.git/git-upload-pack', { method: 'POST', headers: { ...base, 'content-type': 'application/json' }, body: Buffer.from('{}') });
    expect(wrongType.status).toBe(415);
    const br = await request(sidecar.httpUrl, '/acme/service-api.git/git-upload-pack', { method: 'POST', headers: { ...base, 'content-encoding': 'br' }, body: Buffer.from('x') });
    expect(br.status).toBe(415);
    expect(upstream.seen).toHaveLength(0);
  });

  it('streams the answer as it comes instead of buffering it', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    upstream.respond((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' });
      res.write('first-part;');
      void released.then(() => res.end('second-part'));
    });
    const got = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${sidecar.httpUrl}/acme/service-api.git/info/refs?service=git-upload-pack`, { headers: { authorization: auth }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
          // The first part arrives while upstream is still holding the rest back.
          if (text === 'first-part;') release();
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    expect(got).toBe('first-part;second-part');
  });

  it('an upstream 401 (our credential) is a 502 that never asks the client for credentials', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="Bitbucket.org HTTP"', 'content-type': 'text/plain' });
      res.end('Invalid credentials for jdoe@example.com');
    });
    const r = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(r.status).toBe(502);
    expect(r.headers['www-authenticate']).toBeUndefined();
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body.toString()).toMatch(/sidecar's own git credential/);
    expect(r.body.toString()).not.toMatch(/jdoe/);
    expect(logs.some((l) => l.includes('upstream.gitAuth'))).toBe(true);
  });

  it('never hands an upstream redirect to the client', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(302, { location: 'https://evil.example/acme/service-api.git/info/refs?service=git-upload-pack' });
      res.end();
    });
    const r = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(r.status).toBe(502);
    expect(r.headers.location).toBeUndefined();
    expect(r.body.toString()).toMatch(/redirect/);
    expect(upstream.seen).toHaveLength(1);
  });

  it.each([
    [404, 404, /Repository not found/],
    [403, 403, /does not let the sidecar's account read acme\/service-api/],
    [500, 502, /HTTP 500/],
    [503, 502, /HTTP 503/],
  ])('upstream %i becomes %i with a message of our own', async (up, down, message) => {
    upstream.respond((_req, res) => {
      res.writeHead(up, { 'content-type': 'text/html' });
      res.end('<html>upstream page naming jdoe</html>');
    });
    const r = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(r.status).toBe(down);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body.toString()).toMatch(message);
    expect(r.body.toString()).not.toMatch(/jdoe|html/);
  });

  it('passes an upstream 429 on with its Retry-After', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(429, { 'retry-after': '17' });
      res.end();
    });
    const r = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('17');
  });

  it('a client that hangs up mid-answer cancels the upstream request', async () => {
    upstream.respond((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result' });
      res.write(Buffer.alloc(64 * 1024, 1));
      // ... and never ends: only the client hanging up can end this.
    });
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${sidecar.httpUrl}/acme/service-api.git/git-upload-pack`,
        { method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-git-upload-pack-request', 'content-length': '4' }, agent: false },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => undefined);
      req.end('0000');
      setTimeout(() => reject(new Error('no data')), 20_000).unref();
    });
    await until(() => upstream.seen.length === 1, 'the upstream request');
    await upstream.seen[0].closed;
    expect(upstream.seen[0].aborted).toBe(true);

    // The sidecar is still fine.
    upstream.respond((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' });
      res.end('0000');
    });
    const again = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(again.status).toBe(200);
  });

  it('an upstream that cannot be reached is a 502 text message', async () => {
    const dead = await scriptedUpstream();
    await dead.close();
    const config = validateConfig({
      server: { http: { host: '127.0.0.1', port: 0 } },
      upstream: { apiUrl: dead.url, webUrl: dead.url, auth: { type: 'basic', username: 'o@example.com', password: 'p' } },
      clients: [{ id: 'reader', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }] }],
    });
    const other = await startSidecar(config, { logger: createLogger({ level: 'silent' }) });
    try {
      const r = await request(other.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
      expect(r.status).toBe(502);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(r.body.toString()).toMatch(/could not reach Bitbucket/);
    } finally {
      await other.stop(100);
    }
  });

  it('scope is decided before anything reaches upstream', async () => {
    const out = await request(sidecar.httpUrl, '/other/widgets.git/info/refs?service=git-upload-pack', { headers: { authorization: auth } });
    expect(out.status).toBe(404);
    expect(out.body.toString()).toBe('Repository not found\n');
    const push = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-receive-pack', { headers: { authorization: auth } });
    expect(push.status).toBe(403);
    const anon = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-upload-pack');
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toBe('Basic realm="Bitbucket.org HTTP"');
    expect(upstream.seen).toHaveLength(0);

    const pushAuth = `Basic ${Buffer.from(`x-token-auth:${pusher}`).toString('base64')}`;
    upstream.respond((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-git-receive-pack-advertisement' });
      res.end('001f# service=git-receive-pack\n0000');
    });
    const allowed = await request(sidecar.httpUrl, '/acme/service-api.git/info/refs?service=git-receive-pack', { headers: { authorization: pushAuth } });
    expect(allowed.status).toBe(200);
    expect(upstream.seen.map((s) => s.url)).toEqual(['/acme/service-api.git/info/refs?service=git-receive-pack']);
  });

  it('never logs the upstream credential', () => {
    const text = logs.join('\n');
    expect(text).not.toContain(GIT_PASSWORD);
    expect(text).not.toContain(UPSTREAM_GIT_HEADER.slice(6));
    expect(text).not.toContain(token);
  });
});
