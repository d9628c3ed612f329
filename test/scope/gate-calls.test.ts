/**
 * The scope gate hands out one frozen call per (match, method, query) when nothing was resolved and
 * there is no body — so the upstream path and cache key are derived once for a target asked again —
 * and a fresh call otherwise. Permissions are still decided for every request.
 */
import type { Client } from '../../src/core/client';
import { recentTargets } from '../../src/listen/recent-targets';
import type { Source } from '../../src/core/call';
import { ScopeFacts } from '../../src/scope/facts';
import { ScopeGate } from '../../src/scope/gate';

const reader: Client = { id: 'reader', scope: [{ workspace: 'acme' }], permissions: new Set(['read']) };
const writer: Client = { id: 'writer', scope: [{ workspace: 'acme' }], permissions: new Set(['read', 'statuses:write']) };
const nothingUpstream: Source = () => Promise.reject(new Error('the gate asked upstream'));

function matchOf(url: string, method = 'GET') {
  const t = recentTargets(8192);
  const target = t.parse(url);
  const found = t.match('api', method, target);
  if (found.kind !== 'match') throw new Error(`no route for ${url}`);
  return { match: found.match, query: target.query };
}

describe('ScopeGate calls', () => {
  const gate = new ScopeGate(new ScopeFacts(), nothingUpstream);

  it('one frozen call for a match asked again, the same for every client it admits', async () => {
    const { match, query } = matchOf('/2.0/repositories/acme/api/refs/branches?pagelen=100&bogus=1');
    const a = await gate.admit(reader, match, 'GET', query);
    const b = await gate.admit(writer, match, 'GET', query);
    if (!a.ok || !b.ok) throw new Error('refused');
    expect(b.call).toBe(a.call);
    expect(a.call.query).toEqual([['pagelen', '100']]);
    expect(Object.isFrozen(a.call) && Object.isFrozen(a.call.params) && Object.isFrozen(a.call.query)).toBe(true);
    const head = await gate.admit(reader, match, 'HEAD', query);
    expect(head.ok && head.call).not.toBe(a.call);
  });

  it('a fresh call for every request with a body, and permissions decided each time', async () => {
    const { match, query } = matchOf(`/2.0/repositories/acme/api/commit/${'a'.repeat(40)}/statuses/build`, 'POST');
    const body = { data: Buffer.from('{"state":"SUCCESSFUL","key":"k","url":"http://j"}'), contentType: 'application/json' };
    const a = await gate.admit(writer, match, 'POST', query, body);
    const b = await gate.admit(writer, match, 'POST', query, body);
    if (!a.ok || !b.ok) throw new Error('refused');
    expect(b.call).not.toBe(a.call);
    expect(a.call.body).toBe(body.data);
    expect(await gate.admit(reader, match, 'POST', query, body)).toMatchObject({ ok: false, status: 403 });
  });
});
