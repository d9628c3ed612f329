import net from 'node:net';
import { parseConfigText, ConfigError } from '../../src/config/load';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { exchange, isBitbucketError, once, sleep } from './wire';

/**
 * Server hardening (src/listen/servers.ts, `server:` keys): slow clients are cut off, oversized
 * heads, targets and bodies are refused with Bitbucket-shaped errors, the number of connections
 * is bounded, and requests Node's own parser refuses still get a Bitbucket-shaped answer.
 */
describe('server hardening', () => {
  let stack: Stack;
  let port: number;
  let auth: string;
  const STATUS = '/2.0/repositories/acme/service-api/commit/abcdef123456/statuses/build';

  beforeAll(async () => {
    stack = await startStack([{ id: 'writer', scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write'] }], {
      config: {
        server: {
          http: { host: '127.0.0.1', port: 0 },
          headersTimeoutMs: 1000,
          requestTimeoutMs: 2000,
          maxHeaderBytes: 4096,
          maxUrlLength: 1024,
          maxBodyBytes: 2048,
          maxConnections: 4,
          maxConnectionsPerSource: 4,
        },
      },
    });
    port = stack.running.httpPort;
    auth = basicAuth('jenkins@ci.example', stack.tokens.writer);
  });
  afterAll(() => stack.stop());

  const healthy = async () => (await once(port, 'GET /_sidecar/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).response?.status;

  it('cuts off a client that sends its headers one byte at a time (slowloris) with 408', async () => {
    const head = `GET /2.0/repositories/acme/service-api HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\nX-Slow: ${'z'.repeat(40)}\r\n\r\n`;
    stack.fake.clearLog();
    const r = await exchange(port, [...head].map((c) => c), { gapMs: 250, timeoutMs: 60_000 });
    expect(r.ended).not.toBe('timeout');
    // The server gave up long before the head was complete.
    expect(r.written).toBeLessThan(head.length);
    expect(r.response?.status).toBe(408);
    expect(isBitbucketError(r.response!.body)).toBe(true);
    expect(stack.fake.requests).toEqual([]);
    expect(await healthy()).toBe(200);
  });

  it('cuts off a write whose body trickles in beyond the request timeout', async () => {
    const body = JSON.stringify({ state: 'SUCCESSFUL', key: 'k', url: 'https://ci.example/1' });
    stack.fake.clearLog();
    const headPart = `POST ${STATUS} HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await exchange(port, [headPart, ...[...body].map((c) => c)], { gapMs: 250, timeoutMs: 60_000 });
    expect(r.ended).not.toBe('timeout');
    expect(r.written).toBeLessThan(headPart.length + body.length);
    expect(r.response?.status).toBe(408);
    expect(isBitbucketError(r.response!.body)).toBe(true);
    // The half-received write never reached Bitbucket.
    expect(stack.fake.requests.filter((q) => q.method === 'POST')).toEqual([]);
    // A client cut off mid-body is not a sidecar failure: nothing is logged at error level.
    expect(stack.logs.filter((l) => /"level":50/.test(l))).toEqual([]);
    expect(await healthy()).toBe(200);
  });

  it('answers 431 to request headers above maxHeaderBytes', async () => {
    const r = await once(port, `GET /2.0/user HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nX-Big: ${'a'.repeat(5000)}\r\nConnection: close\r\n\r\n`);
    expect(r.response?.status).toBe(431);
    expect(r.response?.headers['content-type']).toMatch(/^application\/json/);
    expect(isBitbucketError(r.response!.body)).toBe(true);
  });

  it('answers 414 to request targets above maxUrlLength, without asking upstream', async () => {
    stack.fake.clearLog();
    const r = await once(port, `GET /2.0/repositories/acme/service-api/src/main/${'d/'.repeat(600)}x HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`);
    expect(r.response?.status).toBe(414);
    expect(isBitbucketError(r.response!.body)).toBe(true);
    expect(stack.fake.requests).toEqual([]);
    // Just under the limit is served.
    const ok = await once(port, `GET /2.0/repositories/acme/service-api?${'x=1&'.repeat(200)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`);
    expect(ok.response?.status).toBe(200);
  });

  it('answers 413 to a declared write body above maxBodyBytes and closes the connection', async () => {
    stack.fake.clearLog();
    // Keep-alive is asked for; the server closes anyway instead of reading the rest of the body.
    const r = await exchange(port, [`POST ${STATUS} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"state":`], { timeoutMs: 10_000 });
    expect(r.response?.status).toBe(413);
    expect(r.response?.headers.connection).toBe('close');
    expect(isBitbucketError(r.response!.body)).toBe(true);
    expect(r.ended).toBe('closed');
    expect(stack.fake.requests).toEqual([]);
  });

  it('answers 413 to a chunked write body that grows above maxBodyBytes', async () => {
    stack.fake.clearLog();
    const chunk = `800\r\n${'x'.repeat(0x800)}\r\n`;
    const r = await exchange(port, [`POST ${STATUS} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk, chunk, chunk], { gapMs: 20, timeoutMs: 10_000 });
    expect(r.response?.status).toBe(413);
    expect(isBitbucketError(r.response!.body)).toBe(true);
    expect(stack.fake.requests).toEqual([]);
  });

  it('answers 503 + Retry-After past server.maxConnections, closes outright past twice that, and recovers', async () => {
    const API = 'GET /2.0/repositories/acme HTTP/1.1\r\nHost: x\r\n\r\n';
    const AUTHED = `GET /2.0/repositories/acme HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`;
    const held: net.Socket[] = [];
    const connect = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
        held.push(s);
      });
    try {
      // Fill the listener with keep-alive connections that each were served one authenticated request.
      for (let i = 0; i < 4; i++) {
        const s = await connect();
        await new Promise<void>((resolve) => {
          s.once('data', (d: Buffer) => {
            expect(d.toString()).toMatch(/^HTTP\/1\.1 200 /);
            resolve();
          });
          s.write(AUTHED);
        });
      }
      const turnedAway = await once(port, API, { timeoutMs: 10_000 });
      expect(turnedAway.response?.status).toBe(503);
      expect(turnedAway.response?.headers['retry-after']).toBe('1');
      expect(turnedAway.response?.headers.connection).toBe('close');
      expect(isBitbucketError(turnedAway.response!.body)).toBe(true);
      expect(turnedAway.ended).not.toBe('timeout');
      // Health stays answerable for probes.
      expect(await healthy()).toBe(200);

      // Connections that only sit open count towards twice the limit: past it, closed unanswered.
      for (let i = 0; i < 4; i++) await connect();
      const refused = await once(port, API, { timeoutMs: 10_000 });
      expect(refused.response).toBeUndefined();
      expect(refused.ended).not.toBe('timeout');

      held.splice(4).forEach((s) => s.destroy());
      held.pop()!.destroy();
      const server = stack.running.servers[0];
      for (let i = 0; i < 100; i++) {
        const n = await new Promise<number>((resolve) => server.getConnections((_e, c) => resolve(c)));
        if (n < 4) break;
        await sleep(20);
      }
      expect((await once(port, API.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'), { timeoutMs: 10_000 })).response?.status).toBe(401);
    } finally {
      held.forEach((s) => s.destroy());
    }
  });

  it.each([
    ['a lower-case method', 'get /2.0/user HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['a header name with a space', 'GET /2.0/user HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nConnection: close\r\n\r\n'],
    ['Content-Length with Transfer-Encoding', 'POST /2.0/user HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n0\r\n\r\n'],
    ['a bare LF line ending', 'GET /2.0/user HTTP/1.1\nHost: x\nConnection: close\n\n'],
    ['an invalid HTTP version', 'GET /2.0/user HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['a NUL in a header value', 'GET /2.0/user HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\nConnection: close\r\n\r\n'],
  ])('answers %s (refused by the HTTP parser) with a Bitbucket-shaped 400', async (_name, text) => {
    const r = await once(port, text);
    expect(r.response?.status).toBe(400);
    expect(r.response?.headers['content-type']).toMatch(/^application\/json/);
    expect(isBitbucketError(r.response!.body)).toBe(true);
  });

  it('answers an HTTP/1.1 request without Host with a Bitbucket-shaped 400 (not Node\'s bare one)', async () => {
    const r = await once(port, `GET /2.0/repositories/acme/service-api HTTP/1.1\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`);
    expect(r.response?.status).toBe(400);
    expect(r.response?.headers['content-type']).toMatch(/^application\/json/);
    expect(isBitbucketError(r.response!.body)).toBe(true);
  });

  it('answers CONNECT with a Bitbucket-shaped 405 instead of dropping the connection', async () => {
    const r = await once(port, 'CONNECT api.bitbucket.org:443 HTTP/1.1\r\nHost: api.bitbucket.org:443\r\n\r\n');
    expect(r.response?.status).toBe(405);
    expect(isBitbucketError(r.response!.body)).toBe(true);
    expect(await healthy()).toBe(200);
  });

  it('validates the hardening keys', () => {
    const text = (server: string) => `
server:
${server}
upstream:
  auth: { type: bearer, token: t }
clients:
  - id: a
    token: { sha256: "${'a'.repeat(64)}" }
    scope: [{ workspace: acme }]
`;
    const c = parseConfigText(text('  http: { port: 1 }'), {});
    expect(c.server).toMatchObject({ headersTimeoutMs: 20_000, requestTimeoutMs: 300_000, maxConnections: 1024 });
    const problems = (server: string) => {
      try {
        parseConfigText(text(server), {});
      } catch (e) {
        if (e instanceof ConfigError) return e.problems.join('\n');
        throw e;
      }
      return '';
    };
    expect(problems('  headersTimeoutMs: 5000\n  requestTimeoutMs: 1000')).toMatch(/server\.headersTimeoutMs/);
    expect(problems('  maxConnections: 0')).toMatch(/server\.maxConnections/);
    expect(problems('  maxConnection: 10')).toMatch(/maxConnection/);
    expect(problems('  headersTimeoutMs: 5000\n  requestTimeoutMs: 0')).toBe('');
  });
});
