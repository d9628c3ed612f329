import { DEFAULT_FRESHNESS, freshnessOf, isStorable, isUpstreamTrouble, lifetimeMs } from '../../src/cache/freshness';
import type { Method } from '../../src/core/call';
import { callFor } from './calls';

const R = '/2.0/repositories/acme/a';
const H40 = '0123456789abcdef0123456789abcdef01234567';

describe('freshness classes', () => {
  it.each<[Method, string, string | undefined]>([
    ['GET', '/2.0/workspaces/acme', 'metadata'],
    ['GET', '/2.0/repositories/acme?pagelen=100', 'list'],
    ['GET', R, 'metadata'],
    ['GET', `${R}/?fields=mainbranch.name`, 'metadata'],
    ['GET', `${R}/pullrequests?pagelen=50`, 'list'],
    ['GET', `${R}/pullrequests/3`, 'list'],
    ['GET', `${R}/pullrequests/3/commits?pagelen=1`, 'list'],
    ['GET', `${R}/refs/branches?pagelen=100`, 'list'],
    ['GET', `${R}/refs/tags/v1.0`, 'list'],
    ['GET', `${R}/commit/${H40}`, 'immutable'],
    ['GET', `${R}/commit/0123456789ab`, 'immutable'],
    ['GET', `${R}/commit/0123456789a`, 'list'],
    ['GET', `${R}/commits?include=main`, 'list'],
    ['GET', `${R}/src/${H40}/Jenkinsfile?format=meta`, 'immutable'],
    ['HEAD', `${R}/src/0123456789ab/dir%2FJenkinsfile?format=meta`, 'immutable'],
    ['GET', `${R}/src/${H40}/`, 'immutable'],
    ['GET', `${R}/src/${H40}/Jenkinsfile?at=main`, 'list'],
    ['GET', `${R}/src/main/Jenkinsfile?format=meta`, 'list'],
    ['GET', `${R}/src/feature%2Fx/Jenkinsfile`, 'list'],
    ['GET', `${R}/hooks?pagelen=100`, 'list'],
    ['POST', `${R}/hooks`, undefined],
    ['POST', `${R}/commit/${H40}/statuses/build`, undefined],
    ['GET', '/2.0/user', undefined],
  ])('%s %s → %s', (method, url, expected) => {
    expect(freshnessOf(callFor(method, url))).toBe(expected);
  });

  it('gives each class its configured lifetime and 404s the short one', () => {
    const cfg = { immutableSeconds: 7, metadataSeconds: 5, listSeconds: 3, notFoundSeconds: 2 };
    expect(lifetimeMs('immutable', 200, cfg)).toBe(7000);
    expect(lifetimeMs('metadata', 200, cfg)).toBe(5000);
    expect(lifetimeMs('list', 200, cfg)).toBe(3000);
    expect(lifetimeMs('immutable', 404, cfg)).toBe(2000);
    expect(DEFAULT_FRESHNESS.immutableSeconds).toBeGreaterThan(DEFAULT_FRESHNESS.metadataSeconds);
    expect(DEFAULT_FRESHNESS.metadataSeconds).toBeGreaterThan(DEFAULT_FRESHNESS.listSeconds);
  });

  it('stores only 200 and 404; serves stale on 429, 5xx', () => {
    expect([200, 201, 204, 301, 400, 401, 403, 404, 429, 500].filter(isStorable)).toEqual([200, 404]);
    expect([200, 401, 403, 404, 429, 500, 502, 503, 504].filter(isUpstreamTrouble)).toEqual([429, 500, 502, 503, 504]);
  });
});
