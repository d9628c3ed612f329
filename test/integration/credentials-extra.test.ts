import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { mintOAuthConsumer, mintToken, sha256Hex } from '../../src/auth/tokens';
import { createLogger } from '../../src/ops/logger';
import { reloadOnChange } from '../../src/serve';
import { runGit } from '../git/helpers';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

/** OAuth tokens on the web face (git), workspace avatars without credentials, reload on file change. */
describe('credentials across faces, avatars and reload on change', () => {
  let stack: Stack;
  const consumer = mintOAuthConsumer();
  const first = mintToken();
  const second = mintToken();
  const yaml = (hash: string) => `
upstream:
  apiUrl: ${stack.fake.url}
  webUrl: ${stack.fake.url}
  auth: { type: basic, username: "${stack.fake.credentials.email}", password: "${stack.fake.credentials.apiToken}" }
clients:
  - id: oauth-client
    token: { sha256: "${hash}" }
    oauth: { key: "${consumer.key}", secretSha256: "${sha256Hex(consumer.secret)}" }
    scope: [{ workspace: acme }]
`;

  beforeAll(async () => {
    stack = await startStack([], {
      config: { clients: [{ id: 'oauth-client', token: { sha256: sha256Hex(first) }, oauth: { key: consumer.key, secretSha256: sha256Hex(consumer.secret) }, scope: [{ workspace: 'acme' }] }] },
    });
  });
  afterAll(() => stack.stop());

  it('an OAuth access token works for git as x-token-auth, like the plugin hands it to git', async () => {
    const res = await request(`${stack.url}/site/oauth2/access_token`, {
      method: 'POST',
      headers: { authorization: basicAuth(consumer.key, consumer.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    const token = (JSON.parse(await res.body.text()) as { access_token: string }).access_token;
    const ok = await runGit(['ls-remote', `${stack.url}/acme/service-api.git`], { token, user: 'x-token-auth' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/refs\/heads\/main/);
    const denied = await runGit(['ls-remote', `${stack.url}/jdoe/secret-notes.git`], { token, user: 'x-token-auth' });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/not found/i);
  });

  it('serves avatars of in-scope workspaces without credentials, and 404 for others', async () => {
    const mine = await request(`${stack.url}/workspaces/acme/avatar/?ts=1`, { headers: { host: 'bitbucket.org' } });
    expect(mine.statusCode).toBe(200);
    expect(String(mine.headers['content-type'])).toMatch(/^image\//);
    expect((await mine.body.arrayBuffer()).byteLength).toBeGreaterThan(0);
    for (const ws of ['jdoe', 'other', '%7B8a12de5f-d75e-5381-be3b-84766f6e646a%7D']) {
      const r = await request(`${stack.url}/workspaces/${ws}/avatar/?ts=1`, { headers: { host: 'bitbucket.org' } });
      expect([ws, r.statusCode]).toEqual([ws, 404]);
      await r.body.dump();
    }
    expect(stack.fake.requests.filter((q) => q.workspace === 'jdoe' || q.workspace === 'other')).toEqual([]);
  });

  it('reloads when the configuration file changes: the replaced token fails at once', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'watch-')), 'config.yaml');
    writeFileSync(file, yaml(sha256Hex(first)));
    const stopWatching = reloadOnChange(stack.running, file, createLogger({ level: 'silent' }), 50);
    try {
      const status = (token: string) => request(`${stack.url}/2.0/repositories/acme/service-api`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => (await r.body.dump(), r.statusCode));
      expect(await status(first)).toBe(200);
      writeFileSync(file, yaml(sha256Hex(second)));
      const deadline = Date.now() + 20_000;
      while ((await status(second)) !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await status(second)).toBe(200);
      expect(await status(first)).toBe(401);
    } finally {
      stopWatching();
    }
  });
});
