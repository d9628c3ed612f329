import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { allPages, get, raw, runGit } from './helpers';

let fake: FakeBitbucketServer;
const R = '/2.0/repositories/acme/service-api';

async function head(ws: string, repo: string, ref: string): Promise<string> {
  const r = await runGit(['--git-dir', fake.model.findRepository(ws, repo)!.gitDir, 'rev-parse', ref]);
  return r.stdout.trim();
}

beforeAll(async () => {
  fake = await startFakeBitbucket();
});
afterAll(async () => {
  await fake.close();
});

describe('pull requests', () => {
  test('pagelen > 50 → 400 in Bitbucket error shape; 50 is fine', async () => {
    const r = await get(fake, `${R}/pullrequests?pagelen=51`);
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({ type: 'error', error: { message: expect.any(String) } });
    expect((await get(fake, `${R}/pullrequests?pagelen=50`)).status).toBe(200);
  });

  test('default state is OPEN; repeated state= widens it', async () => {
    const open = (await get(fake, `${R}/pullrequests?pagelen=50`)).json();
    expect(open.values.map((p: { id: number }) => p.id).sort()).toEqual([1, 2, 3]);
    const both = (await get(fake, `${R}/pullrequests?state=OPEN&state=DECLINED`)).json();
    expect(both.values.map((p: { id: number }) => p.id).sort()).toEqual([1, 2, 3, 4]);
    const declined = (await get(fake, `${R}/pullrequests?state=DECLINED`)).json();
    expect(declined.values).toHaveLength(1);
    expect(declined.values[0]).toMatchObject({ id: 4, state: 'DECLINED', closed_by: { nickname: 'bob' } });
    expect((await get(fake, `${R}/pullrequests?state=BOGUS`)).status).toBe(400);
  });

  test('pagination of PRs follows next to the end', async () => {
    const pages = await allPages(fake, `${R}/pullrequests?pagelen=1&state=OPEN&state=DECLINED`);
    expect(pages).toHaveLength(4);
    expect(pages[0]!.next).toBe(`${fake.url}${R}/pullrequests?pagelen=1&state=OPEN&state=DECLINED&page=2`);
  });

  test('same-repo PR #1: 12-char hashes of the live heads, author, links, participants', async () => {
    const pr = (await get(fake, `${R}/pullrequests/1`)).json();
    expect(pr).toMatchObject({
      type: 'pullrequest',
      id: 1,
      state: 'OPEN',
      draft: false,
      author: { nickname: 'alice', display_name: 'Alice Anderson' },
      source: { branch: { name: 'feature/BB-1' }, repository: { full_name: 'acme/service-api' } },
      destination: { branch: { name: 'main' }, repository: { full_name: 'acme/service-api' } },
    });
    expect(pr.author.account_id).toMatch(/^557058:/);
    expect(pr.source.commit.hash).toBe((await head('acme', 'service-api', 'feature/BB-1')).slice(0, 12));
    expect(pr.destination.commit.hash).toBe((await head('acme', 'service-api', 'main')).slice(0, 12));
    expect(pr.links.html.href).toBe(`${fake.url}/acme/service-api/pull-requests/1`);
    expect(pr.participants).toEqual([expect.objectContaining({ role: 'REVIEWER', approved: true, user: expect.objectContaining({ nickname: 'bob' }) })]);
  });

  test('fork PR #2 comes from jdoe/service-api-fork feature/BB-2', async () => {
    const pr = (await get(fake, `${R}/pullrequests/2`)).json();
    expect(pr.source.repository.full_name).toBe('jdoe/service-api-fork');
    expect(pr.source.branch.name).toBe('feature/BB-2');
    expect(pr.source.commit.hash).toBe((await head('jdoe', 'service-api-fork', 'feature/BB-2')).slice(0, 12));
    expect(pr.source.commit.links.self.href).toContain('/2.0/repositories/jdoe/service-api-fork/commit/');
  });

  test('draft PR #3, unknown PR → 404', async () => {
    expect((await get(fake, `${R}/pullrequests/3`)).json()).toMatchObject({ draft: true, state: 'OPEN' });
    const r = await get(fake, `${R}/pullrequests/99`);
    expect(r.status).toBe(404);
    expect(r.json().type).toBe('error');
  });

  test('PR commits with fields= has no envelope (no next) and matches git', async () => {
    const fields = encodeURIComponent('values.hash,values.author.raw,values.date,values.message');
    const r = (await get(fake, `${R}/pullrequests/1/commits?fields=${fields}&pagelen=1`)).json();
    const bb1 = await head('acme', 'service-api', 'feature/BB-1');
    expect(Object.keys(r)).toEqual(['values']);
    expect(r.values).toEqual([{ hash: bb1, author: { raw: 'Bob Brown <bob@example.com>' }, date: expect.stringMatching(/\+00:00$/), message: expect.stringContaining('BB-1') }]);
    const unfiltered = (await get(fake, `${R}/pullrequests/2/commits`)).json();
    expect(unfiltered.values.map((c: { hash: string }) => c.hash)).toEqual([await head('jdoe', 'service-api-fork', 'feature/BB-2')]);
  });

  test('list omits participants unless asked with fields=+values.participants', async () => {
    const plain = (await get(fake, `${R}/pullrequests`)).json();
    expect(plain.values[0].participants).toBeUndefined();
    const withP = (await get(fake, `${R}/pullrequests?fields=%2Bvalues.participants`)).json();
    expect(withP.values.every((p: { participants?: unknown[] }) => Array.isArray(p.participants))).toBe(true);
    expect(withP.next === undefined && withP.pagelen === 10).toBe(true);
  });

  test('pushing to the source branch moves the PR hash', async () => {
    const tmp = await startFakeBitbucket();
    try {
      const sha = await tmp.pushCommit('acme', 'service-api', 'feature/BB-1', { 'new.txt': 'x\n' }, 'more work');
      const pr = (await get(tmp, `${R}/pullrequests/1`)).json();
      expect(pr.source.commit.hash).toBe(sha.slice(0, 12));
      const commits = (await get(tmp, `${R}/pullrequests/1/commits`)).json();
      expect(commits.values[0].hash).toBe(sha);
      expect(commits.values).toHaveLength(2);
    } finally {
      await tmp.close();
    }
  });
});

describe('hooks', () => {
  test('seeded hook is listed with pagelen=100', async () => {
    const r = (await get(fake, `${R}/hooks?pagelen=100`)).json();
    expect(r).toMatchObject({ pagelen: 100, page: 1, size: 1 });
    expect(r.values[0]).toMatchObject({ type: 'webhook_subscription', url: 'https://jenkins.example.com/bitbucket-scmsource-hook/notify', secret_set: false });
  });

  test('POST, GET/PUT/DELETE by %7Buuid%7D; secret is never returned', async () => {
    const body = JSON.stringify({
      description: 'Jenkins hook',
      url: 'https://ci.example.com/bitbucket-scmsource-hook/notify',
      active: true,
      skip_cert_verification: false,
      events: ['repo:push', 'pullrequest:created'],
      secret: 's3cr3t',
      secret_set: false,
    });
    const created = await raw(fake, 'POST', `${R}/hooks`, { body, headers: { 'content-type': 'application/json; charset=UTF-8' } });
    expect(created.status).toBe(201);
    const hook = created.json();
    expect(hook).toMatchObject({ type: 'webhook_subscription', url: 'https://ci.example.com/bitbucket-scmsource-hook/notify', secret_set: true, events: ['repo:push', 'pullrequest:created'] });
    expect(hook.uuid).toMatch(/^\{[0-9a-f-]{36}\}$/);
    expect(created.text).not.toContain('s3cr3t');
    expect(hook.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const stored = fake.model.hooks.find((h) => h.uuid === hook.uuid)!;
    expect(stored.secret).toBe('s3cr3t');
    expect(stored.body.toString()).toBe(body);

    const path = `${R}/hooks/${encodeURIComponent(hook.uuid)}`;
    expect(path).toContain('%7B');
    expect((await get(fake, path)).json().uuid).toBe(hook.uuid);
    expect(hook.links.self.href).toBe(`${fake.url}${path}`);

    const put = await raw(fake, 'PUT', path, { body: JSON.stringify({ ...hook, url: 'https://ci.example.com/other', events: ['repo:push'] }), headers: { 'content-type': 'application/json' } });
    expect(put.status).toBe(200);
    expect(put.json()).toMatchObject({ url: 'https://ci.example.com/other', events: ['repo:push'], secret_set: true });
    expect(fake.model.hooks.find((h) => h.uuid === hook.uuid)!.url).toBe('https://ci.example.com/other');

    const list = (await get(fake, `${R}/hooks`)).json();
    expect(list.values.map((h: { uuid: string }) => h.uuid)).toContain(hook.uuid);

    expect((await raw(fake, 'DELETE', path)).status).toBe(204);
    expect((await get(fake, path)).status).toBe(404);
    expect(fake.model.hooks.some((h) => h.uuid === hook.uuid)).toBe(false);
  });

  test('invalid hook bodies → 400', async () => {
    expect((await raw(fake, 'POST', `${R}/hooks`, { body: '{"events":["repo:push"]}' })).status).toBe(400);
    expect((await raw(fake, 'POST', `${R}/hooks`, { body: '{"url":"https://x.example/","events":[]}' })).status).toBe(400);
    expect((await raw(fake, 'POST', `${R}/hooks`, { body: 'not json' })).status).toBe(400);
  });
});

describe('build statuses', () => {
  test('POST stores the body byte for byte, answers 201 like the recorded payload, upserts by key', async () => {
    const sha = await head('acme', 'service-api', 'main');
    const body = '{"description":"Build started","state":"INPROGRESS","url":"https://ci.example.com/job/x/1/","key":"fe7e71305b004dd8dd5a124e1dae4c33","name":"x » main #1","refname":"main","buildNumber":"1"}';
    const r = await raw(fake, 'POST', `${R}/commit/${sha.slice(0, 12)}/statuses/build`, { body, headers: { 'content-type': 'application/json; charset=UTF-8' } });
    expect(r.status).toBe(201);
    const s = r.json();
    expect(s).toMatchObject({ type: 'build', key: 'fe7e71305b004dd8dd5a124e1dae4c33', state: 'INPROGRESS', refname: 'main', commit: { hash: sha, type: 'commit' }, repository: { full_name: 'acme/service-api' } });
    expect(s.links.self.href).toBe(`${fake.url}${R}/commit/${sha}/statuses/build/fe7e71305b004dd8dd5a124e1dae4c33`);
    const stored = fake.model.statuses.filter((x) => x.commit === sha);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.body.equals(Buffer.from(body))).toBe(true);

    const body2 = body.replace('INPROGRESS', 'SUCCESSFUL');
    expect((await raw(fake, 'POST', `${R}/commit/${sha}/statuses/build`, { body: body2 })).status).toBe(201);
    const after = fake.model.statuses.filter((x) => x.commit === sha);
    expect(after).toHaveLength(1);
    expect(after[0]!.state).toBe('SUCCESSFUL');
    expect(after[0]!.body.toString()).toBe(body2);

    const list = (await get(fake, `${R}/commit/${sha}/statuses`)).json();
    expect(list.values.map((v: { state: string }) => v.state)).toEqual(['SUCCESSFUL']);
  });

  test('invalid status or unknown commit', async () => {
    const sha = await head('acme', 'service-api', 'main');
    expect((await raw(fake, 'POST', `${R}/commit/${sha}/statuses/build`, { body: '{"state":"WEIRD","key":"k","url":"https://x/"}' })).status).toBe(400);
    expect((await raw(fake, 'POST', `${R}/commit/${sha}/statuses/build`, { body: '{"state":"FAILED","url":"https://x/"}' })).status).toBe(400);
    expect((await raw(fake, 'POST', `${R}/commit/0000000000aa/statuses/build`, { body: '{"state":"FAILED","key":"k","url":"https://x/"}' })).status).toBe(404);
  });
});
