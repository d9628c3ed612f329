import { generatedSlug, startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { allPages, get, gitUrl, runGit } from './helpers';

let fake: FakeBitbucketServer;

beforeAll(async () => {
  fake = await startFakeBitbucket({ seed: { workspace: 'bench', repositories: 50, branches: 5, pullRequests: 2, tags: 1, projects: 3 } });
});
afterAll(async () => {
  await fake.close();
});

test('a 50-repository workspace is built and listed across pages', async () => {
  expect(fake.model.repositories).toHaveLength(50);
  const pages = await allPages(fake, '/2.0/repositories/bench?pagelen=20');
  expect(pages).toHaveLength(3);
  const slugs = pages.flatMap((p) => p.values.map((r: { slug: string }) => r.slug));
  expect(slugs).toEqual(Array.from({ length: 50 }, (_, i) => generatedSlug(i + 1)));
  expect(pages[0]!.size).toBe(50);
});

test('repositories are spread across the projects', async () => {
  const counts = new Map<string, number>();
  for (const r of fake.model.repositories) counts.set(r.projectKey, (counts.get(r.projectKey) ?? 0) + 1);
  expect([...counts.keys()].sort()).toEqual(['P1', 'P2', 'P3']);
  expect([...counts.values()].sort()).toEqual([16, 17, 17]);
  const p2 = (await get(fake, '/2.0/repositories/bench?q=project.key%3D%22P2%22&pagelen=100')).json();
  expect(p2.size).toBe(17);
});

test('each repository has its branches, tag, open PRs and distinct history', async () => {
  const a = (await get(fake, '/2.0/repositories/bench/repo-0001/refs/branches?pagelen=100')).json();
  const b = (await get(fake, '/2.0/repositories/bench/repo-0050/refs/branches?pagelen=100')).json();
  expect(a.values.map((x: { name: string }) => x.name)).toEqual(['feature/b1', 'feature/b2', 'feature/b3', 'feature/b4', 'main']);
  const mainA = a.values.find((x: { name: string }) => x.name === 'main').target.hash;
  const mainB = b.values.find((x: { name: string }) => x.name === 'main').target.hash;
  expect(mainA).not.toBe(mainB);
  expect((await get(fake, '/2.0/repositories/bench/repo-0050/refs/tags')).json().values.map((t: { name: string }) => t.name)).toEqual(['v1.0']);
  const prs = (await get(fake, '/2.0/repositories/bench/repo-0017/pullrequests?pagelen=50')).json();
  expect(prs.values.map((p: { id: number; source: { branch: { name: string } } }) => [p.id, p.source.branch.name])).toEqual([
    [2, 'feature/b2'],
    [1, 'feature/b1'],
  ]);
  expect((await get(fake, '/2.0/repositories/bench/repo-0033/src/main/Jenkinsfile?format=meta')).json().type).toBe('commit_file');
  expect((await get(fake, '/2.0/repositories/bench/repo-0033/src/main/README.md')).text).toContain('bench/repo-0033');
});

test('a generated repository (objects shared through alternates) clones and accepts pushes', async () => {
  const r = await runGit(['ls-remote', gitUrl(fake, 'bench/repo-0042')]);
  expect(r.code).toBe(0);
  const main = (await get(fake, '/2.0/repositories/bench/repo-0042/refs/branches/main')).json().target.hash;
  expect(r.stdout).toContain(`${main}\trefs/heads/main`);
  const sha = await fake.pushCommit('bench', 'repo-0042', 'main', { 'x.txt': 'x' });
  expect((await get(fake, '/2.0/repositories/bench/repo-0042/refs/branches/main')).json().target.parents[0].hash).toBe(main);
  expect((await get(fake, '/2.0/repositories/bench/repo-0041/refs/branches/main')).json().target.hash).not.toBe(sha);
});

test('branches: 1 with PRs creates dedicated PR branches', async () => {
  const small = await startFakeBitbucket({ seed: { workspace: 'tiny', repositories: 2, branches: 1, pullRequests: 2, tags: 0 } });
  try {
    const names = (await get(small, '/2.0/repositories/tiny/repo-0002/refs/branches')).json().values.map((b: { name: string }) => b.name);
    expect(names).toEqual(['feature/pr-1', 'feature/pr-2', 'main']);
    expect((await get(small, '/2.0/repositories/tiny/repo-0002/pullrequests')).json().size).toBe(2);
    expect((await get(small, '/2.0/repositories/tiny')).json().values[0].project.key).toBe('P1');
  } finally {
    await small.close();
  }
});
