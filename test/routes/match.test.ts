import { ROUTES } from '../../src/routes/catalog';
import { upstreamPath, canonicalQuery } from '../../src/routes/call';
import { matchRoute } from '../../src/routes/match';
import { parseRequestTarget } from '../../src/routes/canonical';

const m = (face: 'api' | 'web', method: string, target: string) => matchRoute(face, method, parseRequestTarget(target, 8192));
const matched = (face: 'api' | 'web', method: string, target: string) => {
  const r = m(face, method, target);
  if (r.kind !== 'match') throw new Error(`${target}: ${r.kind}`);
  return r.match;
};

describe('route catalog', () => {
  it('has unique ids and every GET route serves HEAD', () => {
    expect(new Set(ROUTES.map((r) => r.id)).size).toBe(ROUTES.length);
    expect(matched('api', 'HEAD', '/2.0/repositories/acme/svc').route.id).toBe('repository');
  });

  it.each([
    ['/2.0/workspaces/acme', 'workspace'],
    ['/2.0/repositories/acme?role=member&pagelen=100', 'repositories'],
    ['/2.0/repositories/acme/svc', 'repository'],
    ['/2.0/repositories/acme/svc/?fields=mainbranch.name', 'repository'],
    ['/2.0/repositories/acme/svc/pullrequests?pagelen=50', 'pullrequests'],
    ['/2.0/repositories/acme/svc/pullrequests/1', 'pullrequest'],
    ['/2.0/repositories/acme/svc/pullrequests/1/commits?fields=values.hash&pagelen=1', 'pullrequest-commits'],
    ['/2.0/repositories/acme/svc/refs/branches?pagelen=100', 'branches'],
    ['/2.0/repositories/acme/svc/refs/branches/feature%2FBB-1', 'branch'],
    ['/2.0/repositories/acme/svc/refs/tags/special-%22%24%3B%3E%3C%26%23_%3D%40%21%7C.%2C%2Ftest', 'tag'],
    ['/2.0/repositories/acme/svc/commit/046d9a3c1532', 'commit'],
    ['/2.0/repositories/acme/svc/commits?include=feature%2Fx&exclude=174561d', 'commits'],
    ['/2.0/repositories/acme/svc/src/046d9a3c1532/dir%2FJenkinsfile?format=meta', 'src'],
    ['/2.0/repositories/acme/svc/src/046d9a3c1532/', 'src'],
    ['/2.0/repositories/acme/svc/src/folder%2Ffile.properties?at=master', 'src'],
    ['/2.0/repositories/acme/svc/hooks?pagelen=100', 'hooks'],
    ['/2.0/repositories/acme/svc/hooks/%7B202cf34e-7ccf-44b7-ba6b-8827a14d5324%7D', 'hook'],
    ['/2.0/repositories/%7B202cf34e-7ccf-44b7-ba6b-8827a14d5324%7D/%7B202cf34e-7ccf-44b7-ba6b-8827a14d5325%7D', 'repository'],
    ['/2.0/user', 'user'],
  ])('GET %s → %s', (target, id) => {
    expect(matched('api', 'GET', target).route.id).toBe(id);
  });

  it.each([
    '/2.0/repositories/acme/svc/refs/branches/',
    '/2.0/repositories/acme/svc/refs',
    '/2.0/repositories/acme%2Fjdoe/svc',
    '/2.0/repositories/acme/svc%2F..%2Fother',
    '/2.0/repositories/acme/svc%5Cother',
    '/2.0/repositories/acme/svc/src/..%2F..%2Fx/y',
    '/2.0/repositories/acme/svc/src/abc/dir%2F..%2Fsecret',
    '/2.0/repositories/acme/svc/commit/not-a-hash',
    '/2.0/repositories/acme/svc/pullrequests/01',
    '/2.0/repositories/acme/svc/hooks/abc',
    '/2.0/repositories',
    '/2.0/snippets/acme',
    '/2.0/repositories/acme/svc/diffstat/a..b',
    '/2.0/repositories/acme/svc/downloads',
    '/2.0/repositories/{not-a-uuid}/svc',
  ])('nothing matches %s', (target) => {
    expect(m('api', 'GET', target).kind).toBe('none');
  });

  it('answers "method" for a known path with another method', () => {
    expect(m('api', 'DELETE', '/2.0/repositories/acme/svc')).toEqual({ kind: 'method', allowed: ['GET', 'HEAD'] });
    expect(m('api', 'POST', '/2.0/repositories/acme/svc/commit/046d9a3c1532/statuses/build').kind).toBe('match');
  });

  it('lower-cases slugs and strips .git on the web face', () => {
    const r = matched('web', 'GET', '/ACME/Service-Api.git/info/refs?service=git-upload-pack');
    expect(r.route.id).toBe('git-info-refs');
    expect(r.params).toEqual({ ws: 'acme', repo: 'service-api' });
    expect(matched('web', 'POST', '/acme/service-api/git-upload-pack').params.repo).toBe('service-api');
  });

  it('rebuilds upstream paths from canonical parts only', () => {
    const t = parseRequestTarget('/2.0/repositories/ACME/Svc/refs/branches/feature%2FBB-1?fields=name&evil=1', 8192);
    const r = matchRoute('api', 'GET', t);
    if (r.kind !== 'match') throw new Error('no match');
    const call = { ...r.match, method: 'GET' as const, query: canonicalQuery(t.query, r.match.route.query) };
    expect(upstreamPath(call)).toBe('/2.0/repositories/acme/svc/refs/branches/feature%2FBB-1?fields=name');
    const src = matched('api', 'GET', '/2.0/repositories/acme/svc/src/abc1234/');
    expect(upstreamPath({ ...src, query: [] })).toBe('/2.0/repositories/acme/svc/src/abc1234/');
    const def = matched('api', 'GET', '/2.0/repositories/acme/svc/?fields=mainbranch.name');
    expect(upstreamPath({ ...def, query: [['fields', 'mainbranch.name']] })).toBe('/2.0/repositories/acme/svc/?fields=mainbranch.name');
  });

  it('sorts query parameters for the cache key', () => {
    expect(canonicalQuery([['state', 'OPEN'], ['pagelen', '50'], ['state', 'MERGED'], ['x', '1']], ['pagelen', 'state'])).toEqual([
      ['pagelen', '50'],
      ['state', 'MERGED'],
      ['state', 'OPEN'],
    ]);
  });
});
