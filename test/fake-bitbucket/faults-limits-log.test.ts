import { request as httpRequest } from 'node:http';
import { parseTarget, startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { apiAuth, get, raw } from './helpers';

let fake: FakeBitbucketServer;
let clock = 1_700_000_000_000;
const R = '/2.0/repositories/acme/service-api';

beforeAll(async () => {
  fake = await startFakeBitbucket({ now: () => clock });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.clearFaults();
  fake.setRateLimit(null);
});

/** A request whose outcome may be a broken response: resolves with what arrived and how it ended. */
function fragile(path: string): Promise<{ status: number; body: string; headers: Record<string, unknown>; error?: string }> {
  const u = new URL(fake.url);
  return new Promise((resolve) => {
    const req = httpRequest({ host: u.hostname, port: Number(u.port), path, headers: { authorization: apiAuth(fake) }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', (e) => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, error: e.message }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, error: 'aborted' }));
    });
    req.on('error', (e) => resolve({ status: 0, body: '', headers: {}, error: e.message }));
    req.end();
  });
}

describe('faults', () => {
  test('latency delays, then answers normally', async () => {
    fake.addFault({ kind: 'latency', latencyMs: 250, match: { pathPrefix: `${R}/refs` }, times: 1 });
    const t0 = Date.now();
    const r = await get(fake, `${R}/refs/branches/main`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    expect(r.status).toBe(200);
    const t1 = Date.now();
    await get(fake, `${R}/refs/branches/main`);
    expect(Date.now() - t1).toBeLessThan(240);
  });

  test('status 503 with JSON error body, fires `times` times only', async () => {
    fake.addFault({ kind: 'status', status: 503, times: 2, match: { method: 'GET', pathIncludes: '/pullrequests' } });
    const a = await get(fake, `${R}/pullrequests`);
    expect(a.status).toBe(503);
    expect(a.json()).toEqual({ type: 'error', error: { message: expect.any(String) } });
    expect((await get(fake, `${R}/pullrequests`)).status).toBe(503);
    expect((await get(fake, `${R}/pullrequests`)).status).toBe(200);
  });

  test('status fault only matches its method and path', async () => {
    fake.addFault({ kind: 'status', status: 500, match: { method: 'POST', pathPrefix: R } });
    expect((await get(fake, R)).status).toBe(200);
    fake.clearFaults();
    fake.addFault({ kind: 'status', status: 500, match: { pathPrefix: '/2.0/repositories/other' } });
    expect((await get(fake, R)).status).toBe(200);
    expect((await get(fake, '/2.0/repositories/other/widgets')).status).toBe(500);
  });

  test('429 status fault with Retry-After', async () => {
    fake.addFault({ kind: 'status', status: 429, retryAfter: 7, times: 1 });
    const r = await get(fake, R);
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
  });

  test('rate429 answers like Bitbucket (text/plain, no Retry-After)', async () => {
    fake.addFault({ kind: 'rate429', times: 1 });
    const r = await get(fake, R);
    expect(r.status).toBe(429);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['retry-after']).toBeUndefined();
    expect(r.text).toBe('Rate limit for this resource has been exceeded');
  });

  test('html500 answers an HTML page', async () => {
    fake.addFault({ kind: 'html500', times: 1 });
    const r = await get(fake, R);
    expect(r.status).toBe(500);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.text).toMatch(/^<!DOCTYPE html>/);
    expect(() => JSON.parse(r.text)).toThrow();
  });

  test('reset: headers and part of the body, then the connection dies', async () => {
    fake.addFault({ kind: 'reset', times: 1, match: { pathPrefix: R } });
    const r = await fragile(R);
    expect(r.status).toBe(200);
    expect(r.error).toBeDefined();
    expect(r.body.length).toBeGreaterThan(0);
    expect(r.body.length).toBeLessThan(Number(r.headers['content-length']));
    expect(fake.requests[fake.requests.length - 1]!.status).toBe(200);
    expect((await get(fake, R)).status).toBe(200);
  });

  test('truncate: half the real JSON with a clean chunked end', async () => {
    const full = (await get(fake, R)).text;
    fake.addFault({ kind: 'truncate', times: 1 });
    const r = await fragile(R);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(full.startsWith(r.body)).toBe(true);
    expect(r.body.length).toBeLessThan(full.length);
    expect(() => JSON.parse(r.body)).toThrow();
  });

  test('faults also hit git paths', async () => {
    fake.addFault({ kind: 'status', status: 503, times: 1, match: { pathIncludes: '.git/info/refs' } });
    const r = await get(fake, '/acme/service-api.git/info/refs?service=git-upload-pack');
    expect(r.status).toBe(503);
  });

  test('the control endpoints add and clear faults over HTTP', async () => {
    const add = await raw(fake, 'POST', '/_fake/faults', { auth: false, body: JSON.stringify({ kind: 'status', status: 502, match: { pathPrefix: '/2.0/user' } }) });
    expect(add.status).toBe(201);
    expect((await get(fake, '/2.0/user')).status).toBe(502);
    expect((await raw(fake, 'DELETE', '/_fake/faults', { auth: false })).status).toBe(204);
    expect((await get(fake, '/2.0/user')).status).toBe(200);
    expect((await raw(fake, 'POST', '/_fake/faults', { auth: false, body: '{"kind":"explode"}' })).status).toBe(400);
  });
});

describe('control endpoints', () => {
  test('push, rename and model over HTTP', async () => {
    const tmp = await startFakeBitbucket();
    try {
      const push = await raw(tmp, 'POST', '/_fake/push', {
        auth: false,
        body: JSON.stringify({ workspace: 'acme', repo: 'infra', branch: 'feature/ctl', files: { 'ctl.txt': 'c\n' }, message: 'via control' }),
      });
      expect(push.status).toBe(200);
      const { hash } = push.json();
      expect((await get(tmp, '/2.0/repositories/acme/infra/refs/branches/feature%2Fctl')).json().target.hash).toBe(hash);
      const rename = await raw(tmp, 'POST', '/_fake/rename', { auth: false, body: JSON.stringify({ workspace: 'acme', repo: 'infra', newSlug: 'infra2' }) });
      expect(rename.json()).toEqual({ full_name: 'acme/infra2' });
      expect((await get(tmp, '/2.0/repositories/acme/infra')).status).toBe(301);
      const model = (await raw(tmp, 'GET', '/_fake/model', { auth: false })).json();
      expect(model.repositories.map((r: { slug: string }) => r.slug)).toContain('infra2');
      expect(model.currentUser.nickname).toBe('jdoe');
      expect(tmp.requests.some((r) => r.path.startsWith('/_fake'))).toBe(false);
      expect((await raw(tmp, 'GET', '/_fake/nothing', { auth: false })).status).toBe(404);
    } finally {
      await tmp.close();
    }
  });
});

describe('rate limit', () => {
  test('rolling one-hour window per credential on /2.0/repositories/*, driven by the fake clock', async () => {
    fake.setRateLimit(3);
    for (let i = 0; i < 3; i++) {
      expect((await get(fake, R)).status).toBe(200);
      clock += 10 * 60_000;
    }
    const limited = await get(fake, R);
    expect(limited.status).toBe(429);
    expect(limited.text).toBe('Rate limit for this resource has been exceeded');
    expect(limited.headers['retry-after']).toBeUndefined();
    expect(limited.headers['content-type']).toBe('text/plain');
    // other resources are not limited
    expect((await get(fake, '/2.0/user')).status).toBe(200);
    expect((await get(fake, '/2.0/workspaces/acme')).status).toBe(200);
    // the first hit leaves the window one hour after it was made
    clock += 30 * 60_000 + 1;
    expect((await get(fake, R)).status).toBe(200);
    expect((await get(fake, R)).status).toBe(429);
    fake.setRateLimit(null);
    expect((await get(fake, R)).status).toBe(200);
  });
});

describe('request log', () => {
  test('every request is logged with its parsed target; control requests are not', async () => {
    fake.clearLog();
    const ws = fake.model.findWorkspace('other')!;
    const repo = fake.model.findRepository('other', 'widgets')!;
    await get(fake, `/2.0/repositories/${encodeURIComponent(ws.uuid)}/${encodeURIComponent(repo.uuid)}/refs/branches/feature%2FBB-1?pagelen=5`);
    await get(fake, '/2.0/workspaces/ACME');
    await get(fake, '/2.0/user');
    await get(fake, '/acme/Service-API.git/info/refs?service=git-upload-pack', { auth: false });
    await get(fake, '/workspaces/jdoe/avatar/?ts=1', { auth: false });
    await raw(fake, 'GET', 'http://api.bitbucket.org/2.0/repositories/jdoe/secret-notes');
    await raw(fake, 'POST', `${R}/hooks`, { body: '{"x":1}' });
    await raw(fake, 'GET', '/_fake/requests', { auth: false });
    const log = fake.requests.map((r) => [r.kind, r.workspace, r.repository]);
    expect(log).toEqual([
      ['api', 'other', 'widgets'],
      ['api', 'acme', undefined],
      ['api', undefined, undefined],
      ['git', 'acme', 'service-api'],
      ['web', 'jdoe', undefined],
      ['api', 'jdoe', 'secret-notes'],
      ['api', 'acme', 'service-api'],
    ]);
    const first = fake.requests[0]!;
    expect(first.path).toBe(`/2.0/repositories/${ws.uuid}/${repo.uuid}/refs/branches/feature/BB-1`);
    expect(first.query).toEqual({ pagelen: '5' });
    expect(first.status).toBe(200);
    expect(first.seq).toBeLessThan(fake.requests[1]!.seq);
    expect(fake.requests[3]!.status).toBe(401);
    expect(fake.requests[6]!.body.toString()).toBe('{"x":1}');
    expect(fake.requests[6]!.headers.authorization).toMatch(/^Basic /);
  });

  test('GET /_fake/requests and POST /_fake/clear', async () => {
    await get(fake, '/2.0/repositories/other/widgets');
    const list = (await raw(fake, 'GET', '/_fake/requests', { auth: false })).json();
    const last = list[list.length - 1];
    expect(last).toMatchObject({ kind: 'api', workspace: 'other', repository: 'widgets', method: 'GET', status: 200, bodyEncoding: 'base64' });
    expect((await raw(fake, 'POST', '/_fake/clear', { auth: false })).status).toBe(204);
    expect(fake.requests).toHaveLength(0);
  });

  test('parseTarget: decoding once, %2F, dot segments, absolute form, uuid forms, git and web paths', () => {
    const m = fake.model;
    const acme = m.findWorkspace('acme')!;
    const api = m.findRepository('acme', 'service-api')!;
    const cases: Array<[string, string, string | undefined, string | undefined]> = [
      ['/2.0/repositories/acme/service-api/src/main/dir%2FJenkinsfile?format=meta', 'api', 'acme', 'service-api'],
      [`/2.0/repositories/${encodeURIComponent(acme.uuid)}/${encodeURIComponent(api.uuid)}`, 'api', 'acme', 'service-api'],
      [`/2.0/repositories/${encodeURIComponent(acme.uuid.toUpperCase())}`, 'api', 'acme', undefined],
      ['/2.0/repositories/acme/../other/widgets', 'api', 'other', 'widgets'],
      ['/2.0/repositories/acme/%2E%2E/other/widgets', 'api', 'other', 'widgets'],
      ['//2.0//repositories//Other//Widgets/', 'api', 'other', 'widgets'],
      ['/2.0/repositories/acme%2Fservice-api', 'api', 'acme/service-api', undefined],
      ['/2.0/repositories/%2561cme/x', 'api', '%61cme', 'x'],
      ['https://api.bitbucket.org:443/2.0/workspaces/jdoe?x=1', 'api', 'jdoe', undefined],
      ['/2.0/workspaces/jdoe/permissions/repositories/secret-notes', 'api', 'jdoe', 'secret-notes'],
      ['/2.0/teams/other', 'api', 'other', undefined],
      ['/2.0/repositories', 'api', undefined, undefined],
      ['/2.0/user', 'api', undefined, undefined],
      ['/acme/service-api.git/info/refs?service=git-upload-pack', 'git', 'acme', 'service-api'],
      ['/acme/service-api/git-upload-pack', 'git', 'acme', 'service-api'],
      ['/jdoe/secret-notes.GIT/git-receive-pack', 'git', 'jdoe', 'secret-notes'],
      ['/workspaces/other/avatar/?ts=1', 'web', 'other', undefined],
      ['/site/oauth2/access_token', 'web', undefined, undefined],
      ['/other/widgets/pull-requests/1', 'web', 'other', 'widgets'],
      ['/_fake/requests', 'control', undefined, undefined],
    ];
    for (const [url, kind, ws, repo] of cases) {
      const t = parseTarget(url, m);
      expect([url, t.kind, t.workspace, t.repository]).toEqual([url, kind, ws, repo]);
    }
    expect(parseTarget('/2.0/repositories/acme/service-api/refs/branches/feature%2FBB-1', m).segments.slice(-1)).toEqual(['feature/BB-1']);
    expect(parseTarget('/2.0/repositories/a%ZZ/b', m).badEncoding).toBe(true);
  });

  test('a malformed percent-encoding is answered 400 (and logged)', async () => {
    const r = await get(fake, '/2.0/repositories/acme%ZZ/service-api');
    expect(r.status).toBe(400);
    expect(fake.requests[fake.requests.length - 1]!.status).toBe(400);
  });
});
