/**
 * What one request can make the scope gate ask upstream: one targeted look-up, however large the
 * workspace, and nothing when the same unknown is asked again. A generated workspace of 600
 * repositories (six listing pages) across three projects, behind a real sidecar.
 */
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { request } from '../ops/http';

describe('the gate\'s upstream cost per request', () => {
  let stack: Stack;
  let inP1: string;
  let inP2: string;
  beforeAll(async () => {
    stack = await startStack(
      [
        { id: 'wide', scope: [{ workspace: 'bench' }] },
        { id: 'p1', scope: [{ workspace: 'bench', projects: ['P1'] }] },
      ],
      { fake: { seed: { workspace: 'bench', repositories: 600, branches: 1, pullRequests: 0, tags: 0, projects: 3 } } },
    );
    const repos = stack.fake.model.repositories;
    inP1 = repos.filter((r) => r.projectKey === 'P1').at(-1)!.slug;
    inP2 = repos.filter((r) => r.projectKey === 'P2').at(-1)!.slug;
  }, 120_000);
  afterAll(() => stack.stop());

  const get = (client: string, path: string) => request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } });
  const upstream = () => stack.fake.requests.filter((r) => r.kind === 'api');

  it('an unknown {uuid} repository costs one listing query, and nothing the second time', async () => {
    stack.fake.clearLog();
    const unknown = '/2.0/repositories/bench/%7B00000000-0000-4000-8000-000000000001%7D';
    expect((await get('wide', unknown)).status).toBe(404);
    expect(upstream().map((r) => r.query.q)).toEqual(['uuid="{00000000-0000-4000-8000-000000000001}"']);
    for (let i = 0; i < 5; i++) expect((await get('wide', unknown)).status).toBe(404);
    expect(upstream()).toHaveLength(1);
  });

  it('a known {uuid} still resolves with that one query', async () => {
    stack.fake.clearLog();
    const repo = stack.fake.model.repositories.at(-1)!;
    expect((await get('wide', `/2.0/repositories/bench/${encodeURIComponent(repo.uuid)}`)).status).toBe(200);
    expect(upstream().length).toBeLessThanOrEqual(2);
  });

  it('a project-scoped client\'s unknown slug costs one targeted query within its projects, and nothing again', async () => {
    stack.fake.clearLog();
    expect((await get('p1', `/2.0/repositories/bench/${inP2}`)).status).toBe(404);
    const asked = upstream();
    expect(asked).toHaveLength(1);
    expect(asked[0].query.q).toBe(`full_name="bench/${inP2}" AND (project.key="P1")`);
    // The answer named no repository outside the client's projects (the query kept them out).
    for (let i = 0; i < 5; i++) expect((await get('p1', `/2.0/repositories/bench/${inP2}`)).status).toBe(404);
    expect(upstream()).toHaveLength(1);
    stack.fake.clearLog();
    expect((await get('p1', `/2.0/repositories/bench/${inP1}`)).status).toBe(200);
    expect(upstream()).toHaveLength(2); // the look-up, then the repository itself
  });
});
