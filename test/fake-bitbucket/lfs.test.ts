import { createHash } from 'node:crypto';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { basic, raw } from './helpers';

describe('fake Bitbucket: Git LFS', () => {
  let fake: FakeBitbucketServer;
  let git: string;
  const LFS = { 'content-type': 'application/vnd.git-lfs+json' };
  const batch = (operation: string, objects: { oid: string; size: number }[], auth?: string | false, repo = 'acme/service-api.git') =>
    raw(fake, 'POST', `/${repo}/info/lfs/objects/batch`, { headers: LFS, auth: auth ?? git, body: JSON.stringify({ operation, objects }) });
  const path = (href: string) => new URL(href).pathname;

  beforeAll(async () => {
    fake = await startFakeBitbucket();
    git = basic('x-token-auth', fake.credentials.apiToken);
  });
  afterAll(() => fake.close());

  it('needs git credentials and an existing repository', async () => {
    expect((await batch('download', [], false)).status).toBe(401);
    expect((await batch('download', [], basic(fake.credentials.email, fake.credentials.apiToken))).status).toBe(401);
    expect((await batch('download', [], undefined, 'acme/nope.git')).status).toBe(404);
  });

  it('downloads a stored object only with the header the batch gave for it', async () => {
    const data = Buffer.from('stored object\n');
    const oid = await fake.lfsPut('acme', 'service-api', data);
    expect(oid).toBe(createHash('sha256').update(data).digest('hex'));
    const res = await batch('download', [{ oid, size: data.length }, { oid: 'f'.repeat(64), size: 3 }]);
    expect(res.status).toBe(200);
    const [found, missing] = res.json<{ objects: any[] }>().objects;
    expect(missing.error.code).toBe(404);
    const link = found.actions.download;
    expect((await raw(fake, 'GET', path(link.href), { auth: link.header.Authorization })).body.equals(data)).toBe(true);
    expect((await raw(fake, 'GET', path(link.href), { auth: 'Bearer wrong' })).status).toBe(403);
    const part = await raw(fake, 'GET', path(link.href), { auth: link.header.Authorization, headers: { range: 'bytes=7-' } });
    expect(part.status).toBe(206);
    expect(part.text).toBe('object\n');
    // Another repository's storage does not hold it.
    expect(fake.lfsHas('acme', 'infra', oid)).toBe(false);
  });

  it('keeps an upload only when its bytes match the oid, and verifies it', async () => {
    const data = Buffer.from('uploaded object\n');
    const oid = createHash('sha256').update(data).digest('hex');
    const res = await batch('upload', [{ oid, size: data.length }]);
    const { upload, verify } = res.json<{ objects: any[] }>().objects[0].actions;
    expect((await raw(fake, 'PUT', path(upload.href), { auth: verify.header.Authorization, body: data })).status).toBe(403);
    expect((await raw(fake, 'PUT', path(upload.href), { auth: upload.header.Authorization, body: Buffer.from('something else\n') })).status).toBe(422);
    expect(fake.lfsHas('acme', 'service-api', oid)).toBe(false);
    expect((await raw(fake, 'PUT', path(upload.href), { auth: upload.header.Authorization, body: data })).status).toBe(200);
    expect(fake.lfsHas('acme', 'service-api', oid)).toBe(true);
    expect((await raw(fake, 'POST', path(verify.href), { auth: verify.header.Authorization, headers: LFS, body: JSON.stringify({ oid, size: data.length }) })).status).toBe(200);
    // Asked again, a stored object needs no upload.
    expect((await batch('upload', [{ oid, size: data.length }])).json<{ objects: any[] }>().objects[0].actions).toBeUndefined();
  });
});
