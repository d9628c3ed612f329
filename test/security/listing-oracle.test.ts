/**
 * A narrowed client's repository listing says nothing about the repositories hidden from it, and
 * what one client's projected answers teach cannot change another client's decisions. Real sockets
 * against the fake Bitbucket (acme: service-api and service-web in project CI, infra in OPS,
 * docs-site in DOC).
 */
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { request } from '../ops/http';

describe('listings reveal nothing about hidden repositories', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([
      { id: 'full', scope: [{ workspace: 'acme' }] },
      { id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] },
      { id: 'glob', scope: [{ workspace: 'acme', repositories: ['service-*'] }] },
      { id: 'mixed', scope: [{ workspace: 'acme', projects: ['OPS'], repositories: ['infra', 'docs-*'] }] },
    ]);
  });
  afterAll(() => stack.stop());

  const get = async (client: string, path: string) => {
    const r = await request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } });
    return { status: r.status, body: r.body, json: r.headers['content-type']?.startsWith('application/json') ? JSON.parse(r.body) : undefined };
  };
  const names = (j: { values: { full_name: string }[] }) => j.values.map((v) => v.full_name);

  it('counts, pages and links only the visible repositories', async () => {
    const all = await get('ci', '/2.0/repositories/acme?pagelen=100');
    expect(all.status).toBe(200);
    expect(names(all.json)).toEqual(['acme/service-api', 'acme/service-web']);
    expect(all.json).toMatchObject({ size: 2, page: 1, pagelen: 100 });
    expect(all.json.next).toBeUndefined();
    expect((await get('ci', '/2.0/repositories/acme?fields=size')).json).toEqual({ size: 2 });

    // One at a time: the plugin's way of following `next`, on the URL the client used.
    const first = await get('ci', '/2.0/repositories/acme?pagelen=1');
    expect(names(first.json)).toEqual(['acme/service-api']);
    expect(first.json.size).toBe(2);
    expect(first.json.next).toBe('http://api.bitbucket.org/2.0/repositories/acme?page=2&pagelen=1');
    const second = await get('ci', '/2.0/repositories/acme?page=2&pagelen=1');
    expect(names(second.json)).toEqual(['acme/service-web']);
    expect(second.json.next).toBeUndefined();
    expect(second.json.previous).toBe('http://api.bitbucket.org/2.0/repositories/acme?page=1&pagelen=1');
    expect(names((await get('ci', '/2.0/repositories/acme?page=3&pagelen=1')).json)).toEqual([]);
  });

  it('answers two clients that see the same repositories byte for byte alike, however their rules are written', async () => {
    for (const q of ['?pagelen=100', '?pagelen=1&page=2', '?fields=values.full_name,size,next', '?q=project.key%3D%22CI%22']) {
      const ci = await get('ci', `/2.0/repositories/acme${q}`);
      const glob = await get('glob', `/2.0/repositories/acme${q}`);
      expect(ci.status).toBe(200);
      expect(glob.body).toBe(ci.body);
    }
  });

  it('answers a q= naming a hidden repository exactly like one naming nothing', async () => {
    const pairs = [
      ['name="infra"', 'name="nothing-here"'],
      ['name="service-api" AND description~"Infra"', 'name="service-api" AND description~"zzzz"'],
      ['project.key="OPS"', 'project.key="NOPE"'],
      ['full_name="acme/docs-site"', 'full_name="acme/none"'],
    ];
    for (const client of ['ci', 'glob']) {
      for (const [hidden, nothing] of pairs) {
        const a = await get(client, `/2.0/repositories/acme?q=${encodeURIComponent(hidden)}`);
        const b = await get(client, `/2.0/repositories/acme?q=${encodeURIComponent(nothing)}`);
        expect([a.status, a.body]).toEqual([b.status, b.body]);
      }
    }
  });

  it('refuses any q= but project.key="KEY", and sort=, before any upstream call', async () => {
    stack.fake.clearLog();
    for (const q of ['q=name%3D%22infra%22', 'q=description~%22x%22', 'sort=-updated_on', 'q=project.key%3D%22CI%22+OR+name%3D%22infra%22']) {
      const r = await get('ci', `/2.0/repositories/acme?${q}`);
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ type: 'error' });
    }
    expect(stack.fake.requests).toEqual([]);
  });

  it('applies project and glob rules together, and a project filter within them', async () => {
    expect(names((await get('mixed', '/2.0/repositories/acme?pagelen=100')).json)).toEqual(['acme/infra']);
    expect((await get('mixed', '/2.0/repositories/acme?q=project.key%3D%22DOC%22')).json).toMatchObject({ size: 0, values: [] });
    expect((await get('ci', '/2.0/repositories/acme?q=project.key%3D%22CI%22')).json.size).toBe(2);
  });

  it('leaves workspace-wide clients with Bitbucket\'s own listing and filters', async () => {
    const r = await get('full', '/2.0/repositories/acme?q=name%3D%22infra%22');
    expect(r.status).toBe(200);
    expect(names(r.json)).toEqual(['acme/infra']);
  });
});

describe('shared facts are learned only from whole objects', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([
      { id: 'full', scope: [{ workspace: 'acme' }] },
      { id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] },
    ]);
  });
  afterAll(() => stack.stop());

  const get = (client: string, path: string) =>
    request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } });

  it('a projection without project keys does not lock a project-scoped client out', async () => {
    const projected = await get('full', '/2.0/repositories/acme?pagelen=100&fields=values.type,values.full_name,values.uuid,values.project.uuid');
    expect(projected.status).toBe(200);
    expect(JSON.parse(projected.body).values.length).toBe(4);
    expect((await get('ci', '/2.0/repositories/acme/service-api')).status).toBe(200);
    expect((await get('ci', '/2.0/repositories/acme/service-web/refs/branches?pagelen=100')).status).toBe(200);
  });

  it('a partial pull request list does not drop a fork grant another client relies on', async () => {
    expect((await get('ci', '/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
    const fork = '/2.0/repositories/jdoe/service-api-fork/refs/branches/feature%2FBB-2';
    expect((await get('ci', fork)).status).toBe(200);
    // Another client reads the same list projected: no state, no source branch.
    const partial = await get('full', '/2.0/repositories/acme/service-api/pullrequests?fields=values.type,values.id,values.source.repository.full_name,values.destination.repository.full_name');
    expect(partial.status).toBe(200);
    expect(JSON.parse(partial.body).values.length).toBeGreaterThan(0);
    expect((await get('ci', fork)).status).toBe(200);
  });
});
