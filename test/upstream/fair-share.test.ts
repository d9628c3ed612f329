/**
 * Fair shares of the upstream budget, through real sockets against the fake Bitbucket: one client
 * spending distinct uncached URLs is refused alone, at its own share, while another keeps being
 * served; a client alone may use the whole hour; weights tilt the shares.
 */
import { randomBytes } from 'node:crypto';
import { startFakeBitbucket } from '../../src/fake-bitbucket';
import { basicAuth, startStack, type Stack, type StackClient } from '../helpers/stack';
import { request } from '../ops/http';

const BUDGET = { repositoryRequestsPerHour: 20, burstShare: 1, maxQueueWaitMs: 200 };
const randomCommit = () => `/2.0/repositories/acme/service-api/commit/${randomBytes(20).toString('hex')}`;

async function withStack(clients: StackClient[], run: (s: Stack, get: (c: string, p: string) => Promise<{ status: number; retryAfter?: string }>) => Promise<void>): Promise<void> {
  const fake = await startFakeBitbucket({ seed: 'demo' });
  const s = await startStack(clients, {
    fakeInstance: fake,
    config: { upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: BUDGET } },
  });
  const get = async (client: string, path: string) => {
    const r = await request(`${s.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', s.tokens[client]) } });
    return { status: r.status, retryAfter: r.headers['retry-after'] as string | undefined };
  };
  try {
    await run(s, get);
  } finally {
    await s.stop();
    await fake.close();
  }
}

const upstreamCommits = (s: Stack) => s.fake.requests.filter((r) => r.path.includes('/commit/')).length;

describe('fair shares of the upstream budget', () => {
  it('refuses a client past its share alone; the other client keeps being served', async () => {
    await withStack([{ id: 'flood', scope: [{ workspace: 'acme' }] }, { id: 'scan', scope: [{ workspace: 'acme' }] }], async (s, get) => {
      const statuses: number[] = [];
      for (let i = 0; i < 16; i++) {
        const r = await get('flood', randomCommit());
        statuses.push(r.status);
        if (r.status === 429) expect(Number(r.retryAfter)).toBeGreaterThan(0);
      }
      // Alone in the window with another configured client idle: half the hour.
      expect(upstreamCommits(s)).toBe(10);
      expect(statuses.filter((x) => x === 429)).toHaveLength(6);
      for (let i = 0; i < 8; i++) expect((await get('scan', randomCommit())).status).toBe(404);
      expect((await get('scan', '/2.0/repositories/acme/service-web/refs/branches?pagelen=100')).status).toBe(200);
      expect((await get('flood', randomCommit())).status).toBe(429);
      expect(s.running.sidecar.budget.refusedOverShare).toBeGreaterThan(0);
    });
  });

  it('lets a client alone use the whole hour', async () => {
    await withStack([{ id: 'only', scope: [{ workspace: 'acme' }] }, { id: 'monitor', scope: [], permissions: ['ops:read'] }], async (s, get) => {
      for (let i = 0; i < 20; i++) expect((await get('only', randomCommit())).status).toBe(404);
      const over = await get('only', randomCommit());
      expect(over.status).toBe(429);
      expect(upstreamCommits(s)).toBe(20);
    });
  });

  it('tilts the shares by budgetWeight', async () => {
    await withStack([{ id: 'heavy', scope: [{ workspace: 'acme' }], budgetWeight: 3 }, { id: 'light', scope: [{ workspace: 'acme' }] }], async (s, get) => {
      for (let i = 0; i < 20; i++) await get('heavy', randomCommit());
      // 3 / (3 + 1 kept for the idle client) of 20.
      expect(upstreamCommits(s)).toBe(15);
      for (let i = 0; i < 5; i++) expect((await get('light', randomCommit())).status).toBe(404);
    });
  });
});
