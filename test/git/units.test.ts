import { acceptsGzip, clientResponseHeaders, gitTarget, upstreamFailure, upstreamRequestHeaders } from '../../src/git';
import { routeById, type RouteId } from '../../src/routes/catalog';
import type { ApiCall } from '../../src/core/call';

const route = (id: RouteId) => routeById(id);
const call = (id: RouteId, ws: string, repo: string, query: [string, string][] = []): ApiCall => ({
  method: id === 'git-info-refs' ? 'GET' : 'POST',
  route: route(id),
  params: { ws, repo },
  trailingSlash: false,
  query,
});

describe('gitTarget', () => {
  it('builds the URL from canonical parts only, keeping a base path of webUrl', () => {
    expect(gitTarget('https://bitbucket.org', call('git-info-refs', 'acme', 'service-api', [['service', 'git-upload-pack']]))).toMatchObject({
      ok: true,
      url: 'https://bitbucket.org/acme/service-api.git/info/refs?service=git-upload-pack',
    });
    expect(gitTarget('http://mirror.local:8080/bb/', call('git-upload-pack', 'acme', 'x.y'))).toMatchObject({ ok: true, url: 'http://mirror.local:8080/bb/acme/x.y.git/git-upload-pack' });
    expect(gitTarget('https://bitbucket.org', call('git-receive-pack', 'acme', 'x'))).toMatchObject({ ok: true, service: 'git-receive-pack', url: 'https://bitbucket.org/acme/x.git/git-receive-pack' });
  });

  it('refuses what the gate should never hand over', () => {
    expect(gitTarget('https://bitbucket.org', undefined)).toMatchObject({ ok: false, status: 500 });
    for (const [ws, repo] of [['ACME', 'x'], ['acme', '..'], ['acme', 'a/b'], ['{0e2e8c3a-1111-2222-3333-444455556666}', 'x'], ['acme', '']]) {
      expect(gitTarget('https://bitbucket.org', call('git-upload-pack', ws, repo))).toMatchObject({ ok: false, status: 500 });
    }
    expect(gitTarget('https://bitbucket.org', call('git-info-refs', 'acme', 'x'))).toMatchObject({ ok: false, status: 403 });
    expect(gitTarget('https://bitbucket.org', call('git-info-refs', 'acme', 'x', [['service', 'git-upload-archive']]))).toMatchObject({ ok: false, status: 403 });
    expect(
      gitTarget('https://bitbucket.org', call('git-info-refs', 'acme', 'x', [['service', 'git-receive-pack'], ['service', 'git-upload-pack']])),
    ).toMatchObject({ ok: false, status: 403 });
    expect(gitTarget('https://bitbucket.org', { ...call('git-upload-pack', 'acme', 'x'), route: route('repository') })).toMatchObject({ ok: false, status: 500 });
  });
});

describe('upstreamRequestHeaders', () => {
  const post = {
    authorization: 'Basic client-token',
    'content-type': 'application/x-git-upload-pack-request',
    'content-length': '120',
    'git-protocol': 'version=2',
    'user-agent': 'git/2.39.5',
    cookie: 'a=b',
    'x-forwarded-for': '1.2.3.4',
    expect: '100-continue',
  };

  it('keeps only what git needs; never the client Authorization, Host or cookies', () => {
    const r = upstreamRequestHeaders(post, 'upload-pack', 'POST', 'sidecar/1');
    expect(r).toEqual({
      ok: true,
      headers: { 'user-agent': 'git/2.39.5', 'git-protocol': 'version=2', 'content-type': 'application/x-git-upload-pack-request', 'content-length': '120' },
    });
  });

  it('passes chunked framing and gzip coding through, refuses other codings and missing framing', () => {
    const { 'content-length': _, ...noLength } = post;
    expect(upstreamRequestHeaders({ ...noLength, 'transfer-encoding': 'chunked', 'content-encoding': 'gzip' }, 'upload-pack', 'POST', 'ua')).toMatchObject({
      ok: true,
      headers: { 'transfer-encoding': 'chunked', 'content-encoding': 'gzip' },
    });
    expect(upstreamRequestHeaders({ ...post, 'content-encoding': 'deflate' }, 'upload-pack', 'POST', 'ua')).toMatchObject({ ok: false, status: 415 });
    expect(upstreamRequestHeaders(noLength, 'upload-pack', 'POST', 'ua')).toMatchObject({ ok: false, status: 411 });
    expect(upstreamRequestHeaders({ ...post, 'content-type': 'application/x-git-receive-pack-request' }, 'upload-pack', 'POST', 'ua')).toMatchObject({ ok: false, status: 415 });
    expect(upstreamRequestHeaders({ ...post, 'content-type': 'application/x-git-receive-pack-request' }, 'receive-pack', 'POST', 'ua')).toMatchObject({ ok: true });
  });

  it('drops a malformed Git-Protocol and replaces an unusable User-Agent', () => {
    const r = upstreamRequestHeaders({ 'git-protocol': 'version=2 evil', 'user-agent': 'x\u0001y' }, 'advertise', 'GET', 'bitbucket-sidecar/0.1.0');
    expect(r).toEqual({ ok: true, headers: { 'user-agent': 'bitbucket-sidecar/0.1.0' } });
    expect(upstreamRequestHeaders({ 'git-protocol': 'version=2:object-format=sha256' }, 'advertise', 'GET', 'ua')).toMatchObject({ headers: { 'git-protocol': 'version=2:object-format=sha256' } });
  });

  it('asks for gzip only when the client accepts it', () => {
    expect(acceptsGzip('deflate, gzip, br, zstd')).toBe(true);
    expect(acceptsGzip('gzip;q=0')).toBe(false);
    expect(acceptsGzip('identity')).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
    expect(upstreamRequestHeaders({ 'accept-encoding': 'br, x-gzip;q=0.5' }, 'advertise', 'GET', 'ua')).toMatchObject({ headers: { 'accept-encoding': 'gzip' } });
  });
});

describe('clientResponseHeaders', () => {
  it('keeps git framing and caching headers, drops the rest', () => {
    const r = clientResponseHeaders(
      { 'content-type': 'application/x-git-upload-pack-result', 'cache-control': 'no-cache', 'set-cookie': ['a=b'], location: 'https://x', 'www-authenticate': 'Basic', server: 'nginx' },
      false,
    );
    expect(r).toEqual({ ok: true, headers: { 'content-type': 'application/x-git-upload-pack-result', 'cache-control': 'no-cache' } });
  });

  it('passes gzip only when it was asked for', () => {
    expect(clientResponseHeaders({ 'content-encoding': 'gzip' }, true)).toEqual({ ok: true, headers: { 'content-encoding': 'gzip', vary: 'Accept-Encoding' } });
    expect(clientResponseHeaders({ 'content-encoding': 'gzip' }, false)).toEqual({ ok: false, encoding: 'gzip' });
    expect(clientResponseHeaders({ 'content-encoding': 'br' }, true)).toEqual({ ok: false, encoding: 'br' });
  });
});

describe('upstreamFailure', () => {
  const t = { ws: 'acme', repo: 'x', service: 'git-upload-pack' };
  it('maps upstream statuses to our own statuses and words', () => {
    expect(upstreamFailure(401, {}, t)).toMatchObject({ status: 502, message: expect.stringContaining('upstream.gitAuth') });
    expect(upstreamFailure(301, { location: 'https://elsewhere' }, t)).toMatchObject({ status: 502 });
    expect(upstreamFailure(403, {}, { ...t, service: 'git-receive-pack' })).toMatchObject({ status: 403, message: expect.stringContaining('push to acme/x') });
    expect(upstreamFailure(404, {}, t)).toEqual({ status: 404, message: 'Repository not found' });
    expect(upstreamFailure(429, { 'retry-after': '30' }, t)).toMatchObject({ status: 429, headers: { 'retry-after': '30' } });
    expect(upstreamFailure(429, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, t).headers).toBeUndefined();
    expect(upstreamFailure(504, {}, t)).toMatchObject({ status: 502 });
    expect(upstreamFailure(400, {}, t)).toMatchObject({ status: 400 });
    expect(upstreamFailure(100, {}, t)).toMatchObject({ status: 502 });
  });
});
