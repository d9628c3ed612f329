/**
 * The mirror's byte-bounded tables and the walk slots, as units: bytes never exceed a table's
 * bound, the least recently used go first, an entry too large for its table is not kept, and the
 * walk slots bound both running and waiting answers.
 */
import { ByteTable, MirrorMemory, TABLE_SHARES, commitBytes, stringBytes, treeBytes } from '../../src/mirror/memory';
import { RepositoryIndex } from '../../src/mirror/derived';
import { parseTree, type CommitObject, type TreeEntry } from '../../src/git-objects/parse';
import { WalkSlots } from '../../src/mirror/walks';
import { GitBudget } from '../../src/mirror/budget';
import { MAX_IDLE_STATES, MirrorManager } from '../../src/mirror/manager';
import { refsBytes } from '../../src/mirror/memory';
import pino from 'pino';
import { ROUTES } from '../../src/routes/catalog';
import type { ApiCall } from '../../src/core/call';

const sha = (i: number) => i.toString(16).padStart(40, '0');

describe('ByteTable', () => {
  it('stays within its byte bound and evicts the least recently used first', () => {
    const t = new ByteTable<string>(10_000, (v) => stringBytes(v));
    for (let i = 0; i < 1000; i++) {
      t.set(`k${i}`, 'x'.repeat(100));
      expect(t.bytes).toBeLessThanOrEqual(t.maxBytes);
    }
    expect(t.size).toBeGreaterThan(10);
    expect(t.size).toBeLessThan(1000);
    expect(t.evictions).toBe(1000 - t.size);
    expect(t.get('k999')).toBeDefined();
    expect(t.get('k0')).toBeUndefined();
    // Reading an entry makes it recent: it outlives newer ones that were not read.
    const oldest = t.keys().at(-1)!;
    t.get(oldest);
    for (let i = 0; i < t.size - 1; i++) t.set(`n${i}`, 'y'.repeat(100));
    expect(t.get(oldest)).toBeDefined();
  });

  it('does not keep an entry larger than a quarter of the table, and drops what the key held', () => {
    const t = new ByteTable<string>(10_000, (v) => stringBytes(v));
    expect(t.set('a', 'small')).toBe(true);
    expect(t.set('a', 'x'.repeat(3000))).toBe(false);
    expect(t.get('a')).toBeUndefined();
    expect(t.tooLarge).toBe(1);
    expect(t.bytes).toBe(0);
  });

  it('counts wide strings at two bytes a character', () => {
    expect(stringBytes('é'.repeat(100))).toBeLessThan(stringBytes('\u20ac'.repeat(100)));
    expect(stringBytes('\u20ac'.repeat(100))).toBeGreaterThanOrEqual(200);
  });
});

describe('MirrorMemory', () => {
  it('shares memoryBytes out between its tables', () => {
    expect(Object.values(TABLE_SHARES).reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    const m = new MirrorMemory(16 * 1024 ** 2);
    const stats = m.stats();
    expect(Object.keys(stats).sort()).toEqual(['commits', 'refs', 'repositories', 'revLists', 'sizes', 'tags', 'trees']);
    expect(Object.values(stats).reduce((a, s) => a + s.maxBytes, 0)).toBeLessThanOrEqual(16 * 1024 ** 2);
  });

  it('sizes a parsed tree and a commit by what they hold', () => {
    const raw = (n: number) => Buffer.concat(Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from(`100644 file-${i}.txt\0`), Buffer.from(sha(i), 'hex')])));
    const small = treeBytes(parseTree(raw(10)));
    const big = treeBytes(parseTree(raw(3000)));
    expect(big).toBeGreaterThan(3000 * 100);
    expect(big / small).toBeGreaterThan(200);
    const c: CommitObject = { sha: sha(1), tree: sha(2), parents: [sha(3)], author: { name: 'A', email: 'a@x', time: 1, tz: '+0000' }, committer: { name: 'A', email: 'a@x', time: 1, tz: '+0000' }, message: 'm'.repeat(10_000) };
    expect(commitBytes(c)).toBeGreaterThan(10_000);
  });

  it('a flood of distinct trees keeps the tree table within its share', () => {
    const m = new MirrorMemory(1024 ** 2);
    const entries = (i: number): TreeEntry[] => Array.from({ length: 300 }, (_, k) => ({ mode: '100644', name: `f${k}`, sha: sha(i * 1000 + k), kind: 'blob' }));
    for (let i = 0; i < 200; i++) m.trees.set(sha(i), entries(i));
    const s = m.stats().trees;
    expect(s.bytes).toBeLessThanOrEqual(s.maxBytes);
    expect(s.evictions).toBeGreaterThan(0);
    expect(m.stats().commits.bytes).toBe(0);
  });
});

describe('RepositoryIndex on a byte-bounded table', () => {
  const route = (id: string) => ROUTES.find((r) => r.id === id)!;
  const listing: ApiCall = { method: 'GET', route: route('repositories'), params: { ws: 'acme' }, trailingSlash: false, query: [] };
  const repo = (i: number) => ({ type: 'repository', full_name: `acme/r${i}`, mainbranch: { name: 'main' }, description: 'd'.repeat(2000) });

  it('learns listings without exceeding its share, and serves what it kept', async () => {
    const m = new MirrorMemory(1024 ** 2);
    const index = new RepositoryIndex(() => 0, 60_000, m.repositories);
    for (let p = 0; p < 50; p++) {
      const values = Array.from({ length: 100 }, (_, i) => repo(p * 100 + i));
      index.learn({ ...listing, query: [['page', String(p + 1)]] }, { status: 200, headers: {}, body: Buffer.from(JSON.stringify({ values })) });
    }
    const s = m.stats().repositories;
    expect(s.bytes).toBeLessThanOrEqual(s.maxBytes);
    expect(s.evictions).toBeGreaterThan(0);
    expect(index.mainBranch('acme', 'r4999')).toBe('main');
    expect(index.peek('acme', 'r4999')).toEqual(repo(4999));
    expect(index.peek('acme', 'r0')).toBeUndefined();
    const a = await index.answer({ method: 'GET', route: route('repository'), params: { ws: 'acme', repo: 'r4999' }, trailingSlash: false, query: [['fields', 'mainbranch.name']] }, () => Promise.reject(new Error('no upstream')));
    expect(JSON.parse(a!.body.toString())).toEqual({ mainbranch: { name: 'main' } });
  });
});

describe('WalkSlots', () => {
  it('runs at most max at once, queues up to maxQueued, refuses beyond', async () => {
    const slots = new WalkSlots(2, 3);
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const job = () =>
      slots.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
        return 'done';
      });
    const started = Array.from({ length: 5 }, job);
    await new Promise((r) => setImmediate(r));
    expect([slots.running, slots.queued]).toEqual([2, 3]);
    expect(await job()).toBeUndefined();
    expect(slots.refused).toBe(1);
    while (gates.length || running) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect((await Promise.all(started)).map((r) => r?.value)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(peak).toBe(2);
    expect([slots.running, slots.queued]).toEqual([0, 0]);
  });

  it('frees the slot when the work throws', async () => {
    const slots = new WalkSlots(1, 1);
    await expect(slots.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(slots.running).toBe(0);
    expect(await slots.run(async () => 1)).toEqual({ value: 1 });
  });
});

describe('repository states', () => {
  it('states of repositories never mirrored are forgotten beyond the bound, whatever names a client sends', () => {
    const budget = new GitBudget({ requestsPerHour: 10, backgroundShare: 0.5 }, Date.now);
    const m = new MirrorManager(
      { enabled: false, dir: '/nonexistent', maxBytes: 1024 ** 3, freshSeconds: 30, refreshSeconds: 0, waitSeconds: 1, syncTimeoutSeconds: 60, concurrency: 1, gitRequestsPerHour: 10, backgroundShare: 0.5, workspaces: {} },
      { webUrl: 'http://127.0.0.1:1', gitAuthorization: 'Basic x', inScope: () => 'yes', budget, logger: pino({ level: 'silent' }) },
    );
    const first = m.state('acme', 'r0');
    for (let i = 1; i < 3 * MAX_IDLE_STATES; i++) m.state('acme', `r${i}`);
    expect(m.stateCount).toBeLessThanOrEqual(MAX_IDLE_STATES);
    expect(m.peek('acme', 'r0')).toBeUndefined();
    expect(m.peek('acme', `r${3 * MAX_IDLE_STATES - 1}`)).toBeDefined();
    // A state made again is a new generation: nothing kept for the old one can answer for it.
    expect(m.state('acme', 'r0').generation).not.toBe(first.generation);
  });

  it('refs are sized by their names and ids', () => {
    const few = refsBytes({ branches: new Map([['main', sha(1)]]), tags: new Map() });
    const many = refsBytes({ branches: new Map(Array.from({ length: 1000 }, (_, i) => [`feature/${i}`, sha(i)])), tags: new Map() });
    expect(many).toBeGreaterThan(1000 * 60);
    expect(many / few).toBeGreaterThan(500);
  });
});
