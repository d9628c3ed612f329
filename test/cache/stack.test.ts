import { request } from 'undici';
import { organisationScan, ScanClient } from '../../bench/scan';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { ManualClock } from '../../src/upstream/budget-clock';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

/**
 * The cache and the budget governor inside the whole sidecar, in front of the fake Bitbucket with
 * its fault injection. The sidecar's clock is a ManualClock (and so is the fake's rate limiter):
 * freshness, staleness and Retry-After values move only when a test advances it.
 */
const API = 'http://api.bitbucket.org/2.0/repositories';
const R = `${API}/acme/service-api`;
const T0 = 1_800_000_000_000;

interface Answer {
  status: number;
  text: string;
  json: any;
  headers: Record<string, string>;
}

async function send(stack: Stack, client: string, url: string, method = 'GET', body?: string): Promise<Answer> {
  const u = new URL(url);
  const res = await request(new URL(u.pathname + u.search, stack.url), {
    method: method as 'GET',
    headers: { host: u.host, authorization: basicAuth(`${client}@ci.example`, stack.tokens[client]), ...(body ? { 'content-type': 'application/json; charset=UTF-8' } : {}) },
    body,
  });
  const text = await res.body.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, text, json, headers: res.headers as Record<string, string> };
}

function apiCalls(fake: FakeBitbucketServer, part = ''): number {
  return fake.requests.filter((r) => r.kind === 'api' && r.rawUrl.includes(part)).length;
}

async function stackWith(config: Record<string, unknown>, clients = [{ id: 'jenkins', scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write', 'webhooks:manage'] }]) {
  const clock = new ManualClock(T0);
  const fake = await startFakeBitbucket({ seed: 'demo', now: () => clock.now() });
  const upstream = { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken } };
  const { upstream: extraUpstream, ...rest } = config as { upstream?: Record<string, unknown> };
  const stack = await startStack(clients, { fakeInstance: fake, config: { upstream: { ...upstream, ...extraUpstream }, ...rest }, sidecar: { clock } });
  return { clock, fake, stack, sidecarBudgetQueued: () => stack.running.sidecar.budget.snapshot().queued, stop: async () => (await stack.stop(), await fake.close()) };
}

describe('scans through the cache', () => {
  let env: Awaited<ReturnType<typeof stackWith>>;
  beforeAll(async () => {
    env = await stackWith({ cache: { freshness: { listSeconds: 600, metadataSeconds: 600 } } });
  });
  afterAll(() => env.stop());

  it('cold scan makes fewer upstream calls than a direct scan; a warm re-scan makes none', async () => {
    const { fake, stack } = env;
    const direct = new ScanClient({ serverUrl: fake.url, apiBase: fake.url, authorization: basicAuth(fake.credentials.email, fake.credentials.apiToken) });
    fake.clearLog();
    const directSummary = await organisationScan(direct, fake.url, { workspace: 'acme', parallelRepositories: 2 });
    const directCalls = apiCalls(fake);
    await direct.close();

    const plugin = new ScanClient({ serverUrl: stack.url, apiBase: 'http://api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens.jenkins) });
    fake.clearLog();
    const cold = await organisationScan(plugin, 'http://api.bitbucket.org', { workspace: 'acme', parallelRepositories: 2 });
    const coldCalls = apiCalls(fake);
    expect(cold).toEqual(directSummary);
    expect(cold.failedRepositories).toEqual([]);
    expect(coldCalls).toBeLessThan(directCalls);

    env.clock.advance(60_000);
    fake.clearLog();
    plugin.records.length = 0;
    const warm = await organisationScan(plugin, 'http://api.bitbucket.org', { workspace: 'acme', parallelRepositories: 2 });
    expect(warm).toEqual(directSummary);
    expect(apiCalls(fake)).toBe(0);
    expect(plugin.records.length).toBeGreaterThan(20);
    expect(plugin.records.filter((r) => !/^bitbucket-sidecar; hit/.test(r.cacheStatus ?? ''))).toEqual([]);
    await plugin.close();
  });

  it('Age grows with the clock and HEAD is answered from the GET entry', async () => {
    const { fake, stack, clock } = env;
    await send(stack, 'jenkins', `${R}/refs/tags?pagelen=100`);
    clock.advance(12_000);
    fake.clearLog();
    const head = await send(stack, 'jenkins', `${R}/refs/tags?pagelen=100`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['cache-status']).toMatch(/^bitbucket-sidecar; hit; ttl=\d+$/);
    expect(Number(head.headers.age)).toBeGreaterThanOrEqual(12);
    expect(apiCalls(fake)).toBe(0);
  });

  it('writes are never cached or coalesced, and a hook write refreshes the hook list', async () => {
    const { fake, stack } = env;
    const branch = await send(stack, 'jenkins', `${R}/refs/branches/main`);
    const hash = branch.json.target.hash as string;
    const status = JSON.stringify({ state: 'INPROGRESS', key: 'job', url: 'https://jenkins.example/job/1/', name: 'job #1' });
    fake.clearLog();
    const posts = await Promise.all([1, 2].map(() => send(stack, 'jenkins', `${R}/commit/${hash}/statuses/build`, 'POST', status)));
    expect(posts.map((p) => p.status).every((s) => s === 200 || s === 201)).toBe(true);
    expect(posts[0].headers['cache-status']).toBeUndefined();
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(2);

    const before = await send(stack, 'jenkins', `${R}/hooks?pagelen=100`);
    const hook = JSON.stringify({ description: 'Jenkins hook', url: 'https://jenkins.example/bitbucket-scmsource-hook/notify', active: true, events: ['repo:push'] });
    expect((await send(stack, 'jenkins', `${R}/hooks`, 'POST', hook)).status).toBe(201);
    const after = await send(stack, 'jenkins', `${R}/hooks?pagelen=100`);
    expect(after.headers['cache-status']).toMatch(/fwd=stale; fwd-status=200; stored/);
    expect(after.json.values.length).toBe(before.json.values.length + 1);
  });
});

describe('one cache for every client, filtered per client', () => {
  it('shares upstream listings between clients of different scopes and shows each what it may see', async () => {
    const env = await stackWith({}, [
      { id: 'all', scope: [{ workspace: 'acme' }], permissions: ['read'] },
      { id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] } as never], permissions: ['read'] },
    ]);
    try {
      const all = await send(env.stack, 'all', `${API}/acme?pagelen=100`);
      const ci = await send(env.stack, 'ci', `${API}/acme?pagelen=100`);
      expect(all.json.values.map((r: any) => r.slug).sort()).toEqual(['docs-site', 'infra', 'service-api', 'service-web']);
      expect(ci.json.values.map((r: any) => r.slug).sort()).toEqual(['service-api', 'service-web']);
      // A project-scoped client's listing is computed from its project's listing (what the plugin
      // asks itself with q=project.key="CI"): shared with a plugin that asks it, stored once.
      // (A narrowed listing's cache-status never says hit or miss: the request counts below do.)
      const plugin = await send(env.stack, 'ci', `${API}/acme?pagelen=100&q=project.key%3D%22CI%22`);
      expect(plugin.headers['cache-status']).toBe('bitbucket-sidecar; detail=visible-listing');
      expect((await send(env.stack, 'ci', `${API}/acme?pagelen=100`)).headers['cache-status']).toBe('bitbucket-sidecar; detail=visible-listing');
      expect(env.fake.requests.filter((r) => r.rawUrl === '/2.0/repositories/acme?pagelen=100')).toHaveLength(1);
      expect(env.fake.requests.filter((r) => r.path === '/2.0/repositories/acme')).toHaveLength(2);
    } finally {
      await env.stop();
    }
  });
});

describe('a Jenkinsfile probe never turns into an error while a stale copy exists', () => {
  let env: Awaited<ReturnType<typeof stackWith>>;
  let hash: string;
  beforeAll(async () => {
    env = await stackWith({ upstream: { timeouts: { connectMs: 1000, responseMs: 500 } }, cache: { staleIfErrorSeconds: 7 * 86_400 } });
    hash = (await send(env.stack, 'jenkins', `${R}/refs/branches/main`)).json.target.hash;
  });
  afterAll(() => env.stop());
  beforeEach(() => {
    env.fake.clearFaults();
    env.fake.clearLog();
  });

  it.each([
    ['503', { kind: 'status' as const, status: 503 }],
    ['429 without Retry-After', { kind: 'rate429' as const }],
    ['429 with Retry-After', { kind: 'rate429' as const, retryAfter: 120 }],
    ['connection reset mid-body', { kind: 'reset' as const }],
    ['HTML 500 page', { kind: 'html500' as const }],
    ['slow upstream (past the response timeout)', { kind: 'latency' as const, latencyMs: 2500 }],
  ])('%s', async (_name, fault) => {
    for (const probeUrl of [`${R}/src/${hash}/Jenkinsfile?format=meta`, `${R}/src/main/Jenkinsfile?format=meta`]) {
      const fresh = await send(env.stack, 'jenkins', probeUrl);
      expect(fresh.status).toBe(200);
      env.clock.advance(2 * 86_400_000); // stale in every class (immutable lasts a day)
      env.fake.addFault({ match: { pathIncludes: '/src/' }, ...fault });
      const probe = await send(env.stack, 'jenkins', probeUrl);
      env.fake.clearFaults();
      expect(probe.status).toBe(200);
      expect(probe.json).toEqual(fresh.json);
      expect(probe.headers['cache-status']).toMatch(/fwd=stale; fwd-status=(429|5\d\d);.*detail=stale-if-error|; hit;.*detail=budget/);
      expect(Number(probe.headers.age)).toBeGreaterThanOrEqual(2 * 86_400);
      env.clock.advance(3_600_000); // out of any backoff for the next round
      await send(env.stack, 'jenkins', probeUrl); // refresh the copy
    }
  });
});

describe('budget and upstream rate limits', () => {
  const budget = { repositoryRequestsPerHour: 3, maxQueueWaitMs: 0, burstShare: 1, maxRetryAfterSeconds: 3600, backgroundShare: 0, windowMarginMs: 0 };

  it('budget spent with no stale copy: 429 with the exact seconds until the window frees; with a stale copy: the copy', async () => {
    const env = await stackWith({ upstream: { budget }, cache: { staleWhileRevalidateSeconds: 0 } });
    try {
      const urls = [`${R}/refs/branches?pagelen=100`, `${R}/refs/tags?pagelen=100`, `${R}/pullrequests?pagelen=50`];
      for (const u of urls) {
        expect((await send(env.stack, 'jenkins', u)).status).toBe(200);
        env.clock.advance(100_000);
      }
      expect(apiCalls(env.fake)).toBe(3);
      // Now T0+300 s; the first call leaves the window at T0+3600 s.
      const refused = await send(env.stack, 'jenkins', `${R}/refs/branches/main`);
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('3300');
      expect(refused.json).toEqual({ type: 'error', error: { message: 'Rate limit for this resource has been exceeded' } });
      expect(refused.headers['cache-status']).toBe('bitbucket-sidecar; fwd=miss; detail=budget-refused');
      // Audited as a budget refusal: no call was made, so there is no upstream status.
      const audited = env.stack.logs.map((l) => JSON.parse(l)).filter((l) => l.kind === 'audit' && String(l.path).endsWith('/refs/branches/main'));
      expect(audited).toHaveLength(1);
      expect(audited[0]).toMatchObject({ status: 429, cache: 'bitbucket-sidecar; fwd=miss; detail=budget-refused' });
      expect(audited[0].upstreamStatus).toBeUndefined();
      const stale = await send(env.stack, 'jenkins', urls[0]);
      expect(stale.status).toBe(200);
      expect(stale.headers['cache-status']).toBe('bitbucket-sidecar; hit; ttl=-270; detail=budget');
      expect(apiCalls(env.fake)).toBe(3);
    } finally {
      await env.stop();
    }
  });

  it('the fake Bitbucket never sees more than the budget, and never answers 429', async () => {
    const env = await stackWith({ upstream: { budget: { ...budget, repositoryRequestsPerHour: 5 } } });
    try {
      env.fake.setRateLimit(5);
      const statuses: number[] = [];
      for (let i = 0; i < 9; i++) {
        statuses.push((await send(env.stack, 'jenkins', `${R}/refs/branches/none-${i}`)).status);
        env.clock.advance(1000);
      }
      expect(statuses).toEqual([404, 404, 404, 404, 404, 429, 429, 429, 429]);
      expect(env.fake.requests.filter((r) => r.kind === 'api')).toHaveLength(5);
      expect(env.fake.requests.filter((r) => r.status === 429)).toHaveLength(0);
    } finally {
      await env.stop();
    }
  });

  it('upstream 429 with Retry-After: passed on exactly, and no upstream call of that class until it has passed', async () => {
    const env = await stackWith({});
    try {
      env.fake.addFault({ match: { pathPrefix: '/2.0/repositories' }, kind: 'rate429', retryAfter: 75, times: 1 });
      const first = await send(env.stack, 'jenkins', `${R}/refs/branches?pagelen=100`);
      expect(first.status).toBe(429);
      expect(first.headers['retry-after']).toBe('75');
      env.clock.advance(15_000);
      // 60 s still to wait, more than the 30 s queue bound: refused at once with the exact rest.
      const held = await send(env.stack, 'jenkins', `${R}/refs/tags?pagelen=100`);
      expect(held.status).toBe(429);
      expect(held.headers['retry-after']).toBe('60');
      expect(apiCalls(env.fake)).toBe(1);
      env.clock.advance(60_000);
      expect((await send(env.stack, 'jenkins', `${R}/refs/tags?pagelen=100`)).status).toBe(200);
    } finally {
      await env.stop();
    }
  });

  it('upstream 429 without Retry-After: the client still gets an exact, short Retry-After', async () => {
    const env = await stackWith({ upstream: { budget: { maxQueueWaitMs: 0 } } });
    try {
      env.fake.addFault({ match: { pathPrefix: '/2.0/repositories' }, kind: 'rate429', times: 1 });
      const first = await send(env.stack, 'jenkins', `${R}/refs/branches?pagelen=100`);
      expect(first.status).toBe(429);
      expect(first.headers['retry-after']).toBe('10');
      env.clock.advance(4_000);
      expect((await send(env.stack, 'jenkins', `${R}/refs/tags?pagelen=100`)).headers['retry-after']).toBe('6');
      expect(apiCalls(env.fake)).toBe(1);
    } finally {
      await env.stop();
    }
  });

  it('a short backoff is waited out in the queue instead of being handed to the client', async () => {
    const env = await stackWith({}); // maxQueueWaitMs 30 s by default
    try {
      env.fake.addFault({ match: { pathPrefix: '/2.0/repositories' }, kind: 'rate429', times: 1 });
      expect((await send(env.stack, 'jenkins', `${R}/refs/branches?pagelen=100`)).status).toBe(429);
      const waiting = send(env.stack, 'jenkins', `${R}/refs/tags?pagelen=100`);
      await new Promise((r) => setTimeout(r, 100));
      expect(env.sidecarBudgetQueued()).toBe(1);
      expect(apiCalls(env.fake)).toBe(1);
      env.clock.advance(10_000);
      const answer = await waiting;
      expect(answer.status).toBe(200);
      expect(apiCalls(env.fake)).toBe(2);
    } finally {
      await env.stop();
    }
  });
});
