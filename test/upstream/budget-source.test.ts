import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { BodyMemo } from '../../src/core/body-memo';
import { BudgetGovernor, DEFAULT_BUDGET, type BudgetConfig } from '../../src/upstream/budget';
import { ManualClock } from '../../src/upstream/budget-clock';
import { budgetSource } from '../../src/upstream/budget-source';
import { UpstreamClient } from '../../src/upstream/client';
import { upstreamSource } from '../../src/upstream/source';
import { callFor } from '../cache/calls';

/** The governor in front of the real upstream client and the fake Bitbucket's fault injection. */
const R = '/2.0/repositories/acme/service-api';
let fake: FakeBitbucketServer;
let upstream: UpstreamClient;

beforeAll(async () => {
  fake = await startFakeBitbucket({ seed: 'demo' });
  const auth = `Basic ${Buffer.from(`${fake.credentials.email}:${fake.credentials.apiToken}`).toString('base64')}`;
  upstream = new UpstreamClient({ memo: new BodyMemo(), apiUrl: fake.url, authorization: auth, connectTimeoutMs: 2000, responseTimeoutMs: 2000, userAgent: 'test' });
});
afterAll(async () => {
  await upstream.close();
  await fake.close();
});
beforeEach(() => {
  fake.clearLog();
  fake.clearFaults();
});

function metered(over: Partial<BudgetConfig> = {}) {
  const clock = new ManualClock(1_000_000);
  const governor = new BudgetGovernor({ ...DEFAULT_BUDGET, maxQueueWaitMs: 0, burstShare: 1, maxRetryAfterSeconds: 3600, windowMarginMs: 0, ...over }, clock);
  return { clock, governor, source: budgetSource(upstreamSource(upstream), governor) };
}
const apiCalls = () => fake.requests.filter((r) => r.kind === 'api').length;

describe('budgetSource', () => {
  it('answers a refused call with 429 and the exact Retry-After, without calling Bitbucket', async () => {
    const { clock, source } = metered({ repositoryRequestsPerHour: 2 });
    expect((await source(callFor('GET', `${R}/refs/branches`))).status).toBe(200);
    clock.advance(600_000);
    expect((await source(callFor('GET', `${R}/refs/tags`))).status).toBe(200);
    clock.advance(60_000);
    const refused = await source(callFor('GET', R));
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe(String(3600 - 660));
    expect(refused.budgetRefused).toBe('budget');
    expect(Object.keys(refused.headers)).not.toContain('x-sidecar-budget');
    expect(JSON.parse(refused.body.toString())).toEqual({ type: 'error', error: { message: 'Rate limit for this resource has been exceeded' } });
    expect(apiCalls()).toBe(2);
  });

  it('tells successive refused requests successive times (each URL keeps its promised slot)', async () => {
    const { clock, source } = metered({ repositoryRequestsPerHour: 3 });
    for (const u of [`${R}/refs/branches`, `${R}/refs/tags`, `${R}/pullrequests`]) {
      await source(callFor('GET', u));
      clock.advance(100_000);
    }
    const a = await source(callFor('GET', R));
    const b = await source(callFor('GET', `${R}/refs/branches/main`));
    expect([a.headers['retry-after'], b.headers['retry-after']]).toEqual(['3300', '3400']);
    clock.advance(3_300_000);
    expect((await source(callFor('GET', R))).status).toBe(200);
    expect(apiCalls()).toBe(4);
  });

  it('passes an upstream Retry-After on and calls nothing of that class until it has passed', async () => {
    const { clock, source } = metered();
    fake.addFault({ match: { pathPrefix: '/2.0/repositories' }, kind: 'rate429', retryAfter: 7, times: 1 });
    const first = await source(callFor('GET', `${R}/refs/branches`));
    expect(first.status).toBe(429);
    expect(first.headers['retry-after']).toBe('7');
    clock.advance(3_000);
    const held = await source(callFor('GET', `${R}/refs/tags`));
    expect(held.status).toBe(429);
    expect(held.headers['retry-after']).toBe('4');
    expect(held.budgetRefused).toBe('backoff');
    expect(apiCalls()).toBe(1);
    clock.advance(4_000);
    expect((await source(callFor('GET', `${R}/refs/tags`))).status).toBe(200);
  });

  it('gives an upstream 429 without Retry-After the governor backoff as an exact Retry-After', async () => {
    const { clock, source } = metered();
    fake.addFault({ match: { pathPrefix: '/2.0/repositories' }, kind: 'rate429', times: 2 });
    const first = await source(callFor('GET', `${R}/pullrequests`));
    expect(first.status).toBe(429);
    expect(first.headers['retry-after']).toBe('10');
    clock.advance(10_000);
    const second = await source(callFor('GET', `${R}/pullrequests`));
    expect(second.headers['retry-after']).toBe('20');
    expect(apiCalls()).toBe(2);
  });

  it('a 503 is passed on as is (not a budget matter) and does not block later calls', async () => {
    const { source } = metered();
    fake.addFault({ match: { pathPrefix: '/2.0/repositories' }, kind: 'status', status: 503, times: 1 });
    expect((await source(callFor('GET', `${R}/refs/branches`))).status).toBe(503);
    expect((await source(callFor('GET', `${R}/refs/branches`))).status).toBe(200);
  });

  it('counts writes, and refuses a write over budget instead of sending it', async () => {
    const { source, governor } = metered({ repositoryRequestsPerHour: 1 });
    const hash = JSON.parse((await upstream.send(callFor('GET', `${R}/refs/branches/main`))).body.toString()).target.hash as string;
    fake.clearLog();
    const status = JSON.stringify({ state: 'INPROGRESS', key: 'k', url: 'https://jenkins.example/job/1/' });
    const posted = await source(callFor('POST', `${R}/commit/${hash}/statuses/build`, status));
    expect([200, 201]).toContain(posted.status);
    expect(governor.snapshot().classes.repository.usedInWindow).toBe(1);
    const refused = await source(callFor('POST', `${R}/commit/${hash}/statuses/build`, status));
    expect(refused.status).toBe(429);
    expect(fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('background refreshes are refused at once when they would have to wait', async () => {
    const { source } = metered({ repositoryRequestsPerHour: 4, backgroundShare: 0.5 });
    await source(callFor('GET', `${R}/refs/branches`));
    await source(callFor('GET', `${R}/refs/tags`));
    const bg = await source({ ...callFor('GET', R), background: true });
    expect(bg.status).toBe(429);
    expect(bg.budgetRefused).toBe('background');
    expect((await source(callFor('GET', R))).status).toBe(200);
    expect(apiCalls()).toBe(3);
  });
});
