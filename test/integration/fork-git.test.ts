import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { runGit, type GitRun } from '../git/helpers';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

/**
 * Git through a fork grant reaches only what the open pull request needs: a client whose scope is
 * the PR's target repository alone clones the source fork (jdoe/service-api-fork) and gets its
 * source branch and the objects reachable from it — none of the fork's other branches (private
 * work, other pull requests), neither advertised nor fetchable by hash, with protocol v0 or v2 —
 * with the mirror off and on. The grant survives a restart of the sidecar on the same state
 * directory, and a push through it is refused.
 */
const FORK = 'jdoe/service-api-fork';
const SOURCE = 'feature/BB-2';

describe.each([
  ['mirror off', false],
  ['mirror on', true],
])('fork pull request sources over git (%s)', (_name, mirror) => {
  let fake: FakeBitbucket;
  let stack: Stack;
  let state: string;
  let work: string;
  let seq = 0;
  /** Head of a branch that exists only on the fork (not on any pull request). */
  let privateHead: string;
  /** Head of the fork's feature/BB-1 (the fork's copy of another pull request's branch). */
  let otherHead: string;
  let sourceHead: string;
  const dir = () => path.join(work, `w${++seq}`);
  const url = (repo: string) => `${stack.url}/${repo}.git`;
  const ok = (r: GitRun) => {
    if (r.code !== 0) throw new Error(`git failed (${r.code}): ${r.stderr}`);
    return r;
  };
  const config = () => ({ state: { dir: state }, ...(mirror ? { mirror: { enabled: true, refreshSeconds: 0, waitSeconds: 60 } } : {}) });
  const clients = [
    { id: 'target-only', scope: [{ workspace: 'acme', repositories: ['service-api'] }] },
    { id: 'pusher', scope: [{ workspace: 'acme', repositories: ['service-api'] }], permissions: ['read', 'git:push'] },
  ];
  const upstream = async (p: string) => {
    const r = await request(`${fake.url}${p}`, { headers: { authorization: basicAuth(fake.credentials.email, fake.credentials.apiToken) } });
    return JSON.parse(await r.body.text());
  };
  const refsOf = async (gitDir: string) => ok(await runGit(['for-each-ref', '--format=%(objectname) %(refname)'], { cwd: gitDir })).stdout.trim().split('\n').filter(Boolean);
  const has = async (gitDir: string, sha: string) => (await runGit(['cat-file', '-e', `${sha}^{commit}`], { cwd: gitDir })).code === 0;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'fork-git-'));
    state = mkdtempSync(path.join(tmpdir(), 'fork-git-state-'));
    fake = await startFakeBitbucket({ seed: 'demo' });
    privateHead = await fake.pushCommit('jdoe', FORK.split('/')[1], 'private/work', { 'private.txt': 'unrelated private work\n' }, 'private work');
    otherHead = (await upstream(`/2.0/repositories/${FORK}/refs/branches/feature%2FBB-1`)).target.hash;
    sourceHead = (await upstream(`/2.0/repositories/${FORK}/refs/branches/feature%2FBB-2`)).target.hash;
    stack = await startStack(clients, { fakeInstance: fake, config: config() });
  });
  afterAll(async () => {
    await stack?.stop();
    await fake?.close();
    rmSync(work, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });

  it('is refused before the PR list was read', async () => {
    const r = await runGit(['ls-remote', url(FORK)], { token: stack.tokens['target-only'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Repository not found/);
  });

  it('a clone --mirror shows only the PR source branch and holds no object of other branches', async () => {
    const prs = await request(`${stack.url}/2.0/repositories/acme/service-api/pullrequests?pagelen=50`, {
      headers: { authorization: basicAuth('jenkins@ci.example', stack.tokens['target-only']), host: 'api.bitbucket.org' },
    });
    expect(prs.statusCode).toBe(200);
    const pr = (JSON.parse(await prs.body.text()) as { values: { id: number; source: { repository: { full_name: string }; branch: { name: string } } }[] }).values.find((p) => p.id === 2)!;
    expect(pr.source.repository.full_name).toBe(FORK);
    expect(pr.source.branch.name).toBe(SOURCE);

    for (const n of [0, 2]) {
      const into = dir();
      ok(await runGit(['-c', `protocol.version=${n}`, 'clone', '--quiet', '--mirror', url(FORK), into], { token: stack.tokens['target-only'] }));
      expect(await refsOf(into)).toEqual([`${sourceHead} refs/heads/${SOURCE}`]);
      expect(await has(into, sourceHead)).toBe(true);
      expect(await has(into, privateHead)).toBe(false);
      expect(await has(into, otherHead)).toBe(false);
      // ls-remote advertises the one branch (and HEAD pointing at it).
      const ls = ok(await runGit(['-c', `protocol.version=${n}`, 'ls-remote', url(FORK)], { token: stack.tokens['target-only'] })).stdout;
      expect(ls.trim().split('\n').sort()).toEqual([`${sourceHead}\tHEAD`, `${sourceHead}\trefs/heads/${SOURCE}`]);
    }
    // Upstream really has the other branches: the sidecar is what hides them.
    expect(privateHead).toMatch(/^[0-9a-f]{40}$/);
    if (mirror) expect(stack.running.sidecar.mirrors.manager.peek('jdoe', 'service-api-fork')).toBeUndefined();
  });

  it.each([0, 2])('a want of another branch’s commit by hash is refused (protocol v%i)', async (n) => {
    const into = dir();
    ok(await runGit(['clone', '--quiet', '--mirror', url(FORK), into], { token: stack.tokens['target-only'] }));
    for (const sha of [privateHead, otherHead]) {
      const r = await runGit(['-c', `protocol.version=${n}`, 'fetch', '--quiet', 'origin', sha], { cwd: into, token: stack.tokens['target-only'] });
      expect(r.code).not.toBe(0);
      expect(await has(into, sha)).toBe(false);
    }
    // The PR's own commit is fetchable by hash.
    ok(await runGit(['-c', `protocol.version=${n}`, 'fetch', '--quiet', 'origin', sourceHead], { cwd: into, token: stack.tokens['target-only'] }));
  });

  it("what Jenkins does for a fork PR works: init, fetch the source branch by refspec", async () => {
    const into = dir();
    ok(await runGit(['init', '--quiet', into]));
    ok(await runGit(['fetch', '--quiet', url(FORK), `+refs/heads/${SOURCE}:refs/remotes/origin/PR-2`], { cwd: into, token: stack.tokens['target-only'] }));
    expect(ok(await runGit(['rev-parse', 'refs/remotes/origin/PR-2'], { cwd: into })).stdout.trim()).toBe(sourceHead);
    // Another branch of the fork by refspec: not there.
    const other = await runGit(['fetch', '--quiet', url(FORK), '+refs/heads/private/work:refs/remotes/origin/x'], { cwd: into, token: stack.tokens['target-only'] });
    expect(other.code).not.toBe(0);
  });

  it('a push to the fork through the grant is refused, and nothing reaches upstream', async () => {
    const into = dir();
    ok(await runGit(['clone', '--quiet', '--branch', SOURCE, url(FORK), into], { token: stack.tokens.pusher }));
    ok(await runGit(['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '--quiet', '--allow-empty', '-m', 'evil'], { cwd: into }));
    fake.clearLog();
    const push = await runGit(['push', url(FORK), `HEAD:refs/heads/evil`], { cwd: into, token: stack.tokens.pusher });
    expect(push.code).not.toBe(0);
    expect(fake.requests.filter((r) => r.kind === 'git' && r.path.endsWith('git-receive-pack'))).toEqual([]);
    expect((await upstream(`/2.0/repositories/${FORK}/refs/branches?pagelen=100`)).values.map((b: { name: string }) => b.name)).not.toContain('evil');
  });

  it('survives a restart: a new sidecar on the same state directory serves the fork without reading the PR list', async () => {
    await stack.stop();
    const saved = JSON.parse(readFileSync(path.join(state, 'fork-grants.json'), 'utf8'));
    const grant = saved.grants.find((g: { fork: string; prId: number }) => g.fork === FORK && g.prId === 2);
    expect(grant).toMatchObject({ target: 'acme/service-api', branch: SOURCE });
    expect(typeof grant.learnedAt).toBe('number');
    // Nothing about credentials on disk.
    expect(JSON.stringify(saved)).not.toContain(fake.credentials.apiToken);

    stack = await startStack(clients, { fakeInstance: fake, config: config() });
    fake.clearLog();
    const into = dir();
    ok(await runGit(['clone', '--quiet', '--mirror', url(FORK), into], { token: stack.tokens['target-only'] }));
    expect(await refsOf(into)).toEqual([`${sourceHead} refs/heads/${SOURCE}`]);
    expect(await has(into, privateHead)).toBe(false);
    expect(fake.requests.filter((r) => r.kind === 'api' && r.path.includes('pullrequests'))).toEqual([]);
  });

  it('the grant repository holds only the source branch on disk, and no credential in its config', async () => {
    const root = path.join(state, 'fork-grants', 'repos');
    expect(existsSync(root)).toBe(true);
    const repos = stack.running.sidecar.forkRepos.usage();
    expect(repos.repositories).toBe(1);
    const { readdirSync } = await import('node:fs');
    const dirs = readdirSync(root).filter((d) => d.endsWith('.git'));
    expect(dirs).toHaveLength(1);
    const repoDir = path.join(root, dirs[0]);
    expect(await refsOf(repoDir)).toEqual([`${sourceHead} refs/heads/${SOURCE}`]);
    expect(await has(repoDir, privateHead)).toBe(false);
    const cfg = readFileSync(path.join(repoDir, 'config'), 'utf8');
    expect(cfg).not.toContain(fake.credentials.apiToken);
    expect(cfg).not.toMatch(/extraheader|authorization|\[remote/i);
    for (const line of stack.logs) expect(line).not.toContain(fake.credentials.apiToken);
  });

  it('a dropped grant takes its repository with it', async () => {
    expect(stack.running.sidecar.facts.dropForkGrant('acme/service-api', 2)).toBe(true);
    expect(stack.running.sidecar.forkRepos.usage().repositories).toBe(0);
    const r = await runGit(['ls-remote', url(FORK)], { token: stack.tokens['target-only'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Repository not found/);
  });
});
