import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { sign } from '../../src/webhooks/signature';
import { basicAuth, startStack } from '../helpers/stack';
import { deliver, headersFor, pullRequestBody, pushBody, requestUuid, startJenkins, startRelay, until, type FakeJenkins, type RelayStack } from './helpers';

const BB_SECRET = 'bitbucket-hook-secret';
const JENKINS_A_SECRET = 'jenkins-a-hook-secret';

describe('webhook relay: invalidate, then forward to in-scope clients only', () => {
  let fake: FakeBitbucket;
  let jenkinsA: FakeJenkins; // client acme-ci's own Jenkins (with its hook secret)
  let jenkinsB: FakeJenkins; // the global target (client acme-all, no secret of its own)
  let relay: RelayStack;
  const get = async (id: string, path: string) => {
    const r = await request(`${relay.url}${path}`, { headers: { authorization: basicAuth('jenkins@ci.example', relay.tokens[id]) } });
    const text = await r.body.text();
    return { status: r.statusCode, cache: String(r.headers['cache-status'] ?? ''), json: JSON.parse(text) };
  };
  const signed = (body: Buffer, event: string, uuid = requestUuid()) => headersFor(event, uuid, { 'x-hub-signature': sign(body, BB_SECRET) });
  const stats = () => relay.running.sidecar.webhooks.relay!.stats;

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    jenkinsA = await startJenkins();
    jenkinsB = await startJenkins();
    relay = await startRelay(
      fake,
      [
        { id: 'acme-ci', scope: [{ workspace: 'acme', projects: ['CI'] }], webhooks: { forwardTo: jenkinsA.url, secret: JENKINS_A_SECRET } },
        { id: 'acme-all', scope: [{ workspace: 'acme' }] },
      ],
      { webhooks: { secret: BB_SECRET, forwardTo: jenkinsB.url } },
    );
  });
  afterAll(async () => {
    await relay.stop();
    await jenkinsA.close();
    await jenkinsB.close();
    await fake.close();
  });

  it('push: the next branches request is not served from the cache and shows the new head; both in-scope targets get the delivery', async () => {
    const branches = '/2.0/repositories/acme/service-api/refs/branches?pagelen=100';
    await get('acme-ci', branches);
    const cached = await get('acme-ci', branches);
    expect(cached.cache).toMatch(/; hit/);
    const oldHead = cached.json.values.find((b: any) => b.name === 'main').target.hash;

    const newHead = await fake.pushCommit('acme', 'service-api', 'main', { 'relay.txt': 'pushed\n' }, 'Pushed while cached');
    expect((await get('acme-ci', branches)).json.values.find((b: any) => b.name === 'main').target.hash).toBe(oldHead); // the cache still hides it

    const body = pushBody('acme', 'service-api', 'CI', 'main', newHead);
    const h = signed(body, 'repo:push');
    fake.clearLog();
    expect(await deliver(relay.url, body, h)).toEqual({ status: 200, json: { status: 'accepted' } });

    const after = await get('acme-ci', branches);
    expect(after.cache).not.toMatch(/; hit/);
    expect(after.cache).toMatch(/fwd=(miss|stale)/);
    expect(after.json.values.find((b: any) => b.name === 'main').target.hash).toBe(newHead);
    expect(fake.requests.filter((r) => r.path.endsWith('/refs/branches'))).toHaveLength(1);

    const uuid = h['x-request-uuid'];
    await until(() => jenkinsA.delivered(uuid).length === 1 && jenkinsB.delivered(uuid).length === 1, 'both forwards');
    const [a] = jenkinsA.delivered(uuid);
    const [b] = jenkinsB.delivered(uuid);
    for (const got of [a, b]) {
      expect(got.body.equals(body)).toBe(true);
      expect(got.headers['x-event-key']).toBe('repo:push');
      expect(got.headers['x-hook-uuid']).toBe(h['x-hook-uuid']);
      expect(got.headers['content-type']).toBe('application/json');
      expect(got.headers['user-agent']).toBe('Bitbucket-Webhooks/2.0');
    }
    // Recomputed with Jenkins A's secret; B has none, so it gets no signature: Bitbucket's own
    // never leaves the relay (a tenant's Jenkins could replay it at the relay's door).
    expect(a.headers['x-hub-signature']).toBe(sign(body, JENKINS_A_SECRET));
    expect(b.headers['x-hub-signature']).toBeUndefined();
  });

  it('a delivery for a repository in no client scope is acknowledged, counted and not forwarded; project scope picks the targets', async () => {
    const outside = pushBody('other', 'widgets', 'WID', 'main', 'a'.repeat(40));
    const hOut = signed(outside, 'repo:push');
    const dropped = stats().droppedOutOfScope;
    expect((await deliver(relay.url, outside, hOut)).status).toBe(200);
    expect(stats().droppedOutOfScope).toBe(dropped + 1);

    // acme/infra is project OPS: in acme-all's scope (global target B), not in acme-ci's (A).
    const marker = pushBody('acme', 'infra', 'OPS', 'main', 'b'.repeat(40));
    const hMarker = signed(marker, 'repo:push');
    expect((await deliver(relay.url, marker, hMarker)).status).toBe(200);
    await until(() => jenkinsB.delivered(hMarker['x-request-uuid']).length === 1, 'the in-scope marker');
    await until(() => relay.running.sidecar.webhooks.queueDepth() === 0, 'an empty queue');
    for (const j of [jenkinsA, jenkinsB]) expect(j.received.filter((r) => r.headers['x-request-uuid'] === hOut['x-request-uuid'])).toHaveLength(0);
    expect(jenkinsA.received.filter((r) => r.headers['x-request-uuid'] === hMarker['x-request-uuid'])).toHaveLength(0);
  });

  it('a repeated X-Request-UUID is acknowledged (200) and forwarded once', async () => {
    const body = pushBody('acme', 'infra', 'OPS', 'main', 'c'.repeat(40));
    const h = signed(body, 'repo:push');
    const dups = stats().duplicates;
    expect((await deliver(relay.url, body, h)).status).toBe(200);
    expect((await deliver(relay.url, body, h)).status).toBe(200);
    expect(stats().duplicates).toBe(dups + 1);
    const marker = pushBody('acme', 'infra', 'OPS', 'main', 'd'.repeat(40));
    const hMarker = signed(marker, 'repo:push');
    await deliver(relay.url, marker, hMarker);
    await until(() => jenkinsB.delivered(hMarker['x-request-uuid']).length === 1, 'the marker after the duplicate');
    expect(jenkinsB.received.filter((r) => r.headers['x-request-uuid'] === h['x-request-uuid'])).toHaveLength(1);
  });

  it('pullrequest:* → the pull request list and that pull request are fetched again', async () => {
    const list = '/2.0/repositories/acme/service-web/pullrequests?pagelen=50';
    await get('acme-ci', list);
    const prs = await get('acme-ci', list);
    expect(prs.cache).toMatch(/; hit/);
    const id = prs.json.values[0]?.id ?? 1;
    const one = `/2.0/repositories/acme/service-web/pullrequests/${id}`;
    await get('acme-ci', one);
    expect((await get('acme-ci', one)).cache).toMatch(/; hit/);

    const body = pullRequestBody('acme', 'service-web', 'CI', id, 'feature/x', 'main');
    expect((await deliver(relay.url, body, signed(body, 'pullrequest:updated'))).status).toBe(200);
    expect((await get('acme-ci', list)).cache).not.toMatch(/; hit/);
    expect((await get('acme-ci', one)).cache).not.toMatch(/; hit/);
  });

  it('events Jenkins does not process invalidate but are not forwarded', async () => {
    const updated = JSON.parse(pushBody('acme', 'service-api', 'CI', 'main', 'e'.repeat(40)).toString('utf8'));
    delete updated.push;
    updated.changes = { description: { old: 'before', new: 'after' } };
    const body = Buffer.from(JSON.stringify(updated));
    const h = signed(body, 'repo:updated');
    const ignored = stats().ignoredEvents;
    expect((await deliver(relay.url, body, h)).status).toBe(200);
    expect(stats().ignoredEvents).toBe(ignored + 1);
    expect(relay.running.sidecar.webhooks.queueDepth()).toBe(0);
  });

  it.each([
    ['no X-Request-UUID', (b: Buffer) => ({ 'x-event-key': 'repo:push', 'x-hub-signature': sign(b, BB_SECRET) }), pushBody('acme', 'infra', 'OPS', 'main', 'f'.repeat(40))],
    ['no X-Event-Key', (b: Buffer) => ({ 'x-request-uuid': requestUuid(), 'x-hub-signature': sign(b, BB_SECRET) }), pushBody('acme', 'infra', 'OPS', 'main', 'f'.repeat(40))],
    ['an empty body', (b: Buffer) => signed(b, 'repo:push'), Buffer.alloc(0)],
    ['a body that is not JSON', (b: Buffer) => signed(b, 'repo:push'), Buffer.from('<xml/>')],
    ['no repository', (b: Buffer) => signed(b, 'repo:push'), Buffer.from('{"push":{"changes":[]}}')],
  ])('%s → 400', async (_what, headers, body) => {
    expect((await deliver(relay.url, body, headers(body))).status).toBe(400);
  });

  it('only POST on the relay path; it needs no client token', async () => {
    const r = await request(`${relay.url}/_sidecar/webhooks/bitbucket`);
    await r.body.dump();
    expect(r.statusCode).toBe(404);
  });
});

describe('webhook relay: bounded queue', () => {
  let fake: FakeBitbucket;
  let jenkins: FakeJenkins;
  let relay: RelayStack;

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    jenkins = await startJenkins(0, 503);
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme' }] }], {
      webhooks: { forwardTo: jenkins.url, path: '/_sidecar/hooks/in', queue: { maxEntries: 1, retryMinSeconds: 0.01, retryMaxSeconds: 0.02 } },
    });
  });
  afterAll(async () => {
    await relay.stop();
    await jenkins.close();
    await fake.close();
  });

  it('when maxEntries deliveries wait, the next one is refused with 503 (Bitbucket retries it) and counted', async () => {
    const first = pushBody('acme', 'infra', 'OPS', 'main', '1'.repeat(40));
    const h1 = headersFor('repo:push');
    expect((await deliver(relay.url, first, h1, '/_sidecar/hooks/in')).status).toBe(200);
    await until(() => jenkins.received.length >= 2, 'Jenkins answering 503 twice');

    const second = pushBody('acme', 'infra', 'OPS', 'main', '2'.repeat(40));
    const h2 = headersFor('repo:push');
    const refused = await deliver(relay.url, second, h2, '/_sidecar/hooks/in');
    expect(refused.status).toBe(503);
    expect(relay.running.sidecar.webhooks.relay!.stats.queueFull).toBe(1);
    expect(relay.logs.some((l) => l.includes('webhook queue full'))).toBe(true);

    jenkins.status = 200;
    await until(() => jenkins.delivered(h1['x-request-uuid']).length === 1, 'the first delivery');
    await until(() => relay.running.sidecar.webhooks.queueDepth() === 0, 'an empty queue');
    // Bitbucket's retry of the refused delivery (same X-Request-UUID) is now accepted and forwarded.
    expect((await deliver(relay.url, second, h2, '/_sidecar/hooks/in')).status).toBe(200);
    await until(() => jenkins.delivered(h2['x-request-uuid']).length === 1, 'the retried delivery');
    expect(jenkins.delivered(h1['x-request-uuid'])).toHaveLength(1);
  });
});

describe('without a webhooks section there is no relay', () => {
  it('POST /_sidecar/webhooks/bitbucket → 404', async () => {
    const stack = await startStack([{ id: 'ci', scope: [{ workspace: 'acme' }] }]);
    try {
      const body = pushBody('acme', 'infra', 'OPS', 'main', '3'.repeat(40));
      expect((await deliver(stack.url, body, headersFor('repo:push'))).status).toBe(404);
      expect(stack.running.sidecar.webhooks.relay).toBeUndefined();
      expect(stack.running.sidecar.webhooks.queueDepth()).toBe(0);
    } finally {
      await stack.stop();
    }
  });
});
