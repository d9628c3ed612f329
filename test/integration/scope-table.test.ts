import { request } from 'undici';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { rawRequest } from '../helpers/raw';

interface Attempt {
  name: string;
  method?: string;
  path: string;
  host?: string;
  auth?: 'scoped' | 'none' | 'wrong' | 'upstream' | 'empty';
  body?: string;
  /** Sent byte-for-byte over a socket (an HTTP client library would normalise the path first). */
  raw?: boolean;
  expect: number[];
}

/**
 * A client scoped to workspace `acme` tries to reach the upstream person's `jdoe` workspace, the
 * `other` workspace and things it lacks permissions for. Every attempt is refused, and the fake
 * Bitbucket's request log shows that none of them reached upstream.
 */
describe('scope table: a client scoped to one workspace', () => {
  let stack: Stack;
  let jdoeUuid: string;
  let secretUuid: string;
  const seen: string[] = [];

  beforeAll(async () => {
    stack = await startStack([
      { id: 'scoped', scope: [{ workspace: 'acme' }], permissions: ['read'] },
      { id: 'ci-project', scope: [{ workspace: 'acme', projects: ['CI'] }], permissions: ['read'] },
      { id: 'globbed', scope: [{ workspace: 'acme', repositories: ['service-*'] }], permissions: ['read'] },
    ]);
    const jdoe = stack.fake.model.workspaces.find((w) => w.slug === 'jdoe')!;
    jdoeUuid = jdoe.uuid;
    secretUuid = stack.fake.model.repositories.find((r) => r.workspace === 'jdoe' && r.slug === 'secret-notes')!.uuid;
  });
  afterAll(() => stack.stop());

  const enc = (s: string) => encodeURIComponent(s);
  const table = (): Attempt[] => [
    { name: 'personal listing', path: '/2.0/repositories/jdoe', expect: [404] },
    { name: 'personal repo', path: '/2.0/repositories/jdoe/secret-notes', expect: [404] },
    { name: 'case variant', path: '/2.0/repositories/JDOE/Secret-Notes', expect: [404] },
    { name: 'mixed case workspace', path: '/2.0/repositories/jDoE/secret-notes/refs/branches', expect: [404] },
    { name: 'personal workspace', path: '/2.0/workspaces/jdoe', expect: [404] },
    { name: 'other workspace', path: '/2.0/workspaces/other', expect: [404] },
    { name: 'other repo branches', path: '/2.0/repositories/other/widgets/refs/branches?pagelen=100', expect: [404] },
    { name: 'dot-dot', path: '/2.0/repositories/acme/../jdoe/secret-notes', raw: true, expect: [400] },
    { name: 'encoded dot-dot', path: '/2.0/repositories/acme/%2e%2e/jdoe', raw: true, expect: [400] },
    { name: 'encoded dot-dot, upper case', path: '/2.0/repositories/acme/%2E%2E/%2E%2E/2.0/repositories/jdoe', raw: true, expect: [400] },
    { name: 'dot segment', path: '/2.0/repositories/./jdoe/secret-notes', raw: true, expect: [400] },
    { name: 'encoded slash in workspace', path: '/2.0/repositories/acme%2F..%2Fjdoe/secret-notes', expect: [404] },
    { name: 'encoded slash joins ws/repo', path: '/2.0/repositories/jdoe%2Fsecret-notes', expect: [404] },
    { name: 'encoded backslash', path: '/2.0/repositories/acme%5C..%5Cjdoe/secret-notes', expect: [404] },
    { name: 'repo slug smuggling', path: '/2.0/repositories/acme/service-api%2F..%2F..%2Fjdoe%2Fsecret-notes', expect: [404] },
    { name: 'branch path smuggling', path: '/2.0/repositories/acme/service-api/refs/branches/..%2F..%2F..%2Fjdoe', expect: [404] },
    { name: 'double slash', path: '//2.0/repositories/jdoe', expect: [400] },
    { name: 'inner double slash', path: '/2.0//repositories/jdoe/secret-notes', expect: [400] },
    { name: 'NUL byte', path: '/2.0/repositories/acme%00/x', expect: [400] },
    { name: 'CRLF injection', path: '/2.0/repositories/acme%0d%0aHost:%20x/y', expect: [400] },
    { name: 'workspace uuid', path: `/2.0/repositories/${enc(jdoeUuid)}/secret-notes`, expect: [404] },
    { name: 'repository uuid under acme', path: `/2.0/repositories/acme/${enc(secretUuid)}`, expect: [404] },
    { name: 'both uuids', path: `/2.0/repositories/${enc(jdoeUuid)}/${enc(secretUuid)}`, expect: [404] },
    { name: 'workspace by uuid', path: `/2.0/workspaces/${enc(jdoeUuid)}`, expect: [404] },
    { name: 'unknown uuid', path: `/2.0/repositories/${enc('{00000000-0000-4000-8000-000000000000}')}`, expect: [404] },
    { name: 'HEAD personal repo', method: 'HEAD', path: '/2.0/repositories/jdoe/secret-notes', expect: [404] },
    { name: 'HEAD other workspace', method: 'HEAD', path: '/2.0/workspaces/other', expect: [404] },
    { name: 'tampered next link', path: '/2.0/repositories/jdoe?pagelen=100&page=2', expect: [404] },
    { name: 'tampered next on another route', path: '/2.0/repositories/other/widgets/pullrequests?pagelen=50&page=2', expect: [404] },
    { name: 'fork repository object', path: '/2.0/repositories/jdoe/service-api-fork', expect: [404] },
    { name: 'fork branch list', path: '/2.0/repositories/jdoe/service-api-fork/refs/branches', expect: [404] },
    { name: 'fork other branch', path: '/2.0/repositories/jdoe/service-api-fork/refs/branches/main', expect: [404] },
    { name: 'fork pull requests', path: '/2.0/repositories/jdoe/service-api-fork/pullrequests', expect: [404] },
    { name: 'fork src at an arbitrary commit', path: '/2.0/repositories/jdoe/service-api-fork/src/deadbeefdead/Jenkinsfile?format=meta', expect: [404] },
    { name: 'fork src at a branch name', path: '/2.0/repositories/jdoe/service-api-fork/src/main/Jenkinsfile?format=meta', expect: [404] },
    { name: 'personal Jenkinsfile probe', path: '/2.0/repositories/jdoe/secret-notes/src/main/Jenkinsfile?format=meta', expect: [404] },
    { name: 'status to personal repo', method: 'POST', path: '/2.0/repositories/jdoe/secret-notes/commit/abcdef123456/statuses/build', body: '{"state":"SUCCESSFUL","key":"k","url":"https://ci.example/1"}', expect: [404] },
    { name: 'status without permission', method: 'POST', path: '/2.0/repositories/acme/service-api/commit/abcdef123456/statuses/build', body: '{"state":"SUCCESSFUL","key":"k","url":"https://ci.example/1"}', expect: [403] },
    { name: 'hooks without permission', path: '/2.0/repositories/acme/service-api/hooks?pagelen=100', expect: [403] },
    { name: 'hook delete on personal repo', method: 'DELETE', path: `/2.0/repositories/jdoe/secret-notes/hooks/${enc('{202cf34e-7ccf-44b7-ba6b-8827a14d5324}')}`, expect: [404] },
    { name: 'unsupported method on a route', method: 'PUT', path: '/2.0/repositories/acme/service-api', body: '{}', expect: [405] },
    { name: 'unknown method', method: 'PATCH', path: '/2.0/repositories/acme/service-api', body: '{}', expect: [405] },
    { name: 'no credentials', path: '/2.0/repositories/acme/service-api', auth: 'none', expect: [401] },
    { name: 'wrong token', path: '/2.0/repositories/acme/service-api', auth: 'wrong', expect: [401] },
    { name: 'empty password', path: '/2.0/repositories/acme/service-api', auth: 'empty', expect: [401] },
    { name: "the upstream person's own credential", path: '/2.0/repositories/jdoe/secret-notes', auth: 'upstream', expect: [401] },
    { name: 'git on personal repo', path: '/jdoe/secret-notes.git/info/refs?service=git-upload-pack', expect: [404] },
    { name: 'git on personal repo, web host', host: 'bitbucket.org', path: '/jdoe/secret-notes/info/refs?service=git-upload-pack', expect: [404] },
    { name: 'API path on the web host', host: 'bitbucket.org', path: '/2.0/repositories/jdoe/secret-notes', expect: [404] },
    { name: 'odd Host header', host: 'evil.example:1234', path: '/2.0/repositories/jdoe/secret-notes', expect: [404] },
    { name: 'cross-workspace listing', path: '/2.0/repositories?role=member', expect: [404] },
    { name: 'user lookups', path: '/2.0/users/jdoe', expect: [404] },
    { name: 'permissions listing', path: '/2.0/user/permissions/repositories', expect: [404] },
    { name: 'snippets', path: '/2.0/snippets/jdoe', expect: [404] },
  ];

  it('refuses every attempt', async () => {
    stack.fake.clearLog();
    const attempts = table();
    expect(attempts.length).toBeGreaterThanOrEqual(40);
    const failures: string[] = [];
    for (const a of attempts) {
      const authorization =
        a.auth === 'none'
          ? undefined
          : a.auth === 'wrong'
            ? basicAuth('jenkins@ci.example', stack.tokens.scoped.slice(0, -1) + 'x')
            : a.auth === 'empty'
              ? basicAuth('jenkins@ci.example', '')
              : a.auth === 'upstream'
                ? basicAuth(stack.fake.credentials.email, stack.fake.credentials.apiToken)
                : basicAuth('jenkins@ci.example', stack.tokens.scoped);
      if (a.raw) {
        const r = await rawRequest(stack.running.httpPort, `${a.method ?? 'GET'} ${a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}\r\n`);
        seen.push(r.raw);
        if (!a.expect.includes(r.status)) failures.push(`${a.name}: ${r.status}`);
        continue;
      }
      const res = await request(`${stack.url}${a.path}`, {
        method: (a.method ?? 'GET') as 'GET',
        headers: { ...(authorization ? { authorization } : {}), ...(a.host ? { host: a.host } : {}), ...(a.body ? { 'content-type': 'application/json' } : {}) },
        body: a.body,
      });
      const text = await res.body.text();
      seen.push(text, JSON.stringify(res.headers));
      if (!a.expect.includes(res.statusCode)) failures.push(`${a.name}: ${res.statusCode} ${text.slice(0, 120)}`);
      if (res.statusCode >= 400 && a.method !== 'HEAD' && !/\.git|info\/refs/.test(a.path)) {
        expect(JSON.parse(text)).toEqual({ type: 'error', error: { message: expect.any(String) } });
      }
      if (res.statusCode === 401) expect(res.headers['www-authenticate']).toBe('Basic realm="Bitbucket.org HTTP"');
    }
    expect(failures).toEqual([]);
    const leaked = stack.fake.requests.filter((r) => r.workspace === 'jdoe' || r.workspace === 'other');
    expect(leaked.map((r) => `${r.method} ${r.rawUrl}`)).toEqual([]);
    expect(stack.fake.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('absolute-form request targets are judged by their own path', async () => {
    const port = stack.running.httpPort;
    const auth = basicAuth('jenkins@ci.example', stack.tokens.scoped);
    const a = await rawRequest(port, `GET http://api.bitbucket.org/2.0/repositories/jdoe/secret-notes HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\n\r\n`);
    expect(a.status).toBe(404);
    const b = await rawRequest(port, `GET http://evil.example/2.0/repositories/acme/service-api HTTP/1.1\r\nHost: api.bitbucket.org\r\nAuthorization: ${auth}\r\n\r\n`);
    expect(b.status).toBe(200);
    expect(b.raw).not.toContain('evil.example/2.0/repositories/jdoe');
    const c = await rawRequest(port, `GET /2.0/repositories/acme/service-api HTTP/1.1\r\nHost: bad host\r\nAuthorization: ${auth}\r\n\r\n`);
    expect(c.status).toBe(400);
    expect(stack.fake.requests.filter((r) => r.workspace === 'jdoe')).toEqual([]);
  });

  it('project and glob scopes hide other repositories without naming them upstream', async () => {
    stack.fake.clearLog();
    const get = (client: string, path: string) =>
      request(`${stack.url}${path}`, { headers: { authorization: basicAuth('j@ci.example', stack.tokens[client]) } }).then(async (r) => ({ status: r.statusCode, json: JSON.parse(await r.body.text()) }));
    expect((await get('ci-project', '/2.0/repositories/acme/infra')).status).toBe(404);
    expect((await get('ci-project', '/2.0/repositories/acme/service-api')).status).toBe(200);
    expect((await get('globbed', '/2.0/repositories/acme/infra/refs/branches')).status).toBe(404);
    expect((await get('globbed', '/2.0/repositories/acme/service-web')).status).toBe(200);
    const listing = await get('ci-project', '/2.0/repositories/acme?pagelen=100');
    expect(listing.json.values.map((r: { full_name: string }) => r.full_name).sort()).toEqual(['acme/service-api', 'acme/service-web']);
    // size counts what the client may see, never the hidden repositories.
    expect(listing.json.size).toBe(2);
    const globbed = await get('globbed', '/2.0/repositories/acme?pagelen=100');
    expect(globbed.json.values.map((r: { full_name: string }) => r.full_name).sort()).toEqual(['acme/service-api', 'acme/service-web']);
    expect(stack.fake.requests.filter((r) => r.repository && !['service-api', 'service-web'].includes(r.repository))).toEqual([]);
  });

  it('never returns or logs the upstream credential', () => {
    const secret = stack.fake.credentials.apiToken;
    const basic = Buffer.from(`${stack.fake.credentials.email}:${secret}`).toString('base64');
    for (const text of [...seen, ...stack.logs]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(basic);
    }
    for (const t of Object.values(stack.tokens)) for (const line of stack.logs) expect(line).not.toContain(t);
    expect(stack.logs.some((l) => l.includes('"kind":"audit"'))).toBe(true);
  });
});
