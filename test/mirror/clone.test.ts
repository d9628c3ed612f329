import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runGit, type GitRun } from '../git/helpers';
import { deliver, headersFor, pushBody } from '../webhooks/helpers';
import { API, startMirrorStack, until, type MirrorStack } from './helpers';

/**
 * Clones from the mirror with real git (v0 and v2, full and shallow): once the mirror is fresh a
 * clone costs Bitbucket nothing; a webhook makes the next clone or fetch refresh the mirror first;
 * a pull request's fork source (readable only through the PR) is served from its grant repository
 * (src/git/fork-repo.ts), never from a mirror.
 */
describe('clones served from the mirror', () => {
  let s: MirrorStack;
  let work: string;
  let seq = 0;
  const dir = () => path.join(work, `w${++seq}`);
  const url = (repo: string) => `${s.url}/${repo}.git`;
  const v = (n: 0 | 2) => ['-c', `protocol.version=${n}`];
  const ok = (r: GitRun) => {
    if (r.code !== 0) throw new Error(`git failed (${r.code}): ${r.stderr}`);
    return r;
  };
  const upstreamRefs = async (repo: string) => ok(await runGit(['ls-remote', `${s.fake.url}/${repo}.git`], { token: s.fake.credentials.apiToken })).stdout;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'mirror-clone-'));
    s = await startMirrorStack({
      clients: [
        { id: 'jenkins', scope: [{ workspace: 'acme' }] },
        { id: 'pusher', scope: [{ workspace: 'acme' }], permissions: ['read', 'git:push'] },
      ],
      config: { webhooks: {} },
    });
  });
  afterAll(async () => {
    await s.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('the first clone creates the mirror and is served from it; later clones reach Bitbucket not at all', async () => {
    const from = s.fake.requests.length;
    const into = dir();
    ok(await runGit(['clone', '--quiet', url('acme/service-web'), into], { token: s.tokens.jenkins }));
    // Only the mirror's own clone reached Bitbucket (info/refs + one upload-pack).
    expect(s.gitSince(from).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /acme/service-web.git/info/refs', 'POST /acme/service-web.git/git-upload-pack']);
    expect(s.mirrors.git.infoRefs).toBeGreaterThan(0);
    expect(existsSync(path.join(into, 'Jenkinsfile'))).toBe(true);
    expect(ok(await runGit(['rev-parse', 'HEAD'], { cwd: into })).stdout.trim()).toBe((await upstreamRefs('acme/service-web')).match(/^([0-9a-f]{40})\tHEAD$/m)![1]);

    for (const n of [0, 2] as const) {
      const again = s.fake.requests.length;
      ok(await runGit([...v(n), 'clone', '--quiet', url('acme/service-web'), dir()], { token: s.tokens.jenkins }));
      ok(await runGit([...v(n), 'clone', '--quiet', '--depth', '1', '--branch', 'release/1.0', url('acme/service-web'), dir()], { token: s.tokens.jenkins }));
      expect(s.gitSince(again)).toEqual([]);
    }
    expect(s.logs.some((l) => /"route":"git-upload-pack"/.test(l) && /detail=mirror/.test(l))).toBe(true);
  });

  it.each([0, 2] as const)('ls-remote (protocol v%i) through the mirror lists exactly what Bitbucket has', async (n) => {
    const r = ok(await runGit([...v(n), 'ls-remote', url('acme/service-web')], { token: s.tokens.jenkins }));
    expect(r.stdout).toBe(await upstreamRefs('acme/service-web'));
  });

  it('after a push webhook the next fetch refreshes the mirror first and brings the new commit', async () => {
    const into = dir();
    ok(await runGit(['clone', '--quiet', url('acme/service-web'), into], { token: s.tokens.jenkins }));
    const pushed = await s.fake.pushCommit('acme', 'service-web', 'main', { 'new.txt': 'new\n' });
    expect((await deliver(s.url, pushBody('acme', 'service-web', 'CI', 'main', pushed), headersFor('repo:push'))).status).toBe(200);
    const from = s.fake.requests.length;
    ok(await runGit(['fetch', '--quiet', 'origin'], { cwd: into, token: s.tokens.jenkins }));
    expect(ok(await runGit(['rev-parse', 'origin/main'], { cwd: into })).stdout.trim()).toBe(pushed);
    // Bitbucket saw the mirror's fetch only (one info/refs and one upload-pack), not the client's.
    const seen = s.gitSince(from).map((r) => `${r.method} ${r.path}`);
    expect(seen).toEqual(['GET /acme/service-web.git/info/refs', 'POST /acme/service-web.git/git-upload-pack']);
  });

  it("a pull request's fork source is fetched from Bitbucket for its grant and never mirrored", async () => {
    await s.plugin.getAll(`${API}/acme/service-api/pullrequests?pagelen=50`);
    const from = s.fake.requests.length;
    const into = dir();
    ok(await runGit(['clone', '--quiet', '--branch', 'feature/BB-2', url('jdoe/service-api-fork'), into], { token: s.tokens.jenkins }));
    const seen = s.gitSince(from);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((r) => r.workspace === 'jdoe')).toBe(true);
    expect(existsSync(path.join(s.dir, 'mirrors', 'repos', 'jdoe'))).toBe(false);
    expect(s.mirrors.manager.peek('jdoe', 'service-api-fork')).toBeUndefined();
    // The fork's Jenkinsfile probe at the PR's source commit goes upstream too.
    const prs = await s.plugin.getAll(`${API}/acme/service-api/pullrequests?pagelen=50`);
    const fork = prs.find((p: any) => p.source.repository.full_name === 'jdoe/service-api-fork');
    const probeFrom = s.fake.requests.length;
    expect((await s.plugin.get(`${API}/jdoe/service-api-fork/src/${fork.source.commit.hash}/Jenkinsfile?format=meta`)).status).toBe(200);
    expect(s.apiSince(probeFrom)).toHaveLength(1);
  });

  it('a push goes to Bitbucket and marks the mirror stale: the next ls-remote refreshes it first', async () => {
    const into = dir();
    ok(await runGit(['clone', '--quiet', url('acme/infra'), into], { token: s.tokens.pusher }));
    ok(await runGit(['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '--quiet', '--allow-empty', '-m', 'pushed through the sidecar'], { cwd: into }));
    const from = s.fake.requests.length;
    ok(await runGit(['push', '--quiet', 'origin', 'HEAD:refs/heads/pushed'], { cwd: into, token: s.tokens.pusher }));
    expect(s.gitSince(from).some((r) => r.path.endsWith('/git-receive-pack'))).toBe(true);
    const head = ok(await runGit(['rev-parse', 'HEAD'], { cwd: into })).stdout.trim();
    const r = ok(await runGit(['ls-remote', url('acme/infra'), 'refs/heads/pushed'], { token: s.tokens.jenkins }));
    expect(r.stdout.trim()).toBe(`${head}\trefs/heads/pushed`);
  });
});
