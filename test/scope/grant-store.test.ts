import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/ops/logger';
import { FORK_GRANT_TTL_MS, MAX_GRANTED_FORKS, ScopeFacts } from '../../src/scope/facts';
import { persistForkGrants } from '../../src/scope/grant-store';
import { lineCollector } from '../git/helpers';

/**
 * Fork grants persisted in the state directory: restored by the next sidecar with the time each
 * was learned (so the TTL still counts from then), never past their TTL, never from a damaged
 * entry; the grant table itself is bounded.
 */
describe('persisted fork grants', () => {
  let dir: string;
  let file: string;
  let clock: number;
  const logs = lineCollector();
  const logger = createLogger({ level: 'info', destination: logs.stream });
  const pr = (id: number, fork: string, commit = 'abcdef012345', state = 'OPEN') => ({
    type: 'pullrequest',
    id,
    state,
    source: { repository: { full_name: fork }, branch: { name: `feature/${id}` }, commit: { hash: commit } },
    destination: { repository: { full_name: 'acme/service-api' } },
  });
  const facts = () => new ScopeFacts(() => clock);

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'grant-store-'));
    file = path.join(dir, 'state', 'fork-grants.json');
    clock = 1_700_000_000_000;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a new sidecar restores the grants with their learning time, and they expire on time', async () => {
    const a = facts();
    const store = persistForkGrants(a, file, logger);
    a.onForkGrantsChanged(() => store.changed());
    a.learn({ values: [pr(2, 'jdoe/service-api-fork')] }, 'acme/service-api');
    await store.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(['fork-grants.json']);

    clock += 60 * 60_000;
    const b = facts();
    persistForkGrants(b, file, logger);
    const [g] = b.forkGrants('jdoe/service-api-fork');
    expect(g).toMatchObject({ target: 'acme/service-api', prId: 2, branch: 'feature/2', commit: 'abcdef012345', learnedAt: 1_700_000_000_000 });
    clock = 1_700_000_000_000 + FORK_GRANT_TTL_MS;
    expect(b.forkGrants('jdoe/service-api-fork')).toEqual([]);
  });

  it('a grant past its TTL, or learned in the future, is not loaded', async () => {
    const a = facts();
    const store = persistForkGrants(a, file, logger);
    a.learn({ values: [pr(2, 'jdoe/service-api-fork')] }, 'acme/service-api');
    await store.flush();
    clock += FORK_GRANT_TTL_MS;
    const b = facts();
    persistForkGrants(b, file, logger);
    expect(b.allForkGrants()).toEqual([]);

    clock = 1_700_000_000_000 - 10 * 60_000;
    const c = facts();
    persistForkGrants(c, file, logger);
    expect(c.allForkGrants()).toEqual([]);
  });

  it('damaged files and entries restore nothing wrong and never throw', () => {
    const good = { fork: 'jdoe/service-api-fork', target: 'acme/service-api', prId: 2, branch: 'feature/BB-2', commit: 'abcdef012345', learnedAt: clock };
    const bad = [
      { ...good, fork: 'jdoe/../acme' },
      { ...good, fork: 'acme/service-api' },
      { ...good, branch: 'a\nb' },
      { ...good, commit: 'zzzzzzzzzzzz' },
      { ...good, fullCommit: 'f'.repeat(40) },
      { ...good, prId: -1 },
      { ...good, learnedAt: 'now' },
      null,
      'x',
    ];
    for (const text of ['{', '[]', JSON.stringify({ version: 2, grants: [good] }), JSON.stringify({ version: 1, grants: bad })]) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
      const f = facts();
      expect(() => persistForkGrants(f, file, logger)).not.toThrow();
      expect(f.allForkGrants()).toEqual([]);
    }
    writeFileSync(file, JSON.stringify({ version: 1, grants: [...bad, good] }));
    const f = facts();
    persistForkGrants(f, file, logger);
    expect(f.allForkGrants()).toEqual([good]);
  });

  it('a grant learned since start wins over the stored one for the same pull request', async () => {
    const a = facts();
    const store = persistForkGrants(a, file, logger);
    a.learn({ values: [pr(2, 'jdoe/service-api-fork', '111111111111')] }, 'acme/service-api');
    await store.close();
    const b = facts();
    b.learn({ values: [pr(2, 'jdoe/service-api-fork', '222222222222')] }, 'acme/service-api');
    persistForkGrants(b, file, logger);
    expect(b.forkGrants('jdoe/service-api-fork').map((g) => g.commit)).toEqual(['222222222222']);
  });

  it('dropForkGrant removes one pull request’s grant, and the file follows', async () => {
    const a = facts();
    const store = persistForkGrants(a, file, logger);
    let changes = 0;
    a.onForkGrantsChanged(() => {
      changes++;
      store.changed();
    });
    a.learn({ values: [pr(2, 'jdoe/service-api-fork'), pr(5, 'jdoe/service-api-fork')] }, 'acme/service-api');
    expect(a.dropForkGrant('ACME/service-api', 2)).toBe(true);
    expect(a.dropForkGrant('acme/service-api', 2)).toBe(false);
    expect(changes).toBeGreaterThan(0);
    await store.flush();
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.grants.map((g: { prId: number }) => g.prId)).toEqual([5]);
  });

  it('the grant table is bounded (the oldest fork is forgotten)', () => {
    const f = facts();
    const values = Array.from({ length: MAX_GRANTED_FORKS + 5 }, (_, i) => pr(i + 1, `w${i}/fork`));
    f.learn({ values }, 'acme/service-api');
    const all = f.allForkGrants();
    expect(all).toHaveLength(MAX_GRANTED_FORKS);
    expect(f.forkGrants('w0/fork')).toEqual([]);
    expect(f.forkGrants(`w${MAX_GRANTED_FORKS + 4}/fork`)).toHaveLength(1);
  });
});
