/**
 * Siblings of issue 15's cases found in review: refusals written outside the request pipeline or
 * by the webhook door, and what strangers can make the sidecar hold. Real sockets against the fake
 * Bitbucket throughout.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { request as undiciRequest } from 'undici';
import { startFakeBitbucket } from '../../src/fake-bitbucket';
import { stableUuid } from '../../src/fake-bitbucket/ids';
import { ManualClock } from '../../src/upstream/budget-clock';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { sign } from '../../src/webhooks/signature';
import { request } from '../ops/http';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { parseResponse } from './wire';

const SECRET = 'review-secret';

/** Writes `text` on a fresh connection and resolves with everything read until the server closes (or `ms`). */
function exchange(port: number, text: string | Buffer, ms = 3000, localAddress = '127.0.0.1'): Promise<{ data: string; closed: boolean; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed, socket });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(text);
  });
}

const audits = (stack: Stack) => stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.kind === 'audit');
const settle = () => new Promise((r) => setTimeout(r, 100));

describe('review 15: every refusal is audited with its target', () => {
  let stack: Stack;
  let auth: string;
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      config: {
        server: { http: { host: '127.0.0.1', port: 0 }, maxConnections: 4, maxConnectionsPerSource: 2, maxHeaderBytes: 4096 },
        webhooks: { secret: SECRET, maxBodyBytes: '64KiB' },
      },
    });
    auth = basicAuth('jenkins@ci.example', stack.tokens.reader);
  });
  afterAll(() => stack.stop());

  it('audits webhook deliveries the door refuses (bad signature, too large), naming the path', async () => {
    const body = Buffer.from(JSON.stringify({ repository: { full_name: 'acme/service-api' }, push: { changes: [] } }));
    const head = (extra: string, length: number) =>
      `POST /_sidecar/webhooks/bitbucket HTTP/1.1\r\nHost: sidecar\r\ncontent-type: application/json\r\nx-event-key: repo:push\r\nx-request-uuid: {11111111-1111-4111-8111-111111111111}\r\n${extra}content-length: ${length}\r\n\r\n`;
    const bad = await exchange(stack.running.httpPort, Buffer.concat([Buffer.from(head(`x-hub-signature: ${sign(body, 'not-the-secret')}\r\n`, body.length)), body]));
    expect(parseResponse(Buffer.from(bad.data, 'latin1'), true)?.status).toBe(403);
    const big = await exchange(stack.running.httpPort, head('', 256 * 1024));
    expect(parseResponse(Buffer.from(big.data, 'latin1'), true)?.status).toBe(413);
    await settle();
    const lines = audits(stack).filter((l) => l.route === 'ops').map((l) => [l.status, l.path]);
    expect(lines).toEqual(expect.arrayContaining([[403, '/_sidecar/webhooks/bitbucket'], [413, '/_sidecar/webhooks/bitbucket']]));
  });

  it('audits a request head refused by the HTTP parser (431), with the raw target escaped', async () => {
    const r = await exchange(stack.running.httpPort, `GET /2.0/repositories/acme/secret-probe HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\nX-Pad: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(r.data).toMatch(/^HTTP\/1\.1 431 /);
    await settle();
    const line = audits(stack).find((l) => l.status === 431);
    expect(line).toBeDefined();
    expect(line?.path).toBe('/2.0/repositories/acme/secret-probe');
    const bad = await exchange(stack.running.httpPort, 'GET /2.0/repositories/acme/bad%20header HTTP/1.1\r\nHost: api.bitbucket.org\r\nNo colon here\r\n\r\n');
    expect(bad.data).toMatch(/^HTTP\/1\.1 400 /);
    await settle();
    expect(audits(stack).find((l) => l.decision === 'bad-http')?.path).toBe('/2.0/repositories/acme/bad%2520header');
  });

  it('audits a request turned away for lack of a connection slot, with its target', async () => {
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await exchange(stack.running.httpPort, `GET /2.0/workspaces/acme HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\n\r\n`, 500, '127.0.0.7');
        expect(c.data).toMatch(/^HTTP\/1\.1 200 /);
        held.push(c.socket);
      }
      const refused = await exchange(stack.running.httpPort, `GET /2.0/repositories/acme/over-capacity HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\n\r\n`, 2000, '127.0.0.7');
      expect(refused.data).toMatch(/^HTTP\/1\.1 503 /);
    } finally {
      held.forEach((s) => s.destroy());
    }
    await settle();
    const line = audits(stack).find((l) => l.status === 503);
    expect(line).toBeDefined();
    expect(line?.path).toBe('/2.0/repositories/acme/over-capacity');
  });

  it('audits CONNECT, refused before the pipeline', async () => {
    const r = await exchange(stack.running.httpPort, 'CONNECT api.bitbucket.org:443 HTTP/1.1\r\nHost: api.bitbucket.org:443\r\n\r\n');
    expect(r.data).toMatch(/^HTTP\/1\.1 405 /);
    await settle();
    const line = audits(stack).find((l) => l.method === 'CONNECT');
    expect(line).toBeDefined();
    expect(line?.path).toBe('api.bitbucket.org:443');
  });
});

describe('review 15: strangers hold no connection', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }]);
  });
  afterAll(() => stack.stop());

  it('closes an upgrade request without credentials', async () => {
    const r = await exchange(stack.running.httpPort, 'GET /2.0/repositories/acme HTTP/1.1\r\nHost: api.bitbucket.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.data).toMatch(/^HTTP\/1\.1 (401|400) /);
  });

  it('closes a request with a body it refused for missing credentials', async () => {
    const r = await exchange(stack.running.httpPort, 'POST /2.0/repositories/acme/service-api/hooks HTTP/1.1\r\nHost: api.bitbucket.org\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n');
    expect(r.closed).toBe(true);
    expect(r.data).toMatch(/HTTP\/1\.1 401 /);
  });

  it('closes pipelined requests after the first refusal', async () => {
    const one = 'GET /2.0/repositories/acme HTTP/1.1\r\nHost: api.bitbucket.org\r\n\r\n';
    const r = await exchange(stack.running.httpPort, one.repeat(5));
    expect(r.closed).toBe(true);
    expect(r.data.match(/HTTP\/1\.1 401/g)).toHaveLength(1);
  });
});

describe('review 15: a client waiting for its share holds no other client', () => {
  const T0 = 1_800_000_000_000;
  const both = [
    { id: 'flood', scope: [{ workspace: 'acme' }] },
    { id: 'scan', scope: [{ workspace: 'acme' }] },
  ];

  // The cache collapses concurrent misses of one URL into one upstream call per client. Were it
  // across clients, a call queued behind the flood's own share would hold the other client's
  // request for the same URL in the flood's queue (and hand it the flood's 429), though that client
  // has its whole share left.
  it('does not collapse another client onto a call queued for the flood\'s share', async () => {
    const clock = new ManualClock(T0);
    const fake = await startFakeBitbucket({ seed: 'demo', now: () => clock.now() });
    const s = await startStack(both, {
      fakeInstance: fake,
      config: {
        upstream: {
          apiUrl: fake.url,
          webUrl: fake.url,
          auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
          budget: { repositoryRequestsPerHour: 10, burstShare: 1, maxQueueWaitMs: 600_000, windowMarginMs: 0, maxRetryAfterSeconds: 3600, backgroundShare: 0 },
        },
      },
      sidecar: { clock },
    });
    const get = async (client: string, path: string) => {
      const res = await undiciRequest(new URL(path, s.url), { headers: { host: 'api.bitbucket.org', authorization: basicAuth(`${client}@ci.example`, s.tokens[client]) } });
      await res.body.text();
      return { status: res.statusCode, cache: String(res.headers['x-cache-status'] ?? res.headers['cache-status'] ?? '') };
    };
    const commit = () => `/2.0/repositories/acme/service-api/commit/${randomBytes(20).toString('hex')}`;
    try {
      expect((await get('scan', '/2.0/repositories/acme/service-api/refs/branches?pagelen=100')).status).toBe(200);
      clock.advance(100_000);
      // The flood spends its half of the hour.
      for (let i = 0; i < 5; i++) expect((await get('flood', commit())).status).toBe(404);
      // 300 s before its oldest call leaves the window: its next call queues (within maxQueueWaitMs).
      clock.advance(3_600_000 - 300_000);
      const popular = '/2.0/repositories/acme/service-api/refs/tags?pagelen=100';
      let floodDone = false;
      const flood = get('flood', popular).finally(() => (floodDone = true));
      await new Promise((r) => setTimeout(r, 100));
      expect(floodDone).toBe(false);
      let scanDone = false;
      const scan = get('scan', popular).finally(() => (scanDone = true));
      // The other client is served at once on a URL of its own: it has its share.
      expect((await get('scan', '/2.0/repositories/acme/service-web/refs/tags?pagelen=100')).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
      const servedAtOnce = scanDone;
      clock.advance(300_000);
      await Promise.all([flood, scan]);
      expect(servedAtOnce).toBe(true);
    } finally {
      clock.advance(3_600_000);
      await s.stop();
      await fake.close();
    }
  });
});

describe('review 15: a narrowed listing\'s headers say nothing of hidden projects or of other clients', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([
      { id: 'ops', scope: [{ workspace: 'acme', projects: ['OPS'] }] },
      { id: 'glob', scope: [{ workspace: 'acme', repositories: ['service-*'] }] },
    ]);
  });
  afterAll(() => stack.stop());

  const get = async (client: string, path: string) => {
    const r = await undiciRequest(new URL(path, stack.url), { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } });
    const body = await r.body.text();
    const { date: _d, ...headers } = r.headers;
    return { status: r.statusCode, headers, body };
  };

  it('answers q=project.key of a project another client scans exactly like one of no project', async () => {
    // The ops client's scan fills the shared cache with the OPS listing.
    expect((await get('ops', '/2.0/repositories/acme')).status).toBe(200);
    const scanned = await get('glob', `/2.0/repositories/acme?q=${encodeURIComponent('project.key="OPS"')}`);
    const nothing = await get('glob', `/2.0/repositories/acme?q=${encodeURIComponent('project.key="NOPE"')}`);
    expect(scanned.status).toBe(200);
    expect(scanned.body).toBe(nothing.body);
    // `cache-status: hit; ttl=…` for the scanned project, a miss for the absent one, told which
    // project keys exist (and when another tenant last listed them).
    expect(scanned.headers).toEqual(nothing.headers);
  });
});

describe('review 15: sockets that never finish a request head cannot keep clients out', () => {
  let stack: Stack;
  let auth: string;
  const idle: net.Socket[] = [];
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      config: { server: { http: { host: '127.0.0.1', port: 0 }, maxConnections: 4, maxConnectionsPerSource: 2 } },
    });
    auth = basicAuth('jenkins@ci.example', stack.tokens.reader);
  });
  afterAll(async () => {
    idle.forEach((s) => s.destroy());
    await stack.stop();
  });

  it('serves an authenticated client while strangers from several addresses hold half-sent heads', async () => {
    // Each stranger address stays within its per-source bound; together they fill the listener.
    for (const address of ['127.0.0.21', '127.0.0.22', '127.0.0.23']) {
      for (let i = 0; i < 4; i++) {
        const s = net.connect({ port: stack.running.httpPort, host: '127.0.0.1', localAddress: address });
        s.on('error', () => undefined);
        s.write('GET /2.0/repositories/acme HTTP/1.1\r\nHost: api.bitbucket.org\r\n');
        idle.push(s);
      }
    }
    await settle();
    const r = await exchange(stack.running.httpPort, `GET /2.0/workspaces/acme HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.30');
    expect(r.data).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('review 15: OAuth refusals are audited as refusals', () => {
  let stack: Stack;
  const consumer = mintOAuthConsumer();
  beforeAll(async () => {
    stack = await startStack([], {
      config: { clients: [{ id: 'ci-a', token: { sha256: sha256Hex(mintToken()) }, oauth: { key: consumer.key, secretSha256: sha256Hex(consumer.secret) }, scope: [{ workspace: 'acme' }] }] },
    });
  });
  afterAll(() => stack.stop());

  const mint = (authorization: string, body: string) =>
    request(`${stack.url}/site/oauth2/access_token`, { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', host: 'bitbucket.org' }, body });

  it('names the decision (and the client once its consumer is proven) for each answer', async () => {
    expect((await mint(basicAuth(consumer.key, 'wrong-secret'), 'grant_type=client_credentials')).status).toBe(401);
    expect((await mint(basicAuth(consumer.key, consumer.secret), 'grant_type=password')).status).toBe(400);
    expect((await mint(basicAuth(consumer.key, consumer.secret), 'grant_type=client_credentials')).status).toBe(200);
    await settle();
    const lines = audits(stack).filter((l) => l.route === 'oauth-token').map((l) => [l.status, l.decision, l.client, l.path]);
    expect(lines).toEqual([
      [401, 'unauthenticated', undefined, '/site/oauth2/access_token'],
      [400, 'bad-request', 'ci-a', '/site/oauth2/access_token'],
      [200, 'allow', 'ci-a', '/site/oauth2/access_token'],
    ]);
  });
});

describe('review 15: the OAuth token door holds no slot for a slow body', () => {
  let stack: Stack;
  let auth: string;
  const held: net.Socket[] = [];
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      config: { server: { http: { host: '127.0.0.1', port: 0 }, maxConnections: 4, maxConnectionsPerSource: 2, headersTimeoutMs: 500 } },
    });
    auth = basicAuth('jenkins@ci.example', stack.tokens.reader);
  });
  afterAll(async () => {
    held.forEach((s) => s.destroy());
    await stack.stop();
  });

  it('cuts a token request whose form does not arrive, so strangers cannot take the slots', async () => {
    // The token endpoint needs no sidecar token: its form body was read for as long as
    // server.requestTimeoutMs (5 min), a served slot held all that time.
    const closed: Promise<void>[] = [];
    for (const address of ['127.0.0.41', '127.0.0.42']) {
      for (let i = 0; i < 2; i++) {
        const s = net.connect({ port: stack.running.httpPort, host: '127.0.0.1', localAddress: address });
        s.on('error', () => undefined);
        s.on('data', () => undefined);
        closed.push(new Promise((r) => s.once('close', () => r())));
        s.write('POST /site/oauth2/access_token HTTP/1.1\r\nHost: bitbucket.org\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\ngrant_type=');
        held.push(s);
      }
    }
    await settle();
    // The sidecar ends them (within a bounded wait: the test's own timeout).
    await Promise.all(closed);
    const r = await exchange(stack.running.httpPort, `GET /2.0/workspaces/acme HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`, 3000, '127.0.0.43');
    expect(r.data).toMatch(/^HTTP\/1\.1 200 /);
  }, 15_000);
});

describe('review 15: a refused project look-up does not tell hidden repositories from absent ones', () => {
  // A hidden repository another client's listing taught and a name that exists nowhere must be
  // refused the same way: the gate refuses neither from shared facts, both go through the same
  // targeted look-up, and when this client's share cannot pay for it both get the same 502 (not
  // 404: Bitbucket trouble must not read as "repository gone" to Jenkins).
  it('answers a hidden repository and an absent one alike when the look-up is refused', async () => {
    const fake = await startFakeBitbucket({ seed: 'demo' });
    const stack = await startStack(
      [
        { id: 'full', scope: [{ workspace: 'acme' }] },
        { id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] },
      ],
      {
        fakeInstance: fake,
        config: {
          upstream: {
            apiUrl: fake.url,
            webUrl: fake.url,
            auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
            budget: { repositoryRequestsPerHour: 10, burstShare: 1, maxQueueWaitMs: 0, windowMarginMs: 0, backgroundShare: 0 },
          },
        },
      },
    );
    const get = async (client: string, path: string) => {
      const r = await request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } });
      return { status: r.status, body: r.body };
    };
    try {
      // Another tenant's scan teaches every repository's project.
      expect((await get('full', '/2.0/repositories/acme?pagelen=100')).status).toBe(200);
      // The narrow tenant spends its own share (half the hour's 10 calls).
      for (let i = 0; i < 8; i++) await get('ci', `/2.0/repositories/acme/service-api/commit/${randomBytes(20).toString('hex')}`);
      const hidden = await get('ci', '/2.0/repositories/acme/infra');
      const absent = await get('ci', '/2.0/repositories/acme/no-such-repository');
      expect([absent.status, absent.body]).toEqual([hidden.status, hidden.body]);
      expect(hidden.status).toBe(502);
    } finally {
      await stack.stop();
      await fake.close();
    }
  });
});

describe('review 15: a look-up refused for one client teaches no absence to the others', () => {
  it('resolves a repository uuid for a client with its share left after a flooding client\'s look-up was refused', async () => {
    const fake = await startFakeBitbucket({ seed: 'demo' });
    const stack = await startStack(
      [
        { id: 'flood', scope: [{ workspace: 'acme' }] },
        { id: 'scan', scope: [{ workspace: 'acme' }] },
      ],
      {
        fakeInstance: fake,
        config: {
          upstream: {
            apiUrl: fake.url,
            webUrl: fake.url,
            auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
            budget: { repositoryRequestsPerHour: 10, burstShare: 1, maxQueueWaitMs: 0, windowMarginMs: 0, backgroundShare: 0 },
          },
        },
      },
    );
    const get = async (client: string, path: string) => (await request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } })).status;
    const uuid = encodeURIComponent(stableUuid('repository', 'acme/service-api'));
    try {
      expect(await get('scan', '/2.0/repositories/acme/service-web/refs/branches?pagelen=100')).toBe(200);
      for (let i = 0; i < 8; i++) await get('flood', `/2.0/repositories/acme/service-api/commit/${randomBytes(20).toString('hex')}`);
      // The flood's look-up of the uuid is refused by its share: that says nothing about the uuid.
      expect(await get('flood', `/2.0/repositories/acme/${uuid}`)).toBe(404);
      expect(await get('scan', `/2.0/repositories/acme/${uuid}`)).toBe(200);
    } finally {
      await stack.stop();
      await fake.close();
    }
  });
});

describe('review 15: an operations refusal names the client that asked', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }]);
  });
  afterAll(() => stack.stop());

  it('audits metrics read with a token lacking ops:read with that token\'s client', async () => {
    expect((await request(`${stack.url}/_sidecar/metrics`, { headers: { authorization: basicAuth('x', stack.tokens.reader) } })).status).toBe(403);
    await settle();
    expect(audits(stack).filter((l) => l.route === 'ops').map((l) => [l.decision, l.client, l.path])).toEqual([['forbidden', 'reader', '/_sidecar/metrics']]);
  });
});
