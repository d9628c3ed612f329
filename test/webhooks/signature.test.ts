import { createHmac } from 'node:crypto';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { sign, verifySignature } from '../../src/webhooks/signature';
import { recordedPayloads } from '../helpers/recorded-payloads';
import { deliver, fixture, headersFor, startJenkins, startRelay, until, type FakeJenkins, type RelayStack } from './helpers';

// The test's own hook secret; every expected signature below is computed from it here.
const SECRET = 'fixture-hook-secret-for-tests';
const BODY = fixture('repo-push.json');
const hmac = (alg: string, body: Buffer, secret = SECRET): string => createHmac(alg, Buffer.from(secret, 'utf8')).update(body).digest('hex');
const SIGNATURE = `sha256=${hmac('sha256', BODY)}`;
const otherLastDigit = (s: string): string => s.slice(0, -1) + (s.endsWith('5') ? '6' : '5');

describe('X-Hub-Signature', () => {
  it('HMAC-SHA256 over the raw bytes (non-ASCII included), keyed with the secret in UTF-8', () => {
    expect(BODY.length).toBeGreaterThan(BODY.toString('utf8').length); // multi-byte characters
    expect(BODY.toString('utf8')).toContain('Café');
    expect(sign(BODY, SECRET)).toBe(SIGNATURE);
    expect(verifySignature(BODY, SIGNATURE, SECRET)).toEqual({ ok: true, algorithm: 'sha256' });
    // A digest over the re-serialised JSON is not the digest over the delivered bytes.
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(BODY.toString('utf8'))));
    expect(verifySignature(reserialised, SIGNATURE, SECRET)).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('a one-byte change of the body or of the digest is a 403', () => {
    const changed = Buffer.from(BODY);
    changed[changed.length - 2] ^= 0x01;
    expect(verifySignature(changed, SIGNATURE, SECRET)).toMatchObject({ ok: false, status: 403, reason: 'mismatch' });
    expect(verifySignature(BODY, otherLastDigit(SIGNATURE), SECRET)).toMatchObject({ ok: false, status: 403, reason: 'mismatch' });
    expect(verifySignature(BODY, SIGNATURE, `${SECRET}x`)).toMatchObject({ ok: false, status: 403 });
  });

  it.each(['sha1', 'sha384', 'sha512'] as const)('%s verifies like the plugin (HMAC over the raw bytes, key = secret in UTF-8)', (alg) => {
    const header = `${alg}=${hmac(alg, BODY)}`;
    expect(verifySignature(BODY, header, SECRET)).toEqual({ ok: true, algorithm: alg });
    expect(verifySignature(BODY, header.toUpperCase().replace(alg.toUpperCase(), alg), SECRET)).toEqual({ ok: true, algorithm: alg });
  });

  const digest = hmac('sha256', BODY);
  it.each([
    [undefined, 403, 'missing'],
    ['', 403, 'missing'],
    ['md5=0123456789abcdef0123456789abcdef', 403, 'unknown-algorithm'],
    [digest, 403, 'unknown-algorithm'],
    [`sha256=zz${digest.slice(2)}`, 400, 'malformed'],
    [`sha256=${digest.slice(0, 5)}`, 400, 'malformed'],
    [`sha256=${digest.slice(0, 4)}`, 403, 'mismatch'],
  ])('%j → %i (%s)', (header, status, reason) => {
    expect(verifySignature(BODY, header, SECRET)).toEqual({ ok: false, status, reason });
  });
});

const recorded = recordedPayloads();
if (recorded.present) {
  describe(`the plugin's signature test vector (${recorded.note})`, () => {
    // The vector's secret and signature are read from the payloads' README, not kept in this repository.
    const readme = recorded.payloads.readme();
    const vector = /the secret\s+`([^`]+)`,\s+`X-Hub-Signature` is\s+`(sha256=[0-9a-f]{64})`/.exec(readme);
    const body = recorded.payloads.read('webhooks/cloud--signed_payload.json');

    it('the recorded payload verifies with its recorded signature; its last hex digit changed does not', () => {
      expect(vector).not.toBeNull();
      const [, secret, signature] = vector!;
      expect(verifySignature(body, signature, secret)).toEqual({ ok: true, algorithm: 'sha256' });
      expect(sign(body, secret)).toBe(signature);
      expect(verifySignature(body, otherLastDigit(signature), secret)).toMatchObject({ ok: false, status: 403, reason: 'mismatch' });
    });
  });
} else {
  it(`the plugin's signature test vector: ${recorded.note}`, () => {
    // Said in the test name and on the console, so a run without the payloads never looks complete.
    console.info(recorded.note);
    expect(recorded.present).toBe(false);
  });
}

describe('the relay checks signatures before anything else', () => {
  let fake: FakeBitbucket;
  let jenkins: FakeJenkins;
  let relay: RelayStack;

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    jenkins = await startJenkins();
    // The fixture's repository (acme/service-api) is in scope, so an accepted delivery is forwarded.
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme' }] }], { webhooks: { secret: SECRET, forwardTo: jenkins.url } });
  });
  afterAll(async () => {
    await relay.stop();
    await jenkins.close();
    await fake.close();
  });

  it('a delivery with its signature is accepted and forwarded byte-identical', async () => {
    const h = headersFor('repo:push', undefined, { 'x-hub-signature': SIGNATURE });
    const r = await deliver(relay.url, BODY, h);
    expect(r).toEqual({ status: 200, json: { status: 'accepted' } });
    await until(() => jenkins.delivered(h['x-request-uuid']).length > 0, 'the forward');
    const got = jenkins.delivered(h['x-request-uuid']);
    expect(got).toHaveLength(1);
    expect(got[0].body.equals(BODY)).toBe(true);
    // No per-client secret: no signature at all (Bitbucket's own never leaves the relay).
    expect(got[0].headers['x-hub-signature']).toBeUndefined();
  });

  it('one byte changed → 403, nothing queued or forwarded', async () => {
    const changed = Buffer.from(BODY);
    changed[100] = changed[100] === 0x61 ? 0x62 : 0x61;
    const before = relay.running.sidecar.webhooks.relay!.stats.queued;
    const r = await deliver(relay.url, changed, headersFor('repo:push', undefined, { 'x-hub-signature': SIGNATURE }));
    expect(r.status).toBe(403);
    const lastDigit = await deliver(relay.url, BODY, headersFor('repo:push', undefined, { 'x-hub-signature': otherLastDigit(SIGNATURE) }));
    expect(lastDigit.status).toBe(403);
    expect(relay.running.sidecar.webhooks.relay!.stats.queued).toBe(before);
  });

  it('missing → 403, unknown algorithm → 403, non-hex → 400; other algorithms are accepted', async () => {
    expect((await deliver(relay.url, BODY, headersFor('repo:push'))).status).toBe(403);
    expect((await deliver(relay.url, BODY, headersFor('repo:push', undefined, { 'x-hub-signature': 'md5=00' }))).status).toBe(403);
    expect((await deliver(relay.url, BODY, headersFor('repo:push', undefined, { 'x-hub-signature': 'sha256=not-hex' }))).status).toBe(400);
    for (const alg of ['sha1', 'sha384', 'sha512'] as const) {
      const r = await deliver(relay.url, BODY, headersFor('repo:push', undefined, { 'x-hub-signature': `${alg}=${hmac(alg, BODY)}` }));
      expect(r.status).toBe(200);
    }
  });
});
