import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportTrust } from '../../src/tls';
import { startStack, type Stack } from '../helpers/stack';
import { runGit } from './helpers';

/**
 * What Jenkins does in production: git over HTTPS to `https://bitbucket.org/...`, the name
 * resolved to the sidecar (here with curl's resolve list instead of a hosts file) and the
 * sidecar's exported CA bundle as git's trust store.
 */
describe('git over HTTPS as bitbucket.org', () => {
  let stack: Stack;
  let work: string;
  let bundle: string;
  let port: number;
  const HOSTS = ['api.bitbucket.org', 'bitbucket.org'];
  const tlsArgs = () => ['-c', `http.sslCAInfo=${bundle}`, '-c', `http.curloptResolve=bitbucket.org:${port}:127.0.0.1`];

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'sidecar-git-tls-'));
    const dir = path.join(work, 'tls');
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      config: { server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0, hostnames: HOSTS } }, tls: { dir } },
    });
    port = stack.running.httpsPort!;
    bundle = path.join(work, 'ca-bundle.pem');
    await exportTrust({ dir, hostnames: HOSTS }, 'bundle', bundle);
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it.each([2, 0] as const)('clones with protocol v%i over HTTPS', async (n) => {
    const into = path.join(work, `clone-v${n}`);
    const r = await runGit([...tlsArgs(), '-c', `protocol.version=${n}`, 'clone', '--quiet', `https://bitbucket.org:${port}/acme/service-api.git`, into], { token: stack.tokens.reader });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const head = await runGit(['rev-parse', 'HEAD'], { cwd: into });
    const upstream = await runGit(['ls-remote', `${stack.fake.url}/acme/service-api.git`, 'HEAD'], { token: stack.fake.credentials.apiToken });
    expect(upstream.stdout).toBe(`${head.stdout.trim()}\tHEAD\n`);
  });

  it('keeps the scope over HTTPS too', async () => {
    stack.fake.clearLog();
    const r = await runGit([...tlsArgs(), 'ls-remote', `https://bitbucket.org:${port}/other/widgets.git`], { token: stack.tokens.reader });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/remote: Repository not found/);
    expect(stack.fake.requests.filter((q) => q.workspace === 'other')).toEqual([]);
  });
});
