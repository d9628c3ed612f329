import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { runGit, type GitRun } from './helpers';

/**
 * Real git 2.39 against the real sidecar and the fake Bitbucket, which serves its repositories
 * through the real `git http-backend`. Credentials come from a credential helper, as with Jenkins'
 * git client: git first calls without them, gets the 401 challenge, then retries.
 */
describe('git smart HTTP through the sidecar (real git)', () => {
  let stack: Stack;
  let work: string;
  let seq = 0;
  const dir = () => path.join(work, `w${++seq}`);
  const url = (repo: string) => `${stack.url}/${repo}.git`;
  const direct = (repo: string) => `${stack.fake.url}/${repo}.git`;
  const v = (n: 0 | 2) => ['-c', `protocol.version=${n}`];

  /** ls-remote straight at the fake, with the upstream credential: the ground truth. */
  async function upstreamRefs(repo: string): Promise<string> {
    const r = await runGit(['ls-remote', direct(repo)], { token: stack.fake.credentials.apiToken });
    expect(r.code).toBe(0);
    return r.stdout;
  }
  const ok = (r: GitRun) => {
    if (r.code !== 0) throw new Error(`git failed (${r.code}): ${r.stderr}`);
    return r;
  };
  const gitRequestsFor = (ws: string) => stack.fake.requests.filter((q) => q.workspace === ws);

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'sidecar-git-'));
    stack = await startStack([
      { id: 'reader', scope: [{ workspace: 'acme' }], permissions: ['read'] },
      { id: 'pusher', scope: [{ workspace: 'acme' }], permissions: ['read', 'git:push'] },
    ]);
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it.each([0, 2] as const)('ls-remote with protocol v%i lists exactly what Bitbucket has', async (n) => {
    stack.fake.clearLog();
    const r = ok(await runGit([...v(n), 'ls-remote', url('acme/service-api')], { token: stack.tokens.reader }));
    // The protocol version git asked for is the one Bitbucket saw.
    const seen = stack.fake.requests.filter((q) => q.kind === 'git');
    expect(seen.length).toBeGreaterThan(0);
    for (const q of seen) expect(q.headers['git-protocol']).toBe(n === 2 ? 'version=2' : undefined);
    if (n === 2) expect(seen.some((q) => q.method === 'POST' && q.path.endsWith('/git-upload-pack'))).toBe(true); // v2: ls-refs is a POST
    expect(r.stdout).toBe(await upstreamRefs('acme/service-api'));
    expect(r.stdout).toMatch(/\trefs\/heads\/main\n/);
  });

  it.each([0, 2] as const)('clone with protocol v%i gets the full history, and fetch brings new commits', async (n) => {
    const into = dir();
    ok(await runGit([...v(n), 'clone', '--quiet', url('acme/service-web'), into], { token: stack.tokens.reader }));
    const head = ok(await runGit(['rev-parse', 'HEAD'], { cwd: into })).stdout.trim();
    expect((await upstreamRefs('acme/service-web')).split('\n')).toContain(`${head}\tHEAD`);
    ok(await runGit(['fsck', '--no-progress'], { cwd: into }));

    const added = await stack.fake.pushCommit('acme', 'service-web', 'main', { [`fetched-v${n}.txt`]: 'new\n' }, `commit for v${n} fetch`);
    ok(await runGit([...v(n), 'fetch', '--quiet', 'origin'], { cwd: into, token: stack.tokens.reader }));
    expect(ok(await runGit(['rev-parse', 'origin/main'], { cwd: into })).stdout.trim()).toBe(added);
  });

  it.each([0, 2] as const)('shallow clone (--depth 1) with protocol v%i', async (n) => {
    const into = dir();
    ok(await runGit([...v(n), 'clone', '--quiet', '--depth', '1', url('acme/service-api'), into], { token: stack.tokens.reader }));
    expect(ok(await runGit(['rev-list', '--count', 'HEAD'], { cwd: into })).stdout.trim()).toBe('1');
    expect(ok(await runGit(['rev-parse', '--is-shallow-repository'], { cwd: into })).stdout.trim()).toBe('true');
  });

  it('without credentials git is challenged and reports an authentication failure', async () => {
    const none = await runGit(['ls-remote', url('acme/service-api')]);
    expect(none.code).not.toBe(0);
    // No helper, no terminal: git wanted a user name, i.e. it got the 401 challenge.
    expect(none.stderr).toMatch(/could not read Username/);

    const wrong = await runGit(['ls-remote', url('acme/service-api')], { token: 'bbsc_' + 'x'.repeat(187) });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/Authentication failed/);
  });

  it('accepts x-token-auth as the git user name, like Bitbucket', async () => {
    ok(await runGit(['ls-remote', url('acme/infra')], { token: stack.tokens.reader, user: 'x-token-auth' }));
  });

  it('an out-of-scope repository is "not found" and never reaches Bitbucket', async () => {
    stack.fake.clearLog();
    for (const repo of ['other/widgets', 'jdoe/secret-notes']) {
      const r = await runGit(['ls-remote', url(repo)], { token: stack.tokens.reader });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/remote: Repository not found/);
      expect(r.stderr).toMatch(/repository '.*' not found/);
      const clone = await runGit(['clone', url(repo), dir()], { token: stack.tokens.pusher });
      expect(clone.code).not.toBe(0);
      expect(clone.stderr).toMatch(/Repository not found/);
    }
    expect(gitRequestsFor('other')).toEqual([]);
    expect(gitRequestsFor('jdoe')).toEqual([]);
  });

  it('push is refused without git:push, with the reason printed by git', async () => {
    const into = dir();
    ok(await runGit(['clone', '--quiet', url('acme/infra'), into], { token: stack.tokens.reader }));
    writeFileSync(path.join(into, 'denied.txt'), 'no\n');
    ok(await runGit(['add', 'denied.txt'], { cwd: into }));
    ok(await runGit(['commit', '--quiet', '-m', 'should not arrive'], { cwd: into }));
    stack.fake.clearLog();
    const r = await runGit(['push', 'origin', 'HEAD:refs/heads/denied'], { cwd: into, token: stack.tokens.reader });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/remote: This sidecar token does not have the git:push permission/);
    expect(r.stderr).toMatch(/403/);
    expect(stack.fake.requests.filter((q) => q.kind === 'git')).toEqual([]);
    expect((await upstreamRefs('acme/infra')).includes('refs/heads/denied')).toBe(false);
  });

  it('push with git:push arrives upstream', async () => {
    const into = dir();
    ok(await runGit(['clone', '--quiet', url('acme/infra'), into], { token: stack.tokens.pusher }));
    writeFileSync(path.join(into, 'pushed.txt'), 'yes\n');
    ok(await runGit(['add', 'pushed.txt'], { cwd: into }));
    ok(await runGit(['commit', '--quiet', '-m', 'pushed through the sidecar'], { cwd: into }));
    const head = ok(await runGit(['rev-parse', 'HEAD'], { cwd: into })).stdout.trim();
    ok(await runGit(['push', '--quiet', 'origin', 'HEAD:refs/heads/from-sidecar'], { cwd: into, token: stack.tokens.pusher }));

    // Bitbucket's own API (the fake's) now knows the branch at our commit.
    const res = await fetch(`${stack.fake.url}/2.0/repositories/acme/infra/refs/branches/from-sidecar`, {
      headers: { authorization: basicAuth(stack.fake.credentials.email, stack.fake.credentials.apiToken) },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { target: { hash: string } }).target.hash).toBe(head);
  });

  it('a fork PR source is fetchable only once the open PR is known, and never pushable', async () => {
    const fork = 'jdoe/service-api-fork';
    const refused = await runGit(['ls-remote', url(fork)], { token: stack.tokens.reader });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Repository not found/);

    // The plugin lists the target's pull requests first (its call for the pull request list); the sidecar learns the fork from it.
    const prs = await fetch(`${stack.url}/2.0/repositories/acme/service-api/pullrequests?pagelen=50`, {
      headers: { authorization: basicAuth('jenkins@ci.example', stack.tokens.reader), host: 'api.bitbucket.org' },
    });
    expect(prs.status).toBe(200);
    const pr = ((await prs.json()) as { values: { id: number; source: { repository: { full_name: string }; branch: { name: string } } }[] }).values.find((p) => p.id === 2)!;
    expect(pr.source.repository.full_name).toBe(fork);

    // What Jenkins does for a fork PR: init, fetch the source branch from the fork's hard-coded URL.
    const into = dir();
    ok(await runGit(['init', '--quiet', into]));
    ok(await runGit(['fetch', '--quiet', url(fork), `+refs/heads/${pr.source.branch.name}:refs/remotes/origin/PR-2`], { cwd: into, token: stack.tokens.reader }));
    const fetched = ok(await runGit(['rev-parse', 'refs/remotes/origin/PR-2'], { cwd: into })).stdout.trim();
    expect(await upstreamRefs(fork)).toContain(`${fetched}\trefs/heads/${pr.source.branch.name}`);

    // Even a client with git:push cannot push to the fork.
    const push = await runGit(['push', url(fork), 'refs/remotes/origin/PR-2:refs/heads/evil'], { cwd: into, token: stack.tokens.pusher });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/Repository not found/);
    expect((await upstreamRefs(fork)).includes('refs/heads/evil')).toBe(false);
  });

  it('gzip-compressed upload-pack requests pass through', async () => {
    // Enough distinct tips that git's want list exceeds 1 KiB, the size above which it gzips the body.
    const seedDir = dir();
    ok(await runGit(['clone', '--quiet', url('acme/docs-site'), seedDir], { token: stack.tokens.pusher }));
    for (let i = 0; i < 40; i++) {
      ok(await runGit(['commit', '--quiet', '--allow-empty', '-m', `tip ${i}`], { cwd: seedDir }));
      ok(await runGit(['branch', `many/${i}`], { cwd: seedDir }));
    }
    ok(await runGit(['push', '--quiet', 'origin', 'refs/heads/many/*:refs/heads/many/*'], { cwd: seedDir, token: stack.tokens.pusher }));

    for (const n of [0, 2] as const) {
      stack.fake.clearLog();
      const into = dir();
      ok(await runGit([...v(n), 'clone', '--quiet', '--no-single-branch', url('acme/docs-site'), into], { token: stack.tokens.reader }));
      const posts = stack.fake.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/git-upload-pack'));
      expect(posts.length).toBeGreaterThan(0);
      expect(posts.some((q) => q.headers['content-encoding'] === 'gzip')).toBe(true);
      const branches = ok(await runGit(['branch', '-r'], { cwd: into })).stdout;
      expect(branches).toMatch(/origin\/many\/39/);
    }
  });
});
