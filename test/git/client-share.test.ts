/**
 * Git requests streamed to Bitbucket count against its hourly git limit for the one credential:
 * each client gets a fair share of it, so one client cloning in a loop is refused alone (429 with
 * Retry-After, as git text) while the others keep being served.
 */
import { runGit } from './helpers';
import { startStack, type Stack } from '../helpers/stack';

describe('a fair share of the git hour per client', () => {
  let stack: Stack;
  beforeAll(async () => {
    const { startFakeBitbucket } = await import('../../src/fake-bitbucket');
    const fake = await startFakeBitbucket({ seed: 'demo' });
    stack = await startStack(
      [
        { id: 'loop', scope: [{ workspace: 'acme' }] },
        { id: 'ci', scope: [{ workspace: 'acme' }] },
      ],
      {
        fakeInstance: fake,
        config: {
          upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken } },
          mirror: { gitRequestsPerHour: 10 },
        },
      },
    );
  });
  afterAll(async () => {
    await stack.stop();
    await stack.fake.close();
  });

  // Protocol v0: one request per ls-remote (info/refs), so counts are plain.
  const lsRemote = (client: string) => runGit(['-c', 'protocol.version=0', 'ls-remote', '--heads', `${stack.url}/acme/service-api.git`], { token: stack.tokens[client] });

  it('refuses the client past its share and serves the others', async () => {
    // Alone, a client may use the whole hour (10): six requests.
    for (let i = 0; i < 6; i++) expect((await lsRemote('loop')).code).toBe(0);
    // Another client arrives: each now has half (5); ci has used none.
    expect((await lsRemote('ci')).code).toBe(0);
    const refused = await lsRemote('loop');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/share of the hour's git requests/);
    for (let i = 0; i < 3; i++) expect((await lsRemote('ci')).code).toBe(0);
    const audit = stack.logs.map((l) => JSON.parse(l)).filter((l) => l.kind === 'audit' && l.decision === 'rate-limited');
    expect(audit.map((l) => [l.client, l.status])).toEqual([['loop', 429]]);
    // What reached Bitbucket: 6 + 4 info/refs, not the refused one.
    expect(stack.fake.requests.filter((r) => r.kind === 'git').length).toBe(10);
  });
});
