import { SPECIAL_TAG, startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { allPages, get, runGit } from './helpers';

let fake: FakeBitbucketServer;
const R = '/2.0/repositories/acme/service-api';
let gitDir: string;

async function gitOut(...args: string[]): Promise<string> {
  const r = await runGit(['--git-dir', gitDir, ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

beforeAll(async () => {
  fake = await startFakeBitbucket();
  gitDir = fake.model.findRepository('acme', 'service-api')!.gitDir;
});
afterAll(async () => {
  await fake.close();
});

describe('branches and tags', () => {
  test('branch list = the real refs/heads, target fields match git', async () => {
    const pages = await allPages(fake, `${R}/refs/branches?pagelen=100`);
    const names = pages.flatMap((p) => p.values.map((b: { name: string }) => b.name));
    const fromGit = (await gitOut('for-each-ref', '--format=%(refname:strip=2)', 'refs/heads')).split('\n');
    expect(names).toEqual(fromGit);
    expect(names).toEqual(expect.arrayContaining(['main', 'feature/BB-1', 'release/1.0']));
    const main = pages[0]!.values.find((b: { name: string }) => b.name === 'main');
    expect(main.type).toBe('branch');
    expect(main.target.hash).toBe(await gitOut('rev-parse', 'refs/heads/main'));
    expect(main.target.type).toBe('commit');
    expect(main.target.message).toBe(`${await gitOut('log', '-1', '--format=%B', 'main')}\n`);
    expect(main.target.author.raw).toBe(await gitOut('log', '-1', '--format=%an <%ae>', 'main'));
    expect(main.target.date).toBe(
      new Date(Number(await gitOut('log', '-1', '--format=%at', 'main')) * 1000).toISOString().slice(0, 19) + '+00:00',
    );
    expect(main.target.parents.map((p: { hash: string }) => p.hash)).toEqual([await gitOut('rev-parse', 'main^')]);
  });

  test('branch with / arrives as %2F in one segment (and as literal segments)', async () => {
    const a = await get(fake, `${R}/refs/branches/feature%2FBB-1`);
    expect(a.status).toBe(200);
    expect(a.json().name).toBe('feature/BB-1');
    expect(a.json().links.self.href).toBe(`${fake.url}${R}/refs/branches/feature/BB-1`);
    expect(a.json().target.hash).toBe(await gitOut('rev-parse', 'refs/heads/feature/BB-1'));
    expect((await get(fake, `${R}/refs/branches/feature/BB-1`)).json().name).toBe('feature/BB-1');
    const missing = await get(fake, `${R}/refs/branches/feature%2FBB-404`);
    expect(missing.status).toBe(404);
    expect(missing.json().type).toBe('error');
  });

  test('branch q= and sort=', async () => {
    const r = (await get(fake, `${R}/refs/branches?q=name%20~%20%22feature%22&sort=-name`)).json();
    expect(r.values.map((b: { name: string }) => b.name)).toEqual(['feature/BB-4', 'feature/BB-3', 'feature/BB-1']);
  });

  test('tags: list, v1.0 and the special tag name', async () => {
    const list = (await get(fake, `${R}/refs/tags?pagelen=100`)).json();
    expect(list.values.map((t: { name: string }) => t.name).sort()).toEqual([SPECIAL_TAG, 'v1.0'].sort());
    const enc = encodeURIComponent(SPECIAL_TAG);
    const t = await get(fake, `${R}/refs/tags/${enc}`);
    expect(t.status).toBe(200);
    const tag = t.json();
    expect(tag).toMatchObject({ name: SPECIAL_TAG, type: 'tag', message: 'Test special chars\n' });
    expect(tag.tagger.raw).toBe('Bob Brown <bob@example.com>');
    expect(tag.target.hash).toBe(await gitOut('rev-parse', `refs/tags/${SPECIAL_TAG}^{commit}`));
    expect(tag.links.self.href).toBe(`${fake.url}${R}/refs/tags/special-%22$;%3E%3C&%23_=@!%7C.,/test`);
    const v1 = (await get(fake, `${R}/refs/tags/v1.0`)).json();
    expect(v1.target.hash).toBe(await gitOut('rev-parse', 'refs/tags/v1.0^{commit}'));
    expect(v1.target.hash).toBe((await get(fake, `${R}/refs/branches/release%2F1.0`)).json().target.hash);
  });
});

describe('commits', () => {
  test('commit by full hash, 12-char and 7-char prefix; unknown → 404', async () => {
    const full = await gitOut('rev-parse', 'refs/heads/feature/BB-1');
    for (const id of [full, full.slice(0, 12), full.slice(0, 7)]) {
      const r = await get(fake, `${R}/commit/${id}`);
      expect(r.status).toBe(200);
      expect(r.json().hash).toBe(full);
    }
    const c = (await get(fake, `${R}/commit/${full}`)).json();
    expect(c).toMatchObject({ type: 'commit', message: 'BB-1: add feature\n\nImplements the first feature.\n', summary: { type: 'rendered' } });
    expect(c.parents).toHaveLength(1);
    expect(c.author.user.nickname).toBe('bob');
    const nope = await get(fake, `${R}/commit/0123456789ab`);
    expect(nope.status).toBe(404);
    expect(nope.json().type).toBe('error');
  });

  test('a commit of another repository is not found through this one', async () => {
    const other = fake.model.findRepository('other', 'widgets')!;
    const sha = (await runGit(['--git-dir', other.gitDir, 'rev-parse', 'main'])).stdout.trim();
    expect((await get(fake, `/2.0/repositories/other/widgets/commit/${sha}`)).status).toBe(200);
    expect((await get(fake, `${R}/commit/${sha}`)).status).toBe(404);
    expect((await get(fake, `${R}/src/${sha}/Jenkinsfile?format=meta`)).status).toBe(404);
  });

  test('fork commits resolve through the origin (shared fork network)', async () => {
    const fork = fake.model.findRepository('jdoe', 'service-api-fork')!;
    const sha = (await runGit(['--git-dir', fork.gitDir, 'rev-parse', 'refs/heads/feature/BB-2'])).stdout.trim();
    const r = await get(fake, `${R}/commit/${sha.slice(0, 12)}`);
    expect(r.status).toBe(200);
    expect(r.json().hash).toBe(sha);
  });

  test('commits?include=&exclude= equals git rev-list', async () => {
    const r = (await get(fake, `${R}/commits?include=feature%2FBB-1&exclude=main`)).json();
    expect(r.pagelen).toBe(30);
    expect(r.next).toBeUndefined();
    expect(r.values.map((c: { hash: string }) => c.hash)).toEqual((await gitOut('rev-list', 'feature/BB-1', '^main')).split('\n'));
  });

  test('commits/{ref} pages with pagelen and absolute next', async () => {
    const pages = await allPages(fake, `${R}/commits/main?pagelen=2`);
    const hashes = pages.flatMap((p) => p.values.map((c: { hash: string }) => c.hash));
    expect(hashes).toEqual((await gitOut('rev-list', '--topo-order', 'main')).split('\n'));
    expect(pages.length).toBe(Math.ceil(hashes.length / 2));
  });
});

describe('src', () => {
  test('format=meta of a file by branch (one %2F segment path), commit is the resolved hash', async () => {
    const main = await gitOut('rev-parse', 'main');
    const r = (await get(fake, `${R}/src/main/dir%2FJenkinsfile?format=meta`)).json();
    expect(r).toMatchObject({ path: 'dir/Jenkinsfile', type: 'commit_file', attributes: [], escaped_path: 'dir/Jenkinsfile', mimetype: null });
    expect(r.commit.hash).toBe(main);
    expect(r.size).toBe(Number(await gitOut('cat-file', '-s', 'main:dir/Jenkinsfile')));
    expect(r.links.self.href).toBe(`${fake.url}${R}/src/${main}/dir/Jenkinsfile`);
  });

  test('12-char hash, 40-char hash, literal multi-segment path and branch with %2F', async () => {
    const bb1 = await gitOut('rev-parse', 'feature/BB-1');
    for (const path of [
      `${R}/src/${bb1.slice(0, 12)}/Jenkinsfile?format=meta`,
      `${R}/src/${bb1}/Jenkinsfile?format=meta`,
      `${R}/src/feature%2FBB-1/Jenkinsfile?format=meta`,
    ]) {
      const r = await get(fake, path);
      expect([path, r.status]).toEqual([path, 200]);
      expect(r.json().commit.hash).toBe(bb1);
    }
    expect((await get(fake, `${R}/src/main/src/nested/deep.txt?format=meta`)).json().path).toBe('src/nested/deep.txt');
  });

  test('raw content is text/plain and equals the blob', async () => {
    const r = await get(fake, `${R}/src/main/Jenkinsfile`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.text).toBe(`${await gitOut('cat-file', 'blob', 'main:Jenkinsfile')}\n`);
  });

  test('?at= forms: hash+at and at-only (path starts right after src/)', async () => {
    const bb1 = await gitOut('rev-parse', 'feature/BB-1');
    const a = await get(fake, `${R}/src/${bb1}/src%2Ffeature-bb1.txt?at=feature%2FBB-1`);
    expect(a.status).toBe(200);
    expect(a.text).toBe('feature BB-1 of acme/service-api\n');
    const b = await get(fake, `${R}/src/folder%2Ffile.properties?at=main`);
    expect(b.text).toBe('message=This is a test for metadata\n');
    const c = await get(fake, `${R}/src/Jenkinsfile?at=tags%2Fv1.0`);
    expect(c.status).toBe(200);
  });

  test('directory listing is paged and typed; root with trailing slash', async () => {
    const main = await gitOut('rev-parse', 'main');
    const pages = await allPages(fake, `${R}/src/${main}/`);
    const entries = pages.flatMap((p) => p.values);
    const fromGit = (await gitOut('ls-tree', 'main')).split('\n').map((l) => l.split('\t')[1]);
    expect(entries.map((e: { path: string }) => e.path)).toEqual(fromGit);
    expect(pages.length).toBeGreaterThan(1);
    const byPath = new Map(entries.map((e: { path: string }) => [e.path, e]));
    expect(byPath.get('dir')).toMatchObject({ type: 'commit_directory' });
    expect(byPath.get('link-to-readme')).toMatchObject({ type: 'commit_file', attributes: ['link'] });
    expect(byPath.get('script.bat')).toMatchObject({ type: 'commit_file', mimetype: 'application/x-msdos-program', size: 28 });
    const sub = (await get(fake, `${R}/src/${main}/dir/`)).json();
    expect(sub.values.map((e: { path: string }) => e.path)).toEqual(['dir/Jenkinsfile']);
    const meta = (await get(fake, `${R}/src/${main}/dir?format=meta`)).json();
    expect(meta).toMatchObject({ type: 'commit_directory', path: 'dir' });
  });

  test('symlink, submodule and executable attributes', async () => {
    const link = (await get(fake, `${R}/src/main/link-to-readme?format=meta`)).json();
    expect(link.attributes).toEqual(['link']);
    expect((await get(fake, `${R}/src/main/link-to-readme`)).text).toBe('README.md');
    const sub = (await get(fake, `${R}/src/main/libs%2Fshared?format=meta`)).json();
    expect(sub).toMatchObject({ type: 'commit_file', attributes: ['subrepository'] });
    const exe = (await get(fake, `${R}/src/main/scripts/build.sh?format=meta`)).json();
    expect(exe.attributes).toEqual(['executable']);
  });

  test('unknown path or ref → 404 "No such file or directory"', async () => {
    const r = await get(fake, `${R}/src/main/nope%2FJenkinsfile?format=meta`);
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ type: 'error', error: { message: 'No such file or directory: nope/Jenkinsfile' } });
    expect((await get(fake, `${R}/src/no-such-branch/Jenkinsfile?format=meta`)).status).toBe(404);
    expect((await get(fake, `${R}/src/main/Jenkinsfile/deeper`)).status).toBe(404);
  });

  test('HEAD answers like GET without a body', async () => {
    const { raw } = await import('./helpers');
    expect((await raw(fake, 'HEAD', `${R}/src/main/Jenkinsfile`)).status).toBe(200);
    expect((await raw(fake, 'HEAD', `${R}/src/main/Nope`)).status).toBe(404);
  });
});

describe('large objects', () => {
  test('a 3 MiB file pushed with pushCommit is served intact (raw and meta size)', async () => {
    const big = Array.from({ length: 3 * 1024 * 16 }, (_, i) => `${String(i).padStart(63, '.')}\n`).join('');
    const sha = await fake.pushCommit('acme', 'service-api', 'big-file', { 'data/big.txt': big }, 'Add a big file');
    const meta = (await get(fake, `${R}/src/${sha}/data%2Fbig.txt?format=meta`)).json();
    expect(meta.size).toBe(Buffer.byteLength(big));
    const r = await get(fake, `${R}/src/big-file/data/big.txt`);
    expect(r.body.length).toBe(Buffer.byteLength(big));
    expect(r.text === big).toBe(true);
  });
});
