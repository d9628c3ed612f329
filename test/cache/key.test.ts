import { cacheKey, credentialId, tagsChangedBy, tagsOf } from '../../src/cache/key';
import { callFor } from './calls';

const CRED = credentialId('Basic dXNlcjpzZWNyZXQ=');
const R = '/2.0/repositories';

describe('cache key normalisation', () => {
  it('sorts query parameters, so two spellings of one request share an entry', () => {
    const a = cacheKey(callFor('GET', `${R}/acme?q=project.key%3D%22CI%22&pagelen=100&role=member`), CRED);
    const b = cacheKey(callFor('GET', `${R}/acme?role=member&pagelen=100&q=project.key="CI"`), CRED);
    expect(a).toBe(b);
    expect(a).toBe(`${CRED} GET ${R}/acme?pagelen=100&q=project.key%3D%22CI%22&role=member`);
  });

  it('keeps every parameter that changes the answer apart', () => {
    const base = cacheKey(callFor('GET', `${R}/acme?pagelen=100`), CRED);
    expect(cacheKey(callFor('GET', `${R}/acme?pagelen=50`), CRED)).not.toBe(base);
    expect(cacheKey(callFor('GET', `${R}/acme?pagelen=100&page=2`), CRED)).not.toBe(base);
    expect(cacheKey(callFor('GET', `${R}/acme?pagelen=100&role=admin`), CRED)).not.toBe(base);
    expect(cacheKey(callFor('GET', `${R}/acme/a/?fields=mainbranch.name`), CRED)).not.toBe(cacheKey(callFor('GET', `${R}/acme/a`), CRED));
  });

  it('drops parameters the route does not forward (they cannot change the upstream answer)', () => {
    expect(cacheKey(callFor('GET', `${R}/acme/a/refs/branches?pagelen=100&cachebuster=1`), CRED)).toBe(cacheKey(callFor('GET', `${R}/acme/a/refs/branches?pagelen=100`), CRED));
  });

  it('folds slug case and gives HEAD the GET entry', () => {
    const get = cacheKey(callFor('GET', `${R}/ACME/Service-Api/refs/tags?pagelen=100`), CRED);
    expect(cacheKey(callFor('HEAD', `${R}/acme/service-api/refs/tags?pagelen=100`), CRED)).toBe(get);
  });

  it('keeps %2F inside a branch name distinct from a path separator', () => {
    const k = cacheKey(callFor('GET', `${R}/acme/a/refs/branches/feature%2FBB-1`), CRED);
    expect(k).toContain('/refs/branches/feature%2FBB-1');
    expect(cacheKey(callFor('GET', `${R}/acme/a/src/abcdef012345/dir%2FJenkinsfile?format=meta`), CRED)).toContain('/src/abcdef012345/dir%2FJenkinsfile?format=meta');
  });

  it('separates upstream credentials and never contains one', () => {
    const other = credentialId('Basic b3RoZXI6c2VjcmV0');
    expect(other).not.toBe(CRED);
    expect(CRED).toMatch(/^[0-9a-f]{16}$/);
    expect(credentialId('Basic dXNlcjpzZWNyZXQ=')).toBe(CRED);
    const call = callFor('GET', `${R}/acme/a`);
    expect(cacheKey(call, other)).not.toBe(cacheKey(call, CRED));
    expect(cacheKey(call, CRED)).not.toContain('dXNlcjpzZWNyZXQ');
  });
});

describe('invalidation tags', () => {
  it('tags answers by workspace, repository, ref lists and ref names', () => {
    expect(tagsOf(callFor('GET', `${R}/acme`))).toEqual(['ws:acme']);
    expect(tagsOf(callFor('GET', `${R}/acme/a`))).toEqual(['ws:acme', 'repo:acme/a']);
    expect(tagsOf(callFor('GET', `${R}/acme/a/refs/branches?pagelen=100`))).toEqual(['ws:acme', 'repo:acme/a', 'refs:acme/a']);
    expect(tagsOf(callFor('GET', `${R}/acme/a/refs/branches/feature%2Fx`))).toEqual(['ws:acme', 'repo:acme/a', 'refs:acme/a', 'ref:acme/a:feature/x']);
    expect(tagsOf(callFor('GET', `${R}/acme/a/src/main/Jenkinsfile?format=meta`))).toEqual(['ws:acme', 'repo:acme/a', 'ref:acme/a:main']);
    expect(tagsOf(callFor('GET', `${R}/acme/a/src/abcdef012345/Jenkinsfile?at=feature%2Fx`))).toContain('ref:acme/a:feature/x');
    expect(tagsOf(callFor('GET', `${R}/acme/a/hooks?pagelen=100`))).toContain('hooks:acme/a');
  });

  it('a write names what it changes: statuses of its commit, hooks of its repository', () => {
    expect(tagsChangedBy(callFor('POST', `${R}/acme/a/commit/0123456789abcdef0123/statuses/build`, '{}'))).toEqual(['statuses:acme/a:0123456789ab']);
    expect(tagsChangedBy(callFor('POST', `${R}/acme/a/hooks`, '{}'))).toEqual(['hooks:acme/a']);
    expect(tagsChangedBy(callFor('DELETE', `${R}/acme/a/hooks/%7B202cf34e-7ccf-44b7-ba6b-8827a14d5324%7D`))).toEqual(['hooks:acme/a']);
  });
});
