import { CacheStore, entrySize, type Entry } from '../../src/cache/store';

const entry = (tags: string[], body = 'x'): Entry => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(body),
  freshness: 'list',
  storedAt: 0,
  freshUntil: 1000,
  revalidateUntil: 2000,
  keepUntil: 3000,
  invalidated: false,
  tags,
});

describe('CacheStore tag index', () => {
  const now = () => 0;

  it('finds the keys of a tag whether one or many entries carry it', () => {
    const s = new CacheStore(1024 ** 2, now);
    s.set('a', entry(['ws:acme', 'ref:acme/r:main']));
    s.set('b', entry(['ws:acme', 'ref:acme/r:dev']));
    s.set('c', entry(['ws:acme']));
    expect(s.keysTagged(['ws:acme']).sort()).toEqual(['a', 'b', 'c']);
    expect(s.keysTagged(['ref:acme/r:main'])).toEqual(['a']);
    expect(s.keysTagged(['ref:acme/r:main', 'ref:acme/r:dev', 'ws:acme']).sort()).toEqual(['a', 'b', 'c']);
    expect(s.keysTagged(['ref:acme/r:gone'])).toEqual([]);
  });

  it('forgets keys as entries are deleted, replaced and evicted', () => {
    const s = new CacheStore(1024 ** 2, now);
    s.set('a', entry(['ws:acme', 'ref:acme/r:main']));
    s.set('b', entry(['ws:acme', 'ref:acme/r:main']));
    s.set('c', entry(['ws:acme']));
    s.delete('b');
    expect(s.keysTagged(['ref:acme/r:main'])).toEqual(['a']);
    expect(s.keysTagged(['ws:acme']).sort()).toEqual(['a', 'c']);
    // Back to two, then none.
    s.set('b', entry(['ref:acme/r:main']));
    expect(s.keysTagged(['ref:acme/r:main']).sort()).toEqual(['a', 'b']);
    s.delete('a');
    s.delete('b');
    expect(s.keysTagged(['ref:acme/r:main'])).toEqual([]);
    // A replaced entry carries only its new tags.
    s.set('c', entry(['ws:other']));
    expect(s.keysTagged(['ws:acme'])).toEqual([]);
    expect(s.keysTagged(['ws:other'])).toEqual(['c']);
    // The same key stored again with the same tags is listed once.
    s.set('c', entry(['ws:other']));
    expect(s.keysTagged(['ws:other'])).toEqual(['c']);
    s.clear();
    expect(s.keysTagged(['ws:other'])).toEqual([]);
  });

  it('unindexes what the byte bound evicts', () => {
    const e = entry(['ws:acme', 'ref:acme/r:0'], 'y'.repeat(1000));
    const one = entrySize('key-0', e);
    const s = new CacheStore(one * 3, now);
    for (let i = 0; i < 10; i++) s.set(`key-${i}`, entry(['ws:acme', `ref:acme/r:${i}`], 'y'.repeat(1000)));
    expect(s.entries).toBe(3);
    expect(s.keysTagged(['ws:acme']).sort()).toEqual(['key-7', 'key-8', 'key-9']);
    expect(s.keysTagged(['ref:acme/r:0', 'ref:acme/r:6'])).toEqual([]);
    expect(s.keysTagged(['ref:acme/r:9'])).toEqual(['key-9']);
  });

  it('keeps the tags, headers and key of an entry unchanged in value', () => {
    const s = new CacheStore(1024 ** 2, now);
    const path = '/2.0/repositories/acme/r/src/0123456789ab/Jenkinsfile';
    const rev = path.slice(path.indexOf('/src/') + 5, path.lastIndexOf('/'));
    const key = `cred GET ${path}`;
    s.set(key, entry(['ws:acme', `ref:acme/r:${rev}`]));
    expect(s.get(key)?.tags).toEqual(['ws:acme', 'ref:acme/r:0123456789ab']);
    expect(s.get(key)?.headers).toEqual({ 'content-type': 'application/json' });
    // Header values are shared between entries, however many distinct ones come by.
    for (let i = 0; i < 1000; i++) s.set(`k${i}`, { ...entry([]), headers: { 'content-type': 'application/json', etag: `"${i}"` } });
    expect(s.get('k0')?.headers).toEqual({ 'content-type': 'application/json', etag: '"0"' });
    expect(s.get('k999')?.headers).toEqual({ 'content-type': 'application/json', etag: '"999"' });
    expect(s.keysTagged(['ref:acme/r:0123456789ab'])).toEqual([key]);
  });
});

describe('CacheStore entries (one allocation each)', () => {
  it('keeps every field, and the changes made to a stored entry', () => {
    const s = new CacheStore(1024 ** 2, () => 1_764_000_000_200);
    const original: Entry = {
      status: 404,
      headers: { 'content-type': 'application/json', etag: '"é€"', 'x-long': 'v'.repeat(70_000) },
      body: Buffer.from('{"a":"ünïcode"}'),
      freshness: 'metadata',
      storedAt: 1_764_000_000_123,
      freshUntil: 1_764_000_060_123,
      revalidateUntil: 1_764_000_090_123,
      keepUntil: 1_764_086_400_123,
      invalidated: false,
      tags: ['ws:acme', 'ref:acme/r:fëature\n1'],
    };
    const stored = s.set('k', original)!;
    expect(stored).toBe(s.get('k'));
    expect(stored.body).not.toBe(original.body);
    expect(stored.body.equals(original.body)).toBe(true);
    expect({ ...stored.headers }).toEqual(original.headers);
    for (const f of ['status', 'freshness', 'storedAt', 'freshUntil', 'revalidateUntil', 'keepUntil', 'invalidated'] as const) expect(stored[f]).toBe(original[f]);
    expect(stored.tags).toEqual(original.tags);
    // The same body Buffer on every read (the memo and learning key by it).
    expect(s.get('k')!.body).toBe(stored.body);
    stored.invalidated = true;
    stored.freshUntil = 5;
    stored.revalidateUntil = 6;
    stored.keepUntil = 7_000_000_000_000;
    const again = s.peek('k')!;
    expect([again.invalidated, again.freshUntil, again.revalidateUntil, again.keepUntil]).toEqual([true, 5, 6, 7_000_000_000_000]);
    expect(again.body.toString()).toBe('{"a":"ünïcode"}');
    expect(s.keysTagged(['ref:acme/r:fëature\n1'])).toEqual(['k']);
  });
});
