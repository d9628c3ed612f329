import { deliver, headersFor, pushBody } from '../webhooks/helpers';
import { API, startMirrorStack, until, type MirrorStack } from './helpers';

/**
 * When answers come from the mirror and when from upstream. The mirror answers ref questions only
 * while it is fresh: fetched less than `freshSeconds` ago and not invalidated since (webhook). A
 * stale mirror is fetched first — a request waits at most `waitSeconds` for that — and whatever
 * cannot be made fresh goes upstream unchanged. The mirror's clock is the sidecar's `now` here.
 */
describe('fresh and stale mirrors', () => {
  let s: MirrorStack;
  let t = Date.now();
  const repoUrl = `${API}/acme/service-api`;
  const gitPath = '/acme/service-api.git/';

  beforeAll(async () => {
    s = await startMirrorStack({ mirror: { freshSeconds: 60, waitSeconds: 1 }, config: { webhooks: {} }, sidecar: { now: () => t } });
    await s.plugin.getAll(`${API}/acme?pagelen=100`);
  });
  afterAll(() => s.stop());

  /** GET through the sidecar with an empty cache; says whether Bitbucket's REST API was asked. */
  async function ask(url: string): Promise<{ json: any; rest: number; git: number }> {
    s.running.sidecar.cache.clear();
    const from = s.fake.requests.length;
    const a = await s.plugin.get(url);
    expect(a.status).toBe(200);
    return { json: a.json, rest: s.apiSince(from).length, git: s.gitSince(from).length };
  }

  it('a push no webhook reports stays invisible until freshSeconds pass; then one fetch brings it, and a fetch that finds nothing new costs one git request', async () => {
    const first = await ask(`${repoUrl}/refs/branches/main`);
    expect(first).toMatchObject({ rest: 0, git: 2 }); // the mirror was cloned on first need
    const h1 = await s.fake.pushCommit('acme', 'service-api', 'main', { 'fresh.txt': 'one\n' });
    const still = await ask(`${repoUrl}/refs/branches/main`);
    expect(still).toMatchObject({ rest: 0, git: 0 });
    expect(still.json.target.hash).toBe(first.json.target.hash);

    t += 61_000;
    const later = await ask(`${repoUrl}/refs/branches/main`);
    expect(later).toMatchObject({ rest: 0, git: 2 });
    expect(later.json.target.hash).toBe(h1);

    t += 61_000;
    expect(await ask(`${repoUrl}/refs/branches/main`)).toMatchObject({ rest: 0, git: 1 });
  });

  it('after a push webhook and before a refresh answers come from upstream; after the refresh, from the mirror', async () => {
    s.fake.addFault({ kind: 'status', status: 503, match: { pathIncludes: gitPath } });
    const h2 = await s.fake.pushCommit('acme', 'service-api', 'main', { 'fresh.txt': 'two\n' });
    const d = await deliver(s.url, pushBody('acme', 'service-api', 'CI', 'main', h2), headersFor('repo:push'));
    expect(d.status).toBe(200);
    // The relay's invalidation marked the mirror stale and started a fetch, which Bitbucket refuses.
    await until(() => s.mirrors.manager.stats.syncFailures > 0, 'the failed fetch');

    const before = await ask(`${repoUrl}/refs/branches/main`);
    expect(before.rest).toBe(1);
    expect(before.json.target.hash).toBe(h2);
    expect((await ask(`${repoUrl}/refs/branches?pagelen=100`)).rest).toBe(1);

    s.fake.clearFaults();
    expect(await s.mirrors.refresh('acme', 'service-api')).toBe(true);
    const after = await ask(`${repoUrl}/refs/branches/main`);
    expect(after).toMatchObject({ rest: 0, git: 0 });
    expect(after.json.target.hash).toBe(h2);
  });

  it('answers addressed by a commit id come from the mirror however stale it is', async () => {
    const head = (await ask(`${repoUrl}/refs/branches/main`)).json.target.hash as string;
    s.fake.addFault({ kind: 'status', status: 503, match: { pathIncludes: gitPath } });
    try {
      s.mirrors.markStale('acme', 'service-api');
      expect(await ask(`${repoUrl}/commit/${head.slice(0, 12)}`)).toMatchObject({ rest: 0 });
      expect(await ask(`${repoUrl}/src/${head}/Jenkinsfile?format=meta`)).toMatchObject({ rest: 0 });
      // …while a question about a ref goes upstream.
      expect((await ask(`${repoUrl}/refs/branches/main`)).rest).toBe(1);
    } finally {
      s.fake.clearFaults();
    }
    expect(await s.mirrors.refresh('acme', 'service-api')).toBe(true);
  });

  it("a commit the mirror lacks (another repository's, a fork's) is asked of Bitbucket, once the mirror is fresh", async () => {
    const other = (await ask(`${API}/acme/service-web/refs/branches/main`)).json.target.hash as string;
    expect(await s.mirrors.refresh('acme', 'service-api')).toBe(true);
    s.running.sidecar.cache.clear();
    const from = s.fake.requests.length;
    const a = await s.plugin.get(`${repoUrl}/commit/${other}`);
    expect(a.status).toBe(404);
    expect(s.apiSince(from).map((r) => r.path)).toEqual([`/2.0/repositories/acme/service-api/commit/${other}`]);
    expect(s.gitSince(from)).toEqual([]);
  });

  it('a request waits at most waitSeconds for a slow fetch, goes upstream, and the mirror serves once the fetch is done', async () => {
    s.fake.addFault({ kind: 'latency', latencyMs: 2500, match: { pathIncludes: gitPath }, times: 1 });
    const h3 = await s.fake.pushCommit('acme', 'service-api', 'main', { 'fresh.txt': 'three\n' });
    await deliver(s.url, pushBody('acme', 'service-api', 'CI', 'main', h3), headersFor('repo:push'));
    const meanwhile = await ask(`${repoUrl}/refs/branches/main`);
    expect(meanwhile.rest).toBe(1);
    expect(meanwhile.json.target.hash).toBe(h3);
    const st = s.mirrors.manager.peek('acme', 'service-api')!;
    await until(() => s.mirrors.manager.isFresh(st), 'the slow fetch to finish');
    const after = await ask(`${repoUrl}/refs/branches/main`);
    expect(after).toMatchObject({ rest: 0, git: 0 });
    expect(after.json.target.hash).toBe(h3);
  });

  it('a deleted branch disappears from the mirror with the next fetch (fetch --prune)', async () => {
    const auth = `Basic ${Buffer.from(`${s.fake.credentials.email}:${s.fake.credentials.apiToken}`).toString('base64')}`;
    const res = await fetch(`${s.fake.url}/2.0/repositories/acme/service-api/refs/branches/feature%2FBB-4`, { method: 'DELETE', headers: { authorization: auth } });
    expect(res.status).toBe(204);
    expect((await ask(`${repoUrl}/refs/branches?pagelen=100`)).json.values.map((b: any) => b.name)).toContain('feature/BB-4');
    expect(await s.mirrors.refresh('acme', 'service-api')).toBe(true);
    const after = await ask(`${repoUrl}/refs/branches?pagelen=100`);
    expect(after.rest).toBe(0);
    expect(after.json.values.map((b: any) => b.name)).not.toContain('feature/BB-4');
    const gone = await s.plugin.get(`${repoUrl}/refs/branches/feature%2FBB-4`);
    expect(gone.status).toBe(404);
  });
});
