import { organisationScan, ScanClient, type ScanRecord } from '../../bench/scan';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { basicAuth, type Stack } from '../helpers/stack';
import { API, API_BASE, apiCalls, get, ops, prefix, scan, scanClient, startShared, until } from './helpers';
import { startRedis, type RedisServer } from './redis-server';

/** A request failed if the plugin would have treated its answer as an error (probes may 404). */
const failed = (records: readonly ScanRecord[]) => records.filter((r) => r.status >= 500 || r.status === 429 || (r.status !== 200 && !r.url.includes('format=meta')));

/** Degrade, never fail: Redis goes away in the middle of a scan and comes back. */
describe('Redis going away and coming back', () => {
  let redis: RedisServer;
  let fake: FakeBitbucketServer;
  let a: Stack;
  let b: Stack;
  let baseline: Awaited<ReturnType<typeof organisationScan>>;

  beforeAll(async () => {
    redis = await startRedis();
    fake = await startFakeBitbucket({ seed: 'demo' });
    const direct = new ScanClient({ serverUrl: fake.url, apiBase: fake.url, authorization: basicAuth(fake.credentials.email, fake.credentials.apiToken) });
    baseline = await organisationScan(direct, fake.url, { workspace: 'acme', parallelRepositories: 2 });
    await direct.close();
    const keyPrefix = prefix();
    const shared = { fallbackBudgetShare: 0.25 };
    const redisOptions = { commandTimeoutMs: 200, connectTimeoutMs: 300 };
    a = await startShared(fake, redis.url, { keyPrefix, shared, redis: redisOptions });
    b = await startShared(fake, redis.url, { keyPrefix, shared, redis: redisOptions });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await fake?.close();
    await redis?.stop();
  });

  it('Redis killed mid-scan: no client request fails; ready and metrics say so; the budget falls back to its share', async () => {
    // Upstream latency keeps requests in flight (and Redis commands with them) when Redis dies.
    fake.addFault({ kind: 'latency', latencyMs: 30, match: { pathPrefix: '/2.0/repositories/' } });
    let killed: Promise<void> | undefined;
    const client = scanClient(a);
    const summary = await organisationScan(client, API_BASE, {
      workspace: 'acme',
      parallelRepositories: 2,
      onRepository: (_slug, done) => {
        if (done === 1) killed = redis.stop('SIGKILL');
      },
    });
    await client.close();
    fake.clearFaults();
    expect(killed).toBeDefined();
    await killed;
    expect(failed(client.records)).toEqual([]);
    expect(summary).toEqual(baseline);

    await until(() => !a.running.sidecar.shared!.up, 'A to notice');
    const o = await ops(a);
    expect(o.ready.status).toBe(200); // degraded, still ready
    expect(o.ready.json.checks.redis).toMatch(/^degraded since .*memory cache only, 25% of the budget/);
    expect(o.redisUp).toBe(0);
    expect(a.running.sidecar.budget.snapshot().classes.repository.limit).toBe(250);

    // B, with nothing in memory, scans on its own while Redis is away.
    const alone = await scan(b);
    expect(failed(alone.client.records)).toEqual([]);
    expect(alone.summary).toEqual(baseline);
  });

  it('after Redis restarts, sharing resumes', async () => {
    await redis.start();
    expect(await a.running.sidecar.shared!.whenUp(10_000)).toBe(true);
    expect(await b.running.sidecar.shared!.whenUp(10_000)).toBe(true);
    const o = await ops(a);
    expect(o.ready.json.checks.redis).toMatch(/^up /);
    expect(o.redisUp).toBe(1);
    expect(a.running.sidecar.budget.snapshot().classes.repository.limit).toBe(1000);

    // Invalidation and the shared tier work again: A drops a repository everywhere and fetches it
    // again; B takes A's answer from Redis without calling upstream.
    const repo = `${API}/acme/service-web`;
    a.running.sidecar.cache.invalidateRepository('acme', 'service-web');
    await until(async () => b.running.sidecar.shared!.tier.stats.invalidations.received > 0, 'B to hear of it', 1000, 5);
    fake.clearLog();
    expect((await get(a, repo)).cacheStatus).toMatch(/fwd=stale/);
    expect((await get(b, repo)).cacheStatus).toMatch(/\bhit\b.*detail=shared/);
    expect(fake.requests.filter((r) => r.path === '/2.0/repositories/acme/service-web')).toHaveLength(1);

    // And a whole scan: what one sidecar fetches now, the other finds in Redis.
    a.running.sidecar.cache.clear();
    b.running.sidecar.cache.clear();
    await scan(a);
    fake.clearLog();
    const second = await scan(b);
    expect(second.summary).toEqual(baseline);
    expect(apiCalls(fake)).toBe(0);
  });

  it('a Redis that hangs (SIGSTOP): one command times out, the connection is dropped, requests stop asking Redis', async () => {
    b.running.sidecar.cache.clear();
    const tier = b.running.sidecar.shared!.tier;
    const pid = redis.pid();
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGSTOP');
    try {
      expect((await get(b, `${API}/acme/infra`)).status).toBe(200);
      await until(() => !b.running.sidecar.shared!.up, 'B to give up on the hung Redis', 5000);
      const errors = tier.stats.reads.error;
      for (let i = 0; i < 5; i++) expect((await get(b, `${API}/acme/infra/refs/tags?pagelen=${10 + i}`)).status).toBe(200);
      expect(tier.stats.reads.error).toBe(errors); // not one more command sent to the hung Redis
      expect((await ops(b)).ready.json.checks.redis).toMatch(/^degraded/);
    } finally {
      process.kill(pid!, 'SIGCONT');
    }
    expect(await b.running.sidecar.shared!.whenUp(10_000)).toBe(true);
  });
});
