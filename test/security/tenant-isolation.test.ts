/**
 * What a stranger (no token) or a narrow tenant can do to everybody else through the product's own
 * doors: connection slots, OAuth tokens, the audit trail, the operations endpoints and avatars.
 * Real sockets against the fake Bitbucket throughout.
 */
import net from 'node:net';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { MAX_ISSUED_PER_CONSUMER } from '../../src/auth/oauth';
import { validateConfig } from '../../src/config/load';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { request } from '../ops/http';
import { isBitbucketError, parseResponse } from './wire';

/** A keep-alive connection from a chosen loopback source address, for several requests in turn. */
class Conn {
  private readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiter?: () => void;
  closed = false;

  constructor(port: number, localAddress = '127.0.0.1') {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress });
    this.socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.waiter?.();
    });
    const end = () => {
      this.closed = true;
      this.waiter?.();
    };
    this.socket.on('close', end);
    this.socket.on('error', end);
  }

  /** Sends one request and resolves with its answer (and whether the server then closed). */
  async ask(text: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    this.buffered = Buffer.alloc(0);
    this.socket.write(text);
    for (;;) {
      const r = parseResponse(this.buffered, this.closed);
      if (r) return { status: r.status, headers: r.headers as Record<string, string>, body: r.body.toString('utf8') };
      if (this.closed) throw new Error('closed without an answer');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  async waitClosed(): Promise<boolean> {
    for (let i = 0; i < 200 && !this.closed; i++) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const get = (path: string, auth?: string) => `GET ${path} HTTP/1.1\r\nHost: api.bitbucket.org\r\n${auth ? `Authorization: ${auth}\r\n` : ''}\r\n`;

describe('connection slots: strangers hold none, one source cannot take them all', () => {
  let stack: Stack;
  let auth: string;
  const held: Conn[] = [];
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      config: { server: { http: { host: '127.0.0.1', port: 0 }, maxConnections: 8, maxConnectionsPerSource: 3 } },
    });
    auth = basicAuth('jenkins@ci.example', stack.tokens.reader);
  });
  afterEach(() => held.splice(0).forEach((c) => c.destroy()));
  afterAll(() => stack.stop());

  it('closes a connection after a request refused for missing or invalid credentials', async () => {
    for (const credential of [undefined, basicAuth('x', mintToken()), 'Digest abc']) {
      const c = new Conn(stack.running.httpPort);
      held.push(c);
      const r = await c.ask(get('/2.0/repositories/acme', credential));
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Basic /);
      expect(r.headers.connection).toBe('close');
      expect(await c.waitClosed()).toBe(true);
    }
  });

  it('keeps the connection of an authenticated client open', async () => {
    const c = new Conn(stack.running.httpPort);
    held.push(c);
    expect((await c.ask(get('/2.0/repositories/acme', auth))).status).toBe(200);
    expect((await c.ask(get('/2.0/workspaces/acme', auth))).status).toBe(200);
    expect(c.closed).toBe(false);
  });

  it('serves authenticated clients after many more unauthenticated requests than there are slots', async () => {
    // Ten times the slots, from several source addresses, each asking without credentials.
    for (let i = 0; i < 80; i++) {
      const c = new Conn(stack.running.httpPort, `127.0.0.${2 + (i % 4)}`);
      held.push(c);
      expect((await c.ask(get('/2.0/repositories/acme'))).status).toBe(401);
    }
    const c = new Conn(stack.running.httpPort);
    held.push(c);
    expect((await c.ask(get('/2.0/repositories/acme', auth))).status).toBe(200);
  });

  it('bounds the served connections of one source address, and serves the others', async () => {
    for (let i = 0; i < 3; i++) {
      const c = new Conn(stack.running.httpPort, '127.0.0.9');
      held.push(c);
      expect((await c.ask(get('/2.0/workspaces/acme', auth))).status).toBe(200);
    }
    const fourth = new Conn(stack.running.httpPort, '127.0.0.9');
    held.push(fourth);
    const refused = await fourth.ask(get('/2.0/workspaces/acme', auth));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(isBitbucketError(refused.body)).toBe(true);
    const other = new Conn(stack.running.httpPort, '127.0.0.10');
    held.push(other);
    expect((await other.ask(get('/2.0/workspaces/acme', auth))).status).toBe(200);
  });
});

describe('OAuth access tokens belong to their consumer', () => {
  let stack: Stack;
  const a = mintOAuthConsumer();
  const b = mintOAuthConsumer();
  const clientsWith = (ca: { key: string; secret: string } | undefined, cb: { key: string; secret: string } | undefined) => [
    { id: 'ci-a', token: { sha256: sha256Hex(mintToken()) }, ...(ca ? { oauth: { key: ca.key, secretSha256: sha256Hex(ca.secret) } } : {}), scope: [{ workspace: 'acme' }] },
    { id: 'ci-b', token: { sha256: sha256Hex(mintToken()) }, ...(cb ? { oauth: { key: cb.key, secretSha256: sha256Hex(cb.secret) } } : {}), scope: [{ workspace: 'acme' }] },
  ];
  beforeAll(async () => {
    stack = await startStack([], { config: { clients: clientsWith(a, b) } });
  });
  afterAll(() => stack.stop());

  const mint = async (c: { key: string; secret: string }): Promise<string> => {
    const r = await request(`${stack.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { authorization: basicAuth(c.key, c.secret), 'content-type': 'application/x-www-form-urlencoded', host: 'bitbucket.org' },
      body: 'grant_type=client_credentials',
    });
    expect(r.status).toBe(200);
    return (JSON.parse(r.body) as { access_token: string }).access_token;
  };
  const works = async (token: string) => (await request(`${stack.url}/2.0/workspaces/acme`, { headers: { authorization: `Bearer ${token}`, host: 'api.bitbucket.org' } })).status === 200;

  it('evicts within the consumer that mints too many, never another consumer\'s', async () => {
    const theirs = await mint(b);
    const mine: string[] = [];
    for (let i = 0; i < MAX_ISSUED_PER_CONSUMER + 5; i++) mine.push(await mint(a));
    expect(await works(theirs)).toBe(true);
    expect(await works(mine[0])).toBe(false);
    expect(await works(mine[mine.length - 1])).toBe(true);
  });

  it('revokes the tokens of a consumer rotated or removed in a reload', async () => {
    const ta = await mint(a);
    const tb = await mint(b);
    expect(await works(ta)).toBe(true);
    const cfg = stack.running.sidecar.config;
    const rotated = mintOAuthConsumer();
    // a's secret rotated (same key), b removed.
    stack.running.sidecar.reload({ ...cfg, clients: validateConfig({ upstream: { auth: { type: 'bearer', token: 'x' } }, clients: clientsWith({ key: a.key, secret: rotated.secret }, undefined) }).clients });
    expect(await works(ta)).toBe(false);
    expect(await works(tb)).toBe(false);
    const fresh = await mint({ key: a.key, secret: rotated.secret });
    expect(await works(fresh)).toBe(true);
  });
});

describe('refusals are audited with their target', () => {
  let stack: Stack;
  let auth: string;
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }]);
    auth = basicAuth('jenkins@ci.example', stack.tokens.reader);
  });
  afterAll(() => stack.stop());

  const audits = () => stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.kind === 'audit');

  it('names client, decision and the canonical target, or the raw target escaped', async () => {
    const ask = (path: string, authorization?: string) => request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', ...(authorization ? { authorization } : {}) } });
    expect((await ask('/2.0/repositories/JDOE/secret-notes?fields=values.name&evil=1', auth)).status).toBe(404);
    expect((await ask('/2.0/repositories/acme/service-api/commit/abcdef1/statuses/build', auth)).status).toBe(405);
    expect((await ask('/2.0/snippets/acme', auth)).status).toBe(404);
    expect((await ask('/2.0/repositories/acme/x/src/main/%252e%252e', auth)).status).toBe(400);
    expect((await ask('/2.0/repositories/acme/x/src/%zz', auth)).status).toBe(400);
    expect((await ask('/2.0/repositories/acme/service-api/hooks', auth)).status).toBe(403);
    await new Promise((r) => setTimeout(r, 50));
    const lines = audits();
    const by = (decision: string) => lines.filter((l) => l.decision === decision).map((l) => [l.client, l.path]);
    // The target as decoded, before slugs are lower-cased and unknown parameters dropped.
    expect(by('out-of-scope')).toEqual([['reader', '/2.0/repositories/JDOE/secret-notes?fields=values.name&evil=1']]);
    expect(by('no-route')).toEqual([['reader', '/2.0/snippets/acme']]);
    expect(by('forbidden')).toEqual([['reader', '/2.0/repositories/acme/service-api/hooks']]);
    const bad = lines.filter((l) => l.decision === 'bad-request').map((l) => l.path);
    expect(bad).toEqual(['/2.0/repositories/acme/x/src/main/%25252e%25252e', '/2.0/repositories/acme/x/src/%25zz']);
    expect(lines.find((l) => l.decision === 'bad-method')?.path).toBe('/2.0/repositories/acme/service-api/commit/abcdef1/statuses/build');
  });
});

describe('operations endpoints reveal nothing to strangers', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      [
        { id: 'reader', scope: [{ workspace: 'acme' }] },
        { id: 'prometheus', scope: [], permissions: ['ops:read'] },
      ],
      { config: { server: { http: { host: '127.0.0.1', port: 0 }, ops: { port: 0 } } } },
    );
  });
  afterAll(() => stack.stop());

  it('answers metrics only to a token with ops:read on the API listener; health and ready stay open', async () => {
    const none = await request(`${stack.url}/_sidecar/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic /);
    expect(none.body).not.toContain('bitbucket_sidecar_');
    const reader = await request(`${stack.url}/_sidecar/metrics/`, { headers: { authorization: basicAuth('x', stack.tokens.reader) } });
    expect(reader.status).toBe(403);
    expect(reader.body).not.toContain('bitbucket_sidecar_');
    const ops = await request(`${stack.url}/_sidecar/METRICS`, { headers: { authorization: basicAuth('x', stack.tokens.prometheus) } });
    expect(ops.status).toBe(200);
    expect(ops.body).toContain('bitbucket_sidecar_token_last_used_timestamp_seconds{client="reader",token="1"}');
    expect((await request(`${stack.url}/_sidecar/health`)).status).toBe(200);
    expect((await request(`${stack.url}/_sidecar/ready?upstream=skip`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    // The refusals are audited like any other; the answered probes are not.
    const audited = stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.kind === 'audit' && l.route === 'ops');
    expect(audited.map((l) => [l.decision, l.status, l.path])).toEqual([
      ['unauthenticated', 401, '/_sidecar/metrics'],
      ['forbidden', 403, '/_sidecar/metrics/'],
    ]);
  });

  it('serves /_sidecar/* alone on server.ops, on loopback, without a token', async () => {
    expect(stack.running.sidecar.config.server.ops?.host).toBe('127.0.0.1');
    const base = `http://127.0.0.1:${stack.running.opsPort}`;
    const m = await request(`${base}/_sidecar/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toContain('bitbucket_sidecar_requests_total');
    expect((await request(`${base}/_sidecar/health`)).status).toBe(200);
    const api = await request(`${base}/2.0/repositories/acme`, { headers: { authorization: basicAuth('x', stack.tokens.reader) } });
    expect(api.status).toBe(404);
    expect(isBitbucketError(api.body)).toBe(true);
  });

  it('a client with an empty scope and ops:read reaches no repository', async () => {
    const r = await request(`${stack.url}/2.0/repositories/acme/service-api`, { headers: { authorization: basicAuth('x', stack.tokens.prometheus) } });
    expect(r.status).toBe(404);
  });
});

describe('avatars cost no upstream call per unauthenticated request', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }]);
  });
  afterAll(() => stack.stop());

  it('keeps one workspace avatar whatever ts= a caller sends, and shares concurrent misses', async () => {
    stack.fake.clearLog();
    const ask = (ts: number) => request(`${stack.url}/workspaces/acme/avatar/?ts=${ts}`, { headers: { host: 'bitbucket.org' } });
    const first = await Promise.all([1, 2, 3, 4].map(ask));
    for (const r of first) expect(r.status).toBe(200);
    for (let ts = 5; ts < 40; ts++) expect((await ask(ts)).status).toBe(200);
    const upstream = stack.fake.requests.filter((q) => q.path.includes('/avatar'));
    expect(upstream).toHaveLength(1);
    expect(upstream[0].rawUrl).not.toContain('ts=');
    // Out of scope: 404 and no upstream call at all.
    expect((await request(`${stack.url}/workspaces/jdoe/avatar/?ts=1`, { headers: { host: 'bitbucket.org' } })).status).toBe(404);
    expect(stack.fake.requests.filter((q) => q.path.includes('/avatar'))).toHaveLength(1);
  });
});
