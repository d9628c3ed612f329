import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { runGit, type GitRun } from '../git/helpers';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

/**
 * A fork build queued across a rolling restart: the new sidecar (same state directory) starts some
 * time after the grant was learned — past the pull request list's freshness, within the grant's
 * TTL. Its clock is moved forward to stand for that time. The persisted grant opens the fork after
 * one read of that pull request (never the list); a pull request declined while the sidecar was
 * down ends it; a grant past its TTL is not loaded at all. With the mirror off and on.
 */
const FORK = 'jdoe/service-api-fork';
const SOURCE = 'feature/BB-2';
const MINUTE = 60_000;

describe.each([
  ['mirror off', false],
  ['mirror on', true],
])('fork grants across a restart (%s)', (_name, mirror) => {
  let fake: FakeBitbucketServer;
  let stack: Stack | undefined;
  let state: string;
  let work: string;
  let seq = 0;
  let sourceHead: string;
  const clients = [{ id: 'target-only', scope: [{ workspace: 'acme', repositories: ['service-api'] }] }];
  const config = () => ({ state: { dir: state }, ...(mirror ? { mirror: { enabled: true, refreshSeconds: 0, waitSeconds: 60 } } : {}) });
  const start = (offsetMs = 0) => startStack(clients, { fakeInstance: fake, config: config(), sidecar: { now: () => Date.now() + offsetMs } });
  const ok = (r: GitRun) => {
    if (r.code !== 0) throw new Error(`git failed (${r.code}): ${r.stderr}`);
    return r;
  };
  const cloneFork = (s: Stack) => runGit(['clone', '--quiet', '--mirror', `${s.url}/${FORK}.git`, path.join(work, `w${++seq}`)], { token: s.tokens['target-only'] });
  const refsOf = async (gitDir: string) => ok(await runGit(['for-each-ref', '--format=%(objectname) %(refname)'], { cwd: gitDir })).stdout.trim().split('\n').filter(Boolean);
  const prReads = () => fake.requests.filter((r) => r.kind === 'api' && r.path.includes('/pullrequests')).map((r) => r.path);
  const forkPr = () => fake.model.pullRequests.find((p) => p.state === 'OPEN' && fake.model.repositories.find((r) => r.uuid === p.source.repository)?.slug === 'service-api-fork')!;

  /** A fresh state directory, the PR list read through a first sidecar, which then stops. */
  async function learnAndStop(): Promise<void> {
    state = mkdtempSync(path.join(tmpdir(), 'fork-restart-state-'));
    const first = await start();
    const prs = await request(`${first.url}/2.0/repositories/acme/service-api/pullrequests?pagelen=50`, {
      headers: { authorization: basicAuth('jenkins@ci.example', first.tokens['target-only']), host: 'api.bitbucket.org' },
    });
    expect(prs.statusCode).toBe(200);
    await prs.body.text();
    ok(await cloneFork(first));
    await first.stop();
  }

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), 'fork-restart-'));
  });
  // A fake of its own per test: one rewrites the fork's branch, another declines the pull request.
  beforeEach(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    const r = await request(`${fake.url}/2.0/repositories/${FORK}/refs/branches/feature%2FBB-2`, { headers: { authorization: basicAuth(fake.credentials.email, fake.credentials.apiToken) } });
    sourceHead = (JSON.parse(await r.body.text()) as { target: { hash: string } }).target.hash;
  });
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
    await fake.close();
    rmSync(state, { recursive: true, force: true });
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('a grant older than the list freshness opens the fork after one read of its pull request, not the list', async () => {
    await learnAndStop();
    const before = JSON.parse(readFileSync(path.join(state, 'fork-grants.json'), 'utf8')).grants.find((g: { fork: string }) => g.fork === FORK);
    expect(before).toMatchObject({ target: 'acme/service-api', branch: SOURCE });

    stack = await start(30 * MINUTE);
    fake.clearLog();
    const into = path.join(work, `w${seq + 1}`);
    ok(await cloneFork(stack));
    expect(await refsOf(into)).toEqual([`${sourceHead} refs/heads/${SOURCE}`]);
    expect(prReads()).toEqual([`/2.0/repositories/acme/service-api/pullrequests/${forkPr().id}`]);
    // The read renewed the grant: the file carries the new learning time.
    await stack.stop();
    stack = undefined;
    const after = JSON.parse(readFileSync(path.join(state, 'fork-grants.json'), 'utf8')).grants.find((g: { fork: string }) => g.fork === FORK);
    expect(after.learnedAt).toBeGreaterThan(before.learnedAt + 29 * MINUTE);
  });

  it('a source branch rewritten while the sidecar was down is served at its new head on the first try', async () => {
    await learnAndStop();
    // A force push of the PR branch: its old head (the persisted grant's commit) is no longer on it.
    await fake.deleteBranch('jdoe', 'service-api-fork', SOURCE);
    await fake.createBranch('jdoe', 'service-api-fork', SOURCE, 'main');
    const rewritten = await fake.pushCommit('jdoe', 'service-api-fork', SOURCE, { 'src/feature-bb2.txt': 'rewritten in the fork\n' }, 'BB-2: rewritten');
    stack = await start(30 * MINUTE);
    const into = path.join(work, `w${seq + 1}`);
    ok(await cloneFork(stack));
    expect(await refsOf(into)).toEqual([`${rewritten} refs/heads/${SOURCE}`]);
    expect((await runGit(['cat-file', '-e', `${sourceHead}^{commit}`], { cwd: into })).code).not.toBe(0);
  });

  it('a pull request declined while the sidecar was down ends the grant at first use', async () => {
    await learnAndStop();
    forkPr().state = 'DECLINED';
    stack = await start(30 * MINUTE);
    const r = await cloneFork(stack);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Repository not found/);
    await stack.stop();
    stack = undefined;
    const saved = JSON.parse(readFileSync(path.join(state, 'fork-grants.json'), 'utf8'));
    expect(saved.grants.filter((g: { fork: string }) => g.fork === FORK)).toEqual([]);
  });

  it('a grant past its TTL is not loaded: the fork is not found and nothing is asked of Bitbucket', async () => {
    await learnAndStop();
    stack = await start(7 * 60 * MINUTE);
    fake.clearLog();
    const r = await cloneFork(stack);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Repository not found/);
    expect(prReads()).toEqual([]);
    expect(fake.requests.filter((q) => q.kind === 'git')).toEqual([]);
  });
});
