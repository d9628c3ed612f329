import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { sign } from '../../src/webhooks/signature';
import { PluginClient } from '../helpers/plugin';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { headersFor, pushBody, startJenkins, until, type FakeJenkins } from '../webhooks/helpers';
import { once } from './wire';

const run = promisify(execFile);

/**
 * Secret hygiene (issue 10): a representative run — an organization scan, git over smart HTTP,
 * denials, writes (a hook with a secret), OAuth, upstream faults, webhook deliveries, oversized and
 * malformed requests — and then every log line, the metrics page, the readiness page and every
 * answer's body and headers are searched for the secrets in play: the upstream credential (REST
 * and git, raw and as Basic), client tokens, the OAuth consumer secret, issued OAuth tokens, the
 * webhook secret, and a hook secret written through the sidecar. None may appear anywhere, except
 * the one answer whose purpose is to hand out an issued token (the OAuth token endpoint).
 */
describe('secret hygiene', () => {
  let fake: FakeBitbucketServer;
  let jenkins: FakeJenkins;
  let stack: Stack;
  let stateDir: string;
  const token = mintToken();
  const otherToken = mintToken();
  const consumer = mintOAuthConsumer();
  const webhookSecret = `whsec-${mintToken().slice(5, 40)}`;
  const hookSecret = `hooksecret-${mintToken().slice(5, 30)}`;
  const issued: string[] = [];
  /** Everything a client or an operator could see, with where it came from. */
  const seen: { where: string; text: string }[] = [];
  /** The token endpoint's own successful answers (they carry the issued token by design). */
  const grants: string[] = [];

  const record = (where: string, status: number, headers: Record<string, unknown>, body: string) => {
    seen.push({ where: `${where} → ${status}`, text: `${Object.entries(headers).map(([k, v]) => `${k}: ${String(v)}`).join('\n')}\n\n${body}` });
  };

  async function call(where: string, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    const r = await request(`${stack.url}${url}`, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
    const text = await r.body.text();
    record(where, r.statusCode, r.headers, text);
    return { status: r.statusCode, text };
  }

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    jenkins = await startJenkins(0, 200);
    stateDir = mkdtempSync(path.join(tmpdir(), 'hygiene-state-'));
    stack = await startStack([], {
      fakeInstance: fake,
      config: {
        clients: [
          { id: 'jenkins', token: { sha256: sha256Hex(token) }, oauth: { key: consumer.key, secretSha256: sha256Hex(consumer.secret) }, scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write', 'webhooks:manage', 'ops:read'] },
          { id: 'other', token: { sha256: sha256Hex(otherToken) }, scope: [{ workspace: 'other' }] },
        ],
        state: { dir: stateDir },
        webhooks: { secret: webhookSecret, forwardTo: jenkins.url, queue: { retryMinSeconds: 0.01, retryMaxSeconds: 0.05 } },
      },
    });
  });
  afterAll(async () => {
    await stack.stop();
    await jenkins.close();
    await fake.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('runs a representative session', async () => {
    const api = { host: 'api.bitbucket.org' };
    const basic = basicAuth('jenkins@ci.example', token);

    // An organization scan, as the plugin does it.
    const plugin = new PluginClient(stack.url, basic);
    await plugin.get('http://api.bitbucket.org/2.0/workspaces/acme');
    for (const repo of await plugin.getAll('http://api.bitbucket.org/2.0/repositories/acme?pagelen=100')) {
      const name = repo.full_name as string;
      for (const p of [`/2.0/repositories/${name}`, `/2.0/repositories/${name}/pullrequests?pagelen=50`, `/2.0/repositories/${name}/refs/branches?pagelen=100`, `/2.0/repositories/${name}/src/main/Jenkinsfile?format=meta`]) {
        await call('scan', p, { headers: { ...api, authorization: basic } });
      }
    }
    await call('bearer', '/2.0/user', { headers: { ...api, authorization: `Bearer ${token}` } });

    // Denials: out of scope, wrong and expired-looking tokens, the upstream credential itself, malformed headers.
    await call('out of scope', '/2.0/repositories/jdoe/secret-notes', { headers: { ...api, authorization: basic } });
    await call('wrong token', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: basicAuth('jenkins@ci.example', `${token.slice(0, -3)}abc`) } });
    await call('upstream credential', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: basicAuth(fake.credentials.email, fake.credentials.apiToken) } });
    await call('upstream as bearer', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: `Bearer ${fake.credentials.apiToken}` } });
    await call('token as scheme', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: `${token} ${token}` } });
    await call('token without scheme', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: token } });
    await call('other client', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: basicAuth('x', otherToken) } });
    await call('token in the query', `/2.0/repositories/acme/service-api?access_token=${token}&fields=${token}`, { headers: { ...api, authorization: basic } });
    await call('token in the path', `/2.0/repositories/acme/service-api/refs/branches/${token}`, { headers: { ...api, authorization: basic } });
    await call('token as a workspace', `/2.0/repositories/${token.slice(0, 100)}/x`, { headers: { ...api, authorization: basic } });
    const big = await once(stack.running.httpPort, `GET /2.0/user HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic}\r\nX-Pad: ${'p'.repeat(20_000)}\r\nConnection: close\r\n\r\n`);
    seen.push({ where: 'oversized head', text: big.response?.raw ?? '' });
    const bad = await once(stack.running.httpPort, `get /2.0/user HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic}\r\nConnection: close\r\n\r\n`);
    seen.push({ where: 'parser error', text: bad.response?.raw ?? '' });

    // Writes: a build status and a hook carrying its own secret (Bitbucket stores it, never shows it).
    const main = JSON.parse((await call('branch', '/2.0/repositories/acme/service-api/refs/branches/main', { headers: { ...api, authorization: basic } })).text).target.hash as string;
    await call('status', `/2.0/repositories/acme/service-api/commit/${main}/statuses/build`, {
      method: 'POST',
      headers: { ...api, authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ state: 'SUCCESSFUL', key: 'k', url: 'https://ci.example/1' }),
    });
    const hook = await call('hook', '/2.0/repositories/acme/service-api/hooks', {
      method: 'POST',
      headers: { ...api, authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'Jenkins hook', url: 'https://ci.example/bitbucket-scmsource-hook/notify', active: true, secret: hookSecret, events: ['repo:push'] }),
    });
    expect([200, 201]).toContain(hook.status);
    await call('hooks', '/2.0/repositories/acme/service-api/hooks?pagelen=100', { headers: { ...api, authorization: basic } });

    // OAuth: a grant, its use for REST and git, a wrong secret, a wrong grant type.
    for (const body of ['grant_type=client_credentials', `grant_type=client_credentials&client_id=${consumer.key}&client_secret=${consumer.secret}`]) {
      const r = await request(`${stack.url}/site/oauth2/access_token`, {
        method: 'POST',
        headers: { host: 'bitbucket.org', 'content-type': 'application/x-www-form-urlencoded', ...(body.includes('client_secret') ? {} : { authorization: basicAuth(consumer.key, consumer.secret) }) },
        body,
      });
      const text = await r.body.text();
      expect(r.statusCode).toBe(200);
      grants.push(text);
      issued.push(JSON.parse(text).access_token);
    }
    await call('oauth wrong secret', '/site/oauth2/access_token', { method: 'POST', headers: { host: 'bitbucket.org', authorization: basicAuth(consumer.key, `${consumer.secret.slice(0, -1)}x`), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    await call('oauth wrong grant', '/site/oauth2/access_token', { method: 'POST', headers: { host: 'bitbucket.org', authorization: basicAuth(consumer.key, consumer.secret), 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=password&password=${consumer.secret}` });
    await call('issued bearer', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: `Bearer ${issued[0]}` } });
    await call('issued, out of scope', '/2.0/repositories/other/widgets', { headers: { ...api, authorization: `Bearer ${issued[0]}` } });
    await call('consumer as a token', '/2.0/repositories/acme/service-api', { headers: { ...api, authorization: basicAuth(consumer.key, consumer.secret) } });

    // Git through the sidecar with real git, as Jenkins checks out (token and issued OAuth token).
    const remote = `${stack.url}/acme/service-api.git`;
    for (const [user, secret] of [['x-bitbucket-api-token-auth', token], ['x-token-auth', issued[1]]]) {
      const out = await run('git', ['-c', `http.extraHeader=Authorization: ${basicAuth(user, secret)}`, 'ls-remote', remote], { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
      expect(out.stdout).toMatch(/refs\/heads\/main/);
    }
    await call('git out of scope', '/jdoe/secret-notes.git/info/refs?service=git-upload-pack', { headers: { host: 'bitbucket.org', authorization: basicAuth('x-token-auth', token) } });
    await call('git wrong token', '/acme/service-api.git/info/refs?service=git-upload-pack', { headers: { host: 'bitbucket.org', authorization: basicAuth('x-token-auth', 'nope') } });

    // Upstream faults.
    fake.addFault({ kind: 'html500', match: { pathIncludes: '/service-web/refs/tags' }, times: 1 });
    fake.addFault({ kind: 'reset', match: { pathIncludes: '/infra/refs/tags' }, times: 1 });
    fake.addFault({ kind: 'rate429', retryAfter: 1, match: { pathIncludes: '/docs-site/refs/tags' }, times: 1 });
    for (const r of ['service-web', 'infra', 'docs-site']) await call('fault', `/2.0/repositories/acme/${r}/refs/tags?pagelen=100`, { headers: { ...api, authorization: basic } });
    fake.clearFaults();

    // Webhook deliveries: signed, and one with a wrong signature.
    const body = pushBody('acme', 'service-api', 'CI', 'main', main);
    const h = headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, webhookSecret, 'sha256') });
    const delivered = await request(`${stack.url}/_sidecar/webhooks/bitbucket`, { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body });
    record('webhook', delivered.statusCode, delivered.headers, await delivered.body.text());
    expect(delivered.statusCode).toBe(200);
    const forged = await request(`${stack.url}/_sidecar/webhooks/bitbucket`, { method: 'POST', headers: { 'content-type': 'application/json', ...headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, 'wrong') }) }, body });
    record('forged webhook', forged.statusCode, forged.headers, await forged.body.text());
    await until(() => jenkins.delivered(h['x-request-uuid']).length === 1, 'the forwarded delivery');

    // Operations pages.
    for (const p of ['/_sidecar/metrics', '/_sidecar/ready', '/_sidecar/health']) await call('ops', p, { headers: { authorization: basic } });
    await call('ops without a token', '/_sidecar/metrics');
    await stack.running.sidecar.cache.idle();
    expect(seen.length).toBeGreaterThan(40);
    expect(stack.logs.length).toBeGreaterThan(40);
  });

  it('no secret appears in any log line, metrics page, error body or header', () => {
    const up = fake.credentials;
    const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
    const secrets: Record<string, string[]> = {
      'upstream API token': [up.apiToken, b64(`${up.email}:${up.apiToken}`), b64(`x-bitbucket-api-token-auth:${up.apiToken}`), b64(`x-token-auth:${up.apiToken}`)],
      'client token': [token, otherToken, b64(`jenkins@ci.example:${token}`), b64(`x-bitbucket-api-token-auth:${token}`), b64(`x-token-auth:${token}`), b64(`x:${otherToken}`)],
      'OAuth consumer secret': [consumer.secret, b64(`${consumer.key}:${consumer.secret}`)],
      'issued OAuth token': [...issued, ...issued.map((t) => b64(`x-token-auth:${t}`))],
      'webhook secret': [webhookSecret],
      'hook secret': [hookSecret],
    };
    // Not even a hash (or a prefix of one) of a secret: it would let a reader confirm a guessed token.
    for (const [what, values] of Object.entries({ ...secrets })) {
      secrets[`${what} (sha256 prefix)`] = values.map((v) => createHash('sha256').update(v).digest('hex').slice(0, 12));
    }
    expect(issued).toHaveLength(2);
    const places = [
      ...stack.logs.map((l, i) => ({ where: `log line ${i}`, text: l })),
      ...seen.map((s) => ({ where: `answer: ${s.where}`, text: s.text })),
      // What Jenkins received from the relay (headers and body) — the webhook secret must not travel.
      ...jenkins.received.map((r, i) => ({ where: `forwarded delivery ${i}`, text: `${JSON.stringify(r.headers)}\n${r.body.toString('utf8')}` })),
    ];
    const found: string[] = [];
    for (const { where, text } of places) {
      // A client that puts its own token in a branch name gets it echoed back by Bitbucket's 404 —
      // to itself only. Logs are checked for it like everything else.
      const own = where === 'answer: token in the path → 404';
      const forms = [text, decodeURIComponentSafe(text)];
      for (const [what, values] of Object.entries(secrets)) {
        for (const v of values) if (!(own && v === token) && forms.some((f) => f.includes(v))) found.push(`${what} in ${where}`);
      }
    }
    expect(found).toEqual([]);
    // The token endpoint hands out the issued token, and nothing else secret.
    for (const g of grants) {
      for (const v of [...secrets['upstream API token'], ...secrets['client token'], ...secrets['OAuth consumer secret']]) expect(g).not.toContain(v);
    }
    // Sanity: the run produced audit lines for the scan, and the metrics page was read.
    expect(stack.logs.filter((l) => l.includes('"kind":"audit"')).length).toBeGreaterThan(30);
    expect(seen.some((s) => s.where.startsWith('ops') && s.text.includes('bitbucket_sidecar_requests_total'))).toBe(true);
  });
});

function decodeURIComponentSafe(text: string): string {
  return text.replace(/(%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}
