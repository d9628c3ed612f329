import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { get, gitUrl, raw, runGit } from './helpers';

let fake: FakeBitbucketServer;
let work: string;
const R = '/2.0/repositories/acme/service-api';

beforeAll(async () => {
  fake = await startFakeBitbucket();
  work = await mkdtemp(join(tmpdir(), 'fake-bb-git-test-'));
});
afterAll(async () => {
  await fake.close();
  await rm(work, { recursive: true, force: true });
});

function parseLsRemote(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.trim().split('\n')) {
    const [sha, ref] = line.split('\t');
    if (sha && ref) m.set(ref, sha);
  }
  return m;
}

describe('git smart HTTP', () => {
  test('ls-remote over protocol v2 and v0 agree with the API, field by field', async () => {
    const v2 = await runGit(['-c', 'protocol.version=2', 'ls-remote', gitUrl(fake, 'acme/service-api')]);
    expect(v2.code).toBe(0);
    const v0 = await runGit(['-c', 'protocol.version=0', 'ls-remote', gitUrl(fake, 'acme/service-api').replace(/\.git$/, '')]);
    expect(v0.code).toBe(0);
    const refs2 = parseLsRemote(v2.stdout);
    expect(parseLsRemote(v0.stdout)).toEqual(refs2);
    const branches = (await get(fake, `${R}/refs/branches?pagelen=100`)).json().values;
    const tags = (await get(fake, `${R}/refs/tags?pagelen=100`)).json().values;
    const gitBranches = [...refs2].filter(([r]) => r.startsWith('refs/heads/'));
    expect(branches.map((b: { name: string; target: { hash: string } }) => [`refs/heads/${b.name}`, b.target.hash])).toEqual(gitBranches);
    for (const t of tags) expect(refs2.get(`refs/tags/${t.name}^{}`)).toBe(t.target.hash);
    expect(refs2.get('HEAD')).toBe(refs2.get('refs/heads/main'));
    const log = fake.requests.filter((r) => r.kind === 'git');
    expect(log.some((r) => r.headers['git-protocol'] === 'version=2')).toBe(true);
    expect(log.every((r) => r.workspace === 'acme' && r.repository === 'service-api')).toBe(true);
  });

  test('clone, then the checkout equals what src/ serves', async () => {
    const dir = join(work, 'clone');
    const r = await runGit(['clone', '-q', gitUrl(fake, 'acme/service-api', 'x-token-auth'), dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const head = (await runGit(['rev-parse', 'HEAD'], dir)).stdout.trim();
    expect((await get(fake, `${R}/refs/branches/main`)).json().target.hash).toBe(head);
    const jenkinsfile = (await get(fake, `${R}/src/${head}/Jenkinsfile`)).text;
    const { readFile, readlink } = await import('node:fs/promises');
    expect(await readFile(join(dir, 'Jenkinsfile'), 'utf8')).toBe(jenkinsfile);
    expect(await readlink(join(dir, 'link-to-readme'))).toBe('README.md');
    const branches = (await runGit(['branch', '-r'], dir)).stdout;
    expect(branches).toContain('origin/feature/BB-1');
  });

  test('git without or with wrong credentials → 401 with the Bitbucket realm', async () => {
    const anon = await get(fake, '/acme/service-api.git/info/refs?service=git-upload-pack', { auth: false });
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toBe('Basic realm="Bitbucket.org HTTP"');
    const r = await runGit(['ls-remote', gitUrl(fake, 'acme/service-api').replace(fake.credentials.apiToken.slice(0, 20), 'wrong')]);
    expect(r.code).not.toBe(0);
    const apiCreds = `http://${encodeURIComponent(fake.credentials.email)}:${encodeURIComponent(fake.credentials.apiToken)}@${new URL(fake.url).host}/acme/service-api.git`;
    expect((await runGit(['ls-remote', apiCreds])).code).not.toBe(0);
  });

  test('unknown repository or a non-smart-HTTP path → 404', async () => {
    const auth = `Basic ${Buffer.from(`x-token-auth:${fake.credentials.apiToken}`).toString('base64')}`;
    expect((await get(fake, '/acme/nope.git/info/refs?service=git-upload-pack', { auth })).status).toBe(404);
    for (const path of ['/acme/service-api.git/objects/info/alternates', '/acme/service-api.git/HEAD', '/acme/service-api.git/info%2F..%2F..%2Fconfig', '/acme/service-api.git/config']) {
      const r = await get(fake, path, { auth });
      expect([path, r.status]).toEqual([path, 404]);
      expect(r.text).not.toContain('store.git');
    }
  });

  test('git push (receive-pack) shows up in the next API answers', async () => {
    const dir = join(work, 'push');
    expect((await runGit(['clone', '-q', gitUrl(fake, 'acme/service-web'), dir])).code).toBe(0);
    // warm the caches first so the test proves invalidation
    expect((await get(fake, '/2.0/repositories/acme/service-web/refs/branches/feature%2Fpushed')).status).toBe(404);
    const before = (await get(fake, '/2.0/repositories/acme/service-web/refs/branches/main')).json().target.hash;
    await writeFile(join(dir, 'pushed.txt'), 'pushed over smart HTTP\n');
    await runGit(['add', 'pushed.txt'], dir);
    expect((await runGit(['commit', '-qm', 'Pushed over HTTP'], dir)).code).toBe(0);
    const sha = (await runGit(['rev-parse', 'HEAD'], dir)).stdout.trim();
    const push = await runGit(['push', '-q', 'origin', 'HEAD:refs/heads/feature/pushed', 'HEAD:refs/heads/main'], dir);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    const branch = (await get(fake, '/2.0/repositories/acme/service-web/refs/branches/feature%2Fpushed')).json();
    expect(branch.target.hash).toBe(sha);
    expect(branch.target.message).toBe('Pushed over HTTP\n');
    const main = (await get(fake, '/2.0/repositories/acme/service-web/refs/branches/main')).json().target;
    expect(main.hash).toBe(sha);
    expect(main.parents[0].hash).toBe(before);
    expect((await get(fake, `/2.0/repositories/acme/service-web/src/main/pushed.txt`)).text).toBe('pushed over smart HTTP\n');
    expect((await get(fake, `/2.0/repositories/acme/service-web/commit/${sha.slice(0, 12)}`)).status).toBe(200);
    const receive = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack'));
    expect(receive?.body.length).toBeGreaterThan(0);
    expect(receive?.status).toBe(200);
  });

  test('pushed tags (loose refs): annotated and lightweight', async () => {
    const dir = join(work, 'tags');
    expect((await runGit(['clone', '-q', gitUrl(fake, 'acme/infra'), dir])).code).toBe(0);
    expect((await get(fake, '/2.0/repositories/acme/infra/refs/tags')).json().values).toHaveLength(2);
    await runGit(['tag', '-a', 'v9.0', '-m', 'Release nine'], dir);
    await runGit(['tag', 'light-1', 'HEAD~1'], dir);
    expect((await runGit(['push', '-q', 'origin', 'v9.0', 'light-1'], dir)).code).toBe(0);
    const v9 = (await get(fake, '/2.0/repositories/acme/infra/refs/tags/v9.0')).json();
    expect(v9).toMatchObject({ name: 'v9.0', message: 'Release nine\n', tagger: { raw: 'Tester <tester@example.com>' } });
    expect(v9.target.hash).toBe((await runGit(['rev-parse', 'HEAD'], dir)).stdout.trim());
    const light = (await get(fake, '/2.0/repositories/acme/infra/refs/tags/light-1')).json();
    expect(light).toMatchObject({ name: 'light-1', message: null, tagger: null });
    expect(light.target.hash).toBe((await runGit(['rev-parse', 'HEAD~1'], dir)).stdout.trim());
    expect((await get(fake, '/2.0/repositories/acme/infra/refs/tags')).json().values).toHaveLength(4);
  });

  test('protocol v2 is really spoken when the client asks for it', async () => {
    const auth = `Basic ${Buffer.from(`x-bitbucket-api-token-auth:${fake.credentials.apiToken}`).toString('base64')}`;
    const v2 = await raw(fake, 'GET', '/acme/service-api.git/info/refs?service=git-upload-pack', { auth, headers: { 'git-protocol': 'version=2' } });
    expect(v2.status).toBe(200);
    expect(v2.text.startsWith('000eversion 2\n')).toBe(true);
    const v0 = await raw(fake, 'GET', '/acme/service-api/info/refs?service=git-upload-pack', { auth });
    expect(v0.text.startsWith('001e# service=git-upload-pack\n')).toBe(true);
    expect(v0.headers['content-type']).toBe('application/x-git-upload-pack-advertisement');
  });

  test('pushCommit makes a real commit visible in branches, src and git', async () => {
    const before = (await get(fake, `${R}/refs/branches?pagelen=100`)).json().values.length;
    const sha = await fake.pushCommit('acme', 'service-api', 'feature/new-work', { 'docs/new.md': '# new\n', Jenkinsfile: 'pipeline {}\n' }, 'New work');
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    const list = (await get(fake, `${R}/refs/branches?pagelen=100`)).json().values;
    expect(list).toHaveLength(before + 1);
    const b = list.find((x: { name: string }) => x.name === 'feature/new-work');
    expect(b.target.hash).toBe(sha);
    expect(b.target.parents[0].hash).toBe((await get(fake, `${R}/refs/branches/main`)).json().target.hash);
    expect((await get(fake, `${R}/src/feature%2Fnew-work/docs%2Fnew.md`)).text).toBe('# new\n');
    expect((await get(fake, `${R}/src/${sha}/Jenkinsfile`)).text).toBe('pipeline {}\n');
    const remote = parseLsRemote((await runGit(['ls-remote', gitUrl(fake, 'acme/service-api')])).stdout);
    expect(remote.get('refs/heads/feature/new-work')).toBe(sha);
    const second = await fake.pushCommit('acme', 'service-api', 'feature/new-work', { 'docs/new.md': '# newer\n' });
    expect((await get(fake, `${R}/refs/branches/feature%2Fnew-work`)).json().target.parents[0].hash).toBe(sha);
    expect((await get(fake, `${R}/commits/feature%2Fnew-work?pagelen=1`)).json().values[0].hash).toBe(second);
    const repo = fake.model.findRepository('acme', 'service-api')!;
    expect(repo.updatedOn).toMatch(/\.\d{6}\+00:00$/);
  });

  test('gzip-encoded upload-pack request bodies are passed through', async () => {
    const { gzipSync } = await import('node:zlib');
    const main = (await get(fake, `${R}/refs/branches/main`)).json().target.hash;
    const pkt = (s: string): string => (s.length + 4).toString(16).padStart(4, '0') + s;
    const body = Buffer.from(`${pkt(`want ${main} ofs-delta\n`)}0000${pkt('done\n')}`);
    const auth = `Basic ${Buffer.from(`x-bitbucket-api-token-auth:${fake.credentials.apiToken}`).toString('base64')}`;
    const r = await raw(fake, 'POST', '/acme/service-api.git/git-upload-pack', {
      auth,
      body: gzipSync(body),
      headers: { 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-git-upload-pack-result');
    expect(r.body.includes(Buffer.from('PACK'))).toBe(true);
  });
});
