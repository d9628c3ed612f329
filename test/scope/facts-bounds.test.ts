/**
 * Learned facts are bounded in bytes: a workspace far larger than any real one (or a flood of
 * listings) keeps the tables at their bound, the most recently learned facts stay, and an evicted
 * project is simply unknown again (the gate looks it up; facts only ever allow).
 */
import { FACT_TABLE_BYTES, ScopeFacts } from '../../src/scope/facts';

describe('learned facts', () => {
  it('stay within their byte bounds, keeping the most recent', () => {
    const facts = new ScopeFacts();
    const uuid = (i: number) => `{00000000-0000-4000-8000-${String(i).padStart(12, '0')}}`;
    const N = 200_000;
    for (let page = 0; page < N / 100; page++) {
      const values = Array.from({ length: 100 }, (_, j) => {
        const i = page * 100 + j;
        return { type: 'repository', uuid: uuid(i), full_name: `acme/repository-number-${i}`, slug: `repository-number-${i}`, project: { type: 'project', key: `P${i % 50}` } };
      });
      facts.learn({ values }, undefined);
    }
    const usage = facts.usage();
    expect(usage.repositories.bytes).toBeLessThanOrEqual(FACT_TABLE_BYTES.repositories);
    expect(usage.projects.bytes).toBeLessThanOrEqual(FACT_TABLE_BYTES.projects);
    expect(usage.projects.entries).toBeLessThan(N);
    expect(usage.projects.entries).toBeGreaterThan(50_000);
    expect(facts.projectOf(`acme/repository-number-${N - 1}`)).toBe(`P${(N - 1) % 50}`);
    expect(facts.repository(uuid(N - 1))).toBe(`acme/repository-number-${N - 1}`);
    expect(facts.projectOf('acme/repository-number-0')).toBeUndefined();
  });
});
