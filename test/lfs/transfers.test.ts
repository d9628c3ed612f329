import { TransferTable } from '../../src/lfs/transfers';

const oid = (n: number) => n.toString(16).padStart(64, '0');
const t = (client: string, n: number, action: 'download' | 'upload' | 'verify' = 'download') => ({ client, ws: 'acme', repo: 'api', oid: oid(n), action, href: `https://media.example/${n}`, headers: { authorization: `Bearer m${n}` } });

describe('LFS transfer table', () => {
  let now = 5_000_000;
  const clock = () => now;
  beforeEach(() => {
    now = 5_000_000;
  });

  it('gives an id to exactly its client, repository and action', () => {
    const table = new TransferTable({ now: clock });
    const added = table.add(t('ci', 1))!;
    expect(added.id).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(table.take(added.id, 'ci', 'acme', 'api', 'download')?.href).toBe('https://media.example/1');
    expect(table.take(added.id, 'other', 'acme', 'api', 'download')).toBeUndefined();
    expect(table.take(added.id, 'ci', 'acme', 'web', 'download')).toBeUndefined();
    expect(table.take(added.id, 'ci', 'other', 'api', 'download')).toBeUndefined();
    expect(table.take(added.id, 'ci', 'acme', 'api', 'upload')).toBeUndefined();
    expect(table.take('x'.repeat(32), 'ci', 'acme', 'api', 'download')).toBeUndefined();
  });

  it('expires at its own life or Bitbucket’s, whichever is shorter', () => {
    const table = new TransferTable({ ttlMs: 60_000, now: clock });
    const long = table.add(t('ci', 1))!;
    const short = table.add(t('ci', 2), 10_000)!;
    expect(short.expiresAt).toBe(now + 10_000);
    expect(long.expiresAt).toBe(now + 60_000);
    now += 10_000;
    expect(table.take(short.id, 'ci', 'acme', 'api', 'download')).toBeUndefined();
    expect(table.take(long.id, 'ci', 'acme', 'api', 'download')).toBeDefined();
    now += 50_000;
    expect(table.take(long.id, 'ci', 'acme', 'api', 'download')).toBeUndefined();
    expect(table.size).toBe(0);
  });

  it('replaces the link of an object asked for again instead of growing', () => {
    const table = new TransferTable({ now: clock });
    const first = table.add(t('ci', 1))!;
    const again = table.add(t('ci', 1))!;
    expect(table.size).toBe(1);
    expect(table.take(first.id, 'ci', 'acme', 'api', 'download')).toBeUndefined();
    expect(table.take(again.id, 'ci', 'acme', 'api', 'download')).toBeDefined();
  });

  it('refuses a client at its bound without touching another client’s links', () => {
    const table = new TransferTable({ maxPerClient: 2, maxEntries: 3, now: clock });
    const a = [table.add(t('a', 1))!, table.add(t('a', 2))!];
    expect(table.hasRoom('a', 1)).toBe(false);
    expect(table.add(t('a', 3))).toBeUndefined();
    expect(table.hasRoom('b', 1)).toBe(true);
    const b = table.add(t('b', 1))!;
    expect(table.hasRoom('b', 1)).toBe(false);
    expect(table.add(t('c', 1))).toBeUndefined();
    expect(table.take(a[0].id, 'a', 'acme', 'api', 'download')).toBeDefined();
    expect(table.take(b.id, 'b', 'acme', 'api', 'download')).toBeDefined();
  });

  it('makes room again once links expire', () => {
    const table = new TransferTable({ ttlMs: 1_000, maxPerClient: 1, maxEntries: 1, now: clock });
    expect(table.add(t('a', 1))).toBeDefined();
    expect(table.add(t('b', 1))).toBeUndefined();
    now += 1_000;
    expect(table.hasRoom('b', 1)).toBe(true);
    expect(table.add(t('b', 1))).toBeDefined();
    expect(table.size).toBe(1);
  });
});
