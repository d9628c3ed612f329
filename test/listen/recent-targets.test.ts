/**
 * Remembered request targets and route matches: the same answers as parsing and matching afresh,
 * frozen (a stage that tried to change one would throw, not change the next request's), keyed by
 * face and method as well as the text, and a target that does not parse is refused every time.
 */
import { recentTargets } from '../../src/listen/recent-targets';
import { matchRoute } from '../../src/routes/match';
import { BadTarget, parseRequestTarget } from '../../src/routes/canonical';

const URLS = [
  '/2.0/repositories/acme/api/refs/branches?pagelen=100&q=name%3D%22main%22',
  '/2.0/repositories/acme/api/src/feature%2Fx/Jenkinsfile?format=meta',
  '/2.0/repositories/ACME/{0b1c2d3e-0000-4000-8000-000000000000}/',
  '/acme/api.git/info/refs?service=git-upload-pack',
  '/2.0/nothing/here',
];

describe('recentTargets', () => {
  it('answers as parseRequestTarget and matchRoute do, with frozen results, remembered', () => {
    const t = recentTargets(8192);
    for (const url of URLS) {
      for (const [face, method] of [['api', 'GET'], ['api', 'POST'], ['web', 'GET']] as const) {
        const target = t.parse(url);
        expect(target).toEqual(parseRequestTarget(url, 8192));
        expect(t.parse(url)).toBe(target);
        const found = t.match(face, method, target);
        expect(found).toEqual(matchRoute(face, method, parseRequestTarget(url, 8192)));
        expect(t.match(face, method, target)).toBe(found);
        expect(Object.isFrozen(target) && Object.isFrozen(target.segments) && Object.isFrozen(target.query)).toBe(true);
        expect(target.query.every((pair) => Object.isFrozen(pair))).toBe(true);
        expect(Object.isFrozen(found)).toBe(true);
        if (found.kind === 'match') expect(Object.isFrozen(found.match.params)).toBe(true);
      }
    }
    const branches = t.parse(URLS[0]);
    expect(() => (branches.segments as string[]).push('x')).toThrow(TypeError);
    expect(t.match('api', 'GET', branches)).not.toBe(t.match('api', 'HEAD', branches));
  });

  it('refuses a target that does not parse every time', () => {
    const t = recentTargets(64);
    const long = `/2.0/repositories/${'a'.repeat(100)}`;
    expect(() => t.parse(long)).toThrow(BadTarget);
    expect(() => t.parse(long)).toThrow(BadTarget);
    expect(() => t.parse('/2.0/%zz')).toThrow(BadTarget);
  });
});
