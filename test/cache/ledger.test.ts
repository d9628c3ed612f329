import { SharedLedger } from '../../src/cache/shared/ledger';

/** What a sidecar counts of its Redis writes per client (src/cache/shared/ledger.ts). */
describe('SharedLedger', () => {
  let now = 1_700_000_000_000;
  const clock = () => now;

  it('holds a client to its share once another client has bytes, and never refuses the others for it', () => {
    const l = new SharedLedger(10_000, () => 1, clock);
    expect(l.admit('B', 4000, now + 3_600_000)).toBeDefined();
    // A alone with B: half of 10,000.
    let admitted = 0;
    while (l.admit('A', 1000, now + 60_000)) admitted++;
    expect(admitted).toBe(5);
    expect(l.refused).toBe(1);
    expect(l.bytesOf('B')).toBe(4000);
    expect(l.admit('B', 1000, now + 3_600_000)).toBeDefined();
  });

  it('stops counting writes once they expired, and when they are replaced', () => {
    const l = new SharedLedger(10_000, () => 1, clock);
    const w = l.admit('A', 3000, now + 90_000)!;
    l.admit('A', 2000, now + 3_600_000);
    now += 3 * 60_000;
    expect(l.bytesOf('A')).toBe(2000);
    l.release('A', 3000, w.bucket); // already expired: nothing more to take
    expect(l.bytesOf('A')).toBe(2000);
    const x = l.admit('A', 500, now + 600_000)!;
    l.release('A', 500, x.bucket);
    expect(l.usage()).toEqual([{ owner: 'A', bytes: 2000 }]);
  });

  it('weights the shares', () => {
    const l = new SharedLedger(10_000, (c) => (c === 'B' ? 3 : 1), clock);
    l.admit('B', 100, now + 60_000);
    expect(l.admit('A', 2600, now + 60_000)).toBeUndefined();
    expect(l.admit('A', 2500, now + 60_000)).toBeDefined();
  });
});
