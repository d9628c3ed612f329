import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { ManualClock } from '../../src/upstream/budget-clock';
import { sign } from '../../src/webhooks/signature';
import { basicAuth } from '../helpers/stack';
import { deliver, headersFor, pullRequestBody, pushBody, startRelay, type RelayStack } from './helpers';

const SECRET = 'bitbucket-hook-secret';
const LIST_SECONDS = 60;
const cacheConfig = { freshness: { listSeconds: LIST_SECONDS, metadataSeconds: LIST_SECONDS }, staleWhileRevalidateSeconds: 0 };
const REPOS = ['service-api', 'service-web'];

/** What an organization re-index asks for (bench/scan.ts), minus commit-addressed answers. */
function reindexPaths(): string[] {
  const paths = ['/2.0/workspaces/acme', '/2.0/repositories/acme?pagelen=100'];
  for (const r of REPOS) {
    const base = `/2.0/repositories/acme/${r}`;
    paths.push(base, `${base}/pullrequests?pagelen=50`, `${base}/refs/branches?pagelen=100`, `${base}/refs/tags?pagelen=100`);
  }
  return paths;
}

async function reindex(relay: RelayStack): Promise<{ path: string; status: number; cache: string }[]> {
  const out = [];
  for (const path of reindexPaths()) {
    const r = await request(`${relay.url}${path}`, { headers: { authorization: basicAuth('jenkins@ci.example', relay.tokens.ci) } });
    await r.body.dump();
    out.push({ path, status: r.statusCode, cache: String(r.headers['cache-status'] ?? '') });
  }
  return out;
}

const isListing = (path: string) => /^\/2\.0\/repositories\/[^/?]+(\?|$)/.test(path);

describe('warm refresher', () => {
  let fake: FakeBitbucket;
  const running: RelayStack[] = [];
  const start = async (config: Record<string, unknown>, clock: ManualClock) => {
    const s = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] }], { cache: cacheConfig, ...config }, { sidecar: { clock } });
    running.push(s);
    return s;
  };
  const upstreamCalls = () => fake.requests.filter((r) => r.kind === 'api');

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
  });
  afterAll(async () => {
    for (const s of running) await s.stop().catch(() => undefined);
    await fake.close();
  });

  it('without it, a re-index right after expiry waits on upstream (the control)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const s = await start({}, clock);
    await reindex(s);
    clock.advance(LIST_SECONDS * 1000 + 1000);
    fake.clearLog();
    const again = await reindex(s);
    expect(again.every((r) => !/; hit/.test(r.cache))).toBe(true);
    expect(upstreamCalls().length).toBeGreaterThanOrEqual(reindexPaths().length);
  });

  it('refreshes lists in the background before they expire: a re-index right after expiry makes 0 upstream calls', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const s = await start({ refresh: { enabled: true, leadSeconds: 10, intervalSeconds: 1 } }, clock);
    const refresher = s.running.sidecar.webhooks.refresher;
    const first = await reindex(s);
    expect(first.every((r) => r.status === 200)).toBe(true);
    expect(refresher.trackedCount).toBe(reindexPaths().length);

    fake.clearLog();
    clock.advance((LIST_SECONDS - 9) * 1000); // inside the lead window, before expiry
    await refresher.idle();
    await refresher.runOnce();
    expect(refresher.stats.refreshed).toBe(reindexPaths().length);
    expect(upstreamCalls()).toHaveLength(reindexPaths().length);

    clock.advance(15_000); // past the first answers' expiry
    await refresher.idle();
    fake.clearLog();
    const again = await reindex(s);
    expect(upstreamCalls()).toHaveLength(0);
    // A narrowed client's listing never says hit or miss (that would tell what others cached).
    for (const r of again) expect(r.cache).toMatch(isListing(r.path) ? /^bitbucket-sidecar; detail=visible-listing$/ : /^bitbucket-sidecar; hit; ttl=\d+$/);
  });

  it('with verified webhooks, lists a recent delivery vouches for are renewed without an upstream call', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const s = await start({ webhooks: { secret: SECRET }, refresh: { enabled: true, leadSeconds: 10, intervalSeconds: 1, confirmedSeconds: 3600 } }, clock);
    const refresher = s.running.sidecar.webhooks.refresher;
    await reindex(s);

    // service-api's hook sends pushes; service-web's sends pull request events.
    const push = pushBody('acme', 'service-api', 'CI', 'main', 'a'.repeat(40));
    expect((await deliver(s.url, push, headersFor('repo:push', undefined, { 'x-hub-signature': sign(push, SECRET) }))).status).toBe(200);
    const pr = pullRequestBody('acme', 'service-web', 'CI', 1, 'feature/x', 'main');
    expect((await deliver(s.url, pr, headersFor('pullrequest:updated', undefined, { 'x-hub-signature': sign(pr, SECRET) }))).status).toBe(200);

    // The deliveries invalidated lists: they are fetched again at once, in the background.
    fake.clearLog();
    await refresher.runOnce();
    const refetched = upstreamCalls().map((r) => r.path);
    expect(refetched).toEqual(expect.arrayContaining(['/2.0/repositories/acme/service-api/refs/branches', '/2.0/repositories/acme/service-api/refs/tags', '/2.0/repositories/acme/service-web/pullrequests']));

    // Next round, near expiry: the vouched-for lists are renewed; the others go upstream.
    fake.clearLog();
    clock.advance((LIST_SECONDS - 9) * 1000);
    await refresher.idle();
    await refresher.runOnce();
    const paths = upstreamCalls().map((r) => r.path);
    expect(paths).not.toContain('/2.0/repositories/acme/service-api/refs/branches');
    expect(paths).not.toContain('/2.0/repositories/acme/service-api/refs/tags');
    expect(paths).not.toContain('/2.0/repositories/acme/service-web/pullrequests');
    expect(paths).toEqual(expect.arrayContaining(['/2.0/repositories/acme/service-web/refs/branches', '/2.0/repositories/acme/service-api/pullrequests', '/2.0/repositories/acme']));
    expect(refresher.stats.renewed).toBe(3);

    clock.advance(15_000);
    await refresher.idle();
    fake.clearLog();
    const again = await reindex(s);
    expect(upstreamCalls()).toHaveLength(0);
    for (const r of again) expect(r.cache).toMatch(isListing(r.path) ? /detail=visible-listing/ : /; hit/);
  });

  it('spends at most its budget share, and stops with the sidecar', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    // 1000/h × 0.002 = 2 refresh calls per rolling hour.
    const s = await start({ refresh: { enabled: true, leadSeconds: 10, intervalSeconds: 1, budgetShare: 0.002 } }, clock);
    const refresher = s.running.sidecar.webhooks.refresher;
    await reindex(s);
    fake.clearLog();
    clock.advance((LIST_SECONDS - 9) * 1000);
    await refresher.idle();
    await refresher.runOnce();
    expect(upstreamCalls()).toHaveLength(2);
    expect(refresher.stats.budgetSpent).toBeGreaterThan(0);

    await s.stop();
    running.splice(running.indexOf(s), 1);
    fake.clearLog();
    clock.advance(3 * 3600 * 1000);
    await refresher.idle();
    expect(upstreamCalls()).toHaveLength(0);
  });
});
