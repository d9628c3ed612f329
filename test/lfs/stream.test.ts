import http from 'node:http';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { scriptedUpstream, until } from '../git/helpers';

/**
 * Transfers against a scripted Bitbucket web host: the sidecar streams object bytes (the client
 * reads the first ones while the storage is still sending), sends the storage only Bitbucket's
 * headers for the link, and cancels the storage request when the client hangs up.
 */
describe('LFS transfers stream', () => {
  let fake: FakeBitbucketServer;
  let web: Awaited<ReturnType<typeof scriptedUpstream>>;
  let stack: Stack;
  let release: () => void = () => undefined;
  const oid = 'a'.repeat(64);
  const LFS = 'application/vnd.git-lfs+json';

  beforeAll(async () => {
    fake = await startFakeBitbucket();
    web = await scriptedUpstream();
    web.respond((req, res) => {
      if (req.method === 'POST' && req.url?.startsWith('/acme/service-web.git/')) {
        // A plain-HTTP link to a host other than Bitbucket's own is not followed.
        res.writeHead(200, { 'content-type': LFS });
        res.end(JSON.stringify({ objects: [{ oid, size: 1, actions: { download: { href: 'http://169.254.169.254/latest/meta-data' } } }] }));
        return;
      }
      if (req.method === 'POST' && req.url?.endsWith('/info/lfs/objects/batch')) {
        res.writeHead(200, { 'content-type': LFS });
        res.end(JSON.stringify({ transfer: 'basic', objects: [{ oid, size: 1 << 20, actions: { download: { href: `${web.url}/media/${oid}?sig=s3cr3t`, header: { Authorization: 'Bearer media-token' }, expires_in: 120 } } }, { oid: 'b'.repeat(64), size: 1, actions: { download: { href: 'https://elsewhere.example/x' } } }] }));
        return;
      }
      if (req.url?.startsWith('/media/')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1 << 20), 'set-cookie': 'x=1' });
        res.write(Buffer.alloc(64 * 1024, 1));
        release = () => res.end(Buffer.alloc((1 << 20) - 64 * 1024, 2));
        return;
      }
      res.writeHead(404).end();
    });
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }], {
      fakeInstance: fake,
      config: { upstream: { apiUrl: fake.url, webUrl: web.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken } } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await web?.close();
    await fake?.close();
  });

  async function downloadLink(): Promise<{ href: string; header: Record<string, string> }> {
    const res = await fetch(`${stack.url}/acme/service-api.git/info/lfs/objects/batch`, {
      method: 'POST',
      headers: { authorization: basicAuth('x', stack.tokens.reader), 'content-type': LFS },
      body: JSON.stringify({ operation: 'download', objects: [{ oid, size: 1 << 20 }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { objects: { oid: string; actions: { download: { href: string; header: Record<string, string> } } }[] };
    // Only what was asked for comes back; Bitbucket's link and its signature never do.
    expect(body.objects.map((o) => o.oid)).toEqual([oid]);
    expect(JSON.stringify(body)).not.toMatch(/s3cr3t|media-token|\/media\//);
    return body.objects[0].actions.download;
  }

  function get(link: { href: string; header: Record<string, string> }): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => http.get(link.href, { headers: link.header }, resolve).on('error', reject));
  }

  it('hands the first bytes on before the storage has sent the rest', async () => {
    const link = await downloadLink();
    const res = await get(link);
    expect(res.statusCode).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    const first = await new Promise<Buffer>((resolve) => res.once('data', resolve));
    expect(first[0]).toBe(1);
    // The storage is still holding the rest back: what arrived was streamed, not buffered.
    const media = web.seen.filter((s) => s.url.startsWith('/media/'));
    expect(media).toHaveLength(1);
    expect(media[0].url).toBe(`/media/${oid}?sig=s3cr3t`);
    expect(media[0].headers.authorization).toBe('Bearer media-token');
    let total = first.length;
    const done = new Promise<void>((resolve) => res.on('end', resolve));
    res.on('data', (c: Buffer) => (total += c.length));
    release();
    await done;
    expect(total).toBe(1 << 20);
  });

  it('refuses a batch answer whose link is plain HTTP to another host', async () => {
    const res = await fetch(`${stack.url}/acme/service-web.git/info/lfs/objects/batch`, {
      method: 'POST',
      headers: { authorization: basicAuth('x', stack.tokens.reader), 'content-type': LFS },
      body: JSON.stringify({ operation: 'download', objects: [{ oid, size: 1 }] }),
    });
    expect(res.status).toBe(502);
    expect(JSON.stringify(await res.json())).not.toContain('169.254');
  });

  it('cancels the storage request when the client hangs up', async () => {
    const link = await downloadLink();
    const res = await get(link);
    await new Promise((resolve) => res.once('data', resolve));
    const media = web.seen.filter((s) => s.url.startsWith('/media/'));
    const last = media[media.length - 1];
    res.destroy();
    await until(() => last.aborted, 'the storage request to be cancelled');
    expect(last.aborted).toBe(true);
  });
});
