import { request } from 'undici';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

/**
 * Regression for a finding of scope.property.test.ts: the fork of an open pull request is readable
 * at the PR's source commit, which the PR list gives as 12 hex characters. The gate accepted any
 * longer hash that merely *started with* those 12 characters, so a client could make the sidecar
 * ask upstream about `commit/` or `src/` of an arbitrary 40-character hash in the out-of-scope
 * fork. A hash longer than the PR's is now accepted only when it is the full hash upstream itself
 * named for that commit (the fork's source branch or `commit/{short}` answer).
 */
describe('fork grants: a hash longer than the PR gives must be the confirmed full hash', () => {
  let stack: Stack;
  const FORK = '/2.0/repositories/jdoe/service-api-fork';
  const get = (path: string) =>
    request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('j@ci.example', stack.tokens.scoped) } }).then(async (r) => ({
      status: r.statusCode,
      text: await r.body.text(),
    }));
  const forkRequests = () => stack.fake.requests.filter((r) => r.workspace === 'jdoe').map((r) => `${r.method} ${r.path}`);
  let short: string;

  beforeAll(async () => {
    stack = await startStack([{ id: 'scoped', scope: [{ workspace: 'acme' }] }]);
    const prs = JSON.parse((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).text);
    short = prs.values.find((p: { id: number }) => p.id === 2).source.commit.hash;
    expect(short).toMatch(/^[0-9a-f]{12}$/);
  });
  afterAll(() => stack.stop());

  const impostor = () => `${short}${'0123456789abcdef0123456789ab'}`;

  it('refuses a 40-character hash that only shares the PR commit prefix, without asking upstream', async () => {
    stack.fake.clearLog();
    expect((await get(`${FORK}/commit/${impostor()}`)).status).toBe(404);
    expect((await get(`${FORK}/src/${impostor()}/Jenkinsfile?format=meta`)).status).toBe(404);
    expect((await get(`${FORK}/src/${impostor()}/`)).status).toBe(404);
    expect(forkRequests()).toEqual([]);
  });

  it('accepts the full hash once upstream named it, and still refuses the impostor', async () => {
    const commit = await get(`${FORK}/commit/${short}`);
    expect(commit.status).toBe(200);
    const full: string = JSON.parse(commit.text).hash;
    expect(full).toHaveLength(40);
    expect(full.startsWith(short)).toBe(true);
    expect(full).not.toBe(impostor());

    expect((await get(`${FORK}/commit/${full}`)).status).toBe(200);
    expect((await get(`${FORK}/src/${full}/Jenkinsfile?format=meta`)).status).toBe(200);
    expect((await get(`${FORK}/src/${full.slice(0, 20)}/Jenkinsfile?format=meta`)).status).toBe(200);
    stack.fake.clearLog();
    expect((await get(`${FORK}/commit/${impostor()}`)).status).toBe(404);
    expect((await get(`${FORK}/src/${impostor().slice(0, 20)}/Jenkinsfile`)).status).toBe(404);
    expect(forkRequests()).toEqual([]);
  });

  it('keeps the confirmed full hash when the PR list is read again', async () => {
    stack.running.sidecar.cache.invalidateRepository('acme', 'service-api');
    expect((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
    const grant = stack.running.sidecar.facts.forkGrants('jdoe/service-api-fork')[0];
    expect(grant.fullCommit).toMatch(new RegExp(`^${short}[0-9a-f]{28}$`));
    expect((await get(`${FORK}/src/${grant.fullCommit}/Jenkinsfile?format=meta`)).status).toBe(200);
  });

  it('learns the full hash from the source branch answer too (the plugin asks for it first)', async () => {
    const other = await startStack([{ id: 'scoped', scope: [{ workspace: 'acme' }] }], { fakeInstance: stack.fake });
    try {
      const g = (path: string) =>
        request(`${other.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('j@ci.example', other.tokens.scoped) } }).then((r) => r.body.text().then((text) => ({ status: r.statusCode, text })));
      expect((await g('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
      const branch = await g(`${FORK}/refs/branches/feature%2FBB-2`);
      expect(branch.status).toBe(200);
      const full: string = JSON.parse(branch.text).target.hash;
      expect((await g(`${FORK}/src/${full}/Jenkinsfile?format=meta`)).status).toBe(200);
    } finally {
      await other.stop();
    }
  });
});
