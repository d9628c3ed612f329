import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import type { Stack } from '../helpers/stack';
import { API, apiCalls, get, ops, prefix, scan, startShared } from './helpers';
import { startRedis, type RedisServer } from './redis-server';

/**
 * Two sidecars (separate memory tiers, governors and scope facts) in front of one fake Bitbucket,
 * sharing one real redis-server.
 */
describe('two sidecars sharing one Redis', () => {
  let redis: RedisServer;
  let fake: FakeBitbucketServer;
  let a: Stack;
  let b: Stack;

  beforeAll(async () => {
    redis = await startRedis();
    fake = await startFakeBitbucket({ seed: 'demo' });
    const keyPrefix = prefix();
    a = await startShared(fake, redis.url, { keyPrefix });
    b = await startShared(fake, redis.url, { keyPrefix });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await fake?.close();
    await redis?.stop();
  });

  it('a scan through A, then the same scan through B: B makes no upstream call', async () => {
    fake.clearLog();
    const first = await scan(a);
    expect(first.summary.failedRepositories).toEqual([]);
    const coldCalls = apiCalls(fake);
    expect(coldCalls).toBeGreaterThan(20);

    expect(b.running.sidecar.cache.store.entries).toBe(0); // nothing in B's memory: only Redis is shared
    fake.clearLog();
    const second = await scan(b);
    expect(second.summary).toEqual(first.summary);
    expect(apiCalls(fake)).toBe(0);
    // B's answers came from the shared tier (or were derived from what it brought into memory).
    const statuses = second.client.records.map((r) => r.cacheStatus ?? '');
    expect(statuses.filter((s) => /detail=shared/.test(s)).length).toBeGreaterThan(coldCalls / 2);
    expect(statuses.every((s) => /\bhit\b/.test(s))).toBe(true);
    expect(b.running.sidecar.cache.stats.shared).toBeGreaterThan(0);
  });

  it('both missing the same key at once make one upstream call (single flight across sidecars)', async () => {
    const url = `${API}/acme/service-web/refs/branches?pagelen=25`;
    fake.addFault({ kind: 'latency', latencyMs: 300, match: { pathIncludes: '/refs/branches' }, times: 5 });
    fake.clearLog();
    const answers = await Promise.all([get(a, url), get(b, url), get(a, url), get(b, url)]);
    fake.clearFaults();
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(answers.map((x) => x.text)).size).toBe(1);
    expect(fake.requests.filter((r) => r.kind === 'api' && r.path.endsWith('/refs/branches'))).toHaveLength(1);
    // One of them waited for the other's answer.
    expect(answers.some((x) => /collapsed/.test(x.cacheStatus) && /detail=shared/.test(x.cacheStatus))).toBe(true);
  });

  it('says Redis is up in /_sidecar/ready and in metrics', async () => {
    const o = await ops(a);
    expect(o.ready.status).toBe(200);
    expect(o.ready.json.checks.redis).toMatch(/^up \(redis:\/\/127\.0\.0\.1:\d+\)/);
    expect(o.redisUp).toBe(1);
    const skipped = await request(`${a.url}/_sidecar/ready?upstream=skip&redis=skip`);
    expect(((await skipped.body.json()) as { checks: Record<string, string> }).checks.redis).toBeUndefined();
  });
});
