import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportTrust } from '../../src/tls';
import { startStack, type Stack } from '../helpers/stack';
import { runGit } from '../git/helpers';
import { LFS_ATTRIBUTES, lfsPointer, loopbackConnectProxy } from './helpers';

/**
 * Real git and git-lfs against the sidecar's HTTPS face as bitbucket.org (through a CONNECT proxy
 * standing in for the hosts override), with the fake Bitbucket's LFS batch API and storage upstream.
 */
describe('git lfs through the HTTPS face', () => {
  let stack: Stack;
  let work: string;
  let bundle: string;
  let port: number;
  let proxy: Awaited<ReturnType<typeof loopbackConnectProxy>>;
  const HOSTS = ['api.bitbucket.org', 'bitbucket.org'];
  const object = Buffer.from(`a large binary file\n${'x'.repeat(200_000)}\n`);
  const pointer = lfsPointer(object);
  const netArgs = () => ['-c', `http.sslCAInfo=${bundle}`, '-c', `http.proxy=${proxy.url}`];
  const remote = (repo: string) => `https://bitbucket.org:${port}/${repo}.git`;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'sidecar-lfs-'));
    const dir = path.join(work, 'tls');
    stack = await startStack(
      [
        { id: 'reader', scope: [{ workspace: 'acme' }] },
        { id: 'pusher', scope: [{ workspace: 'acme' }], permissions: ['read', 'git:push'] },
      ],
      { config: { server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0, hostnames: HOSTS } }, tls: { dir } } },
    );
    port = stack.running.httpsPort!;
    bundle = path.join(work, 'ca-bundle.pem');
    await exportTrust({ dir, hostnames: HOSTS }, 'bundle', bundle);
    proxy = await loopbackConnectProxy();
    expect(await stack.fake.lfsPut('acme', 'service-api', object)).toBe(pointer.oid);
    await stack.fake.pushCommit('acme', 'service-api', 'main', { '.gitattributes': LFS_ATTRIBUTES, 'assets/big.bin': pointer.text }, 'Add an LFS object');
  });
  afterAll(async () => {
    await proxy?.close();
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function cloneWithLfs(into: string, token: string): Promise<void> {
    const clone = await runGit([...netArgs(), 'clone', '--quiet', remote('acme/service-api'), into], { token });
    expect(clone.stderr).toBe('');
    expect(clone.code).toBe(0);
    // Without `git lfs install` the clone holds the pointer, as a checkout with LFS skipped does.
    expect(readFileSync(path.join(into, 'assets/big.bin'), 'utf8')).toBe(pointer.text);
    expect((await runGit(['lfs', 'install', '--local'], { cwd: into })).code).toBe(0);
  }

  it('pulls an LFS object after a clone (what "Git LFS pull after checkout" runs)', async () => {
    const into = path.join(work, 'pull');
    await cloneWithLfs(into, stack.tokens.reader);
    stack.fake.clearLog();
    const pull = await runGit([...netArgs(), 'lfs', 'pull'], { cwd: into, token: stack.tokens.reader });
    expect(pull.code).toBe(0);
    expect(readFileSync(path.join(into, 'assets/big.bin')).equals(object)).toBe(true);
    // Bitbucket saw the batch with the upstream git credential and the storage saw the object fetched through the sidecar.
    const batch = stack.fake.requests.filter((r) => r.path.endsWith('/info/lfs/objects/batch'));
    expect(batch).toHaveLength(1);
    expect(batch[0].headers.authorization).toBe(`Basic ${Buffer.from(`x-bitbucket-api-token-auth:${stack.fake.credentials.apiToken}`).toString('base64')}`);
    expect(stack.fake.requests.filter((r) => r.path === `/_lfs-media/acme/service-api/${pointer.oid}` && r.status === 200)).toHaveLength(1);
    // Only the sidecar's own name was ever dialled: the storage link was not handed on.
    expect(new Set(proxy.seen)).toEqual(new Set([`bitbucket.org:${port}`]));
  });

  it('refuses git lfs push without git:push, nothing reaching Bitbucket storage', async () => {
    const into = path.join(work, 'push-reader');
    await cloneWithLfs(into, stack.tokens.reader);
    const data = Buffer.from(`new object ${Date.now()}\n`);
    mkdirSync(path.join(into, 'assets'), { recursive: true });
    writeFileSync(path.join(into, 'assets/new.bin'), data);
    expect((await runGit(['add', 'assets/new.bin'], { cwd: into })).code).toBe(0);
    expect((await runGit(['commit', '-qm', 'new object'], { cwd: into })).code).toBe(0);
    stack.fake.clearLog();
    const push = await runGit([...netArgs(), 'lfs', 'push', 'origin', 'main'], { cwd: into, token: stack.tokens.reader });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/git:push/);
    expect(stack.fake.requests.filter((r) => r.path.includes('/info/lfs/') || r.path.startsWith('/_lfs-media/'))).toEqual([]);
    expect(stack.fake.lfsHas('acme', 'service-api', lfsPointer(data).oid)).toBe(false);
  });

  it('uploads with git lfs push when the client has git:push', async () => {
    const into = path.join(work, 'push-pusher');
    await cloneWithLfs(into, stack.tokens.pusher);
    const data = Buffer.from(`pushed object ${'y'.repeat(100_000)}\n`);
    mkdirSync(path.join(into, 'assets'), { recursive: true });
    writeFileSync(path.join(into, 'assets/pushed.bin'), data);
    expect((await runGit(['add', 'assets/pushed.bin'], { cwd: into })).code).toBe(0);
    expect((await runGit(['commit', '-qm', 'pushed object'], { cwd: into })).code).toBe(0);
    const push = await runGit([...netArgs(), 'lfs', 'push', 'origin', 'main'], { cwd: into, token: stack.tokens.pusher });
    expect(push.stderr).not.toMatch(/error/i);
    expect(push.code).toBe(0);
    expect(stack.fake.lfsHas('acme', 'service-api', lfsPointer(data).oid)).toBe(true);
    // Locks are answered 501 by the sidecar (git-lfs then skips lock verification) and never asked upstream.
    expect(stack.logs.some((l) => l.includes('"route":"lfs-locks-verify"') && l.includes('"status":501'))).toBe(true);
    expect(stack.fake.requests.some((r) => r.path.includes('/info/lfs/locks'))).toBe(false);
    // The storage verified the upload through the sidecar too.
    expect(stack.fake.requests.some((r) => r.path === `/_lfs-media/acme/service-api/${lfsPointer(data).oid}/verify` && r.status === 200)).toBe(true);
  });
});
