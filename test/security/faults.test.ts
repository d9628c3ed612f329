import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import { loadConfigFile } from '../../src/config/load';
import { createLogger } from '../../src/ops/logger';
import { reloadFromFile, startSidecar, type RunningSidecar } from '../../src/serve';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { startFakeBitbucket, type FakeBitbucketServer, type Fault } from '../../src/fake-bitbucket';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { startLink, type Link } from './link';
import { isBitbucketError } from './wire';

/**
 * Upstream faults (issue 10, "Faults"): Bitbucket down at start, going down mid-scan, answers slower
 * than the timeouts, connections reset mid-body, truncated JSON, HTML 500s, 429 storms and clock
 * jumps. For each: the caller gets a stale answer or a Bitbucket-shaped error, nothing is lost or
 * duplicated (one upstream POST per client POST, never a retry), and the process stays up.
 *
 * The sidecar talks to the fake through a TCP hop (`link.ts`) the test can take down. Its clock
 * is `Date.now() + skew`, so freshness can be made to run out without waiting.
 */

const API = '/2.0/repositories/acme';
const STATUS_BODY = JSON.stringify({ state: 'SUCCESSFUL', key: 'faults', url: 'https://ci.example/job/faults/1', name: 'faults #1' });

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

describe('upstream faults', () => {
  let fake: FakeBitbucketServer;
  let link: Link;
  let stack: Stack;
  let skew = 0;
  const now = () => Date.now() + skew;
  let auth: string;
  let token: string;
  const consumer = mintOAuthConsumer();
  let mainHash: string;

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    link = await startLink({ host: '127.0.0.1', port: Number(new URL(fake.url).port) }, 'down');
    token = mintToken();
    stack = await startStack([], {
      fakeInstance: fake,
      config: {
        clients: [
          { id: 'jenkins', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write'] },
          { id: 'oauth', oauth: { key: consumer.key, secretSha256: sha256Hex(consumer.secret) }, scope: [{ workspace: 'acme' }] },
        ],
        upstream: {
          apiUrl: link.url,
          webUrl: link.url,
          auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
          timeouts: { connectMs: 500, responseMs: 700 },
          // Queueing for the budget is not what is tested here: refusals answer at once.
          budget: { maxQueueWaitMs: 0 },
        },
      },
      sidecar: { now },
    });
    auth = basicAuth('jenkins@ci.example', token);
  });
  afterAll(async () => {
    await stack.stop();
    await link.close();
    await fake.close();
  });

  async function call(path: string, init: { method?: string; body?: string; host?: string; authorization?: string } = {}): Promise<Answer> {
    const r = await request(`${stack.url}${path}`, {
      method: (init.method ?? 'GET') as 'GET',
      headers: { host: init.host ?? 'api.bitbucket.org', authorization: init.authorization ?? auth, ...(init.body ? { 'content-type': 'application/json; charset=UTF-8' } : {}) },
      body: init.body,
    });
    const text = await r.body.text();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) headers[k] = String(v);
    return { status: r.statusCode, headers, text };
  }

  /** A Bitbucket-shaped error (JSON, type "error", a message) — what the plugin can read. */
  function expectBitbucketError(a: Answer, status?: number | number[]): void {
    if (status !== undefined) expect({ status: a.status, text: a.text.slice(0, 200) }).toEqual({ status: [status].flat().includes(a.status) ? a.status : status, text: a.text.slice(0, 200) });
    expect(a.status).toBeGreaterThanOrEqual(400);
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(isBitbucketError(a.text)).toBe(true);
  }

  async function healthy(): Promise<void> {
    const r = await request(`${stack.url}/_sidecar/health`);
    expect(r.statusCode).toBe(200);
    await r.body.dump();
  }

  const settle = () => stack.running.sidecar.cache.idle();
  const upstreamPosts = () => fake.requests.filter((r) => r.method === 'POST' && r.kind === 'api');

  // The plugin's calls for an organization scan of acme (bench/scan.ts), as a list.
  const scan = () => [
    '/2.0/workspaces/acme',
    `${API}?pagelen=100`,
    ...['service-api', 'service-web'].flatMap((repo) => [
      `${API}/${repo}`,
      `${API}/${repo}/pullrequests?pagelen=50`,
      `${API}/${repo}/refs/branches?pagelen=100`,
      `${API}/${repo}/refs/tags?pagelen=100`,
      `${API}/${repo}/src/main/Jenkinsfile?format=meta`,
      `${API}/${repo}/?fields=mainbranch.name`,
    ]),
  ];

  it('Bitbucket down at start: Bitbucket-shaped 502s (git: text/plain), local answers work, no write is sent', async () => {
    link.set('down');
    for (const path of scan().slice(0, 6)) expectBitbucketError(await call(path), 502);
    const git = await call('/acme/service-api.git/info/refs?service=git-upload-pack', { host: 'bitbucket.org' });
    expect(git.status).toBe(502);
    expect(git.headers['content-type']).toMatch(/^text\/plain/);
    expect((await call('/2.0/user')).status).toBe(200);
    fake.clearLog();
    const post = await call(`${API}/service-api/commit/0123456789ab/statuses/build`, { method: 'POST', body: STATUS_BODY });
    expectBitbucketError(post, 502);
    expect(upstreamPosts()).toHaveLength(0);
    await healthy();

    // Failures were not stored: once Bitbucket is reachable every call answers.
    link.set('up');
    for (const path of scan()) expect([path, (await call(path)).status]).toEqual([path, 200]);
    mainHash = JSON.parse((await call(`${API}/service-api/refs/branches/main`)).text).target.hash;
  });

  it('Bitbucket going down mid-scan: what was seen before is served stale, the rest is a Bitbucket-shaped 502', async () => {
    link.set('up');
    const paths = scan();
    for (const p of paths) expect((await call(p)).status).toBe(200);
    await settle();
    skew += 10 * 60_000; // every list and metadata answer is past its freshness and its revalidation window
    const half = Math.floor(paths.length / 2);
    for (const p of paths.slice(0, half)) {
      const a = await call(p);
      expect([p, a.status]).toEqual([p, 200]);
      expect(a.headers['cache-status']).toMatch(/fwd=(stale|miss)/); // went to Bitbucket
    }
    link.set('down');
    for (const p of paths.slice(half)) {
      const a = await call(p);
      expect([p, a.status]).toEqual([p, 200]);
      // The stored copy, or (the default-branch lookup) an answer derived from a fresh repository object.
      expect(a.headers['cache-status']).toMatch(/detail=stale-if-error|^bitbucket-sidecar; hit; ttl=\d+; detail=derived$/);
      JSON.parse(a.text); // a complete answer
    }
    expectBitbucketError(await call(`${API}/service-api/refs/branches?pagelen=7`), 502);
    await healthy();
    link.set('up');
  });

  /**
   * One fault against two requests: one never seen (→ Bitbucket-shaped error, not stored), one
   * seen before and now stale (→ the stored copy). Then the fault is gone and both answer fresh.
   */
  async function faultMatrix(fault: Omit<Fault, 'match' | 'times'>, expectStatus: number | number[]): Promise<void> {
    link.set('up');
    const seen = `${API}/service-web/refs/tags?pagelen=${++uniq}`;
    const before = await call(seen);
    expect(before.status).toBe(200);
    await settle();
    skew += 10 * 60_000;
    const unseen = `${API}/service-web/refs/tags?pagelen=${++uniq}`;
    fake.addFault({ ...fault, match: { pathIncludes: '/service-web/refs/tags' }, times: 2 } as Fault);
    const a = await call(unseen);
    expectBitbucketError(a, expectStatus);
    const b = await call(seen);
    expect(b.status).toBe(200);
    expect(b.headers['cache-status']).toMatch(/detail=stale-if-error/);
    expect(b.text).toBe(before.text);
    fake.clearFaults();
    await settle();
    const again = await call(unseen);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text).values).toBeDefined();
    await healthy();
  }
  let uniq = 10;

  it('answers slower than upstream.timeouts.responseMs: 504, or the stored copy', async () => {
    await faultMatrix({ kind: 'latency', latencyMs: 2500 }, 504);
  });

  it('a connection reset mid-body: 502, or the stored copy', async () => {
    await faultMatrix({ kind: 'reset' }, 502);
  });

  it('truncated JSON (a clean chunked end after half the body): 502, not stored, or the stored copy', async () => {
    await faultMatrix({ kind: 'truncate' }, 502);
  });

  it('a 500 with an HTML body: a Bitbucket-shaped 500, or the stored copy', async () => {
    await faultMatrix({ kind: 'html500' }, [500, 502]);
  });

  it('a hung upstream (accepts, never answers): 504 for the unseen, the stored copy for the seen', async () => {
    const seen = `${API}/service-api/refs/tags?pagelen=${++uniq}`;
    expect((await call(seen)).status).toBe(200);
    await settle();
    skew += 10 * 60_000;
    link.set('silent');
    expectBitbucketError(await call(`${API}/service-api/refs/tags?pagelen=${++uniq}`), 504);
    const b = await call(seen);
    expect(b.status).toBe(200);
    expect(b.headers['cache-status']).toMatch(/detail=stale-if-error/);
    link.set('up');
    await healthy();
  });

  it.each<[string, Omit<Fault, 'match' | 'times'>, number]>([
    ['slower than the timeout', { kind: 'latency', latencyMs: 1500 }, 504],
    ['reset mid-body', { kind: 'reset' }, 502],
    ['an HTML 500', { kind: 'html500' }, 500],
    ['a 503', { kind: 'status', status: 503 }, 503],
  ])('a build status POST that meets %s reaches Bitbucket exactly once and the caller hears of the failure', async (_name, fault, status) => {
    link.set('up');
    fake.clearLog();
    const path = `${API}/service-api/commit/${mainHash.slice(0, 12)}/statuses/build`;
    fake.addFault({ ...fault, match: { method: 'POST', pathIncludes: '/statuses/build' }, times: 1 } as Fault);
    const a = await call(path, { method: 'POST', body: STATUS_BODY });
    expectBitbucketError(a, status);
    // Give a (wrong) retry every chance to show up before counting.
    await new Promise((r) => setTimeout(r, 2000));
    expect(upstreamPosts().map((r) => r.path)).toEqual([path.replace(/\?.*$/, '')]);
    fake.clearFaults();
    fake.clearLog();
    const ok = await call(path, { method: 'POST', body: STATUS_BODY });
    expect([200, 201]).toContain(ok.status);
    expect(upstreamPosts()).toHaveLength(1);
  });

  it('a build status POST whose answer is truncated: applied once, and the caller gets a Bitbucket-shaped 502 saying so', async () => {
    link.set('up');
    fake.clearLog();
    const before = fake.model.statuses.length;
    fake.addFault({ kind: 'truncate', match: { method: 'POST', pathIncludes: '/statuses/build' }, times: 1 });
    const body = JSON.stringify({ ...JSON.parse(STATUS_BODY), key: 'truncated-answer' });
    const a = await call(`${API}/service-api/commit/${mainHash.slice(0, 12)}/statuses/build`, { method: 'POST', body });
    // Was: the half body passed on as a 201 (a corrupt success the plugin cannot parse).
    expectBitbucketError(a, 502);
    expect(JSON.parse(a.text).error.message).toMatch(/may have been applied/);
    expect(upstreamPosts()).toHaveLength(1);
    expect(fake.model.statuses.length).toBe(before + 1);
    fake.clearFaults();
  });

  it('a 429 storm: every answer is a stale copy or a Bitbucket-shaped 429 with an exact Retry-After; the sidecar backs off', async () => {
    link.set('up');
    const seen = [`${API}/service-web/pullrequests?pagelen=${++uniq}`, `${API}/service-api/pullrequests?pagelen=${++uniq}`];
    for (const p of seen) expect((await call(p)).status).toBe(200);
    await settle();
    skew += 10 * 60_000;
    fake.clearLog();
    fake.addFault({ kind: 'rate429', retryAfter: 30, match: { pathPrefix: '/2.0/' }, times: 1000 });
    const unseen = Array.from({ length: 12 }, (_, i) => `${API}/service-api/refs/branches?pagelen=${1000 + i}`);
    // The first 429 from Bitbucket…
    const first = await call(`${API}/service-api/refs/branches?pagelen=999`);
    expectBitbucketError(first, 429);
    expect(fake.requests.filter((r) => r.kind === 'api')).toHaveLength(1);
    // …makes the sidecar stop calling for the Retry-After: a burst of clients reaches Bitbucket not once.
    const answers = await Promise.all([...unseen, ...seen, ...unseen].map(async (p) => ({ p, a: await call(p) })));
    for (const { p, a } of answers) {
      if (seen.includes(p)) {
        expect([p, a.status]).toEqual([p, 200]);
        continue;
      }
      expectBitbucketError(a, 429);
      expect(a.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
      expect(Number(a.headers['retry-after'])).toBeLessThanOrEqual(600);
    }
    expect(fake.requests.filter((r) => r.kind === 'api')).toHaveLength(1);
    // A write during the storm is refused or answered 429 — never sent twice.
    fake.clearLog();
    const w = await call(`${API}/service-api/commit/${mainHash.slice(0, 12)}/statuses/build`, { method: 'POST', body: STATUS_BODY });
    expectBitbucketError(w, 429);
    expect(upstreamPosts().length).toBeLessThanOrEqual(1);
    await healthy();

    // The storm passes: after Retry-After the sidecar calls Bitbucket again.
    fake.clearFaults();
    skew += 31_000;
    await settle();
    const after = await call(unseen[0]);
    expect(after.status).toBe(200);
  });

  it('clock jumps: forward expires answers, OAuth tokens and fork grants; backward does not freeze anything', async () => {
    link.set('up');
    // An issued OAuth token, a fork grant and a cached answer, at the current time.
    const grant = await request(`${stack.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { host: 'bitbucket.org', authorization: basicAuth(consumer.key, consumer.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    const bearer = `Bearer ${((await grant.body.json()) as { access_token: string }).access_token}`;
    expect((await call('/2.0/user', { authorization: bearer })).status).toBe(200);
    expect((await call(`${API}/service-api/pullrequests?pagelen=50`)).status).toBe(200);
    const fork = '/2.0/repositories/jdoe/service-api-fork/refs/branches/feature%2FBB-2';
    expect((await call(fork)).status).toBe(200);
    const branches = `${API}/service-web/refs/branches?pagelen=${++uniq}`;
    expect((await call(branches)).status).toBe(200);
    await settle();

    // Forward two days: the grant lapsed (6 h) until the PR list is read again; the answer is refetched.
    skew += 2 * 86_400_000;
    expectBitbucketError(await call('/2.0/user', { authorization: bearer }), 401);
    fake.clearLog();
    expect((await call(fork)).status).toBe(404);
    expect(fake.requests.filter((r) => r.workspace === 'jdoe')).toEqual([]);
    const refetched = await call(branches);
    expect(refetched.status).toBe(200);
    expect(refetched.headers['cache-status']).toMatch(/fwd=/);

    // Backward one day: an answer stored "in the future" must not stay fresh for a day.
    const listSeconds = stack.running.sidecar.cache.settings.freshness.listSeconds;
    await settle();
    skew -= 86_400_000;
    const back = await call(branches);
    expect(back.status).toBe(200);
    // The expired OAuth token stays expired when the clock goes back (it was removed, not just aged).
    expectBitbucketError(await call('/2.0/user', { authorization: bearer }), 401);
    skew += (listSeconds + 1) * 1000 + 60_000; // well past the list freshness after the jump
    fake.clearLog();
    const later = await call(branches);
    expect(later.status).toBe(200);
    expect(later.headers['cache-status']).not.toMatch(/^bitbucket-sidecar; hit; ttl=[0-9]/);
    await healthy();
  });
});

describe('configuration reload faults', () => {
  let fake: FakeBitbucketServer;
  let dir: string;
  let file: string;
  let running: RunningSidecar;
  const lines: string[] = [];
  const tokenA = mintToken();
  const tokenB = mintToken();
  const ENV = 'FAULTS_TEST_UPSTREAM_TOKEN';

  const configText = (clients: string) => `
server:
  http: { host: 127.0.0.1, port: 0 }
upstream:
  apiUrl: FAKE
  webUrl: FAKE
  auth:
    type: basic
    username: jdoe@example.com
    password: \${${ENV}}
clients:
${clients}
`;
  const client = (id: string, token: string) => `  - id: ${id}
    token: { sha256: "${sha256Hex(token)}" }
    scope: [{ workspace: acme }]
`;
  const write = (text: string) => writeFileSync(file, text.replace(/FAKE/g, fake.url));
  const get = async (token: string) => {
    const r = await request(`${running.httpUrl}/2.0/repositories/acme/service-api`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('j@ci.example', token) } });
    const text = await r.body.text();
    return { status: r.statusCode, text };
  };

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    process.env[ENV] = fake.credentials.apiToken;
    dir = mkdtempSync(path.join(tmpdir(), 'reload-faults-'));
    file = path.join(dir, 'config.yaml');
    write(configText(client('a', tokenA)));
    const { stream } = { stream: new Writable({ write: (c, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean)), cb()) }) };
    const logger = createLogger({ level: 'info', destination: stream });
    running = await startSidecar(loadConfigFile(file), { logger });
  });
  afterAll(async () => {
    await running.stop(200);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
    delete process.env[ENV];
  });

  it.each([
    ['broken YAML', () => write('clients: [\n  - id: a\n    token: {')],
    ['an unknown key (a typo must never silently change a scope)', () => write(configText(client('a', tokenA).replace('scope:', 'scpoe:')))],
    ['a missing secret reference', () => write(configText(client('a', tokenA)).replace(`\${${ENV}}`, '${FAULTS_TEST_NOT_SET}'))],
    ['an empty file', () => write('')],
    ['a file that cannot be read', () => rmSync(file)],
  ])('refuses %s and keeps serving with the previous configuration', async (_name, breakIt) => {
    expect((await get(tokenA)).status).toBe(200);
    breakIt();
    const before = lines.length;
    expect(reloadFromFile(running, file, running.sidecar.logger)).toBe(false);
    expect((await get(tokenA)).status).toBe(200);
    const refused = lines.slice(before).filter((l) => l.includes('configuration reload refused'));
    expect(refused).toHaveLength(1);
    expect(JSON.parse(refused[0]).level).toBe(50);
    const health = await request(`${running.httpUrl}/_sidecar/health`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  });

  it('a valid reload after the refused ones applies at once; no secret was ever logged', async () => {
    write(configText(client('b', tokenB)));
    expect(reloadFromFile(running, file, running.sidecar.logger)).toBe(true);
    const a = await get(tokenA);
    expect(a.status).toBe(401);
    expect(isBitbucketError(a.text)).toBe(true);
    expect((await get(tokenB)).status).toBe(200);
    const all = lines.join('\n');
    for (const secret of [fake.credentials.apiToken, tokenA, tokenB, Buffer.from(`jdoe@example.com:${fake.credentials.apiToken}`).toString('base64')]) expect(all).not.toContain(secret);
  });
});
