import { rewriteLinks, rewriteUrl } from '../../src/respond/links';
import type { LinkBases } from '../../src/core/links';
import { filterRepositoryListing } from '../../src/respond/filter';
import { toClient } from '../../src/auth/clients';
import { ScopeFacts } from '../../src/scope/facts';

const real: LinkBases = {
  upstreamApi: 'https://api.bitbucket.org',
  upstreamWeb: 'https://bitbucket.org',
  clientApi: 'https://api.bitbucket.org',
  clientWeb: 'https://bitbucket.org',
};
const local: LinkBases = { upstreamApi: 'http://127.0.0.1:9000', upstreamWeb: 'http://127.0.0.1:9000', clientApi: 'http://localhost:8080', clientWeb: 'http://localhost:8080' };

describe('link rewriting', () => {
  it('keeps api.bitbucket.org links exact for a client that came as api.bitbucket.org', () => {
    const next = 'https://api.bitbucket.org/2.0/repositories/acme?pagelen=100&page=2';
    expect(rewriteUrl(next, real)).toBe(next);
  });

  it('maps upstream origins to the client base and strips user names from clone links', () => {
    expect(rewriteUrl('http://127.0.0.1:9000/2.0/repositories/acme?page=2', local)).toBe('http://localhost:8080/2.0/repositories/acme?page=2');
    expect(rewriteUrl('https://jdoe@bitbucket.org/acme/svc.git', real)).toBe('https://bitbucket.org/acme/svc.git');
    expect(rewriteUrl('http://jdoe@127.0.0.1:9000/acme/svc.git', local)).toBe('http://localhost:8080/acme/svc.git');
    expect(rewriteUrl('https://user:pw@bytebucket.org/ravatar/x', real)).toBe('https://bytebucket.org/ravatar/x');
    expect(rewriteUrl('git@bitbucket.org:acme/svc.git', real)).toBe('git@bitbucket.org:acme/svc.git');
  });

  it('rewrites only link fields, never content such as hook urls or messages', () => {
    const page = {
      next: 'http://127.0.0.1:9000/2.0/x?page=2',
      values: [{ url: 'http://127.0.0.1:9000/hook', message: 'see http://127.0.0.1:9000/2.0/x', links: { clone: [{ name: 'https', href: 'http://jdoe@127.0.0.1:9000/a/b.git' }], self: { href: 'http://127.0.0.1:9000/2.0/a' } } }],
    };
    expect(rewriteLinks(page, local)).toEqual({
      next: 'http://localhost:8080/2.0/x?page=2',
      values: [{ url: 'http://127.0.0.1:9000/hook', message: 'see http://127.0.0.1:9000/2.0/x', links: { clone: [{ name: 'https', href: 'http://localhost:8080/a/b.git' }], self: { href: 'http://localhost:8080/2.0/a' } } }],
    });
  });
});

describe('link rewriting, details', () => {
  it('compares origins without regard to case, keeps what follows them as it is', () => {
    expect(rewriteUrl('HTTP://127.0.0.1:9000/2.0/Repositories/ACME', local)).toBe('http://localhost:8080/2.0/Repositories/ACME');
    expect(rewriteUrl('http://127.0.0.1:9000/2.0/x', { ...local, upstreamApi: 'HTTP://127.0.0.1:9000', upstreamWeb: 'HTTP://127.0.0.1:9000' })).toBe('http://localhost:8080/2.0/x');
  });

  it('leaves array elements, other keys and values that are not URLs alone', () => {
    const v = { href: ['http://127.0.0.1:9000/2.0/a'], next: 5, previous: null, links: { self: { href: 'not a url' } }, list: [{ href: 'http://127.0.0.1:9000/a' }] };
    expect(rewriteLinks(v, local)).toEqual({ href: ['http://127.0.0.1:9000/2.0/a'], next: 5, previous: null, links: { self: { href: 'not a url' } }, list: [{ href: 'http://localhost:8080/a' }] });
  });

  it('does not change the answer it was given (parsed bodies are shared)', () => {
    const v = { next: 'http://127.0.0.1:9000/2.0/x?page=2', values: [{ links: { self: { href: 'http://127.0.0.1:9000/2.0/a' } } }] };
    const before = JSON.stringify(v);
    rewriteLinks(v, local);
    expect(JSON.stringify(v)).toBe(before);
  });
});

describe('repository listing filter', () => {
  const client = toClient({ id: 'c', scope: [{ workspace: 'acme', projects: ['CI'] }, { workspace: 'acme', repositories: ['infra*'] }], permissions: ['read'] });
  const page = {
    size: 4,
    pagelen: 100,
    values: [
      { full_name: 'acme/service-api', project: { key: 'CI' } },
      { full_name: 'acme/infra', project: { key: 'OPS' } },
      { full_name: 'acme/docs-site', project: { key: 'DOC' } },
      { full_name: 'acme/no-project-field' },
      { slug: 'no-full-name' },
    ],
  };
  it('keeps only in-scope repositories, fails closed and hides the size', () => {
    expect(filterRepositoryListing(page, client, new ScopeFacts())).toEqual({ pagelen: 100, values: [page.values[0], page.values[1]] });
  });
});
