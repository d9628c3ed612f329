/**
 * Logs: one audit line per request with the documented fields (client, method, route, canonical
 * path, decision, cache, upstream status, status, duration), and no secret in any log line at any
 * level — client tokens, OAuth secrets and issued access tokens, the upstream credential, and the
 * Authorization header values that carry them — whatever the request does with them.
 */
import { PassThrough } from 'node:stream';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { createLogger } from '../../src/ops/logger';
import { logCollector, startStack, type Stack } from '../helpers/stack';
import { basic, request } from './http';

interface AuditLine {
  kind?: string;
  level: number;
  msg: string;
  client?: string;
  method: string;
  route?: string;
  path?: string;
  decision: string;
  cache?: string;
  upstreamStatus?: number;
  status: number;
  ms: number;
}

describe('audit log and secret hygiene', () => {
  let stack: Stack;
  const logs = logCollector();
  const consumer = mintOAuthConsumer();
  const wrongToken = mintToken();
  let issued = '';
  /** Requests made (excluding /_sidecar/*), to match against audit lines. */
  let made = 0;
  const call = async (...args: Parameters<typeof request>) => {
    made++;
    return request(...args);
  };

  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      sidecar: { logger: createLogger({ level: 'trace', destination: logs.stream }) },
    });
    // Add an OAuth consumer to the client (same token), through a reload as an operator would.
    const cfg = stack.running.sidecar.config;
    stack.running.sidecar.reload({ ...cfg, clients: [{ ...cfg.clients[0], oauth: { key: consumer.key, secretSha256: sha256Hex(consumer.secret) } }] });
    const token = stack.tokens.reader;
    const auth = { authorization: basic('jenkins@example.com', token) };
    const u = stack.url;

    stack.fake.addFault({ kind: 'status', status: 500, match: { pathPrefix: '/2.0/repositories/acme/infra/refs/tags' } });
    stack.fake.addFault({ kind: 'reset', match: { pathPrefix: '/2.0/repositories/acme/infra/refs/branches' } });

    expect((await call(`${u}/2.0/repositories/acme?pagelen=100`, { headers: auth })).status).toBe(200);
    expect((await call(`${u}/2.0/repositories/ACME/Service-API/?fields=mainbranch.name&unknown=1`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await call(`${u}/2.0/repositories/acme`, { headers: { authorization: basic('jenkins@example.com', wrongToken) } })).status).toBe(401);
    expect((await call(`${u}/2.0/repositories/acme?access_token=${token}&pagelen=100`, { headers: auth })).status).toBe(200);
    expect((await call(`${u}/2.0/repositories/${token}`, { headers: auth })).status).toBe(404);
    expect((await call(`${u}/2.0/repositories/jdoe/secret-notes`, { headers: auth })).status).toBe(404);
    expect((await call(`${u}/2.0/repositories/acme/infra/refs/tags`, { headers: auth })).status).toBeGreaterThanOrEqual(500);
    expect((await call(`${u}/2.0/repositories/acme/infra/refs/branches`, { headers: auth })).status).toBeGreaterThanOrEqual(500);
    expect((await call(`${u}/2.0/repositories/acme`, { headers: { authorization: `Token ${token}` } })).status).toBeGreaterThanOrEqual(400);
    expect((await call(`${u}/acme/service-api.git/info/refs?service=git-upload-pack`, { headers: { authorization: basic('x-bitbucket-api-token-auth', token) } })).status).toBe(200);
    expect((await call(`${u}/acme/service-api.git/info/refs?service=git-upload-pack`, { headers: { authorization: basic('x-token-auth', wrongToken) } })).status).toBe(401);
    const grant = await call(`${u}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { authorization: basic(consumer.key, consumer.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(grant.status).toBe(200);
    issued = (JSON.parse(grant.body) as { access_token: string }).access_token;
    expect(issued.length).toBeGreaterThan(10);
    expect((await call(`${u}/2.0/workspaces/acme`, { headers: { authorization: `Bearer ${issued}` } })).status).toBe(200);
    // ops requests are not audited
    await request(`${u}/_sidecar/health`);
    await new Promise((r) => setTimeout(r, 50));
  });

  afterAll(async () => {
    await stack?.stop();
  });

  const parsed = () => logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const audits = () => parsed().filter((l) => l.kind === 'audit') as unknown as AuditLine[];

  it('writes exactly one audit line per request, with the documented fields', () => {
    const lines = audits();
    expect(lines).toHaveLength(made);
    for (const a of lines) {
      expect(a.msg).toBe('request');
      expect(typeof a.method).toBe('string');
      expect(typeof a.decision).toBe('string');
      expect(typeof a.status).toBe('number');
      expect(typeof a.ms).toBe('number');
    }
    const allowed = lines.filter((a) => a.decision === 'allow');
    expect(allowed.length).toBeGreaterThan(0);
    for (const a of allowed) {
      expect(a.client).toBe('reader');
      expect(a.route).toBeDefined();
      expect(a.path).toMatch(/^\//);
    }
  });

  it('logs the canonical path: lower-cased slugs, only the route\'s own query parameters', () => {
    const a = audits().find((l) => l.route === 'repository')!;
    expect(a).toMatchObject({ client: 'reader', method: 'GET', decision: 'allow', path: '/2.0/repositories/acme/service-api/?fields=mainbranch.name', upstreamStatus: 200, status: 200 });
    expect(a.cache).toMatch(/^bitbucket-sidecar; /);
  });

  it('records refusals with their decision and no client for unknown credentials', () => {
    const byDecision = (d: string) => audits().filter((l) => l.decision === d);
    // A scheme other than Basic/Bearer is no credential of ours: 401, as Bitbucket answers it.
    expect(byDecision('unauthenticated').map((l) => [l.status, l.client])).toEqual([
      [401, undefined],
      [401, undefined],
      [401, undefined],
    ]);
    expect(byDecision('unauthenticated').map((l) => l.path)).toEqual(['/2.0/repositories/acme', '/2.0/repositories/acme', '/acme/service-api.git/info/refs?service=git-upload-pack']);
    // Refusals name the client and the canonical target it asked for.
    expect(byDecision('out-of-scope').map((l) => [l.client, l.route, l.status, l.path])).toEqual([['reader', 'repository', 404, '/2.0/repositories/jdoe/secret-notes']]);
    expect(byDecision('no-route').map((l) => l.status)).toEqual([404]); // the token pasted into a path
    expect(byDecision('bad-credentials')).toEqual([]);
    const failed = audits().find((l) => l.route === 'tags')!;
    expect(failed.upstreamStatus).toBe(500);
  });

  it('never writes a secret, at any log level', () => {
    const token = stack.tokens.reader;
    const upstream = stack.fake.credentials;
    const secrets: Record<string, string> = {
      'client token': token,
      'wrong token': wrongToken,
      'OAuth secret': consumer.secret,
      'issued access token': issued,
      'upstream API token': upstream.apiToken,
      'client Basic header': basic('jenkins@example.com', token).slice('Basic '.length),
      'git Basic header': basic('x-bitbucket-api-token-auth', token).slice('Basic '.length),
      'OAuth Basic header': basic(consumer.key, consumer.secret).slice('Basic '.length),
      'upstream Basic header': basic(upstream.email, upstream.apiToken).slice('Basic '.length),
      'upstream git Basic header': basic('x-bitbucket-api-token-auth', upstream.apiToken).slice('Basic '.length),
    };
    expect(logs.lines.length).toBeGreaterThan(made); // trace/debug/warn lines too, not only audit
    const leaks: string[] = [];
    for (const line of logs.lines) {
      for (const [what, secret] of Object.entries(secrets)) if (line.includes(secret)) leaks.push(`${what}: ${line.slice(0, 200)}`);
    }
    expect(leaks).toEqual([]);
  });

  it('redacts credential fields even when a caller passes them to the logger', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const log = createLogger({ level: 'info', destination: out });
    log.info({ authorization: 'Basic c2VjcmV0', headers: { authorization: 'Bearer s3cret' }, req: { headers: { authorization: 'Bearer s3cret2' } }, token: 't0ken', password: 'pa55', secret: 'shh', upstream: { password: 'pa55-2', token: 't0ken-2' } }, 'x');
    for (const s of ['c2VjcmV0', 's3cret', 's3cret2', 't0ken', 'pa55', 'shh']) expect(text).not.toContain(s);
    expect(text).toContain('[redacted]');
  });
});
