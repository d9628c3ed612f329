import { DEFAULT_CREDENTIALS, startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { allPages, basic, get, raw } from './helpers';

let fake: FakeBitbucketServer;

beforeAll(async () => {
  fake = await startFakeBitbucket();
});
afterAll(async () => {
  await fake.close();
});

describe('authentication', () => {
  test('no credentials → 401 with Bitbucket realm and error shape', async () => {
    const r = await get(fake, '/2.0/repositories/acme/service-api', { auth: false });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Basic realm="Bitbucket.org HTTP"');
    expect(r.json()).toEqual({ type: 'error', error: { message: expect.any(String) } });
  });

  test('wrong token, wrong e-mail and the git username are all rejected on REST', async () => {
    const { email, apiToken } = fake.credentials;
    for (const auth of [basic(email, `${apiToken}x`), basic('other@example.com', apiToken), basic('x-bitbucket-api-token-auth', apiToken), `Bearer ${apiToken}`]) {
      const r = await get(fake, '/2.0/user', { auth });
      expect(r.status).toBe(401);
    }
  });

  test('default credentials are an e-mail and a 192-char token', async () => {
    expect(fake.credentials).toEqual(DEFAULT_CREDENTIALS);
    expect(fake.credentials.email).toBe('jdoe@example.com');
    expect(fake.credentials.apiToken).toHaveLength(192);
    expect((await get(fake, '/2.0/user')).status).toBe(200);
  });

  test('custom credentials replace the default ones', async () => {
    const other = await startFakeBitbucket({ credentials: { email: 'ci@corp.example', apiToken: 't'.repeat(48) } });
    try {
      expect((await get(other, '/2.0/user', { auth: basic('ci@corp.example', 't'.repeat(48)) })).status).toBe(200);
      expect((await get(other, '/2.0/user', { auth: basic(DEFAULT_CREDENTIALS.email, DEFAULT_CREDENTIALS.apiToken) })).status).toBe(401);
    } finally {
      await other.close();
    }
  });
});

describe('user and workspaces', () => {
  test('GET /2.0/user is the upstream person jdoe', async () => {
    const u = (await get(fake, '/2.0/user')).json();
    expect(u).toMatchObject({ type: 'user', nickname: 'jdoe', display_name: 'John Doe', uuid: fake.model.currentUser.uuid });
    expect(u.account_id).toMatch(/^557058:/);
  });

  test('permissions of the upstream person', async () => {
    const ws = (await get(fake, '/2.0/user/permissions/workspaces?pagelen=100')).json().values;
    expect(ws.map((m: { permission: string; workspace: { slug: string } }) => [m.workspace.slug, m.permission])).toEqual([
      ['acme', 'collaborator'],
      ['jdoe', 'owner'],
      ['other', 'member'],
    ]);
    const repos = (await get(fake, '/2.0/user/permissions/repositories?pagelen=100&q=permission%3D%22read%22')).json().values;
    expect(repos.map((p: { repository: { full_name: string } }) => p.repository.full_name)).toEqual(['other/widgets']);
  });

  test('workspace by slug (any case) and by %7Buuid%7D', async () => {
    const acme = fake.model.findWorkspace('acme')!;
    const bySlug = (await get(fake, '/2.0/workspaces/ACME')).json();
    expect(bySlug).toMatchObject({ type: 'workspace', slug: 'acme', uuid: acme.uuid });
    const byUuid = await get(fake, `/2.0/workspaces/${encodeURIComponent(acme.uuid)}`);
    expect(byUuid.status).toBe(200);
    expect(byUuid.json().slug).toBe('acme');
    expect(bySlug.links.avatar.href).toMatch(new RegExp(`^${fake.url}/workspaces/acme/avatar/\\?ts=\\d+$`));
  });

  test('unknown workspace → 404 error shape; workspaces list has the three demo workspaces', async () => {
    const r = await get(fake, '/2.0/workspaces/nope');
    expect(r.status).toBe(404);
    expect(r.json().type).toBe('error');
    const list = (await get(fake, '/2.0/workspaces')).json();
    expect(list.values.map((w: { slug: string }) => w.slug).sort()).toEqual(['acme', 'jdoe', 'other']);
  });

  test('projects of acme', async () => {
    const r = (await get(fake, '/2.0/workspaces/acme/projects')).json();
    expect(r.values.map((p: { key: string }) => p.key).sort()).toEqual(['CI', 'DOC', 'OPS']);
    expect((await get(fake, '/2.0/workspaces/acme/projects/CI')).json().name).toBe('Continuous Integration');
  });
});

describe('repositories', () => {
  test('full repository JSON like the recorded payload', async () => {
    const r = (await get(fake, '/2.0/repositories/acme/service-api')).json();
    const u = new URL(fake.url);
    expect(r).toMatchObject({
      type: 'repository',
      full_name: 'acme/service-api',
      name: 'service-api',
      slug: 'service-api',
      scm: 'git',
      is_private: true,
      mainbranch: { name: 'main', type: 'branch' },
      project: { type: 'project', key: 'CI', name: 'Continuous Integration' },
      workspace: { type: 'workspace', slug: 'acme' },
      owner: { type: 'team', username: 'acme' },
    });
    expect(r.uuid).toBe(fake.model.findRepository('acme', 'service-api')!.uuid);
    expect(r.updated_on).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    expect(r.links.clone).toEqual([
      { name: 'https', href: `http://jdoe@${u.host}/acme/service-api.git` },
      { name: 'ssh', href: 'git@bitbucket.org:acme/service-api.git' },
    ]);
    expect(r.links.self.href).toBe(`${fake.url}/2.0/repositories/acme/service-api`);
    expect(r.links.pullrequests.href).toBe(`${fake.url}/2.0/repositories/acme/service-api/pullrequests`);
    expect(r.project.links.self.href).toBe(`${fake.url}/2.0/workspaces/acme/projects/CI`);
  });

  test('?fields=mainbranch.name with the trailing slash returns only that', async () => {
    const r = await get(fake, '/2.0/repositories/acme/service-api/?fields=mainbranch.name');
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ mainbranch: { name: 'main' } });
  });

  test('uuid forms for workspace and repository; slugs case-insensitive', async () => {
    const ws = fake.model.findWorkspace('acme')!;
    const repo = fake.model.findRepository('acme', 'service-api')!;
    for (const path of [
      `/2.0/repositories/${encodeURIComponent(ws.uuid)}/service-api`,
      `/2.0/repositories/acme/${encodeURIComponent(repo.uuid)}`,
      `/2.0/repositories/${encodeURIComponent(ws.uuid)}/${encodeURIComponent(repo.uuid.toUpperCase())}`,
      '/2.0/repositories/ACME/Service-API',
    ]) {
      const r = await get(fake, path);
      expect([path, r.status]).toEqual([path, 200]);
      expect(r.json().full_name).toBe('acme/service-api');
    }
    // a repository uuid under the wrong workspace is not found
    expect((await get(fake, `/2.0/repositories/other/${encodeURIComponent(repo.uuid)}`)).status).toBe(404);
  });

  test('Docs-Site has slug docs-site and project DOC', async () => {
    const r = (await get(fake, '/2.0/repositories/acme/Docs-Site')).json();
    expect(r).toMatchObject({ name: 'Docs-Site', slug: 'docs-site', full_name: 'acme/docs-site', project: { key: 'DOC' } });
  });

  test('the fork names its parent', async () => {
    const r = (await get(fake, '/2.0/repositories/jdoe/service-api-fork')).json();
    expect(r.parent).toMatchObject({ full_name: 'acme/service-api' });
    expect(r.owner).toMatchObject({ type: 'user', nickname: 'jdoe' });
  });

  test('unknown repository → 404 Bitbucket error shape', async () => {
    const r = await get(fake, '/2.0/repositories/acme/nope');
    expect(r.status).toBe(404);
    expect(r.json()).toEqual({ type: 'error', error: { message: expect.stringContaining('repository') } });
  });

  test('listing follows absolute next links to the end', async () => {
    const pages = await allPages(fake, '/2.0/repositories/acme?pagelen=1');
    expect(pages).toHaveLength(4);
    expect(pages.slice(0, 3).every((p) => typeof p.next === 'string' && p.next.endsWith(`page=${p.page + 1}`))).toBe(true);
    expect(pages[3]!.next).toBeUndefined();
    expect(pages.flatMap((p) => p.values.map((v: { slug: string }) => v.slug)).sort()).toEqual(['docs-site', 'infra', 'service-api', 'service-web']);
    expect(pages[0]!.size).toBe(4);
  });

  test('q=project.key="CI" keeps its encoding in next and filters', async () => {
    const first = (await get(fake, '/2.0/repositories/acme?pagelen=1&q=project.key%3D%22CI%22')).json();
    expect(first.size).toBe(2);
    expect(first.next).toBe(`${fake.url}/2.0/repositories/acme?pagelen=1&q=project.key%3D%22CI%22&page=2`);
    const pages = await allPages(fake, '/2.0/repositories/acme?pagelen=1&q=project.key%3D%22CI%22');
    expect(pages.flatMap((p) => p.values.map((v: { slug: string }) => v.slug)).sort()).toEqual(['service-api', 'service-web']);
    expect((await get(fake, '/2.0/repositories/acme?q=project.key%3D%22NOPE%22')).json().values).toEqual([]);
    expect((await get(fake, '/2.0/repositories/acme?q=project.key%3D')).status).toBe(400);
  });

  test('pagelen is capped at 100', async () => {
    expect((await get(fake, '/2.0/repositories/acme?pagelen=1000')).json().pagelen).toBe(100);
  });

  test('role filter: owner ⊂ admin ⊂ member', async () => {
    const slugs = async (ws: string, role: string): Promise<string[]> =>
      (await get(fake, `/2.0/repositories/${ws}?role=${role}`)).json().values.map((v: { slug: string }) => v.slug).sort();
    expect(await slugs('jdoe', 'owner')).toEqual(['secret-notes', 'service-api-fork']);
    expect(await slugs('acme', 'owner')).toEqual([]);
    expect(await slugs('acme', 'admin')).toHaveLength(4);
    expect(await slugs('other', 'admin')).toEqual([]);
    expect(await slugs('other', 'member')).toEqual(['widgets']);
    expect((await get(fake, '/2.0/repositories/acme?role=king')).status).toBe(400);
  });

  test('a renamed repository answers 301 with the new absolute location', async () => {
    const tmp = await startFakeBitbucket();
    try {
      tmp.model.renameRepository('acme', 'infra', 'platform-infra');
      const r = await get(tmp, '/2.0/repositories/acme/infra/refs/branches/feature%2FBB-1?pagelen=5');
      expect(r.status).toBe(301);
      expect(r.headers.location).toBe(`${tmp.url}/2.0/repositories/acme/platform-infra/refs/branches/feature%2FBB-1?pagelen=5`);
      const moved = await get(tmp, '/2.0/repositories/acme/platform-infra');
      expect(moved.json().full_name).toBe('acme/platform-infra');
      expect(moved.json().uuid).toBe(tmp.model.findRepository('acme', 'platform-infra')!.uuid);
    } finally {
      await tmp.close();
    }
  });

  test('ETag and If-None-Match → 304', async () => {
    const r = await get(fake, '/2.0/repositories/acme/infra');
    expect(r.headers.etag).toBeDefined();
    const again = await get(fake, '/2.0/repositories/acme/infra', { headers: { 'if-none-match': String(r.headers.etag) } });
    expect(again.status).toBe(304);
  });

  test('absolute-form request targets are served like origin-form', async () => {
    const r = await raw(fake, 'GET', 'https://api.bitbucket.org/2.0/repositories/acme/service-api/?fields=full_name');
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ full_name: 'acme/service-api' });
  });
});

describe('web face', () => {
  test('workspace avatar is a PNG served without credentials', async () => {
    const r = await get(fake, '/workspaces/acme/avatar/?ts=1644525365', { auth: false });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.body.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect((await get(fake, '/workspaces/nope/avatar/', { auth: false })).status).toBe(404);
  });
});
