import { BadTarget, encodeSegment, parseRequestTarget } from '../../src/routes/canonical';

const parse = (t: string) => parseRequestTarget(t, 8192);
const status = (t: string, max = 8192) => {
  try {
    parseRequestTarget(t, max);
    return 200;
  } catch (e) {
    return (e as BadTarget).status;
  }
};

describe('canonical request targets', () => {
  it('decodes each segment once, keeping %2F inside its segment', () => {
    const t = parse('/2.0/repositories/acme/svc/refs/branches/feature%2FBB-1');
    expect(t.segments).toEqual(['2.0', 'repositories', 'acme', 'svc', 'refs', 'branches', 'feature/BB-1']);
  });

  it.each(['/a/%252F', '/a/..%252F..%252Fother', '/a/%252e%252e', '/a/x%255Cy', '/a/%25252F', '/a/%255c..'])('refuses %s: a second decoding would see a separator or dot', (t) => {
    expect(() => parse(t)).toThrow(/percent-encoded separator, dot or percent sign/);
  });

  it('keeps the trailing slash of `/{repo}/?fields=` and decodes the query', () => {
    const t = parse('/2.0/repositories/acme/svc/?fields=mainbranch.name');
    expect(t.trailingSlash).toBe(true);
    expect(t.query).toEqual([['fields', 'mainbranch.name']]);
    expect(parse('/x?q=project.key%3D%22CI%22&fields=values.hash%2Cvalues.date&state=OPEN&state=MERGED').query).toEqual([
      ['q', 'project.key="CI"'],
      ['fields', 'values.hash,values.date'],
      ['state', 'OPEN'],
      ['state', 'MERGED'],
    ]);
  });

  it('takes the host of an absolute-form target', () => {
    const t = parse('https://api.bitbucket.org/2.0/workspaces/acme');
    expect(t.absoluteHost).toBe('api.bitbucket.org');
    expect(t.segments).toEqual(['2.0', 'workspaces', 'acme']);
  });

  it.each([
    ['/2.0/repositories/acme/../jdoe', 400],
    ['/2.0/repositories/acme/%2e%2e/jdoe', 400],
    ['/2.0/repositories/acme/./svc', 400],
    ['/2.0//repositories/acme', 400],
    ['/2.0/repositories/acme%00/svc', 400],
    ['/2.0/repositories/acme%0d%0a/svc', 400],
    ['/2.0/repositories/%zz', 400],
    ['/2.0/repositories/%E0%A4%A', 400],
    ['/2.0/repositories/acme\\svc', 400],
    ['/2.0/repositories/ac me', 400],
    ['/2.0/repositories/acmé', 400],
    ['2.0/repositories', 400],
    ['*', 400],
    ['http://user:pw@api.bitbucket.org/2.0/user', 400],
    ['/x?a=%ZZ', 400],
    ['/x?a=%01', 400],
  ])('refuses %s', (target, expected) => {
    expect(status(target)).toBe(expected);
  });

  it('refuses over-long targets with 414', () => {
    expect(status(`/2.0/${'a'.repeat(300)}`, 256)).toBe(414);
  });

  it('encodes like RFC 6570 {/var}: everything but unreserved characters', () => {
    expect(encodeSegment('special-"$;><&#_=@!|.,/test')).toBe('special-%22%24%3B%3E%3C%26%23_%3D%40%21%7C.%2C%2Ftest');
    expect(encodeSegment('{202cf34e-7ccf}')).toBe('%7B202cf34e-7ccf%7D');
  });
});
