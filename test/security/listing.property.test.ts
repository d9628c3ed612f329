/**
 * Property: a narrowed client's repository listing is exactly what it would be if the repositories
 * hidden from it did not exist. Two fake Bitbucket workspaces from the same seed — one whole, one
 * without the hidden repositories — each behind its own sidecar; random listing requests (q, fields,
 * sort, page, pagelen, role) by project- and glob-scoped clients must get byte-identical answers
 * from both. A second property: projected answers read by one client never change another
 * client's decisions. `npm run fuzz` runs more cases (FUZZ_RUNS), FUZZ_SEED replays one.
 */
import fc from 'fast-check';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { basicAuth, startStack, type Stack, type StackClient } from '../helpers/stack';
import { request } from '../ops/http';

const FUZZ = Number(process.env.FUZZ_RUNS ?? 0);
const RUNS = FUZZ > 0 ? Math.ceil(FUZZ / 20) : 150;
// A long fuzz run is allowed the time its case count needs (a bound on waiting, not a timing assertion).
const TIME_BUDGET = FUZZ > 0 ? 60_000 + RUNS * 300 : undefined;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const HIDDEN = ['infra', 'docs-site'];

const CLIENTS: StackClient[] = [
  { id: 'ci', scope: [{ workspace: 'acme', projects: ['CI'] }] },
  { id: 'glob', scope: [{ workspace: 'acme', repositories: ['service-*'] }] },
  { id: 'both', scope: [{ workspace: 'acme', projects: ['CI', 'OPS'], repositories: ['service-*', 'widgets'] }] },
  { id: 'full', scope: [{ workspace: 'acme' }] },
];

const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
const qArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom('CI', 'OPS', 'DOC', 'NOPE', 'ci').map((k) => `project.key="${k}"`) },
  fc.constantFrom('infra', 'docs-site', 'service-api', 'nothing').map((n) => `name="${n}"`),
  fc.tuple(fc.constantFrom('Infra', 'The', 'zz'), fc.constantFrom('description', 'name')).map(([t, f]) => `${f}~"${t}"`),
  fc.constantFrom('CI', 'OPS').map((k) => `project.key="${k}" OR name="infra"`),
);
const fieldsArb = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('size', 'values.full_name', 'values.full_name,size,next', '-values.links', 'values.project.key,page,pagelen', '+values.uuid', 'values.*'),
);
const listingArb = fc.record({
  q: qArb,
  fields: fieldsArb,
  sort: rarely(fc.constantFrom('name', '-updated_on')),
  page: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  pagelen: fc.option(fc.constantFrom(1, 2, 3, 10, 100, 1000), { nil: undefined }),
  role: rarely(fc.constantFrom('member', 'admin', 'owner', 'nobody')),
  client: fc.constantFrom('ci', 'glob', 'both'),
});
type Listing = typeof listingArb extends fc.Arbitrary<infer T> ? T : never;

function target(l: Listing): string {
  const q: string[] = [];
  if (l.q !== undefined) q.push(`q=${encodeURIComponent(l.q)}`);
  if (l.fields !== undefined) q.push(`fields=${encodeURIComponent(l.fields)}`);
  if (l.sort !== undefined) q.push(`sort=${encodeURIComponent(l.sort)}`);
  if (l.page !== undefined) q.push(`page=${l.page}`);
  if (l.pagelen !== undefined) q.push(`pagelen=${l.pagelen}`);
  if (l.role !== undefined) q.push(`role=${l.role}`);
  return `/2.0/repositories/acme${q.length ? `?${q.join('&')}` : ''}`;
}

describe('listing properties', () => {
  let whole: Stack;
  let visibleOnly: Stack;
  let wholeFake: FakeBitbucket;
  let reducedFake: FakeBitbucket;
  // Every distinct fields= is a distinct upstream call: a long run spends more than one client's
  // share of the default hourly budget, and pacing (correct, but minutes) is not what this checks.
  const roomy = (fake: FakeBitbucket) => ({
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: { repositoryRequestsPerHour: 1_000_000 } },
  });
  beforeAll(async () => {
    wholeFake = await startFakeBitbucket({ seed: 'demo' });
    whole = await startStack(CLIENTS, { fakeInstance: wholeFake, config: roomy(wholeFake) });
    reducedFake = await startFakeBitbucket({ seed: 'demo' });
    const repos = reducedFake.model.repositories;
    for (let i = repos.length - 1; i >= 0; i--) if (repos[i].workspace === 'acme' && HIDDEN.includes(repos[i].slug)) repos.splice(i, 1);
    visibleOnly = await startStack(CLIENTS, { fakeInstance: reducedFake, config: roomy(reducedFake) });
  });
  afterAll(async () => {
    await whole?.stop();
    await visibleOnly?.stop();
    await wholeFake?.close();
    await reducedFake?.close();
  });

  const ask = async (stack: Stack, client: string, path: string) => {
    const r = await request(`${stack.url}${path}`, { headers: { host: 'api.bitbucket.org', authorization: basicAuth('jenkins@ci.example', stack.tokens[client]) } });
    return `${r.status} ${r.body}`;
  };

  it('answers a narrowed client as if the hidden repositories did not exist', async () => {
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(listingArb, async (l) => {
        const path = target(l);
        const a = await ask(whole, l.client, path);
        const b = await ask(visibleOnly, l.client, path);
        if (a.startsWith('200 ')) answered++;
        expect(a).toBe(b);
        for (const hidden of HIDDEN) expect(a).not.toContain(`acme/${hidden}`);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    // The generators reach answered listings, not only refusals.
    expect(answered).toBeGreaterThan(RUNS / 10);
  }, TIME_BUDGET);

  it('never lets one client\'s projected answers change another client\'s decisions', async () => {
    const decisions = async () => {
      const out: string[] = [];
      for (const p of ['/2.0/repositories/acme/service-api', '/2.0/repositories/acme/service-web/refs/branches', '/2.0/repositories/jdoe/service-api-fork/refs/branches/feature%2FBB-2', '/2.0/repositories/acme/infra']) {
        out.push(`${p} ${(await ask(whole, 'ci', p)).slice(0, 3)}`);
      }
      return out;
    };
    await ask(whole, 'ci', '/2.0/repositories/acme/service-api/pullrequests?pagelen=50');
    const before = await decisions();
    expect(before.map((d) => d.slice(-3))).toEqual(['200', '200', '200', '404']);
    const projected = fc.record({
      path: fc.constantFrom('/2.0/repositories/acme', '/2.0/repositories/acme/service-api', '/2.0/repositories/acme/service-api/pullrequests', '/2.0/repositories/acme/service-api/pullrequests/1'),
      fields: fc.array(fc.constantFrom('values.type', 'type', 'values.full_name', 'full_name', 'values.project.uuid', 'project.uuid', 'values.id', 'values.state', 'values.source.repository.full_name', 'values.destination.repository.full_name', 'values.source.branch.name', 'values.uuid', 'id', 'source.repository.full_name', '-values.project', '-project', '-values.source'), { minLength: 1, maxLength: 5 }),
    });
    await fc.assert(
      fc.asyncProperty(projected, async ({ path, fields }) => {
        await ask(whole, 'full', `${path}?fields=${encodeURIComponent(fields.join(','))}`);
        expect(await decisions()).toEqual(before);
      }),
      { numRuns: Math.ceil(RUNS / 3), seed: SEED },
    );
  }, TIME_BUDGET);
});
