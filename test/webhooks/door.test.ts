/**
 * The webhook door needs no sidecar token, so everything it may hold is bounded: one body's size,
 * the bytes of all bodies being received, the time a body has to arrive, and the connection slots
 * its requests take (they count like any other request's).
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { sign } from '../../src/webhooks/signature';
import { basicAuth } from '../helpers/stack';
import { deliver, headersFor, pushBody, startRelay, until, type RelayStack } from './helpers';

const SECRET = 'door-secret';
const KiB = 1024;

interface RawDelivery {
  socket: net.Socket;
  /** Everything the sidecar wrote, once it closed the connection. */
  answer: Promise<string>;
}

/** A delivery written by hand: its head, then only `first` of its body (the rest never comes). */
function openDelivery(url: string, opts: { contentLength?: number; first?: Buffer; localAddress?: string }): RawDelivery {
  const { port } = new URL(url);
  const socket = net.connect({ host: '127.0.0.1', port: Number(port), localAddress: opts.localAddress });
  const framing = opts.contentLength !== undefined ? `content-length: ${opts.contentLength}\r\n` : 'transfer-encoding: chunked\r\n';
  const head = `POST /_sidecar/webhooks/bitbucket HTTP/1.1\r\nhost: sidecar\r\ncontent-type: application/json\r\nx-event-key: repo:push\r\nx-request-uuid: {00000000-0000-4000-8000-${String(Math.floor(Math.random() * 1e12)).padStart(12, '0')}}\r\n${framing}\r\n`;
  socket.write(head);
  if (opts.first) {
    if (opts.contentLength !== undefined) socket.write(opts.first);
    else socket.write(`${opts.first.length.toString(16)}\r\n${opts.first.toString('latin1')}\r\n`, 'latin1');
  }
  const answer = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
  return { socket, answer };
}

const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

describe('the webhook door is bounded', () => {
  let fake: FakeBitbucket;
  let relay: RelayStack;
  const relayOf = () => relay.running.sidecar.webhooks.relay!;

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    relay = await startRelay(fake, [{ id: 'ci', scope: [{ workspace: 'acme' }] }], {
      server: { http: { host: '127.0.0.1', port: 0 }, maxConnections: 64, maxConnectionsPerSource: 20 },
      webhooks: { secret: SECRET, maxBodyBytes: '64KiB', maxInFlightBytes: '256KiB', bodyTimeoutMs: 600 },
    });
  });
  afterAll(async () => {
    await relay.stop();
    await fake.close();
  });
  afterEach(async () => {
    // Whatever a case left open is closed by the body timeout; the next case starts from nothing held.
    await until(() => relayOf().inFlight.inUse === 0, 'bodies released');
  });

  it('a declared body over webhooks.maxBodyBytes is refused 413 before a byte is read, and its connection closed', async () => {
    fake.clearLog();
    const before = relayOf().stats.tooLarge;
    const many = Array.from({ length: 100 }, () => openDelivery(relay.url, { contentLength: 5 * 1024 * KiB, first: Buffer.alloc(16 * KiB, 0x20) }));
    const answers = await Promise.all(many.map((d) => d.answer));
    for (const a of answers) {
      expect(statusOf(a)).toBe(413);
      expect(a).toMatch(/connection: close/i);
      expect(a).toContain('The delivery body is too large');
    }
    expect(relayOf().stats.tooLarge).toBe(before + 100);
    expect(relayOf().inFlight.peak).toBe(0);
    expect(relayOf().queueDepth()).toBe(0);
    expect(fake.requests).toEqual([]);
  });

  it('a chunked body growing past the limit is cut off with 413 as soon as it passes it', async () => {
    const d = openDelivery(relay.url, { first: Buffer.alloc(40 * KiB, 0x20) });
    await until(() => relayOf().inFlight.inUse >= 40 * KiB, 'the first chunk held');
    d.socket.write(`${(40 * KiB).toString(16)}\r\n${' '.repeat(40 * KiB)}\r\n`);
    const a = await d.answer;
    expect(statusOf(a)).toBe(413);
    expect(relayOf().inFlight.inUse).toBe(0);
  });

  it('bodies in flight together never exceed webhooks.maxInFlightBytes: the others are refused 503 at once', async () => {
    const busyBefore = relayOf().stats.busy;
    // Each declares 60 KiB (under the body limit) and sends 1 KiB of it: 4 fit in 256 KiB.
    const held = Array.from({ length: 12 }, () => openDelivery(relay.url, { contentLength: 60 * KiB, first: Buffer.alloc(KiB, 0x20) }));
    await until(() => relayOf().stats.busy - busyBefore === 8, 'eight refused as busy');
    expect(relayOf().inFlight.inUse).toBe(4 * 60 * KiB);
    // Chunked bodies reserve as they arrive, against the same budget.
    const chunked = Array.from({ length: 6 }, () => openDelivery(relay.url, { first: Buffer.alloc(20 * KiB, 0x20) }));
    await until(() => relayOf().stats.busy - busyBefore === 14, 'the chunked ones refused as well');
    expect(relayOf().inFlight.peak).toBeLessThanOrEqual(256 * KiB);

    const answers = await Promise.all([...held, ...chunked].map((d) => d.answer));
    const statuses = answers.map(statusOf).sort();
    // The four that fit ran out of time (408); the rest were told to retry (503 with Retry-After).
    expect(statuses.filter((s) => s === 408)).toHaveLength(4);
    expect(statuses.filter((s) => s === 503)).toHaveLength(14);
    for (const a of answers.filter((x) => statusOf(x) === 503)) expect(a).toMatch(/retry-after: 10/i);
    expect(relayOf().inFlight.inUse).toBe(0);
  });

  it('a body that does not arrive within webhooks.bodyTimeoutMs is refused 408; then a real delivery is accepted', async () => {
    const before = relayOf().stats.bodyTimeouts;
    const slow = openDelivery(relay.url, { contentLength: 2 * KiB, first: Buffer.from('{') });
    expect(statusOf(await slow.answer)).toBe(408);
    expect(relayOf().stats.bodyTimeouts).toBe(before + 1);

    const body = pushBody('acme', 'service-api', 'CI', 'main', 'a'.repeat(40));
    expect((await deliver(relay.url, body, headersFor('repo:push', undefined, { 'x-hub-signature': sign(body, SECRET) }))).status).toBe(200);
  });

  it("the door's requests take connection slots like any other: one address cannot hold more than its share, others are still served", async () => {
    // 20 slots per address: a stranger at 127.0.0.2 stalls 20 deliveries, its 21st request is refused.
    const stalled = Array.from({ length: 20 }, () => openDelivery(relay.url, { contentLength: 4 * KiB, first: Buffer.from(' '), localAddress: '127.0.0.2' }));
    await until(() => relayOf().inFlight.inUse === 20 * 4 * KiB, 'twenty bodies held');
    const over = openDelivery(relay.url, { contentLength: 4 * KiB, first: Buffer.from(' '), localAddress: '127.0.0.2' });
    const overAnswer = await over.answer;
    expect(statusOf(overAnswer)).toBe(503);
    expect(overAnswer).toContain('as many connections as it is configured for');

    // An authenticated client elsewhere is served meanwhile.
    const r = await request(`${relay.url}/2.0/repositories/acme`, { headers: { authorization: basicAuth('jenkins@ci.example', relay.tokens.ci) } });
    expect(r.statusCode).toBe(200);
    await r.body.dump();
    // Health stays answerable whatever the load.
    const health = await new Promise<number>((resolve, reject) => {
      http.get(`${relay.url}/_sidecar/health`, { localAddress: '127.0.0.2' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(health).toBe(200);

    for (const a of await Promise.all(stalled.map((d) => d.answer))) expect(statusOf(a)).toBe(408);
  });
});
