/**
 * Shaping a shared answer: links point at the client's base, and a hit whose shaped bytes are kept
 * is answered without parsing the body again; bodies that are not JSON (or do not parse) pass as they are.
 */
import type { Client } from '../../src/core/client';
import { shapeAnswer } from '../../src/respond/answer';
import type { LinkBases } from '../../src/core/links';
import { BodyMemo } from '../../src/core/body-memo';
import type { ApiAnswer, ApiCall } from '../../src/core/call';
import { ROUTES } from '../../src/routes/catalog';
import { ScopeFacts } from '../../src/scope/facts';

const client: Client = { id: 'c', scope: [{ workspace: 'acme' }], permissions: new Set(['read']) };
const bases: LinkBases = { upstreamApi: 'https://api.bitbucket.org', upstreamWeb: 'https://bitbucket.org', clientApi: 'http://sidecar:8080', clientWeb: 'http://sidecar:8080' };
const call: ApiCall = { method: 'GET', route: ROUTES.find((r) => r.id === 'branches')!, params: { ws: 'acme', repo: 'api' }, trailingSlash: false, query: [] };
const json = { values: [{ name: 'main', links: { self: { href: 'https://api.bitbucket.org/2.0/repositories/acme/api/refs/branches/main' } } }] };
const answer = (body: Buffer, contentType = 'application/json; charset=utf-8'): ApiAnswer => ({ status: 200, headers: { 'content-type': contentType }, body });

describe('shapeAnswer', () => {
  let memo: BodyMemo;
  beforeEach(() => {
    memo = new BodyMemo();
  });
  afterEach(() => jest.restoreAllMocks());

  it('rewrites links, and a hit on the same body is not parsed again once the parsed table has dropped it', () => {
    const body = Buffer.from(JSON.stringify(json));
    const parse = jest.spyOn(JSON, 'parse');
    const first = shapeAnswer(answer(body), call, client, new ScopeFacts(), bases, memo);
    expect(JSON.parse(first.body.toString())).toEqual({ values: [{ name: 'main', links: { self: { href: 'http://sidecar:8080/2.0/repositories/acme/api/refs/branches/main' } } }] });
    const parsesForFirst = parse.mock.calls.length - 1; // the expectation above parsed once
    expect(parsesForFirst).toBe(1);
    // A scan's other bodies push this one out of the (small) parsed table; its shaped bytes stay.
    for (let i = 0; i < 40; i++) memo.parse(Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(100_000) })));
    parse.mockClear();
    const again = shapeAnswer(answer(body), call, client, new ScopeFacts(), bases, memo);
    expect(again.body).toBe(first.body);
    expect(parse).not.toHaveBeenCalled();
  });

  it('passes bodies that are not JSON, or do not parse, as they are', () => {
    const text = Buffer.from('plain text');
    expect(shapeAnswer(answer(text, 'text/plain'), call, client, new ScopeFacts(), bases, memo).body).toBe(text);
    const broken = Buffer.from('{"values": [');
    expect(shapeAnswer(answer(broken), call, client, new ScopeFacts(), bases, memo).body).toBe(broken);
    expect(shapeAnswer(answer(broken), call, client, new ScopeFacts(), bases, memo).body).toBe(broken);
  });
});

describe('shapeAnswer, repository listing', () => {
  const memo = new BodyMemo();
  const listing: ApiCall = { ...call, route: ROUTES.find((r) => r.id === 'repositories')!, params: { ws: 'acme' } };
  const scoped: Client = { id: 'c', scope: [{ workspace: 'acme', repositories: [/^api$/] }], permissions: new Set(['read']) };
  const body = Buffer.from(JSON.stringify({ values: [{ full_name: 'acme/api', slug: 'api' }, { full_name: 'acme/secret', slug: 'secret' }] }));

  it('shows only the repositories in the client scope', () => {
    const shaped = shapeAnswer(answer(body), listing, scoped, new ScopeFacts(), bases, memo);
    expect(shaped.status).toBe(200);
    expect(shaped.body.toString()).toContain('acme/api');
    expect(shaped.body.toString()).not.toContain('secret');
  });

  it.each([
    ['a body that does not parse', answer(Buffer.from('{"values":[{"full_name":"acme/secret"'))],
    ['a body that is not JSON', answer(Buffer.from('<p>acme/secret</p>'), 'text/html')],
  ])('fails closed on %s (502, nothing of the body)', (_name, a) => {
    const shaped = shapeAnswer(a, listing, scoped, new ScopeFacts(), bases, memo);
    expect(shaped.status).toBe(502);
    expect(shaped.body.toString()).not.toContain('secret');
    expect(JSON.parse(shaped.body.toString())).toMatchObject({ type: 'error' });
  });
});
