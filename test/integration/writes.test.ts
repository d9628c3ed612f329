import { request } from 'undici';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { createLogger } from '../../src/ops/logger';
import { reloadFromFile } from '../../src/serve';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

const json = async (r: Awaited<ReturnType<typeof request>>) => {
  const text = await r.body.text();
  try {
    return { status: r.statusCode, json: JSON.parse(text), text };
  } catch {
    return { status: r.statusCode, json: undefined, text };
  }
};

describe('writes: build statuses and webhooks', () => {
  let stack: Stack;
  let hash: string;
  const auth = (id: string) => basicAuth('jenkins@ci.example', stack.tokens[id]);

  beforeAll(async () => {
    stack = await startStack([
      { id: 'writer', scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write', 'webhooks:manage'] },
      { id: 'reader', scope: [{ workspace: 'acme' }], permissions: ['read'] },
    ]);
    const b = await request(`${stack.url}/2.0/repositories/acme/service-api/refs/branches/main`, { headers: { authorization: auth('reader') } });
    hash = (await json(b)).json.target.hash;
  });
  afterAll(() => stack.stop());

  const postStatus = (id: string, body: string, h = hash, repo = 'acme/service-api') =>
    request(`${stack.url}/2.0/repositories/${repo}/commit/${h}/statuses/build`, {
      method: 'POST',
      headers: { authorization: auth(id), 'content-type': 'application/json; charset=UTF-8' },
      body,
    });
  const statusPosts = () => stack.fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/statuses/build'));

  it('a status body arrives upstream byte-identical, exactly once', async () => {
    stack.fake.clearLog();
    const body = '{"description":"Build started","state":"INPROGRESS","url":"https://ci.example/job/x/1/","key":"0cc175b9c0f1b6a831c399e269772661","name":"x » main #1","refname":"main","buildNumber":"1"}';
    const r = await json(await postStatus('writer', body));
    expect([200, 201]).toContain(r.status);
    expect(statusPosts()).toHaveLength(1);
    expect(statusPosts()[0].body.toString('utf8')).toBe(body);
  });

  it('without the permission nothing reaches upstream (403)', async () => {
    stack.fake.clearLog();
    const r = await json(await postStatus('reader', '{"state":"SUCCESSFUL","key":"k","url":"https://ci.example/1"}'));
    expect(r.status).toBe(403);
    expect(r.json.error.message).toMatch(/statuses:write/);
    expect(stack.fake.requests.filter((q) => q.method !== 'GET')).toHaveLength(0);
  });

  it.each([
    ['{"state":"DONE","key":"k","url":"https://ci.example/1"}', /^state: must be one of INPROGRESS, SUCCESSFUL, FAILED, STOPPED/],
    ['{"state":"FAILED","url":"https://ci.example/1"}', /^key:/],
    ['{"state":"FAILED","key":"k","url":"not a url"}', /^url:/],
    [`{"state":"FAILED","key":"k","url":"https://ci.example/1","name":"${'n'.repeat(300)}"}`, /^name:/],
    ['not json', /not valid JSON/],
    ['[1]', /JSON object/],
  ])('an invalid body → 400 naming the field: %s', async (body, message) => {
    stack.fake.clearLog();
    const r = await json(await postStatus('writer', body));
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(message);
    expect(statusPosts()).toHaveLength(0);
  });

  it('an upstream 500 reaches the caller as a failure and upstream saw exactly one POST', async () => {
    stack.fake.clearLog();
    stack.fake.addFault({ match: { method: 'POST', pathIncludes: '/statuses/build' }, kind: 'status', status: 500, times: 1 });
    const r = await json(await postStatus('writer', '{"state":"FAILED","key":"k2","url":"https://ci.example/2"}'));
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ type: 'error', error: { message: expect.any(String) } });
    expect(statusPosts()).toHaveLength(1);
    stack.fake.clearFaults();
  });

  it('a status to a fork (PR source outside the scope) is refused', async () => {
    stack.fake.clearLog();
    const prs = await json(await request(`${stack.url}/2.0/repositories/acme/service-api/pullrequests?pagelen=50`, { headers: { authorization: auth('writer') } }));
    const fork = prs.json.values.find((p: { source: { repository: { full_name: string } } }) => p.source.repository.full_name === 'jdoe/service-api-fork');
    const forkHash: string = fork.source.commit.hash;
    // Reading at the fork's PR commit is allowed (the plugin probes it)...
    const probe = await request(`${stack.url}/2.0/repositories/jdoe/service-api-fork/commit/${forkHash}`, { headers: { authorization: auth('writer') } });
    expect(probe.statusCode).toBe(200);
    await probe.body.dump();
    // ...but writing to it is not: the fork is not in scope for writes.
    const r = await postStatus('writer', '{"state":"FAILED","key":"k","url":"https://ci.example/3"}', forkHash, 'jdoe/service-api-fork');
    expect(r.statusCode).toBe(404);
    expect(statusPosts()).toHaveLength(0);
  });

  it('hook registration round-trips: create, list returns the same url, no second POST; PUT/DELETE with {uuid}', async () => {
    const hookUrl = 'https://jenkins.example/bitbucket-scmsource-hook/notify';
    const hooksUrl = `${stack.url}/2.0/repositories/acme/service-web/hooks`;
    // The plugin: read hooks, register only when no hook's url starts with its notify URL.
    const register = async () => {
      const list = await json(await request(`${hooksUrl}?pagelen=100`, { headers: { authorization: auth('writer') } }));
      expect(list.status).toBe(200);
      const mine = list.json.values.find((h: { url: string }) => h.url.startsWith(hookUrl));
      if (mine) return mine;
      const body = JSON.stringify({ description: 'Jenkins hook', url: hookUrl, active: true, events: ['repo:push', 'pullrequest:created'], skip_cert_verification: false, secret_set: false });
      const created = await json(await request(hooksUrl, { method: 'POST', headers: { authorization: auth('writer'), 'content-type': 'application/json; charset=UTF-8' }, body }));
      expect([200, 201]).toContain(created.status);
      return created.json;
    };
    stack.fake.clearLog();
    const first = await register();
    const second = await register();
    expect(second.uuid).toBe(first.uuid);
    expect(second.url).toBe(hookUrl);
    expect(stack.fake.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

    const one = `${hooksUrl}/${encodeURIComponent(first.uuid)}`;
    expect(one).toContain('%7B');
    const put = await request(one, { method: 'PUT', headers: { authorization: auth('writer'), 'content-type': 'application/json' }, body: JSON.stringify({ ...first, events: ['repo:push'] }) });
    expect([200, 204]).toContain(put.statusCode);
    await put.body.dump();
    const del = await request(one, { method: 'DELETE', headers: { authorization: auth('writer') } });
    expect(del.statusCode).toBe(204);
    await del.body.dump();
    const after = await json(await request(`${hooksUrl}?pagelen=100`, { headers: { authorization: auth('writer') } }));
    expect(after.json.values.find((h: { uuid: string }) => h.uuid === first.uuid)).toBeUndefined();
  });
});

describe('credentials: OAuth consumers, rotation and reload', () => {
  let stack: Stack;
  const consumer = mintOAuthConsumer();
  const oldToken = mintToken();
  const newToken = mintToken();
  let now = Date.now();
  let file: string;

  beforeAll(async () => {
    stack = await startStack([], {
      config: {
        clients: [
          { id: 'rotating', tokens: [{ sha256: sha256Hex(oldToken) }, { sha256: sha256Hex(newToken) }], oauth: { key: consumer.key, secretSha256: sha256Hex(consumer.secret) }, scope: [{ workspace: 'acme' }] },
        ],
      },
      sidecar: { now: () => now },
    });
    file = join(mkdtempSync(join(tmpdir(), 'reload-')), 'config.yaml');
  });
  afterAll(() => stack.stop());

  const api = (authorization: string) => request(`${stack.url}/2.0/repositories/acme/service-api`, { headers: { authorization } }).then(json);

  it('issues a bearer token for the plugin-shaped OAuth request; it works until it expires', async () => {
    const r = await json(
      await request(`${stack.url}/site/oauth2/access_token`, {
        method: 'POST',
        headers: { host: 'bitbucket.org', authorization: basicAuth(consumer.key, consumer.secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      }),
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ token_type: 'bearer', expires_in: 3600, access_token: expect.any(String) });
    expect((await api(`Bearer ${r.json.access_token}`)).status).toBe(200);
    now += 3601 * 1000;
    expect((await api(`Bearer ${r.json.access_token}`)).status).toBe(401);
  });

  it('refuses a wrong consumer secret and other grant types', async () => {
    const bad = await request(`${stack.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { authorization: basicAuth(consumer.key, 'x'.repeat(32)), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    }).then(json);
    expect(bad.status).toBe(401);
    expect(bad.json.error).toBe('invalid_client');
    const grant = await request(`${stack.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { authorization: basicAuth(consumer.key, consumer.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=a&password=b',
    }).then(json);
    expect(grant.status).toBe(400);
  });

  it('rotation: both tokens work, then a reload removes the old one; an invalid reload keeps the previous config', async () => {
    expect((await api(basicAuth('j@ci.example', oldToken))).status).toBe(200);
    expect((await api(`Bearer ${newToken}`)).status).toBe(200);
    const yaml = (tokens: string) => `
upstream:
  apiUrl: ${stack.fake.url}
  webUrl: ${stack.fake.url}
  auth: { type: basic, username: "${stack.fake.credentials.email}", password: "${stack.fake.credentials.apiToken}" }
clients:
  - id: rotating
    tokens: [${tokens}]
    scope: [{ workspace: acme }]
`;
    const logger = createLogger({ level: 'silent' });
    writeFileSync(file, yaml(`{ sha256: "${sha256Hex(newToken)}" }`));
    expect(reloadFromFile(stack.running, file, logger)).toBe(true);
    expect((await api(basicAuth('j@ci.example', oldToken))).status).toBe(401);
    expect((await api(basicAuth('j@ci.example', newToken))).status).toBe(200);
    writeFileSync(file, yaml(`{ sha256: "${sha256Hex(newToken)}" }`).replace('scope:', 'scopez:'));
    expect(reloadFromFile(stack.running, file, logger)).toBe(false);
    expect((await api(basicAuth('j@ci.example', newToken))).status).toBe(200);
  });
});
