import { CacheStore, entrySize, type Entry } from '../../src/cache/store';

/**
 * Per-client shares of cache.maxBytes (src/cache/owners.ts): a client's flood of distinct entries
 * evicts its own entries, never those of a client within its share.
 */
const entry = (body = 'x'.repeat(200)): Entry => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(body),
  freshness: 'immutable',
  storedAt: 0,
  freshUntil: 1000,
  revalidateUntil: 2000,
  keepUntil: 3000,
  invalidated: false,
  tags: [],
});
const now = () => 0;
const one = entrySize('b-000', entry());

describe('CacheStore client shares', () => {
  it('a flood by one client evicts its own entries, not another client’s within its share', () => {
    const s = new CacheStore(one * 40, now);
    for (let i = 0; i < 10; i++) s.set(`b-${String(i).padStart(3, '0')}`, entry(), 'B');
    for (let i = 0; i < 2000; i++) s.set(`a-${String(i).padStart(3, '0')}`, entry(), 'A');
    for (let i = 0; i < 10; i++) expect(s.get(`b-${String(i).padStart(3, '0')}`)).toBeDefined();
    const a = s.usage().find((u) => u.owner === 'A')!;
    // A holds at most its half of the bound; its newest entries are the ones kept.
    expect(a.bytes).toBeLessThanOrEqual(Math.floor(s.entryBytes / 2));
    expect(s.get('a-1999')).toBeDefined();
    expect(s.get('a-000')).toBeUndefined();
    expect(s.evictions.own).toBeGreaterThan(1900);
    expect(s.evictions.other).toBe(0);
  });

  it('a client alone may fill the cache; when another stores, the one past its share gives way', () => {
    const s = new CacheStore(one * 40, now);
    for (let i = 0; i < 100; i++) s.set(`b-${String(i).padStart(3, '0')}`, entry(), 'B');
    const alone = s.usage().find((u) => u.owner === 'B')!.bytes;
    expect(alone).toBeGreaterThan(s.entryBytes * 0.9);
    for (let i = 0; i < 100; i++) s.set(`a-${String(i).padStart(3, '0')}`, entry(), 'A');
    const b = s.usage().find((u) => u.owner === 'B')!.bytes;
    const a = s.usage().find((u) => u.owner === 'A')!.bytes;
    expect(a).toBeLessThanOrEqual(Math.floor(s.entryBytes / 2));
    expect(b).toBeGreaterThanOrEqual(Math.floor(s.entryBytes / 2) - one);
    expect(s.evictions.other).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(s.entryBytes);
  });

  it('weights the shares (clients[].budgetWeight) and keeps the owner of a refreshed entry', () => {
    const s = new CacheStore(one * 40, now, 0, (c) => (c === 'B' ? 3 : 1));
    for (let i = 0; i < 100; i++) s.set(`b-${String(i).padStart(3, '0')}`, entry(), 'B');
    for (let i = 0; i < 100; i++) s.set(`a-${String(i).padStart(3, '0')}`, entry(), 'A');
    const a = s.usage().find((u) => u.owner === 'A')!.bytes;
    expect(a).toBeLessThanOrEqual(Math.floor(s.entryBytes / 4));
    expect(a).toBeGreaterThan(Math.floor(s.entryBytes / 4) - 2 * one);
    // A background refresh stores without a client: the entry stays B's.
    const key = 'b-099';
    s.set(key, entry());
    expect(s.ownerOf(s.peek(key)!)).toBe('B');
  });

  it('keeps the ledgers in step with deletions, replacements and clear', () => {
    const s = new CacheStore(one * 40, now);
    s.set('b-000', entry(), 'B');
    s.set('b-000', entry(), 'B');
    expect(s.usage()).toEqual([{ owner: 'B', bytes: s.bytes, entries: 1 }]);
    s.delete('b-000');
    expect(s.usage()).toEqual([]);
    s.set('b-001', entry(), 'B');
    s.clear();
    expect(s.usage()).toEqual([]);
  });
});

describe('CacheStore entries several clients use', () => {
  it('an entry another client reads is no longer its first client’s to evict by flooding', () => {
    const s = new CacheStore(one * 40, now);
    // A stores what B then uses (same workspace, A asked first), then floods its own share.
    for (let i = 0; i < 10; i++) s.set(`p-${String(i).padStart(3, '0')}`, entry(), 'A');
    for (let i = 0; i < 10; i++) expect(s.get(`p-${String(i).padStart(3, '0')}`, 'B')).toBeDefined();
    for (let i = 0; i < 2000; i++) s.set(`a-${String(i).padStart(4, '0')}`, entry(), 'A');
    for (let i = 0; i < 10; i++) expect(s.get(`p-${String(i).padStart(3, '0')}`, 'B')).toBeDefined();
    expect(s.usage().find((u) => u.owner === '')?.entries).toBe(10);
  });
});

describe('CacheStore shared entries', () => {
  it('entries several clients use are bounded by the whole cache, not by a share', () => {
    const s = new CacheStore(one * 40, now);
    s.set('j1', entry(), 'J1');
    s.set('j2', entry(), 'J2');
    // Thirty entries each stored by one Jenkins and re-fetched by the other: the sidecar's own.
    for (let i = 0; i < 30; i++) {
      const k = `w-${String(i).padStart(3, '0')}`;
      s.set(k, entry(), 'J1');
      s.set(k, entry(), 'J2');
    }
    expect(s.usage().find((u) => u.owner === '')?.entries).toBe(30);
    expect(s.evictions.own + s.evictions.other).toBe(0);
  });
});
