import { rmSync } from 'node:fs';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { deliver, headersFor, pushBody, startJenkins, startRelay, tempDir, until, type FakeJenkins, type RelayClient, type RelayStack } from './helpers';

/**
 * Nothing lost, nothing doubled: a delivery acknowledged to Bitbucket reaches Jenkins exactly once
 * through Jenkins answering 503, Jenkins down, and a sidecar restart in between.
 */
describe('webhook queue: survives Jenkins outages and a sidecar restart', () => {
  let fake: FakeBitbucket;
  let stateDir: string;
  const clients: RelayClient[] = [{ id: 'ci', scope: [{ workspace: 'acme' }] }];
  const tokens: Record<string, string> = {};
  const started: RelayStack[] = [];
  const jenkinses: FakeJenkins[] = [];

  const start = async (url: string) => {
    const s = await startRelay(fake, clients, { webhooks: { forwardTo: url, queue: { retryMinSeconds: 0.01, retryMaxSeconds: 0.05 } } }, { stateDir, tokens });
    Object.assign(tokens, s.tokens);
    started.push(s);
    return s;
  };
  const relayOf = (s: RelayStack) => s.running.sidecar.webhooks.relay!;

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    stateDir = tempDir('relay-durable-');
  });
  afterAll(async () => {
    for (const s of started) await s.stop().catch(() => undefined);
    for (const j of jenkinses) await j.close().catch(() => undefined);
    await fake.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('503, then down, then 2xx — with a restart in between — arrives exactly once', async () => {
    const jenkins = await startJenkins(0, 503);
    jenkinses.push(jenkins);
    const port = jenkins.port;
    const first = await start(jenkins.url);

    const body = pushBody('acme', 'service-api', 'CI', 'main', '9'.repeat(40));
    const h = headersFor('repo:push');
    const uuid = h['x-request-uuid'];
    expect((await deliver(first.url, body, h)).status).toBe(200);
    await until(() => jenkins.received.length >= 2, 'two 503 answers');
    expect(jenkins.delivered(uuid)).toHaveLength(0);

    await jenkins.close(); // down: connection refused
    const failedBefore = relayOf(first).forwarding.failedAttempts;
    await until(() => relayOf(first).forwarding.failedAttempts > failedBefore, 'an attempt against the closed port');
    expect(relayOf(first).queueDepth()).toBe(1);
    await first.stop();

    const second = await start(jenkins.url);
    expect(relayOf(second).queueDepth()).toBe(1); // read back from the state directory
    await until(() => relayOf(second).forwarding.failedAttempts > 0, 'an attempt after the restart, Jenkins still down');

    const back = await startJenkins(port, 200);
    jenkinses.push(back);
    await until(() => back.delivered(uuid).length === 1, 'the delivery once Jenkins is back');
    await until(() => relayOf(second).queueDepth() === 0, 'an empty queue');
    const got = back.delivered(uuid)[0];
    expect(got.body.equals(body)).toBe(true);
    expect(got.headers['x-event-key']).toBe('repo:push');

    // Nothing else is on its way: a later delivery arrives, the first is still there once.
    const marker = headersFor('repo:push');
    await deliver(second.url, pushBody('acme', 'infra', 'OPS', 'main', '8'.repeat(40)), marker);
    await until(() => back.delivered(marker['x-request-uuid']).length === 1, 'the marker');
    await second.stop();

    // The success was committed: a third start sends nothing again, and still knows the UUID.
    const third = await start(back.url);
    expect(relayOf(third).queueDepth()).toBe(0);
    expect((await deliver(third.url, body, h)).status).toBe(200);
    expect(relayOf(third).stats.duplicates).toBe(1);
    const marker2 = headersFor('repo:push');
    await deliver(third.url, pushBody('acme', 'infra', 'OPS', 'main', '7'.repeat(40)), marker2);
    await until(() => back.delivered(marker2['x-request-uuid']).length === 1, 'the second marker');

    expect([...jenkins.received, ...back.received].filter((r) => r.headers['x-request-uuid'] === uuid && r.status < 300)).toHaveLength(1);
    expect(back.received.filter((r) => r.headers['x-request-uuid'] === uuid)).toHaveLength(1);
    await third.stop();
  });

  it('one sidecar per state directory: a second one sharing it fails at start', async () => {
    const j = await startJenkins();
    jenkinses.push(j);
    const owner = await start(j.url);
    await expect(start(j.url)).rejects.toThrow(/in use by another process/);
    await owner.stop();
  });
});
