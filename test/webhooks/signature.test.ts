import { createHmac } from 'node:crypto';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { sign, verifySignature } from '../../src/webhooks/signature';
import { deliver, headersFor, payload, startJenkins, startRelay, until, VECTOR, type FakeJenkins, type RelayStack } from './helpers';

describe('X-Hub-Signature (reference §7)', () => {
  const body = payload(VECTOR.file);

  it('the plugin test vector: the recorded payload is byte-exact and its signature verifies', () => {
    expect(body.length).toBe(14_515);
    expect(verifySignature(body, VECTOR.signature, VECTOR.secret)).toEqual({ ok: true, algorithm: 'sha256' });
    expect(sign(body, VECTOR.secret)).toBe(VECTOR.signature);
  });

  it('a one-byte change of the body or of the digest is a 403', () => {
    const changed = Buffer.from(body);
    changed[changed.length - 2] ^= 0x01;
    expect(verifySignature(changed, VECTOR.signature, VECTOR.secret)).toMatchObject({ ok: false, status: 403, reason: 'mismatch' });
    const lastDigit = VECTOR.signature.slice(0, -1) + (VECTOR.signature.endsWith('5') ? '6' : '5');
    expect(verifySignature(body, lastDigit, VECTOR.secret)).toMatchObject({ ok: false, status: 403, reason: 'mismatch' });
    expect(verifySignature(body, VECTOR.signature, `${VECTOR.secret}x`)).toMatchObject({ ok: false, status: 403 });
  });

  it.each(['sha1', 'sha384', 'sha512'] as const)('%s verifies like the plugin (HMAC over the raw bytes, key = secret in UTF-8)', (alg) => {
    const header = `${alg}=${createHmac(alg, VECTOR.secret).update(body).digest('hex')}`;
    expect(verifySignature(body, header, VECTOR.secret)).toEqual({ ok: true, algorithm: alg });
    expect(verifySignature(body, header.toUpperCase().replace(alg.toUpperCase(), alg), VECTOR.secret)).toEqual({ ok: true, algorithm: alg });
  });

  it.each([
    [undefined, 403, 'missing'],
    ['', 403, 'missing'],
    ['md5=0123456789abcdef0123456789abcdef', 403, 'unknown-algorithm'],
    ['f205c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035', 403, 'unknown-algorithm'],
    ['sha256=zz05c729821c6954aff2afe72b965c34015b4baf96ea8ddc2cc44999c014a035', 400, 'malformed'],
    ['sha256=f205c', 400, 'malformed'],
    ['sha256=f205', 403, 'mismatch'],
  ])('%j → %i (%s)', (header, status, reason) => {
    expect(verifySignature(body, header, VECTOR.secret)).toEqual({ ok: false, status, reason });
  });
});

describe('the relay checks signatures before anything else', () => {
  let fake: FakeBitbucket;
  let jenkins: FakeJenkins;
  let relay: RelayStack;
  const body = payload(VECTOR.file);

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    jenkins = await startJenkins();
    // The vector's repository (nfalco79/test-repos) is made in scope, so an accepted delivery is forwarded.
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'nfalco79' }] }], { webhooks: { secret: VECTOR.secret, forwardTo: jenkins.url } });
  });
  afterAll(async () => {
    await relay.stop();
    await jenkins.close();
    await fake.close();
  });

  it('the recorded delivery with its recorded signature is accepted and forwarded byte-identical', async () => {
    const h = headersFor('repo:push', undefined, { 'x-hub-signature': VECTOR.signature });
    const r = await deliver(relay.url, body, h);
    expect(r).toEqual({ status: 200, json: { status: 'accepted' } });
    await until(() => jenkins.delivered(h['x-request-uuid']).length > 0, 'the forward');
    const got = jenkins.delivered(h['x-request-uuid']);
    expect(got).toHaveLength(1);
    expect(got[0].body.equals(body)).toBe(true);
    // No per-client secret: no signature at all (Bitbucket's own never leaves the relay).
    expect(got[0].headers['x-hub-signature']).toBeUndefined();
  });

  it('one byte changed → 403, nothing queued or forwarded', async () => {
    const changed = Buffer.from(body);
    changed[100] = changed[100] === 0x61 ? 0x62 : 0x61;
    const before = relay.running.sidecar.webhooks.relay!.stats.queued;
    const r = await deliver(relay.url, changed, headersFor('repo:push', undefined, { 'x-hub-signature': VECTOR.signature }));
    expect(r.status).toBe(403);
    const lastDigit = await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': VECTOR.signature.slice(0, -1) + '6' }));
    expect(lastDigit.status).toBe(403);
    expect(relay.running.sidecar.webhooks.relay!.stats.queued).toBe(before);
  });

  it('missing → 403, unknown algorithm → 403, non-hex → 400; other algorithms are accepted', async () => {
    expect((await deliver(relay.url, body, headersFor('repo:push'))).status).toBe(403);
    expect((await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': 'md5=00' }))).status).toBe(403);
    expect((await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': 'sha256=not-hex' }))).status).toBe(400);
    for (const alg of ['sha1', 'sha384', 'sha512'] as const) {
      const r = await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, VECTOR.secret, alg) }));
      expect(r.status).toBe(200);
    }
  });
});
