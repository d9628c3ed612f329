import { lfsAuthenticateAnswer } from '../../src/auth/lfs-tokens';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { lfsPointer } from './helpers';

/** The LFS routes through the scope gate, on the plain HTTP face (the web face by path). */
describe('LFS batch through the scope', () => {
  let stack: Stack;
  const object = Buffer.from('scoped object\n');
  const { oid } = lfsPointer(object);
  const LFS = 'application/vnd.git-lfs+json';
  const batch = (repo: string, auth: string, operation = 'download', extra: Record<string, unknown> = {}) =>
    fetch(`${stack.url}/${repo}.git/info/lfs/objects/batch`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': LFS, accept: LFS },
      body: JSON.stringify({ operation, transfers: ['basic'], objects: [{ oid, size: object.length }], ...extra }),
    });
  const lfsRequests = () => stack.fake.requests.filter((r) => r.path.includes('/info/lfs/') || r.path.startsWith('/_lfs-media/'));

  beforeAll(async () => {
    stack = await startStack([
      { id: 'reader', scope: [{ workspace: 'acme', repositories: ['service-api'] }] },
      { id: 'pusher', scope: [{ workspace: 'acme' }], permissions: ['read', 'git:push'] },
      { id: 'other', scope: [{ workspace: 'acme' }] },
    ]);
    await stack.fake.lfsPut('acme', 'service-api', object);
    await stack.fake.lfsPut('other', 'widgets', object);
  });
  afterAll(() => stack?.stop());
  beforeEach(() => stack.fake.clearLog());

  it('refuses an out-of-scope repository with 404 and no upstream call', async () => {
    for (const repo of ['other/widgets', 'acme/infra', 'nobody/nothing']) {
      const res = await batch(repo, basicAuth('x', stack.tokens.reader));
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe(LFS);
      expect(await res.json()).toEqual({ message: 'Repository not found' });
    }
    expect(stack.fake.requests).toEqual([]);
  });

  it('answers a download with links to the sidecar, bound to the client', async () => {
    const res = await batch('acme/service-api', basicAuth('x', stack.tokens.reader));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { objects: { oid: string; actions: { download: { href: string; header: Record<string, string> } } }[] };
    const link = body.objects[0].actions.download;
    expect(link.href.startsWith(`${stack.url}/acme/service-api.git/info/lfs/transfer/`)).toBe(true);
    expect(JSON.stringify(body)).not.toContain('_lfs-media');
    const got = await fetch(link.href, { headers: link.header });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(object)).toBe(true);
    // The same id for another client is unknown; the link's token does not open the API.
    expect((await fetch(link.href, { headers: { authorization: basicAuth('x', stack.tokens.other) } })).status).toBe(404);
    expect((await fetch(`${stack.url}/2.0/repositories/acme`, { headers: link.header })).status).toBe(401);
    // Bitbucket accepts the repository without `.git` too.
    const bare = await fetch(`${stack.url}/acme/service-api/info/lfs/objects/batch`, { method: 'POST', headers: { authorization: basicAuth('x', stack.tokens.reader), 'content-type': LFS }, body: JSON.stringify({ operation: 'download', objects: [{ oid, size: object.length }] }) });
    expect(bare.status).toBe(200);
  });

  it('needs git:push for an upload batch (and for a body that is not a download)', async () => {
    const res = await batch('acme/service-api', basicAuth('x', stack.tokens.reader), 'upload');
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toMatch(/git:push/);
    const odd = await fetch(`${stack.url}/acme/service-api.git/info/lfs/objects/batch`, { method: 'POST', headers: { authorization: basicAuth('x', stack.tokens.reader), 'content-type': LFS }, body: '{"operation":"delete"' });
    expect(odd.status).toBe(403);
    expect(lfsRequests()).toEqual([]);
    const bad = await batch('acme/service-api', basicAuth('x', stack.tokens.pusher), 'upload', { objects: [{ oid: 'nope', size: 1 }] });
    expect(bad.status).toBe(400);
    expect(lfsRequests()).toEqual([]);
  });

  it('accepts git-lfs-authenticate tokens on LFS routes of their repository only', async () => {
    const tokens = stack.running.sidecar.lfsTokens;
    const download = lfsAuthenticateAnswer(tokens, { client: 'reader', ws: 'acme', repo: 'service-api', operation: 'download', baseUrl: stack.url });
    expect(download.href).toBe(`${stack.url}/acme/service-api.git/info/lfs`);
    const ok = await fetch(`${download.href}/objects/batch`, { method: 'POST', headers: { ...download.header, 'content-type': LFS }, body: JSON.stringify({ operation: 'download', objects: [{ oid, size: object.length }] }) });
    expect(ok.status).toBe(200);
    const elsewhere = lfsAuthenticateAnswer(tokens, { client: 'pusher', ws: 'acme', repo: 'service-api', operation: 'download', baseUrl: stack.url });
    expect((await batch('acme/service-web', elsewhere.header.Authorization)).status).toBe(404);
    expect((await batch('acme/service-api', elsewhere.header.Authorization, 'upload')).status).toBe(403);
    const upload = lfsAuthenticateAnswer(tokens, { client: 'pusher', ws: 'acme', repo: 'service-api', operation: 'upload', baseUrl: stack.url });
    expect((await batch('acme/service-api', upload.header.Authorization, 'upload')).status).toBe(200);
    // An upload token of a client without git:push still cannot upload: the gate decides.
    const readerUpload = lfsAuthenticateAnswer(tokens, { client: 'reader', ws: 'acme', repo: 'service-api', operation: 'upload', baseUrl: stack.url });
    expect((await batch('acme/service-api', readerUpload.header.Authorization, 'upload')).status).toBe(403);
    // Not a git or API credential.
    expect((await fetch(`${stack.url}/acme/service-api.git/info/refs?service=git-upload-pack`, { headers: download.header })).status).toBe(401);
  });

  it('is not reachable on a pull request source fork, even once its fork grant is known', async () => {
    const auth = basicAuth('x', stack.tokens.pusher);
    const prs = await fetch(`${stack.url}/2.0/repositories/acme/service-api/pullrequests?pagelen=50`, { headers: { authorization: auth } });
    expect(prs.status).toBe(200);
    // The grant opens git on the fork ...
    const refs = await fetch(`${stack.url}/jdoe/service-api-fork.git/info/refs?service=git-upload-pack`, { headers: { authorization: auth } });
    expect(refs.status).toBe(200);
    stack.fake.clearLog();
    // ... but not its LFS objects.
    const res = await batch('jdoe/service-api-fork', auth);
    expect(res.status).toBe(404);
    expect(lfsRequests()).toEqual([]);
  });

  it('answers the locks API 501 without asking Bitbucket, and 404 out of scope', async () => {
    const auth = basicAuth('x', stack.tokens.reader);
    const verify = await fetch(`${stack.url}/acme/service-api.git/info/lfs/locks/verify`, { method: 'POST', headers: { authorization: auth, 'content-type': LFS }, body: '{}' });
    expect(verify.status).toBe(501);
    expect(((await verify.json()) as { message: string }).message).toMatch(/locking is not offered/);
    expect((await fetch(`${stack.url}/other/widgets.git/info/lfs/locks`, { headers: { authorization: auth } })).status).toBe(404);
    expect(stack.fake.requests).toEqual([]);
  });
});
