import { request } from 'undici';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

/**
 * A fork outside the scope (jdoe/service-api-fork, in the upstream person's own workspace) is
 * readable only while it is the source of an open PR into an in-scope repository, and only what
 * that PR needs: its source branch, commit/ and src/ at the PR's source commit.
 */
describe('fork pull request sources', () => {
  let stack: Stack;
  const FORK = '/2.0/repositories/jdoe/service-api-fork';
  const get = (path: string, client = 'scoped') =>
    request(`${stack.url}${path}`, { headers: { authorization: basicAuth('j@ci.example', stack.tokens[client]) } }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));

  beforeAll(async () => {
    stack = await startStack([
      { id: 'scoped', scope: [{ workspace: 'acme' }] },
      { id: 'web-only', scope: [{ workspace: 'acme', repositories: ['service-web'] }] },
    ]);
  });
  afterAll(() => stack.stop());

  it('is unknown (404, no upstream request) before the PR list was read', async () => {
    stack.fake.clearLog();
    expect((await get(`${FORK}/refs/branches/feature%2FBB-2`)).status).toBe(404);
    expect(stack.fake.requests.filter((r) => r.workspace === 'jdoe')).toEqual([]);
  });

  it('after the PR list: the source branch, commit and src at the PR commit — nothing else', async () => {
    const prs = JSON.parse((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).text);
    const pr = prs.values.find((p: { source: { repository: { full_name: string } } }) => p.source.repository.full_name === 'jdoe/service-api-fork');
    expect(pr).toBeDefined();
    const short: string = pr.source.commit.hash;
    expect(short).toHaveLength(12);

    const branch = await get(`${FORK}/refs/branches/feature%2FBB-2`);
    expect(branch.status).toBe(200);
    const full: string = JSON.parse(branch.text).target.hash;
    expect(full.startsWith(short)).toBe(true);
    expect((await get(`${FORK}/commit/${short}`)).status).toBe(200);
    expect((await get(`${FORK}/commit/${full}`)).status).toBe(200);
    expect((await get(`${FORK}/src/${short}/Jenkinsfile?format=meta`)).status).toBe(200);
    expect((await get(`${FORK}/src/${full}/Jenkinsfile`)).status).toBe(200);

    stack.fake.clearLog();
    for (const path of [
      FORK,
      `${FORK}/?fields=mainbranch.name`,
      `${FORK}/refs/branches`,
      `${FORK}/refs/branches/main`,
      `${FORK}/refs/tags`,
      `${FORK}/pullrequests`,
      `${FORK}/src/main/Jenkinsfile?format=meta`,
      `${FORK}/src/${short}/Jenkinsfile?at=main`,
      `${FORK}/commits?include=main`,
      `${FORK}/hooks`,
      '/2.0/repositories/jdoe/secret-notes',
      '/2.0/workspaces/jdoe',
    ]) {
      expect([path, (await get(path)).status]).toEqual([path, 404]);
    }
    expect(stack.fake.requests.filter((r) => r.workspace === 'jdoe')).toEqual([]);
  });

  it('a client whose scope does not include the PR target does not get the fork', async () => {
    stack.fake.clearLog();
    expect((await get(`${FORK}/refs/branches/feature%2FBB-2`, 'web-only')).status).toBe(404);
    expect(stack.fake.requests.filter((r) => r.workspace === 'jdoe')).toEqual([]);
  });

  it('is revoked once the PR list no longer shows the pull request open', async () => {
    expect((await get(`${FORK}/refs/branches/feature%2FBB-2`)).status).toBe(200);
    const pr = stack.fake.model.pullRequests.find((p) => p.id === 2 && p.state === 'OPEN')!;
    pr.state = 'DECLINED';
    // A push makes the fake recompute its answers; the webhook relay would invalidate our cache.
    await stack.fake.pushCommit('acme', 'service-api', 'release/1.0', { 'notes.txt': 'declined BB-2\n' });
    stack.running.sidecar.cache.invalidateRepository('acme', 'service-api');
    try {
      const prs = JSON.parse((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).text);
      expect(prs.values.map((p: { id: number }) => p.id)).not.toContain(2);
      expect((await get(`${FORK}/refs/branches/feature%2FBB-2`)).status).toBe(404);
    } finally {
      pr.state = 'OPEN';
    }
  });
});
