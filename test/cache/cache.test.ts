import { DEFAULT_CACHE, ResponseCache, type CacheDeps, type CacheSettings } from '../../src/cache/cache';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import type { ApiAnswer, Method, Source } from '../../src/core/call';
import { UpstreamClient } from '../../src/upstream/client';
import { upstreamSource } from '../../src/upstream/source';
import { BodyMemo, memoMaxBytes } from '../../src/core/body-memo';
import { callFor } from './calls';

/**
 * The cache stage alone in front of the real upstream client and a real fake Bitbucket on
 * 127.0.0.1. Time is an injected number: freshness decisions never depend on the wall clock.
 */
const R = '/2.0/repositories/acme/service-api';
let fake: FakeBitbucketServer;
let upstream: UpstreamClient;
let now = 1_700_000_000_000;
let mainHash: string;

const settings = (over: Partial<CacheSettings> = {}): CacheSettings => ({
  ...DEFAULT_CACHE,
  freshness: { immutableSeconds: 3600, metadataSeconds: 120, listSeconds: 30, notFoundSeconds: 10 },
  staleWhileRevalidateSeconds: 30,
  staleIfErrorSeconds: 600,
  ...over,
});

const memo = new BodyMemo();

function makeCache(over: Partial<CacheSettings> = {}, deps: Partial<CacheDeps> = {}): { cache: ResponseCache; get: (url: string, method?: Method) => Promise<ApiAnswer>; source: Source } {
  const cache = new ResponseCache(settings(over), { credential: 'test-cred', now: () => now, memo, ...deps });
  const source = cache.wrap(upstreamSource(upstream));
  return { cache, source, get: (url, method = 'GET') => source(callFor(method, url)) };
}

/** Upstream requests the fake received whose raw URL contains `part`. */
const upstreamCalls = (part: string) => fake.requests.filter((r) => r.kind === 'api' && r.rawUrl.includes(part)).length;
const json = (a: ApiAnswer) => JSON.parse(a.body.toString('utf8'));

beforeAll(async () => {
  fake = await startFakeBitbucket({ seed: 'demo' });
  const auth = `Basic ${Buffer.from(`${fake.credentials.email}:${fake.credentials.apiToken}`).toString('base64')}`;
  upstream = new UpstreamClient({ memo, apiUrl: fake.url, authorization: auth, connectTimeoutMs: 2000, responseTimeoutMs: 400, userAgent: 'test' });
  const main = await upstream.send(callFor('GET', `${R}/refs/branches/main`));
  mainHash = JSON.parse(main.body.toString()).target.hash;
});
afterAll(async () => {
  await upstream.close();
  await fake.close();
});
beforeEach(() => {
  fake.clearLog();
  fake.clearFaults();
});

describe('hits and misses', () => {
  it('stores a miss and answers the repeat from the cache, with Cache-Status and Age', async () => {
    const { get, cache } = makeCache();
    const first = await get(`${R}/refs/branches?pagelen=100`);
    expect(first.status).toBe(200);
    expect(first.cacheStatus).toBe('bitbucket-sidecar; fwd=miss; fwd-status=200; stored; ttl=30');
    expect(first.ageSeconds).toBe(0);
    now += 7_000;
    const again = await get(`${R}/refs/branches?pagelen=100`);
    expect(again.cacheStatus).toBe('bitbucket-sidecar; hit; ttl=23');
    expect(again.ageSeconds).toBe(7);
    expect(again.body.equals(first.body)).toBe(true);
    expect(upstreamCalls('/refs/branches?pagelen=100')).toBe(1);
    expect(cache.stats).toMatchObject({ misses: 1, stored: 1, hits: 1 });
  });

  it('HEAD shares the GET entry', async () => {
    const { get } = makeCache();
    await get(`${R}/refs/tags?pagelen=100`);
    const head = await get(`${R}/refs/tags?pagelen=100`, 'HEAD');
    expect(head.cacheStatus).toMatch(/; hit;/);
    expect(upstreamCalls('/refs/tags')).toBe(1);
  });

  it('keeps an immutable (commit-addressed) answer far longer than a list', async () => {
    const { get } = makeCache({ staleWhileRevalidateSeconds: 0 });
    await get(`${R}/src/${mainHash}/Jenkinsfile?format=meta`);
    await get(`${R}/refs/branches/main`);
    now += 31_000;
    expect((await get(`${R}/src/${mainHash}/Jenkinsfile?format=meta`)).cacheStatus).toMatch(/; hit;/);
    expect((await get(`${R}/refs/branches/main`)).cacheStatus).toMatch(/fwd=stale; fwd-status=200; stored/);
    expect(upstreamCalls('/src/')).toBe(1);
    expect(upstreamCalls('/refs/branches/main')).toBe(2);
  });

  it('caches a 404 briefly', async () => {
    const { get } = makeCache({ staleWhileRevalidateSeconds: 0 });
    const miss = await get(`${R}/refs/branches/no-such-branch`);
    expect(miss.status).toBe(404);
    expect(miss.cacheStatus).toMatch(/fwd-status=404; stored; ttl=10/);
    now += 5_000;
    expect((await get(`${R}/refs/branches/no-such-branch`)).cacheStatus).toMatch(/; hit;/);
    now += 6_000;
    // Past its freshness (and revalidation window) a 404 is gone: no stale-if-error copy of "not there".
    expect((await get(`${R}/refs/branches/no-such-branch`)).cacheStatus).toMatch(/fwd=miss/);
    expect(upstreamCalls('no-such-branch')).toBe(2);
  });

  it('does not store a 404 whose entry exceeds cache.negativeMaxBytes, nor keep one past its revalidation window', async () => {
    const { cache, get } = makeCache({ negativeMaxBytes: 2048 });
    const long = `no-such-${'x'.repeat(1500)}`;
    const miss = await get(`${R}/src/${mainHash}/${long}`);
    expect(miss.status).toBe(404);
    expect(miss.cacheStatus).not.toMatch(/stored/);
    expect((await get(`${R}/src/${mainHash}/${long}`)).cacheStatus).toMatch(/fwd=miss/);
    expect(cache.notStored.negativeTooLarge).toBe(2);
    await get(`${R}/refs/branches/short-missing`);
    const e = cache.store.usage();
    expect(e).toHaveLength(1);
    // Kept for freshness (10 s) and stale-while-revalidate (30 s) only: no stale-if-error window (600 s).
    now += 41_000;
    expect((await get(`${R}/refs/branches/short-missing`)).cacheStatus).toMatch(/fwd=miss/);
  });

  it('never stores an upstream error', async () => {
    const { get } = makeCache();
    fake.addFault({ match: { pathIncludes: '/refs/tags/v1.0' }, kind: 'status', status: 500, times: 1 });
    const failed = await get(`${R}/refs/tags/v1.0`);
    expect(failed.status).toBe(500);
    expect(failed.cacheStatus).toBe('bitbucket-sidecar; fwd=miss; fwd-status=500');
    const ok = await get(`${R}/refs/tags/v1.0`);
    expect(ok.status).toBe(200);
    expect(upstreamCalls('/refs/tags/v1.0')).toBe(2);
  });

  it('does not store a JSON answer cut short (truncated chunked body)', async () => {
    const { get } = makeCache();
    fake.addFault({ match: { pathIncludes: '/pullrequests' }, kind: 'truncate', times: 1 });
    const cut = await get(`${R}/pullrequests?pagelen=50`);
    expect(cut.status).toBe(502);
    const whole = await get(`${R}/pullrequests?pagelen=50`);
    expect(whole.status).toBe(200);
    expect(json(whole).values.length).toBeGreaterThan(0);
    expect(upstreamCalls('/pullrequests')).toBe(2);
  });
});

describe('single-flight', () => {
  it('makes one upstream call for N identical concurrent misses (GET and HEAD)', async () => {
    const { get } = makeCache();
    fake.addFault({ match: { pathIncludes: '/commit/' }, kind: 'latency', latencyMs: 150 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${R}/commit/${mainHash}`, i % 3 === 0 ? 'HEAD' : 'GET')));
    expect(upstreamCalls(`/commit/${mainHash}`)).toBe(1);
    expect(answers.every((a) => a.status === 200 && a.body.equals(answers[0].body))).toBe(true);
    expect(answers.filter((a) => a.cacheStatus?.includes('collapsed'))).toHaveLength(19);
  });

  it('does not coalesce different requests', async () => {
    const { get } = makeCache();
    fake.addFault({ match: { pathIncludes: '/refs/branches' }, kind: 'latency', latencyMs: 50 });
    await Promise.all([get(`${R}/refs/branches?pagelen=100`), get(`${R}/refs/branches?pagelen=50`)]);
    expect(upstreamCalls('/refs/branches')).toBe(2);
  });

  it('shares one failure too, and the next request tries again', async () => {
    const { get } = makeCache();
    fake.addFault({ match: { pathIncludes: '/refs/tags' }, kind: 'latency', latencyMs: 50, times: 1 });
    fake.addFault({ match: { pathIncludes: '/refs/tags' }, kind: 'status', status: 503, times: 1 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(`${R}/refs/tags?pagelen=100`)));
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503, 503, 503]);
    expect(upstreamCalls('/refs/tags')).toBe(1);
    expect((await get(`${R}/refs/tags?pagelen=100`)).status).toBe(200);
  });
});

describe('stale copies', () => {
  it('stale-while-revalidate: serves the stale copy at once and refreshes it in the background', async () => {
    const { cache, get } = makeCache();
    await get(`${R}/pullrequests?pagelen=50`);
    now += 45_000; // stale by 15 s, inside the 30 s revalidate window
    fake.addFault({ match: { pathIncludes: '/pullrequests' }, kind: 'latency', latencyMs: 100 });
    const stale = await get(`${R}/pullrequests?pagelen=50`);
    expect(stale.status).toBe(200);
    expect(stale.cacheStatus).toBe('bitbucket-sidecar; hit; ttl=-15; detail=stale-while-revalidate');
    expect(stale.ageSeconds).toBe(45);
    await cache.idle();
    expect(upstreamCalls('/pullrequests')).toBe(2);
    const refreshed = await get(`${R}/pullrequests?pagelen=50`);
    expect(refreshed.cacheStatus).toBe('bitbucket-sidecar; hit; ttl=30');
    expect(refreshed.ageSeconds).toBe(0);
  });

  it('a failed background refresh keeps the stale copy', async () => {
    const { cache, get } = makeCache();
    const original = await get(`${R}/refs/branches?pagelen=100`);
    now += 40_000;
    fake.addFault({ match: { pathIncludes: '/refs/branches' }, kind: 'status', status: 503 });
    await get(`${R}/refs/branches?pagelen=100`);
    await cache.idle();
    now += 20_000; // past the revalidate window now; upstream still failing
    const later = await get(`${R}/refs/branches?pagelen=100`);
    expect(later.status).toBe(200);
    expect(later.body.equals(original.body)).toBe(true);
    expect(later.cacheStatus).toBe('bitbucket-sidecar; fwd=stale; fwd-status=503; ttl=-30; detail=stale-if-error');
  });

  it.each([
    ['503', { kind: 'status' as const, status: 503 }, 503],
    ['500 html page', { kind: 'html500' as const }, 500],
    ['429 without Retry-After', { kind: 'rate429' as const }, 429],
    ['429 with Retry-After', { kind: 'rate429' as const, retryAfter: 30 }, 429],
    ['connection reset mid-body', { kind: 'reset' as const }, 502],
  ])('stale-if-error on %s: the stale copy, not the error', async (_name, fault, fwdStatus) => {
    const { get } = makeCache({ staleWhileRevalidateSeconds: 0 });
    const url = `${R}/src/main/Jenkinsfile?format=meta`;
    const fresh = await get(url);
    expect(fresh.status).toBe(200);
    now += 60_000;
    fake.addFault({ match: { pathIncludes: '/src/main/' }, ...fault });
    const served = await get(url);
    expect(served.status).toBe(200);
    expect(served.body.equals(fresh.body)).toBe(true);
    expect(served.cacheStatus).toBe(`bitbucket-sidecar; fwd=stale; fwd-status=${fwdStatus}; ttl=-30; detail=stale-if-error`);
    expect(served.ageSeconds).toBe(60);
    expect(upstreamCalls('/src/main/')).toBe(2);
  });

  it('stale-if-error on a slow upstream (response timeout → 504)', async () => {
    const { get } = makeCache({ staleWhileRevalidateSeconds: 0 });
    const url = `${R}/refs/branches/main`;
    await get(url);
    now += 60_000;
    fake.addFault({ match: { pathIncludes: '/refs/branches/main' }, kind: 'latency', latencyMs: 1500 });
    const served = await get(url);
    expect(served.status).toBe(200);
    expect(served.cacheStatus).toMatch(/fwd=stale; fwd-status=504; .*detail=stale-if-error/);
  });

  it('stops serving stale once the stale-if-error window has passed', async () => {
    const { get } = makeCache({ staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 60 });
    const url = `${R}/refs/tags?pagelen=100`;
    await get(url);
    now += 31_000 + 60_000;
    fake.addFault({ match: { pathIncludes: '/refs/tags' }, kind: 'status', status: 503 });
    const failed = await get(url);
    expect(failed.status).toBe(503);
    expect(failed.cacheStatus).toBe('bitbucket-sidecar; fwd=miss; fwd-status=503');
  });

  it('under budget pressure serves a stale copy at once (no queueing) and tries a background refresh', async () => {
    let pressed = false;
    const { cache, get } = makeCache({ staleWhileRevalidateSeconds: 0 }, { pressure: () => pressed });
    await get(`${R}/refs/branches?pagelen=100`);
    now += 120_000;
    pressed = true;
    const served = await get(`${R}/refs/branches?pagelen=100`);
    expect(served.cacheStatus).toBe('bitbucket-sidecar; hit; ttl=-90; detail=budget');
    await cache.idle();
    expect(cache.stats.revalidations).toBe(1);
  });
});

describe('derived answers', () => {
  it('answers ?fields=mainbranch.name from the stored repository object', async () => {
    const { get } = makeCache();
    await get(R);
    const derived = await get(`${R}/?fields=mainbranch.name`);
    expect(derived.status).toBe(200);
    expect(json(derived)).toEqual({ mainbranch: { name: 'main' } });
    expect(derived.cacheStatus).toBe('bitbucket-sidecar; hit; ttl=120; detail=derived');
    expect(upstreamCalls('fields=')).toBe(0);
  });

  it('asks upstream when no repository object is stored', async () => {
    const { get } = makeCache();
    const direct = await get(`${R}/?fields=mainbranch.name`);
    expect(json(direct)).toEqual({ mainbranch: { name: 'main' } });
    expect(upstreamCalls('fields=mainbranch.name')).toBe(1);
  });
});

describe('invalidation', () => {
  it('by ref: ref lists and answers addressed by the ref name, not commit-addressed answers', async () => {
    const { cache, get } = makeCache();
    const urls = [`${R}/refs/branches?pagelen=100`, `${R}/refs/branches/main`, `${R}/src/main/Jenkinsfile?format=meta`, `${R}/src/${mainHash}/Jenkinsfile?format=meta`, R];
    for (const u of urls) await get(u);
    expect(cache.invalidateRef('acme', 'service-api', 'main')).toBe(3);
    const after = await Promise.all(urls.map((u) => get(u)));
    expect(after.map((a) => /; hit;/.test(a.cacheStatus ?? ''))).toEqual([false, false, false, true, true]);
  });

  it('by repository and by workspace', async () => {
    const { cache, get } = makeCache();
    await get('/2.0/repositories/acme?pagelen=100');
    await get(R);
    await get('/2.0/repositories/acme/infra');
    expect(cache.invalidateRepository('acme', 'service-api')).toBe(1);
    expect((await get('/2.0/repositories/acme/infra')).cacheStatus).toMatch(/; hit;/);
    expect((await get('/2.0/repositories/acme?pagelen=100')).cacheStatus).toMatch(/; hit;/);
    expect(cache.invalidateWorkspace('ACME')).toBe(2); // service-api was already invalidated
    expect((await get('/2.0/repositories/acme?pagelen=100')).cacheStatus).toMatch(/fwd=stale/);
  });

  it('an invalidated copy is no longer served fresh or while revalidating, but still beats an error', async () => {
    const { cache, get } = makeCache();
    await get(`${R}/refs/branches/main`);
    cache.invalidateRef('acme', 'service-api', 'main');
    fake.addFault({ match: { pathIncludes: '/refs/branches/main' }, kind: 'status', status: 503 });
    const served = await get(`${R}/refs/branches/main`);
    expect(served.status).toBe(200);
    expect(served.cacheStatus).toMatch(/fwd=stale; fwd-status=503;.*stale-if-error/);
    fake.clearFaults();
    expect((await get(`${R}/refs/branches/main`)).cacheStatus).toMatch(/fwd=stale; fwd-status=200; stored/);
  });

  it('an answer fetched while its ref was invalidated is stored as invalidated', async () => {
    const { get, cache } = makeCache();
    fake.addFault({ match: { pathIncludes: '/refs/branches/main' }, kind: 'latency', latencyMs: 100, times: 1 });
    const pending = get(`${R}/refs/branches/main`);
    await new Promise((r) => setTimeout(r, 30));
    cache.invalidateRef('acme', 'service-api', 'main');
    await pending;
    expect((await get(`${R}/refs/branches/main`)).cacheStatus).toMatch(/fwd=stale/);
    expect(upstreamCalls('/refs/branches/main')).toBe(2);
  });

  it('writes pass through, are never coalesced, and invalidate what they change', async () => {
    const { get, source } = makeCache();
    await get(`${R}/hooks?pagelen=100`);
    const body = JSON.stringify({ description: 'Jenkins hook', url: 'https://jenkins.example/bitbucket-scmsource-hook/notify', active: true, events: ['repo:push'] });
    const [a, b] = await Promise.all([source(callFor('POST', `${R}/hooks`, body)), source(callFor('POST', `${R}/hooks`, body))]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.cacheStatus).toBeUndefined();
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/hooks'))).toHaveLength(2);
    const list = await get(`${R}/hooks?pagelen=100`);
    expect(list.cacheStatus).toMatch(/fwd=stale; fwd-status=200; stored/);
    expect(json(list).values.length).toBeGreaterThanOrEqual(2);
  });
});

describe('memory bound', () => {
  it('evicts least recently used entries to stay within maxBytes', async () => {
    const { cache, get } = makeCache({ maxBytes: 32 * 1024 });
    for (let i = 0; i < 120; i++) await get(`${R}/refs/branches/gone-${i}`);
    expect(cache.store.bytes).toBeLessThanOrEqual(32 * 1024);
    expect(cache.store.entries).toBeLessThan(120);
    expect(cache.store.entries).toBeGreaterThan(10);
    expect((await get(`${R}/refs/branches/gone-119`)).cacheStatus).toMatch(/; hit;/);
    expect((await get(`${R}/refs/branches/gone-0`)).cacheStatus).toMatch(/fwd=miss/);
  });
});

describe('memory budget', () => {
  it('counts the memo beside stored answers in cache.maxBytes (at most a quarter of it)', () => {
    const large = new ResponseCache({ ...DEFAULT_CACHE, maxBytes: 64 * 1024 ** 2 }, { credential: 'c', memo: new BodyMemo() });
    expect(large.store.maxBytes).toBe(64 * 1024 ** 2);
    expect(large.store.entryBytes).toBe(64 * 1024 ** 2 - memoMaxBytes(64 * 1024 ** 2));
    expect(memoMaxBytes(64 * 1024 ** 2)).toBe(6 * 1024 ** 2);
    const small = new ResponseCache({ ...DEFAULT_CACHE, maxBytes: 32 * 1024 }, { credential: 'c', memo: new BodyMemo() });
    expect(small.store.entryBytes).toBe(24 * 1024);
  });
});
