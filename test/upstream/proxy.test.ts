/**
 * The outbound proxy: REST, git streamed through, mirror clones and fetches, fork-grant fetches and
 * avatars all reach Bitbucket through the operator's forward proxy. The upstream is named by host
 * names that resolve only inside the test's proxy, so a request that bypassed it would fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { proxyChooser } from '../../src/upstream/proxy';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { runGit } from '../git/helpers';
import { request } from '../ops/http';

const CLIENTS = [{ id: 'ci', scope: [{ workspace: 'acme' }] }];

describe('the outbound proxy', () => {
  let fake: FakeBitbucket;
  let proxy: ForwardProxy;
  let stack: Stack | undefined;
  const dirs: string[] = [];
  const port = () => new URL(fake.url).port;
  const upstream = (extra: Record<string, unknown> = {}) => ({
    apiUrl: `http://api.bitbucket.proxied.test:${port()}`,
    webUrl: `http://bitbucket.proxied.test:${port()}`,
    auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
    ...extra,
  });
  const get = (path: string) => request(`${stack!.url}${path}`, { headers: { authorization: basicAuth('x', stack!.tokens.ci) } });
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'proxy-test-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
  });
  afterEach(async () => {
    await stack?.running.stop(200);
    stack = undefined;
    await proxy?.close();
  });
  afterAll(async () => {
    await fake.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('carries REST, streamed git and avatars (upstream.proxy, with credentials as secret references)', async () => {
    proxy = await startForwardProxy({ credentials: { username: 'corp', password: 'pr0xy-secret' } });
    process.env.TEST_PROXY_PASSWORD = 'pr0xy-secret';
    stack = await startStack(CLIENTS, { fakeInstance: fake, config: { upstream: upstream({ proxy: { url: proxy.url, username: 'corp', password: '${TEST_PROXY_PASSWORD}' } }) } });
    fake.clearLog();

    const repo = await get('/2.0/repositories/acme/service-api');
    expect(repo.status).toBe(200);
    expect(JSON.parse(repo.body).full_name).toBe('acme/service-api');
    expect(proxy.seen.some((s) => s.method === 'CONNECT' && s.target === `api.bitbucket.proxied.test:${port()}`)).toBe(true);

    const dir = tempDir();
    const clone = await runGit(['clone', '--quiet', `${stack.url}/acme/service-api.git`, join(dir, 'clone')], { token: stack.tokens.ci });
    expect(clone.stderr).toBe('');
    expect(clone.code).toBe(0);
    expect(proxy.seen.some((s) => s.target.startsWith(`http://bitbucket.proxied.test:${port()}/acme/service-api.git/`) || s.target === `bitbucket.proxied.test:${port()}`)).toBe(true);

    const avatar = await request(`${stack.url}/workspaces/acme/avatar/?ts=1`);
    expect(avatar.status).toBe(200);

    // Every upstream request the fake saw came through the proxy, each with the proxy's credentials.
    expect(fake.requests.length).toBeGreaterThan(0);
    expect(proxy.seen.every((s) => s.authorization === `Basic ${Buffer.from('corp:pr0xy-secret').toString('base64')}`)).toBe(true);
    // The proxy password is a secret like the others: never in a log line.
    expect(stack.logs.join('\n')).not.toContain('pr0xy-secret');
  });

  it('a proxy refusing our credentials is a 502 for the client, never a 401 or 407', async () => {
    proxy = await startForwardProxy({ credentials: { username: 'corp', password: 'right' } });
    stack = await startStack(CLIENTS, { fakeInstance: fake, config: { upstream: upstream({ proxy: { url: proxy.url, username: 'corp', password: 'wrong' } }) } });
    const r = await get('/2.0/repositories/acme/service-api');
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body).type).toBe('error');
  });

  it('carries mirror clones and fetches (HTTP_PROXY from the environment, no config)', async () => {
    proxy = await startForwardProxy();
    const saved = { ...process.env };
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    try {
      const dir = tempDir();
      stack = await startStack(CLIENTS, {
        fakeInstance: fake,
        config: { upstream: upstream(), state: { dir }, mirror: { enabled: true, dir: join(dir, 'mirrors'), refreshSeconds: 0, waitSeconds: 60 } },
      });
      fake.clearLog();
      const clone = await runGit(['clone', '--quiet', `${stack.url}/acme/service-web.git`, join(dir, 'clone')], { token: stack.tokens.ci });
      expect(clone.code).toBe(0);
      expect(stack.running.sidecar.mirrors.manager.stats.clones).toBeGreaterThan(0);
      expect(fake.requests.some((r) => r.kind === 'git')).toBe(true);
      // The mirror's git went through the proxy (http target: absolute-form requests).
      expect(proxy.seen.some((s) => s.target.startsWith(`http://bitbucket.proxied.test:${port()}/acme/service-web.git/`))).toBe(true);
    } finally {
      process.env = saved;
    }
  });

  it('NO_PROXY and upstream.proxy.noProxy reach their hosts directly; the config wins over the environment', () => {
    const saved = { ...process.env };
    try {
      process.env.HTTPS_PROXY = 'http://env-proxy.example:3128';
      process.env.NO_PROXY = '.internal.example';
      const fromEnv = proxyChooser(undefined);
      expect(fromEnv('https://api.bitbucket.org')?.display).toBe('http://env-proxy.example:3128');
      expect(fromEnv('https://git.internal.example')).toBeUndefined();
      const fromConfig = proxyChooser({ url: 'http://corp-proxy.example:8080', username: 'u', password: 'p@ss', noProxy: ['bitbucket.org'] });
      expect(fromConfig('https://api.bitbucket.org')?.display).toBe('http://corp-proxy.example:8080');
      expect(fromConfig('https://api.bitbucket.org')?.url.password).toBe('p%40ss');
      expect(fromConfig('https://bitbucket.org')).toBeUndefined();
      expect(fromConfig('https://git.internal.example')?.display).toBe('http://corp-proxy.example:8080');
    } finally {
      process.env = saved;
    }
  });

  it('NO_PROXY: a direct upstream never touches the proxy', async () => {
    proxy = await startForwardProxy();
    const saved = { ...process.env };
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = '127.0.0.1';
    try {
      // The mirror's git is told to connect directly (an empty http.<url>.proxy), though the
      // environment it inherits names a proxy.
      const dir = tempDir();
      stack = await startStack(CLIENTS, { fakeInstance: fake, config: { state: { dir }, mirror: { enabled: true, dir: join(dir, 'mirrors'), refreshSeconds: 0, waitSeconds: 60 } } });
      expect((await get('/2.0/repositories/acme/service-api')).status).toBe(200);
      expect((await runGit(['clone', '--quiet', `${stack.url}/acme/service-api.git`, join(dir, 'clone')], { token: stack.tokens.ci })).code).toBe(0);
      expect(stack.running.sidecar.mirrors.manager.stats.clones).toBeGreaterThan(0);
      expect(proxy.seen).toEqual([]);
    } finally {
      process.env = saved;
    }
  });
});
