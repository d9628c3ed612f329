import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { ForkRepoError, ForkRepos, branchAllowed } from '../../src/git/fork-repo';
import { createLogger } from '../../src/ops/logger';
import type { ForkGrant } from '../../src/core/fork-grant';
import { lineCollector, runGit, until } from './helpers';

/**
 * The grant repositories against the fake Bitbucket with real git: fetched once per grant commit,
 * fetched again (fast-forward) when the pull request moves, built again from empty when its branch
 * was rewritten (the old objects do not stay behind), refused when the PR's commit is not on its
 * branch, bounded with least-recently-used eviction, removed with their grant, and the upstream
 * credential never on a git command line or in a repository's config.
 */
describe('fork grant repositories', () => {
  let fake: FakeBitbucketServer;
  let dir: string;
  let repos: ForkRepos;
  const spawned: (readonly string[])[] = [];
  const logs = lineCollector();
  const FORK = 'jdoe/service-api-fork';
  let head: string;
  const auth = () => `Basic ${Buffer.from(`x-bitbucket-api-token-auth:${fake.credentials.apiToken}`).toString('base64')}`;
  const grant = (over: Partial<ForkGrant> = {}): ForkGrant => ({ target: 'acme/service-api', prId: 2, branch: 'feature/BB-2', commit: head.slice(0, 12), learnedAt: Date.now(), ...over });
  const make = (over: Partial<ConstructorParameters<typeof ForkRepos>[0]> = {}) =>
    new ForkRepos({
      dir: path.join(dir, `fg${spawned.length}-${Math.random().toString(16).slice(2)}`),
      webUrl: fake.url,
      authorization: auth(),
      maxBytes: 1024 ** 3,
      maxRepositories: 10,
      fetchTimeoutMs: 60_000,
      concurrency: 2,
      logger: createLogger({ level: 'debug', destination: logs.stream }),
      onSpawn: (_pid, args) => spawned.push(args),
      ...over,
    });
  const has = async (gitDir: string, sha: string) => (await runGit(['--git-dir', gitDir, 'cat-file', '-e', `${sha}^{commit}`])).code === 0;
  const refs = async (gitDir: string) => (await runGit(['for-each-ref', '--format=%(objectname) %(refname)'], { cwd: gitDir })).stdout.trim();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fork-repo-'));
    fake = await startFakeBitbucket({ seed: 'demo' });
    head = (await runGit(['ls-remote', `${fake.url}/${FORK}.git`, 'refs/heads/feature/BB-2'], { token: fake.credentials.apiToken })).stdout.split('\t')[0];
    expect(head).toMatch(/^[0-9a-f]{40}$/);
  });
  afterEach(() => repos?.close());
  afterAll(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches once per grant commit and serves the same repository afterwards', async () => {
    repos = make();
    const a = await repos.acquire(FORK, [grant()]);
    expect(a.fetched).toBe(true);
    expect(await refs(a.dir)).toBe(`${head} refs/heads/feature/BB-2`);
    a.release();
    const b = await repos.acquire(FORK, [grant()]);
    expect(b.fetched).toBe(false);
    expect(b.dir).toBe(a.dir);
    b.release();
    expect(repos.stats.fetches).toBe(1);
  });

  it('concurrent first requests share one fetch', async () => {
    repos = make();
    const leases = await Promise.all([1, 2, 3].map(() => repos.acquire(FORK, [grant()])));
    expect(new Set(leases.map((l) => l.dir)).size).toBe(1);
    expect(repos.stats.fetches).toBe(1);
    leases.forEach((l) => l.release());
  });

  it('fetches again when the grant commit moves; rebuilds from empty when the branch was rewritten', async () => {
    repos = make();
    const first = await repos.acquire(FORK, [grant({ branch: 'moving', commit: (await fake.createBranch('jdoe', 'service-api-fork', 'moving', head)).slice(0, 12) })]);
    first.release();
    const next = await fake.pushCommit('jdoe', 'service-api-fork', 'moving', { 'more.txt': 'more\n' });
    const second = await repos.acquire(FORK, [grant({ branch: 'moving', commit: next.slice(0, 12) })]);
    expect(second.fetched).toBe(true);
    expect(second.dir).toBe(first.dir);
    expect(repos.stats.rebuilds).toBe(0);
    second.release();
    // Force-push: the branch now points at a commit that does not contain `next`.
    await fake.deleteBranch('jdoe', 'service-api-fork', 'moving');
    const rewritten = await fake.pushCommit('jdoe', 'service-api-fork', 'moving', { 'rewritten.txt': 'x\n' });
    const third = await repos.acquire(FORK, [grant({ branch: 'moving', commit: rewritten.slice(0, 12) })]);
    expect(repos.stats.rebuilds).toBe(1);
    expect(third.dir).not.toBe(first.dir);
    expect(await has(third.dir, rewritten)).toBe(true);
    expect(await has(third.dir, next)).toBe(false);
    third.release();
  });

  it("refuses when the PR's commit is not on its branch", async () => {
    repos = make();
    await expect(repos.acquire(FORK, [grant({ commit: 'abcdefabcdef' })])).rejects.toMatchObject({ status: 409 });
    expect(repos.usage().repositories).toBe(0);
  });

  it('refuses a missing branch and branch names that would be refspec patterns, without spawning git for the latter', async () => {
    repos = make();
    await expect(repos.acquire(FORK, [grant({ branch: 'no-such-branch' })])).rejects.toBeInstanceOf(ForkRepoError);
    const before = spawned.length;
    for (const bad of ['feature/*', '-x', 'a..b', 'a:b', 'x.lock', 'a b', '/x', 'x/']) {
      expect(branchAllowed(bad)).toBe(false);
      await expect(repos.acquire(FORK, [grant({ branch: bad })])).rejects.toMatchObject({ status: 404 });
    }
    expect(spawned.length).toBe(before);
    expect(branchAllowed('feature/BB-2')).toBe(true);
  });

  it('keeps within maxRepositories by evicting the least recently used (never one in use)', async () => {
    repos = make({ maxRepositories: 1 });
    const a = await repos.acquire(FORK, [grant()]);
    const b = await repos.acquire(FORK, [grant({ prId: 7, target: 'acme/service-web' })]);
    // Both in use: neither is deleted under its reader.
    expect(repos.usage().repositories).toBe(2);
    a.release();
    b.release();
    expect(repos.usage().repositories).toBe(1);
    const again = await repos.acquire(FORK, [grant({ prId: 7, target: 'acme/service-web' })]);
    expect(again.fetched).toBe(false);
    again.release();
  });

  it('keeps within maxBytes', async () => {
    repos = make({ maxBytes: 1 });
    const a = await repos.acquire(FORK, [grant()]);
    a.release();
    expect(repos.usage().repositories).toBe(0);
  });

  it('removes the repository of a dropped grant once its reader is done', async () => {
    repos = make();
    const a = await repos.acquire(FORK, [grant()]);
    repos.reconcile(() => []);
    expect(repos.usage().repositories).toBe(0);
    // The reader still has its directory.
    expect(await has(a.dir, head)).toBe(true);
    a.release();
    await until(() => !existsSync(a.dir), 'the directory deleted');
    expect(await has(a.dir, head)).toBe(false);
  });

  it('never puts the upstream credential on a command line, in a repository config or in a log', async () => {
    repos = make();
    const a = await repos.acquire(FORK, [grant()]);
    const secret = fake.credentials.apiToken;
    const encoded = auth().split(' ')[1];
    for (const args of spawned) for (const arg of args) expect(arg.includes(secret) || arg.includes(encoded)).toBe(false);
    const cfg = readFileSync(path.join(a.dir, 'config'), 'utf8');
    expect(cfg).not.toMatch(/extraheader|authorization|remote/i);
    for (const line of logs.lines) expect(line.includes(secret) || line.includes(encoded)).toBe(false);
    a.release();
  });
});
