import { organisationScan, ScanClient } from '../../bench/scan';
import { basicAuth } from '../helpers/stack';
import { deliver, headersFor, pushBody } from '../webhooks/helpers';
import { startMirrorStack, type MirrorStack } from './helpers';

/**
 * REST calls per repository in the plugin's organisation scan (bench/scan.ts), counted
 * from the fake's request log: with mirrors, a cold scan needs the workspace, the listing and one
 * pull request list per repository — everything else (branches, tags, Jenkinsfile probes, commits,
 * the repository object and default branch) comes from the mirrors and the listing. Counts, not times.
 */
describe('organisation scan with mirrors', () => {
  const REPOS = 30;
  let s: MirrorStack;
  let client: ScanClient;
  const apiBase = 'http://api.bitbucket.org';

  beforeAll(async () => {
    s = await startMirrorStack({
      fake: { seed: { workspace: 'gen', repositories: REPOS, branches: 5, pullRequests: 2, tags: 1 } },
      clients: [{ id: 'jenkins', scope: [{ workspace: 'gen' }] }],
      mirror: { freshSeconds: 600 },
      // "Warm" means within the cache's freshness; long enough that a slow machine stays inside it.
      config: { webhooks: {}, cache: { freshness: { listSeconds: 600, metadataSeconds: 600 } } },
    });
    client = new ScanClient({ serverUrl: s.url, apiBase, authorization: basicAuth('jenkins@ci.example', s.tokens.jenkins), connections: 8 });
  });
  afterAll(async () => {
    await client.close();
    await s.stop();
  });

  it('cold: about one REST call per repository (its pull requests), and two git requests per mirror', async () => {
    const from = s.fake.requests.length;
    const summary = await organisationScan(client, apiBase, { workspace: 'gen', parallelRepositories: 4 });
    expect(summary).toMatchObject({ repositories: REPOS, failedRepositories: [], droppedHeads: 0 });
    expect(summary.probes).toBe(REPOS * (5 + 2 + 1));

    const rest = s.apiSince(from);
    const byKind = (r: { path: string }) => (/\/pullrequests$/.test(r.path) ? 'pullrequests' : r.path === '/2.0/workspaces/gen' ? 'workspace' : r.path === '/2.0/repositories/gen' ? 'listing' : r.path);
    const counts: Record<string, number> = {};
    for (const r of rest) counts[byKind(r)] = (counts[byKind(r)] ?? 0) + 1;
    expect(counts).toEqual({ workspace: 1, listing: 1, pullrequests: REPOS });
    expect(rest.length / REPOS).toBeLessThanOrEqual(1.07);

    const git = s.gitSince(from);
    expect(git.length).toBe(2 * REPOS);
    expect(s.mirrors.budget.used()).toBeLessThanOrEqual(2 * REPOS);
    expect(s.mirrors.manager.usage().mirrors).toBe(REPOS);
  });

  it('warm re-index after one push: REST only for that repository’s pull requests, git only for that mirror', async () => {
    const pushed = await s.fake.pushCommit('gen', 'repo-0007', 'main', { 'pushed.txt': 'new\n' });
    const from = s.fake.requests.length;
    expect((await deliver(s.url, pushBody('gen', 'repo-0007', 'P1', 'main', pushed), headersFor('repo:push'))).status).toBe(200);
    const summary = await organisationScan(client, apiBase, { workspace: 'gen', parallelRepositories: 4 });
    expect(summary).toMatchObject({ failedRepositories: [], droppedHeads: 0 });

    expect(s.apiSince(from).map((r) => r.path)).toEqual(['/2.0/repositories/gen/repo-0007/pullrequests']);
    // The fetch the webhook started: one info/refs and one upload-pack, for that mirror only.
    expect(s.gitSince(from).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /gen/repo-0007.git/info/refs', 'POST /gen/repo-0007.git/git-upload-pack']);
    const branches = await client.get(`${apiBase}/2.0/repositories/gen/repo-0007/refs/branches/main`);
    expect(branches.json.target.hash).toBe(pushed);
  });
});
