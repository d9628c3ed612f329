import { rmSync } from 'node:fs';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { sign } from '../../src/webhooks';
import type { Stack } from '../helpers/stack';
import { deliver, headersFor, pushBody, tempDir } from '../webhooks/helpers';
import { API, get, prefix, scan, startShared, until } from './helpers';
import { startRedis, type RedisServer } from './redis-server';

/**
 * Bitbucket delivers a webhook to one sidecar (through the relay, src/webhooks); every sidecar's
 * memory tier must drop what it made stale. Memory copies are trusted for an hour here, so only the
 * published invalidation can make B look again.
 */
describe('an invalidation on one sidecar reaches all', () => {
  const SECRET = 'shared-cache-hook-secret';
  let redis: RedisServer;
  let fake: FakeBitbucketServer;
  let a: Stack;
  let b: Stack;
  const dirs: string[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    fake = await startFakeBitbucket({ seed: 'demo' });
    const keyPrefix = prefix();
    const config = () => {
      const dir = tempDir('sidecar-shared-');
      dirs.push(dir);
      return { webhooks: { secret: SECRET }, state: { dir } };
    };
    a = await startShared(fake, redis.url, { keyPrefix, config: config(), shared: { memorySeconds: 3600 } });
    b = await startShared(fake, redis.url, { keyPrefix, config: config(), shared: { memorySeconds: 3600 } });
    await scan(a);
    await scan(b); // B's memory tier now holds every answer, taken from Redis
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await fake?.close();
    await redis?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("a push delivered to A makes B's next answer for that repository a miss (within 1 s)", async () => {
    const branches = `${API}/acme/service-api/refs/branches?pagelen=100`;
    const untouched = `${API}/acme/infra/refs/branches?pagelen=100`;
    expect((await get(b, branches)).cacheStatus).toMatch(/\bhit\b/);
    expect((await get(b, untouched)).cacheStatus).toMatch(/\bhit\b/);

    const main = JSON.parse((await get(b, `${API}/acme/service-api/refs/branches/main`)).text).target.hash as string;
    const body = pushBody('acme', 'service-api', 'CI', 'main', main);
    const d = await deliver(a.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, SECRET) }));
    expect(d.status).toBe(200);

    fake.clearLog();
    let last = '';
    // The bound of this poll is the acceptance's 1 s; B answers from memory until the message lands.
    await until(
      async () => {
        last = (await get(b, branches)).cacheStatus;
        return !/\bhit\b/.test(last);
      },
      "B's branch list to be forwarded upstream",
      1000,
      5,
    );
    expect(last).toMatch(/fwd=(miss|stale)/);
    expect(fake.requests.filter((r) => r.path === '/2.0/repositories/acme/service-api/refs/branches')).toHaveLength(1);
    // Only what the push changed: another repository's answers are still hits on B.
    expect((await get(b, untouched)).cacheStatus).toMatch(/\bhit\b/);
    expect(b.running.sidecar.shared!.tier.stats.invalidations.received).toBeGreaterThan(0);
  });

  it('B fetched again after the invalidation: A takes that answer from Redis, no call of its own', async () => {
    const branches = `${API}/acme/service-api/refs/branches?pagelen=100`;
    fake.clearLog();
    const answer = await get(a, branches);
    expect(answer.status).toBe(200);
    expect(answer.cacheStatus).toMatch(/\bhit\b.*detail=shared/);
    expect(fake.requests.filter((r) => r.kind === 'api')).toHaveLength(0);
  });

  it('a direct invalidation through the cache API (our own writes use it) reaches the other sidecar too', async () => {
    const repo = `${API}/acme/docs-site`;
    expect((await get(a, repo)).cacheStatus).toMatch(/\bhit\b/);
    b.running.sidecar.cache.invalidateRepository('acme', 'docs-site');
    await until(async () => !/\bhit\b/.test((await get(a, repo)).cacheStatus), "A's repository answer to be forwarded", 1000, 5);
  });
});
