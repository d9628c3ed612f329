/**
 * Replays are not deliveries. Bitbucket's signature covers only the body, so whoever captured one
 * signed delivery could re-send it with fresh headers: the relay acknowledges a body it already
 * accepted and neither forwards it nor invalidates with it again; the event key must match the
 * body; targets never receive Bitbucket's own signature. Real sockets, the fake Bitbucket.
 */
import { rmSync } from 'node:fs';
import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { sign } from '../../src/webhooks/signature';
import { basicAuth } from '../helpers/stack';
import { deliver, headersFor, pullRequestBody, pushBody, startJenkins, startRelay, tempDir, until, type FakeJenkins, type RelayStack } from './helpers';

const BB_SECRET = 'replay-bitbucket-secret';
const TARGET_SECRET = 'replay-target-secret';
const BRANCHES = '/2.0/repositories/acme/service-api/refs/branches?pagelen=100';

describe('a captured signed delivery re-sent is acknowledged, never delivered again', () => {
  let fake: FakeBitbucket;
  let own: FakeJenkins; // client ci's Jenkins, with its own hook secret
  let global: FakeJenkins; // the relay-wide target (client all has none of its own), without a secret
  let relay: RelayStack;
  const stateDir = tempDir('sidecar-replay-');
  const signed = (body: Buffer, event: string) => headersFor(event, undefined, { 'x-hub-signature': sign(body, BB_SECRET) });
  const start = () =>
    startRelay(fake, [
        { id: 'ci', scope: [{ workspace: 'acme' }], webhooks: { forwardTo: own.url, secret: TARGET_SECRET } },
        { id: 'all', scope: [{ workspace: 'acme' }] },
      ], { webhooks: { secret: BB_SECRET, forwardTo: global.url } }, { stateDir, tokens: relay?.tokens });
  const get = async (path: string) => {
    const r = await request(`${relay.url}${path}`, { headers: { authorization: basicAuth('x', relay.tokens.ci) } });
    await r.body.text();
    return { status: r.statusCode, cache: String(r.headers['cache-status'] ?? '') };
  };

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    own = await startJenkins();
    global = await startJenkins();
    relay = await start();
  });
  afterAll(async () => {
    await relay.stop();
    await own.close();
    await global.close();
    await fake.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('a fresh X-Request-UUID: 200, not forwarded again, the cache not emptied again', async () => {
    const head = await fake.pushCommit('acme', 'service-api', 'main', { 'replay.txt': 'one\n' }, 'Replay me');
    const body = pushBody('acme', 'service-api', 'CI', 'main', head);
    const first = signed(body, 'repo:push');
    expect((await deliver(relay.url, body, first)).status).toBe(200);
    await until(() => own.delivered().length === 1 && global.delivered().length === 1, 'the first forwards');

    // Cached again after the genuine delivery's invalidation.
    await get(BRANCHES);
    expect((await get(BRANCHES)).cache).toMatch(/; hit/);

    const again = signed(body, 'repo:push');
    expect(again['x-request-uuid']).not.toBe(first['x-request-uuid']);
    fake.clearLog();
    expect(await deliver(relay.url, body, again)).toEqual({ status: 200, json: { status: 'accepted' } });
    expect(relay.running.sidecar.webhooks.relay!.stats.replays).toBe(1);
    expect((await get(BRANCHES)).cache).toMatch(/; hit/);
    expect(fake.requests.filter((r) => r.path.endsWith('/refs/branches'))).toEqual([]);
    // Give a wrongly queued forward time to arrive, then check none did.
    const marker = pushBody('acme', 'service-api', 'CI', 'main', await fake.pushCommit('acme', 'service-api', 'main', { 'replay.txt': 'two\n' }, 'Marker'));
    const markerHeaders = signed(marker, 'repo:push');
    expect((await deliver(relay.url, marker, markerHeaders)).status).toBe(200);
    await until(() => own.delivered(markerHeaders['x-request-uuid']).length === 1 && global.delivered(markerHeaders['x-request-uuid']).length === 1, 'the marker forwards');
    expect(own.delivered().filter((d) => d.body.equals(body))).toHaveLength(1);
    expect(global.delivered().filter((d) => d.body.equals(body))).toHaveLength(1);
  });

  it('targets never receive Bitbucket\'s signature: their own secret re-signs, no secret means none', async () => {
    const [mine] = own.delivered();
    const [theirs] = global.delivered();
    expect(mine.headers['x-hub-signature']).toBe(sign(mine.body, TARGET_SECRET));
    expect(mine.headers['x-hub-signature']).not.toBe(sign(mine.body, BB_SECRET));
    expect(theirs.headers['x-hub-signature']).toBeUndefined();
    for (const d of [...own.received, ...global.received]) expect(d.headers['x-hub-signature']).not.toBe(sign(d.body, BB_SECRET));
  });

  it('another X-Event-Key on a signed body is a 400 and changes nothing', async () => {
    const body = pushBody('acme', 'service-api', 'CI', 'feature/other-key', 'c'.repeat(40));
    const before = own.received.length;
    for (const event of ['pullrequest:updated', 'pullrequest:rejected', 'repo:updated']) {
      const r = await deliver(relay.url, body, signed(body, event));
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.json)).toMatch(/does not match/);
    }
    const pr = pullRequestBody('acme', 'service-api', 'CI', 7, 'feature/x', 'main');
    expect((await deliver(relay.url, pr, signed(pr, 'repo:push'))).status).toBe(400);
    // An open pull request's body cannot pose as its decline or merge (that would end fork grants).
    for (const event of ['pullrequest:rejected', 'pullrequest:fulfilled']) {
      const r = await deliver(relay.url, pr, signed(pr, event));
      expect(r.status).toBe(400);
      expect(JSON.stringify(r.json)).toMatch(/state/);
    }
    expect((await deliver(relay.url, pr, signed(pr, 'pullrequest:updated'))).status).toBe(200);
    await until(() => own.received.length === before + 1, 'the one valid delivery');
    expect(own.received.slice(before).map((d) => d.headers['x-event-key'])).toEqual(['pullrequest:updated']);
  });

  it('a replay after a restart is still recognised (the queue keeps what it accepted)', async () => {
    const body = pushBody('acme', 'service-api', 'CI', 'main', 'd'.repeat(40));
    expect((await deliver(relay.url, body, signed(body, 'repo:push'))).status).toBe(200);
    await until(() => own.delivered().filter((d) => d.body.equals(body)).length === 1, 'the forward before the restart');
    await relay.stop();
    relay = await start();
    expect((await deliver(relay.url, body, signed(body, 'repo:push'))).status).toBe(200);
    expect(relay.running.sidecar.webhooks.relay!.stats.replays).toBe(1);
    expect(relay.running.sidecar.webhooks.relay!.stats.queued).toBe(0);
  });
});
