/**
 * A wrong upstream credential is the operator's problem, and reads as one: clients get a 502 that
 * says so (never a 401 that looks like their own token's fault), the log has one warning naming the
 * credential (not its secret), and readiness is not ready until a call succeeds again.
 */
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { CREDENTIAL_REJECTED_MESSAGE } from '../../src/upstream/credential-health';
import { runGit } from '../git/helpers';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { request } from '../ops/http';

describe('a rejected upstream credential', () => {
  let fake: FakeBitbucket;
  let stack: Stack;
  // A credentials object of this fake's own: rotating it below changes what this fake accepts.
  const credentials = { email: 'owner@example.com', apiToken: 'ATATT-upstream-token-of-the-test' };

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo', credentials });
    stack = await startStack([{ id: 'ci', scope: [{ workspace: 'acme' }] }], { fakeInstance: fake });
  });
  afterAll(async () => {
    await stack.stop();
    await fake.close();
  });

  const get = (path: string) => request(`${stack.url}${path}`, { headers: { authorization: basicAuth('x', stack.tokens.ci) } });
  const ready = async () => {
    const r = await request(`${stack.url}/_sidecar/ready`);
    return { status: r.status, checks: JSON.parse(r.body).checks as Record<string, string> };
  };

  it('is a 502 naming the cause for clients, a warning for the operator, and not ready', async () => {
    expect((await get('/2.0/repositories/acme/service-api')).status).toBe(200);
    expect((await ready()).status).toBe(200);

    credentials.apiToken = 'ATATT-rotated-at-bitbucket';
    const r = await get('/2.0/repositories/acme/service-web/refs/branches?pagelen=100');
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body)).toEqual({ type: 'error', error: { message: CREDENTIAL_REJECTED_MESSAGE } });
    expect((await get('/2.0/repositories/acme/infra')).status).toBe(502);

    const warnings = stack.logs.filter((l) => l.includes('Bitbucket rejected the upstream credential'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('upstream.auth (basic, owner@example.com)');
    expect(stack.logs.join('\n')).not.toContain('ATATT-');

    const notReady = await ready();
    expect(notReady.status).toBe(503);
    expect(notReady.checks.credential).toMatch(/^rejected by Bitbucket \(401\): upstream\.auth since \S+; fix it/);

    // Git with the same credential: git's own message, a 502 as well.
    const clone = await runGit(['ls-remote', `${stack.url}/acme/service-api.git`], { token: stack.tokens.ci });
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toMatch(/sidecar's own git credential/);
    expect((await ready()).checks.credential).toMatch(/upstream\.auth since .*, upstream\.gitAuth since /);
  });

  it('is ready again once a call succeeds with it', async () => {
    credentials.apiToken = 'ATATT-upstream-token-of-the-test';
    expect((await get('/2.0/repositories/acme/docs-site')).status).toBe(200);
    expect((await ready()).status).toBe(503); // git's credential has not been seen to work yet
    expect((await runGit(['ls-remote', `${stack.url}/acme/service-api.git`], { token: stack.tokens.ci })).code).toBe(0);
    const r = await ready();
    expect(r.status).toBe(200);
    expect(r.checks.credential).toBe('not rejected by Bitbucket');
    expect(stack.logs.some((l) => l.includes('Bitbucket accepts the upstream credential again'))).toBe(true);
  });
});
