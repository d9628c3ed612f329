import { BbqlError, compileQuery, sortBy } from '../../src/fake-bitbucket/bbql';
import { applyFields } from '../../src/core/fields';
import { isoMicros, stableUuid } from '../../src/fake-bitbucket/ids';
import { encodeRefForLink } from '../../src/git-objects/render';
import { pageHref, pageParams, paginate } from '../../src/fake-bitbucket/pagination';
import { FaultStore } from '../../src/fake-bitbucket/faults';
import { RateLimiter } from '../../src/fake-bitbucket/rate-limit';

describe('fields filter', () => {
  const page = {
    pagelen: 1,
    values: [{ hash: 'a', author: { raw: 'A <a@x>', user: { nickname: 'a' } }, date: 'd', message: 'm', parents: [] }],
    page: 1,
    next: 'http://x/next',
  };

  test('include-only drops the envelope (no next unless asked)', () => {
    expect(applyFields(page, 'values.hash,values.author.raw')).toEqual({ values: [{ hash: 'a', author: { raw: 'A <a@x>' } }] });
    expect(applyFields(page, 'values.hash,next')).toEqual({ values: [{ hash: 'a' }], next: 'http://x/next' });
  });

  test('exclusions, additions and wildcards', () => {
    expect(applyFields(page, '-values.author,-next')).toEqual({ pagelen: 1, values: [{ hash: 'a', date: 'd', message: 'm', parents: [] }], page: 1 });
    expect(applyFields(page, '+values.author')).toEqual(page);
    expect(applyFields({ a: { x: 1, y: 2 }, b: { x: 3 } }, '*.x')).toEqual({ a: { x: 1 }, b: { x: 3 } });
    expect(applyFields({ mainbranch: { name: 'main', type: 'branch' }, slug: 's' }, 'mainbranch.name')).toEqual({ mainbranch: { name: 'main' } });
    expect(applyFields({ a: 1 }, 'nope')).toEqual({});
  });
});

describe('BBQL', () => {
  const items = [
    { name: 'main', project: { key: 'CI' }, n: 3, open: true },
    { name: 'feature/x', project: { key: 'OPS' }, n: 1, open: false },
    { name: 'Feature/Y', project: null, n: 2, open: true },
  ];
  const q = (s: string): string[] => items.filter(compileQuery(s)).map((i) => i.name);

  test('operators, AND/OR, parentheses, literals', () => {
    expect(q('project.key="CI"')).toEqual(['main']);
    expect(q('project.key = "CI" OR project.key = "OPS"')).toEqual(['main', 'feature/x']);
    expect(q('name ~ "feature" AND n > 1')).toEqual(['Feature/Y']);
    expect(q('(name !~ "feature") and open = true')).toEqual(['main']);
    expect(q('project.key != "CI"')).toEqual(['feature/x', 'Feature/Y']);
    expect(q('n >= 2 AND n <= 3')).toEqual(['main', 'Feature/Y']);
    expect(q('name = "a \\" b"')).toEqual([]);
  });

  test('syntax errors throw BbqlError', () => {
    for (const bad of ['project.key=', 'name ~ "open', '(a = 1', 'a = 1 b = 2', '= 3']) {
      expect(() => compileQuery(bad)).toThrow(BbqlError);
    }
  });

  test('sort ascending/descending, missing last', () => {
    expect(sortBy(items, 'n').map((i) => i.n)).toEqual([1, 2, 3]);
    expect(sortBy(items, '-n').map((i) => i.n)).toEqual([3, 2, 1]);
    expect(sortBy(items, 'project.key').map((i) => i.name)).toEqual(['main', 'feature/x', 'Feature/Y']);
  });
});

describe('pagination', () => {
  const base = { url: 'http://127.0.0.1:1', rawPath: '/2.0/repositories/acme', rawQuery: 'pagelen=2&q=project.key%3D%22CI%22&page=1' };

  test('next replaces page and keeps the rest of the query verbatim', () => {
    expect(pageHref(base, 2)).toBe('http://127.0.0.1:1/2.0/repositories/acme?pagelen=2&q=project.key%3D%22CI%22&page=2');
    const env = paginate([1, 2, 3, 4, 5], { page: 2, pagelen: 2 }, base, { defaultPagelen: 10, maxPagelen: 100 });
    expect(env).toMatchObject({ pagelen: 2, size: 5, values: [3, 4], page: 2 });
    expect(env.next).toMatch(/page=3$/);
    expect(env.previous).toMatch(/page=1$/);
    expect(paginate([1, 2, 3, 4, 5], { page: 3, pagelen: 2 }, base, { defaultPagelen: 10, maxPagelen: 100 }).next).toBeUndefined();
  });

  test('pagelen limits: clamp or 400', () => {
    expect(pageParams({ pagelen: ['500'] }, { defaultPagelen: 10, maxPagelen: 100 })).toEqual({ page: 1, pagelen: 100 });
    expect(pageParams({ pagelen: ['51'] }, { defaultPagelen: 10, maxPagelen: 50, overMax: 'error' })).toMatchObject({ status: 400 });
    expect(pageParams({ pagelen: ['0'] }, { defaultPagelen: 10, maxPagelen: 50 })).toMatchObject({ status: 400 });
    expect(pageParams({}, { defaultPagelen: 30, maxPagelen: 100 })).toEqual({ page: 1, pagelen: 30 });
  });
});

describe('identifiers and time', () => {
  test('stable uuids and µs timestamps', () => {
    expect(stableUuid('repository', 'acme/x')).toBe(stableUuid('repository', 'acme/x'));
    expect(stableUuid('repository', 'acme/x')).not.toBe(stableUuid('repository', 'acme/y'));
    expect(stableUuid('a')).toMatch(/^\{[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\}$/);
    expect(isoMicros(Date.UTC(2025, 0, 27, 14, 15, 58, 600), 's')).toMatch(/^2025-01-27T14:15:58\.600\d{3}\+00:00$/);
  });

  test('ref names in links are encoded like the recorded payload', () => {
    expect(encodeRefForLink('special-"$;><&#_=@!|.,/test')).toBe('special-%22$;%3E%3C&%23_=@!%7C.,/test');
  });
});

describe('fault store and rate limiter', () => {
  test('latencies accumulate, first terminal fault wins, times counts down', () => {
    const s = new FaultStore();
    s.add({ kind: 'latency', latencyMs: 5 });
    s.add({ kind: 'status', status: 500, times: 1, match: { pathPrefix: '/2.0/a' } });
    s.add({ kind: 'html500', match: { pathIncludes: '/a' } });
    const first = s.take('GET', '/2.0/a', '/2.0/a');
    expect(first.latencyMs).toBe(5);
    expect(first.terminal?.kind).toBe('status');
    expect(s.take('GET', '/2.0/a', '/2.0/a').terminal?.kind).toBe('html500');
    expect(s.take('GET', '/2.0/b', '/2.0/b').terminal).toBeUndefined();
    expect(() => s.add({ kind: 'boom' as never })).toThrow();
  });

  test('per-credential windows', () => {
    let now = 0;
    const rl = new RateLimiter(() => now);
    rl.set(1);
    expect(rl.admit('a')).toBe(true);
    expect(rl.admit('b')).toBe(true);
    expect(rl.admit('a')).toBe(false);
    now = 3600_000;
    expect(rl.admit('a')).toBe(true);
  });
});
