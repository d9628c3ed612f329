/**
 * Fair shares of the upstream budget, through real sockets against the fake Bitbucket, on a
 * ManualClock (Retry-After values move only when a test advances it): one client spending distinct
 * uncached URLs is refused alone, with the exact wait, while another keeps being served; a client
 * alone may use the whole hour; weights tilt the shares; one upstream call serving two clients is
 * charged to the one whose miss made it.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startFakeBitbucket } from '../../src/fake-bitbucket';
import { ManualClock } from '../../src/upstream/budget-clock';
import { basicAuth, startStack, type Stack, type StackClient } from '../helpers/stack';

const T0 = 1_800_000_000_000;
const EXACT = { maxQueueWaitMs: 0, windowMarginMs: 0, maxRetryAfterSeconds: 3600, backgroundShare: 0 };
const randomCommit = () => `/2.0/repositories/acme/service-api/commit/${randomBytes(20).toString('hex')}`;
/** Uncached URLs that exist upstream (200), one per call. */
const pages = ['service-api', 'service-web', 'infra', 'docs-site'].flatMap((r) => [`/2.0/repositories/acme/${r}/refs/branches?pagelen=100`, `/2.0/repositories/acme/${r}/refs/tags?pagelen=100`]);
const both: StackClient[] = [
  { id: 'flood', scope: [{ workspace: 'acme' }] },
  { id: 'scan', scope: [{ workspace: 'acme' }] },
];

type Get = (client: string, path: string) => Promise<{ status: number; retryAfter?: string }>;

async function withStack(clients: StackClient[], budget: Record<string, number>, run: (s: Stack, get: Get, clock: ManualClock) => Promise<void>): Promise<void> {
  const clock = new ManualClock(T0);
  const fake = await startFakeBitbucket({ seed: 'demo', now: () => clock.now() });
  const s = await startStack(clients, {
    fakeInstance: fake,
    config: { upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget } },
    sidecar: { clock },
  });
  const get: Get = async (client, path) => {
    const res = await request(new URL(path, s.url), { headers: { host: 'api.bitbucket.org', authorization: basicAuth(`${client}@ci.example`, s.tokens[client]) } });
    await res.body.text();
    return { status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined };
  };
  try {
    await run(s, get, clock);
  } finally {
    await s.stop();
    await fake.close();
  }
}

const upstreamCalls = (s: Stack) => s.fake.requests.filter((r) => r.kind === 'api' && r.path.startsWith('/2.0/repositories/')).length;

describe('fair shares of the upstream budget', () => {
  it('refuses a client past its share alone, with the exact wait; the other client keeps its share', async () => {
    await withStack(both, { ...EXACT, repositoryRequestsPerHour: 10, burstShare: 1 }, async (s, get, clock) => {
      expect((await get('scan', pages[0])).status).toBe(200);
      clock.advance(100_000);
      const flood: { status: number; retryAfter?: string }[] = [];
      for (let i = 0; i < 8; i++) flood.push(await get('flood', randomCommit()));
      // Two clients active: half the hour each. The flood's oldest call leaves the window in 3600 s.
      expect(flood.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 429, 429, 429]);
      expect(flood.filter((r) => r.status === 429).map((r) => r.retryAfter)).toEqual(['3600', '3600', '3600']);
      for (const p of pages.slice(1, 5)) expect(await get('scan', p)).toEqual({ status: 200, retryAfter: undefined });
      clock.advance(600_000);
      expect(await get('flood', randomCommit())).toEqual({ status: 429, retryAfter: '3000' });
      expect(upstreamCalls(s)).toBe(10);
      expect(s.running.sidecar.budget.refusedOverShare).toBe(4);
      const use = Object.fromEntries(s.running.sidecar.budget.clientUse().map((u) => [u.client, u.used]));
      expect(use).toEqual({ flood: 5, scan: 5 });
    });
  });

  it('a flood paced alone does not hold the next client behind its promised slots', async () => {
    // Default pacing: past 30% of the hour the flood's calls are spread, each refused request told
    // its own successive slot. A client arriving then is not queued behind those slots.
    await withStack(both, { ...EXACT, repositoryRequestsPerHour: 40 }, async (s, get) => {
      const flood: { status: number; retryAfter?: string }[] = [];
      // More refused requests than calls left in the hour: each holds a promised slot.
      for (let i = 0; i < 60; i++) flood.push(await get('flood', randomCommit()));
      expect(flood.filter((r) => r.status === 404)).toHaveLength(12);
      // The rest of the hour (3600 s over the 28 calls left), one slot after the other.
      expect(flood.slice(12, 15).map((r) => r.retryAfter)).toEqual(['129', '258', '386']);
      for (const p of pages.slice(0, 5)) expect(await get('scan', p)).toEqual({ status: 200, retryAfter: undefined });
      expect(upstreamCalls(s)).toBe(17);
      const again = await get('flood', randomCommit());
      expect(again.status).toBe(429);
    });
  });

  it('lets a client alone in the window use the whole hour, though another is configured', async () => {
    await withStack(both, { ...EXACT, repositoryRequestsPerHour: 10, burstShare: 1 }, async (s, get, clock) => {
      for (let i = 0; i < 10; i++) {
        expect((await get('flood', randomCommit())).status).toBe(404);
        clock.advance(10_000);
      }
      // The first call (T0) leaves the window at T0 + 3600 s; it is now T0 + 100 s.
      expect(await get('flood', randomCommit())).toEqual({ status: 429, retryAfter: '3500' });
      expect(upstreamCalls(s)).toBe(10);
      expect(s.running.sidecar.budget.refusedOverShare).toBe(0);
    });
  });

  it('tilts the shares by budgetWeight', async () => {
    const weighted: StackClient[] = [
      { id: 'heavy', scope: [{ workspace: 'acme' }], budgetWeight: 3 },
      { id: 'light', scope: [{ workspace: 'acme' }] },
    ];
    await withStack(weighted, { ...EXACT, repositoryRequestsPerHour: 20, burstShare: 1 }, async (s, get) => {
      expect((await get('light', pages[0])).status).toBe(200);
      for (let i = 0; i < 20; i++) await get('heavy', randomCommit());
      // 3 / (3 + 1) of 20.
      expect(upstreamCalls(s)).toBe(16);
      for (const p of pages.slice(1, 5)) expect((await get('light', p)).status).toBe(200);
      expect((await get('light', pages[5])).status).toBe(429);
      expect(upstreamCalls(s)).toBe(20);
    });
  });

  it('charges one upstream call serving two clients to the client whose miss made it', async () => {
    await withStack(both, { ...EXACT, repositoryRequestsPerHour: 10, burstShare: 1 }, async (s, get) => {
      s.fake.addFault({ match: { pathIncludes: '/service-web/refs/branches' }, kind: 'latency', latencyMs: 300, times: 1 });
      const first = get('flood', pages[2]);
      while (s.running.sidecar.budget.snapshot().inFlight === 0) await new Promise((r) => setTimeout(r, 5));
      const second = get('scan', pages[2]);
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect(s.fake.requests.filter((r) => r.rawUrl.includes('/service-web/refs/branches'))).toHaveLength(1);
      expect(s.running.sidecar.budget.clientUse().map((u) => [u.client, u.used])).toEqual([['flood', 1]]);
    });
  });
});
