import Redis from 'ioredis';
import { RedisBudgetWindow } from '../../src/cache/shared/budget-window';
import { RedisLink } from '../../src/cache/shared/connection';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { createLogger } from '../../src/ops/logger';
import type { Source } from '../../src/core/call';
import { BudgetGovernor, budgetClassOf, budgetWindowMs, DEFAULT_BUDGET, HOUR_MS, type Admission } from '../../src/upstream/budget';
import { ManualClock, scaledClock } from '../../src/upstream/budget-clock';
import type { Stack } from '../helpers/stack';
import { CLIENT, prefix, scan, startShared } from './helpers';
import { startRedis, type RedisServer } from './redis-server';

/** Most calls in any window of `span` ms (times ascending): the number Bitbucket compares with its limit. */
function maxInWindow(times: readonly number[], span: number): number {
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= span) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

const silent = createLogger({ level: 'silent' });

describe('one budget for several sidecars', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('two governors sharing a window grant the limit between them, never more', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const keyPrefix = prefix();
    const links: RedisLink[] = [];
    const governors = [0, 1].map(() => {
      const link = new RedisLink({ url: redis.url, keyPrefix, connectTimeoutMs: 1000, commandTimeoutMs: 1000 }, silent, `${keyPrefix}events`, () => undefined);
      links.push(link);
      const cfg = { ...DEFAULT_BUDGET, repositoryRequestsPerHour: 10, burstShare: 1, maxQueueWaitMs: 0 };
      return new BudgetGovernor(cfg, clock, new RedisBudgetWindow({ link, keyPrefix, credential: 'c1', windowMs: budgetWindowMs(cfg), fallbackShare: 0.5 }));
    });
    try {
      expect(await Promise.all(links.map((l) => l.whenUp(5000)))).toEqual([true, true]);
      // 15 requests on each, all at the same instant.
      const asked: Promise<Admission>[] = [];
      for (let i = 0; i < 15; i++) for (const g of governors) asked.push(g.acquire('repository'));
      const admissions = await Promise.all(asked);
      for (const a of admissions) if (a.ok) a.release({ status: 200, headers: {} });
      const granted = admissions.filter((a) => a.ok).length;
      expect(granted).toBe(10);
      // Granted between them, and both now see the whole window.
      expect(governors[0].granted.repository + governors[1].granted.repository).toBe(10);
      expect(governors.map((g) => g.snapshot().classes.repository.usedInWindow)).toEqual([10, 10]);
      // A refusal names the wait until the oldest call leaves the window (an hour and the margin).
      const refused = admissions.find((a) => !a.ok);
      expect(refused).toMatchObject({ ok: false, reason: 'budget' });
      // After the hour, the window has room again.
      clock.advance(HOUR_MS + DEFAULT_BUDGET.windowMarginMs);
      const again = await governors[1].acquire('repository');
      expect(again.ok).toBe(true);
      if (again.ok) again.release({ status: 200, headers: {} });
      const probe = new Redis(redis.url);
      try {
        // The calls that left the window were dropped from Redis; another credential's window is its own.
        expect(await probe.zcard(`${keyPrefix}budget:c1:repository`)).toBe(1);
        expect(await probe.zcard(`${keyPrefix}budget:c2:repository`)).toBe(0);
      } finally {
        probe.disconnect();
      }
    } finally {
      await Promise.all(links.map((l) => l.close()));
    }
  });

  it('a busy window is read in bounded pieces: the count is exact, the oldest calls are known', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const keyPrefix = prefix();
    const link = new RedisLink({ url: redis.url, keyPrefix, connectTimeoutMs: 1000, commandTimeoutMs: 1000 }, silent, `${keyPrefix}events`, () => undefined);
    try {
      expect(await link.whenUp(5000)).toBe(true);
      const cfg = { ...DEFAULT_BUDGET, repositoryRequestsPerHour: 1000, burstShare: 1 };
      const window = new RedisBudgetWindow({ link, keyPrefix, credential: 'c1', windowMs: budgetWindowMs(cfg), fallbackShare: 0.5 });
      const g = new BudgetGovernor(cfg, clock, window);
      for (let i = 0; i < 400; i++) {
        const a = await g.acquire('repository');
        if (a.ok) a.release({ status: 200, headers: {} });
        clock.advance(1000);
      }
      // The reply carried the 257 oldest times and the newest: 400 calls, the first at T0.
      const view = window.calls('repository', clock.now());
      expect(view).toHaveLength(400);
      expect(view[0]).toBe(1_800_000_000_000);
      expect(view[256]).toBe(1_800_000_000_000 + 256_000);
      expect(view[399]).toBe(1_800_000_000_000 + 399_000);
      expect(window.sharers('repository', clock.now())).toBe(1);
    } finally {
      await link.close();
    }
  });

  describe('two sidecars scanning at once with a budget of 40 per hour', () => {
    const N = 40;
    const SPEED = 2500; // an hour in 1.44 s
    let fake: FakeBitbucketServer;
    let a: Stack;
    let b: Stack;
    const sent: number[] = [];

    beforeAll(async () => {
      const clock = scaledClock(SPEED, 1_800_000_000_000);
      fake = await startFakeBitbucket({ seed: 'demo', now: () => clock.now() });
      fake.setRateLimit(N); // Bitbucket's own count: a 429 past N in any hour
      const record = (inner: Source): Source => async (call) => {
        if (budgetClassOf(call) === 'repository') sent.push(clock.now());
        return inner(call);
      };
      const keyPrefix = prefix();
      const config = {
        upstream: {
          apiUrl: fake.url,
          webUrl: fake.url,
          auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
          // Paced from the first call; a scan request may wait up to 10 minutes (0.24 s here).
          // The margin covers the milliseconds between our count and the fake's at 2500x.
          budget: { repositoryRequestsPerHour: N, burstShare: 0, maxQueueWaitMs: 600_000, windowMarginMs: 120_000 },
        },
        cache: { freshness: { immutableSeconds: 864_000, metadataSeconds: 864_000, listSeconds: 864_000, notFoundSeconds: 864_000 } },
      };
      a = await startShared(fake, redis.url, { keyPrefix, config, sidecar: { clock, wrapSource: record } });
      const both = [{ ...CLIENT, scope: [{ workspace: 'acme' }, { workspace: 'other' }] }];
      b = await startShared(fake, redis.url, { keyPrefix, config, sidecar: { clock, wrapSource: record }, clients: both });
    });
    afterAll(async () => {
      await a?.stop();
      await b?.stop();
      await fake?.close();
    });

    it('Bitbucket receives at most N in every hour and no client sees a 429', async () => {
      // B scans workspace `other` first, then `acme`: both sidecars call upstream, and on acme each
      // leads on some keys and takes the other's answers for the rest.
      const [ra, [ro, rb]] = await Promise.all([scan(a, 'acme', 1), (async () => [await scan(b, 'other', 1), await scan(b, 'acme', 1)])()]);
      expect(ro.summary.repositories).toBe(1);
      const records = [...ra.client.records, ...ro.client.records, ...rb.client.records];
      expect(records.filter((r) => r.status === 429)).toEqual([]);
      expect(ra.summary.failedRepositories).toEqual([]);
      expect(rb.summary).toEqual(ra.summary);
      // The fake enforces N per hour: not one request over it.
      expect(fake.requests.filter((r) => r.status === 429)).toEqual([]);
      // What the sidecars sent, by their common clock: more than one hour's worth in all…
      const times = [...sent].sort((x, y) => x - y);
      expect(times.length).toBeGreaterThan(N);
      // …and never more than N in any hour.
      expect(maxInWindow(times, HOUR_MS)).toBeLessThanOrEqual(N);
      // Both sidecars called upstream: the window was shared, not one sidecar doing all the work.
      expect(a.running.sidecar.budget.granted.repository).toBeGreaterThan(0);
      expect(b.running.sidecar.budget.granted.repository).toBeGreaterThan(0);
    });
  });
});
