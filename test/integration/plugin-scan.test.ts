import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { PluginClient } from '../helpers/plugin';

/**
 * Replays the plugin's organisation-folder scan and branch indexing (bench/scan.ts) with the exact
 * URLs of §1, an e-mail user name and a 192-character token, and checks the fields the plugin reads.
 */
describe('organisation scan through the sidecar', () => {
  let stack: Stack;
  let plugin: PluginClient;
  const API = 'http://api.bitbucket.org/2.0/repositories';

  beforeAll(async () => {
    stack = await startStack([{ id: 'jenkins', scope: [{ workspace: 'acme' }], permissions: ['read'] }]);
    expect(stack.tokens.jenkins).toHaveLength(192);
    plugin = new PluginClient(stack.url, basicAuth('jenkins@ci.example', stack.tokens.jenkins));
  });
  afterAll(() => stack.stop());

  it('scans the workspace like the plugin and every answer has what the plugin reads', async () => {
    const ws = await plugin.get('http://api.bitbucket.org/2.0/workspaces/acme');
    expect(ws.status).toBe(200);
    expect(ws.json).toMatchObject({ slug: 'acme', uuid: expect.any(String) });

    const repos = await plugin.getAll(`${API}/acme?pagelen=100`);
    const names = repos.map((r) => r.full_name).sort();
    expect(names).toEqual(['acme/docs-site', 'acme/infra', 'acme/service-api', 'acme/service-web']);

    let probes = 0;
    for (const listed of repos) {
      const slug = listed.full_name.split('/')[1];
      const repoUrl = `${API}/acme/${slug}`;
      const repo = (await plugin.get(repoUrl)).json;
      expect(repo.full_name).toBe(`acme/${slug}`);
      expect(typeof repo.is_private).toBe('boolean');
      const https = repo.links.clone.find((l: any) => l.name === 'https');
      expect(https.href).toBe(`http://bitbucket.org/acme/${slug}.git`);
      expect(repo.project.key).toEqual(expect.any(String));

      const prs = await plugin.getAll(`${repoUrl}/pullrequests?pagelen=50`);
      for (const pr of prs) {
        expect(pr.author).toBeDefined();
        expect(pr.links.html.href).toEqual(expect.any(String));
        expect(pr.source.repository.full_name).toEqual(expect.any(String));
        expect(pr.destination.branch.name).toEqual(expect.any(String));
        const src = pr.source.commit.hash;
        const dst = pr.destination.commit.hash;
        const probeRepo = pr.source.repository.full_name;
        const probe = await plugin.get(`http://api.bitbucket.org/2.0/repositories/${probeRepo}/src/${src}/Jenkinsfile?format=meta`);
        expect(probe.status).toBe(200);
        expect(probe.json).toMatchObject({ type: 'commit_file', path: 'Jenkinsfile', attributes: [], commit: { hash: expect.stringMatching(/^[0-9a-f]{40}$/) } });
        probes++;
        for (const h of [src, dst]) {
          const c = await plugin.get(`${repoUrl}/commit/${h}`);
          expect(c.status).toBe(200);
          expect(c.json).toMatchObject({ hash: expect.stringMatching(new RegExp(`^${h}`)), date: expect.any(String), message: expect.any(String), author: { raw: expect.any(String) }, parents: expect.any(Array) });
        }
      }

      const branches = await plugin.getAll(`${repoUrl}/refs/branches?pagelen=100`);
      expect(branches.length).toBeGreaterThanOrEqual(3);
      for (const b of branches) {
        expect(b).toMatchObject({ name: expect.any(String), target: { hash: expect.stringMatching(/^[0-9a-f]{40}$/), date: expect.any(String), author: { raw: expect.any(String) } } });
        const probe = await plugin.get(`${repoUrl}/src/${b.target.hash}/Jenkinsfile?format=meta`);
        expect([200, 404]).toContain(probe.status);
        if (b.name === 'main') expect(probe.json.type).toBe('commit_file');
        probes++;
      }

      const tags = await plugin.getAll(`${repoUrl}/refs/tags?pagelen=100`);
      for (const t of tags) {
        expect(t.target.hash).toMatch(/^[0-9a-f]{40}$/);
        expect((await plugin.get(`${repoUrl}/src/${t.target.hash}/Jenkinsfile?format=meta`)).status).toBe(200);
        expect((await plugin.get(`${repoUrl}/commit/${t.target.hash}`)).status).toBe(200);
      }

      expect((await plugin.get(repoUrl)).status).toBe(200);
      const def = await plugin.get(`${repoUrl}/?fields=mainbranch.name`);
      expect(def.json).toEqual({ mainbranch: { name: 'main' } });
    }
    expect(probes).toBeGreaterThan(10);
    expect(plugin.calls.every((c) => c.status === 200 || c.url.includes('format=meta'))).toBe(true);
  });

  it('serves branch names with %2F, the odd tag name, directories and file contents', async () => {
    const repoUrl = `${API}/acme/service-api`;
    const branch = await plugin.get(`${repoUrl}/refs/branches/feature%2FBB-1`);
    expect(branch.json.name).toBe('feature/BB-1');
    const odd = 'special-"$;><&#_=@!|.,/test';
    const tag = await plugin.get(`${repoUrl}/refs/tags/${encodeURIComponent(odd).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}`);
    expect(tag.status).toBe(200);
    expect(tag.json.name).toBe(odd);
    const hash = branch.json.target.hash;
    const root = await plugin.getAll(`${repoUrl}/src/${hash}/`);
    expect(root.map((e) => e.path)).toContain('Jenkinsfile');
    const content = await plugin.get(`${repoUrl}/src/${hash}/Jenkinsfile?at=feature%2FBB-1`);
    expect(content.status).toBe(200);
    expect(content.text).toMatch(/pipeline|node/);
    const nested = await plugin.get(`${repoUrl}/src/${hash}/dir%2FJenkinsfile?format=meta`);
    expect([200, 404]).toContain(nested.status);
  });

  it('a fields-filtered answer never gains a next link', async () => {
    const prs = await plugin.get(`${API}/acme/service-api/pullrequests?pagelen=50`);
    const id = prs.json.values[0].id;
    const commits = await plugin.get(`${API}/acme/service-api/pullrequests/${id}/commits?fields=values.hash%2Cvalues.author.raw%2Cvalues.date%2Cvalues.message&pagelen=1`);
    expect(commits.status).toBe(200);
    expect(commits.json.next).toBeUndefined();
    expect(commits.json.values).toHaveLength(1);
  });

  it('paginates the repository listing with next links on the exact API base', async () => {
    const first = await plugin.get(`${API}/acme?pagelen=1`);
    expect(first.json.next).toMatch(/^http:\/\/api\.bitbucket\.org\/2\.0\/repositories\/acme\?/);
    const all = await plugin.getAll(`${API}/acme?pagelen=1`);
    expect(all).toHaveLength(4);
  });

  it('answers GET /2.0/user with the client, never the upstream person', async () => {
    const me = await plugin.get('http://api.bitbucket.org/2.0/user');
    expect(me.status).toBe(200);
    expect(me.json.display_name).toBe('jenkins');
    expect(me.text).not.toMatch(/jdoe/i);
  });
});
