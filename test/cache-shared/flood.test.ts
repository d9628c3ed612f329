import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { request } from 'undici';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import { basicAuth, type Stack } from '../helpers/stack';
import { API, API_BASE, apiCalls, CLIENT, get, prefix, scan, startShared } from './helpers';
import { startRedis, type RedisServer } from './redis-server';

/**
 * Issue 21 ("free answers are cheap to store, or not stored"): client A, read-only in the same
 * workspace, sends thousands of distinct missing paths. Client B's entries stay — in the memory
 * tier and in Redis — and what A's flood adds to Redis is bounded by A's share of
 * cache.shared.maxBytes; a mirror's 404s (no upstream call) are not written to Redis at all.
 */
const READER = { id: 'reader', scope: [{ workspace: 'acme' }], permissions: ['read'] };
const CLIENTS = [CLIENT, READER];
/** Small bounds, so that A's flood is real eviction pressure (B's scan takes a fraction of them). */
const MAX_BYTES = 1024 ** 2;
const SHARED_MAX_BYTES = 256 * 1024;
const FLOOD = 2500;
const LONG = 20;
const COMMITS = 500;

function config(fake: FakeBitbucketServer, dir?: string): Record<string, unknown> {
  return {
    // Long freshness: the re-scans must not find B's answers expired whatever the machine's speed.
    cache: { maxBytes: MAX_BYTES, freshness: { immutableSeconds: 86_400, metadataSeconds: 3600, listSeconds: 3600, notFoundSeconds: 60 } },
    // A's flood must reach upstream (mirror off), not the budget's 429.
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: { repositoryRequestsPerHour: 100_000 } },
    ...(dir ? { state: { dir }, mirror: { enabled: true, dir: join(dir, 'mirrors'), refreshSeconds: 0, waitSeconds: 60 } } : {}),
  };
}

async function usedMemory(r: Redis): Promise<number> {
  const info = await r.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function entryKeys(r: Redis, keyPrefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${keyPrefix}e:*`, 'COUNT', 1000);
    out.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return out;
}

/** A's flood: `n` distinct missing paths (`path(i)` under the repository), 8 at a time; the statuses it got. */
async function flood(stack: Stack, n: number, path: (i: number) => string): Promise<Map<number, number>> {
  const auth = basicAuth('reader@ci.example', stack.tokens.reader);
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const res = await request(`${stack.url}/2.0/repositories/acme/service-web/${path(i)}`, { headers: { host: new URL(API_BASE).host, authorization: auth } });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return statuses;
}

for (const mirror of [false, true]) {
  describe(`a flood of distinct missing paths (mirror ${mirror ? 'on' : 'off'})`, () => {
    let redis: RedisServer;
    let fake: FakeBitbucketServer;
    let r: Redis;
    let s1: Stack;
    let s2: Stack | undefined;
    const dirs: string[] = [];
    const keyPrefix = prefix();
    const start = () => {
      const dir = mirror ? mkdtempSync(join(tmpdir(), 'flood-test-')) : undefined;
      if (dir) dirs.push(dir);
      return startShared(fake, redis.url, { keyPrefix, clients: CLIENTS, config: config(fake, dir), shared: { maxBytes: SHARED_MAX_BYTES } });
    };

    beforeAll(async () => {
      redis = await startRedis();
      fake = await startFakeBitbucket({ seed: 'demo' });
      r = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
      s1 = await start();
    });
    afterAll(async () => {
      await s1?.stop();
      await s2?.stop();
      r?.disconnect();
      await fake?.close();
      await redis?.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('leaves B’s entries in memory and in Redis, and bounds what A adds to Redis', async () => {
      // B scans and caches.
      const first = await scan(s1);
      expect(first.summary.failedRepositories).toEqual([]);
      const repo = JSON.parse((await get(s1, `${API}/acme/service-web`)).text) as { mainbranch: { name: string } };
      const branch = JSON.parse((await get(s1, `${API}/acme/service-web/refs/branches/${repo.mainbranch.name}`)).text) as { target: { hash: string } };
      const hash = branch.target.hash;
      const bKeys = await entryKeys(r, keyPrefix);
      expect(bKeys.length).toBeGreaterThan(mirror ? 5 : 20);
      const bMemory = s1.running.sidecar.cache.store.usage().find((u) => u.owner === CLIENT.id)!.bytes;
      // The test's premise: B's scan fits its half of the memory tier, and A's flood alone would not.
      expect(bMemory).toBeLessThan(s1.running.sidecar.cache.store.entryBytes / 2);
      const before = await usedMemory(r);

      // A floods: short distinct missing paths, and some of nearly 3 KB.
      fake.clearLog();
      const short = await flood(s1, FLOOD, (i) => `src/${hash}/${`missing-${i}-`.padEnd(120, 'x')}`);
      const long = await flood(s1, LONG, (i) => `src/${hash}/${`missing-${i}-`.padEnd(3000, 'x')}`);
      expect(short).toEqual(new Map([[404, FLOOD]]));
      expect(long).toEqual(new Map([[404, LONG]]));
      // Mirror off, also commits that do not exist (with mirrors on, an unknown commit makes the
      // mirror fetch first: a different bound, the git budget's).
      const commits = mirror ? 0 : COMMITS;
      if (commits) expect(await flood(s1, commits, (i) => `commit/${createHash('sha1').update(`no-such-${i}`).digest('hex')}`)).toEqual(new Map([[404, commits]]));
      const floodCalls = apiCalls(fake);
      // Mirror on: every 404 came from the mirror, no upstream call (and so nothing written to Redis).
      if (mirror) expect(floodCalls).toBe(0);
      else expect(floodCalls).toBe(FLOOD + LONG + COMMITS);

      const after = await entryKeys(r, keyPrefix);
      const added = after.filter((k) => !bKeys.includes(k));
      if (mirror) expect(added).toEqual([]);
      // A's 404s in Redis (mirror off) expire with their freshness and revalidation window, not a day later.
      for (const k of added) expect(await r.pttl(k)).toBeLessThanOrEqual((60 + 30) * 1000);
      if (!mirror) expect(added.length).toBeGreaterThan(0);
      // Long keys are hashed: no request path is stored in Redis at its length.
      expect(Math.max(...after.map((k) => k.length))).toBeLessThanOrEqual(keyPrefix.length + 2 + 256);
      // A's share of what this sidecar keeps in Redis is half of cache.shared.maxBytes (B holds the
      // rest); Redis' own bookkeeping per key (~100 bytes) comes on top.
      const ledger = s1.running.sidecar.shared!.tier.ledger;
      expect(ledger.bytesOf(READER.id)).toBeLessThanOrEqual(SHARED_MAX_BYTES / 2);
      // Bound: the keys A's flood added (MEMORY USAGE: value, key and Redis' bookkeeping) take at
      // most A's share plus 200 bytes per key; used_memory as a whole (allocator, buffers) grows by
      // well under 1 MiB (unbounded, 1,520 of these answers took about 1.5 MiB).
      let keyBytes = 0;
      for (const k of added) keyBytes += (await r.memory('USAGE', k)) ?? 0;
      expect(keyBytes).toBeLessThanOrEqual(SHARED_MAX_BYTES / 2 + added.length * 200);
      expect((await usedMemory(r)) - before).toBeLessThan(1024 ** 2);
      // B's entries are all still in Redis.
      for (const k of bKeys) expect(await r.exists(k)).toBe(1);

      // A kept at most its half of the memory tier; B's re-scan is all memory hits, no upstream call.
      const a = s1.running.sidecar.cache.store.usage().find((u) => u.owner === READER.id)?.bytes ?? 0;
      expect(a).toBeLessThanOrEqual(s1.running.sidecar.cache.store.entryBytes / 2);
      const sharedBefore = s1.running.sidecar.cache.stats.shared;
      fake.clearLog();
      const again = await scan(s1);
      expect(again.summary).toEqual(first.summary);
      expect(apiCalls(fake)).toBe(0);
      expect(s1.running.sidecar.cache.stats.shared).toBe(sharedBefore);

      // A second sidecar sharing Redis (empty memory): B's scan makes no upstream REST call either.
      s2 = await start();
      fake.clearLog();
      const there = await scan(s2);
      expect(there.summary).toEqual(first.summary);
      const calls = fake.requests.filter((q) => q.kind === 'api').map((q) => q.path);
      if (!mirror) expect(calls).toEqual([]);
      else {
        // With mirrors, the repository objects s1 derived from its listing were never written to
        // Redis (no upstream call made them); s2 fetches each once. Nothing else goes upstream.
        expect(calls.length).toBeLessThanOrEqual(first.summary.repositories);
        for (const c of calls) expect(c).toMatch(/^\/2\.0\/repositories\/acme\/[^/]+$/);
      }
    }, 180_000);
  });
}
