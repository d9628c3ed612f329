/**
 * A fork grant ends when its pull request does: at once on a signed pullrequest:rejected or
 * pullrequest:fulfilled delivery, and without webhooks no later than the pull request list's
 * freshness (the grant is checked again before use). Real sockets, the fake Bitbucket.
 */
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { sign } from '../../src/webhooks/signature';
import { basicAuth } from '../helpers/stack';
import { request } from '../ops/http';
import { deliver, headersFor, pushBody, startRelay, type RelayStack } from '../webhooks/helpers';

const SECRET = 'grant-end-secret';
const FORK_BRANCH = '/2.0/repositories/jdoe/service-api-fork/refs/branches/feature%2FBB-2';

/** A pullrequest:* delivery body with the fields the relay reads (Bitbucket's shape, trimmed). */
function closedBody(id: number, state: 'DECLINED' | 'MERGED'): Buffer {
  const repo = (full: string) => ({ type: 'repository', full_name: full, name: full.split('/')[1], uuid: '{00000000-0000-4000-8000-00000000aaaa}' });
  return Buffer.from(
    JSON.stringify({
      repository: { ...repo('acme/service-api'), project: { type: 'project', key: 'CI' } },
      actor: { type: 'user', display_name: 'Someone' },
      pullrequest: {
        type: 'pullrequest',
        id,
        state,
        source: { repository: repo('jdoe/service-api-fork'), branch: { name: 'feature/BB-2' }, commit: { hash: 'aaaaaaaaaaaa' } },
        destination: { repository: repo('acme/service-api'), branch: { name: 'main' }, commit: { hash: 'bbbbbbbbbbbb' } },
      },
    }),
  );
}

describe('a fork grant ends when its pull request does', () => {
  let fake: FakeBitbucket;
  let relay: RelayStack;
  beforeEach(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
  });
  afterEach(async () => {
    await relay?.stop();
    await fake.close();
  });

  const get = (path: string) => request(`${relay.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('x', relay.tokens.ci) } });
  const forkPr = () => fake.model.pullRequests.find((p) => p.state === 'OPEN' && fake.model.repositories.find((r) => r.uuid === p.source.repository)?.slug === 'service-api-fork')!;

  it('on a signed pullrequest:rejected, at once and without reading the list again', async () => {
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] }], { webhooks: { secret: SECRET } });
    expect((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
    expect((await get(FORK_BRANCH)).status).toBe(200);
    const pr = forkPr();
    const body = closedBody(pr.id, 'DECLINED');
    fake.clearLog();
    const r = await deliver(relay.url, body, headersFor('pullrequest:rejected', undefined, { 'x-hub-signature': sign(body, SECRET) }));
    expect(r.status).toBe(200);
    expect((await get(FORK_BRANCH)).status).toBe(404);
    expect(fake.requests.filter((q) => q.path.endsWith('/pullrequests'))).toEqual([]);
  });

  it('on a signed push that deletes the source branch, at once', async () => {
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] }], { webhooks: { secret: SECRET } });
    expect((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
    expect((await get(FORK_BRANCH)).status).toBe(200);
    const push = (branch: string) => {
      const j = JSON.parse(pushBody('jdoe', 'service-api-fork', 'FORK', branch, 'a'.repeat(40)).toString('utf8'));
      j.push.changes[0].new = null;
      j.push.changes[0].closed = true;
      return Buffer.from(JSON.stringify(j));
    };
    // Another branch of the fork deleted: the grant stays.
    const other = push('feature/unrelated');
    expect((await deliver(relay.url, other, headersFor('repo:push', undefined, { 'x-hub-signature': sign(other, SECRET) }))).status).toBe(200);
    expect((await get(FORK_BRANCH)).status).toBe(200);
    // Unsigned: nothing ends.
    const body = push('feature/BB-2');
    expect((await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, 'not-the-secret') }))).status).toBe(403);
    expect((await get(FORK_BRANCH)).status).toBe(200);
    expect((await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, SECRET) }))).status).toBe(200);
    expect((await get(FORK_BRANCH)).status).toBe(404);
  });

  it('an unsigned or forged delivery ends nothing', async () => {
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] }], { webhooks: { secret: SECRET } });
    expect((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
    const body = closedBody(forkPr().id, 'MERGED');
    expect((await deliver(relay.url, body, headersFor('pullrequest:fulfilled', undefined, { 'x-hub-signature': sign(body, 'not-the-secret') }))).status).toBe(403);
    expect((await get(FORK_BRANCH)).status).toBe(200);
  });

  it('without webhooks, once the pull request list\'s freshness has passed', async () => {
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] }], { cache: { freshness: { listSeconds: 1 } } });
    expect((await get('/2.0/repositories/acme/service-api/pullrequests?pagelen=50')).status).toBe(200);
    expect((await get(FORK_BRANCH)).status).toBe(200);
    forkPr().state = 'DECLINED';
    await new Promise((r) => setTimeout(r, 1_200));
    expect((await get(FORK_BRANCH)).status).toBe(404);
    // One read of that pull request decided it, not a walk of the list.
    expect(fake.requests.filter((q) => /\/pullrequests\/\d+$/.test(q.path))).toHaveLength(1);
  });
});
