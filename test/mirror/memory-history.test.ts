/**
 * A long history does not exhaust the sidecar's memory: hundreds of distinct
 * `commits?include=<commit>&pagelen=1` over a 100,000-commit history, against the real `serve`
 * process with the image's heap bound. Each answer reads one page from git (never the history),
 * the rev-list and commit tables stay within their byte bounds, a page deeper than
 * `mirror.maxWalkCommits` goes upstream instead of walking.
 */
import type { FakeBitbucket } from '../../src/fake-bitbucket';
import { fastImport, git, linearStream } from './histories';
import { sample, startFake, startSidecarProcess, stopAll, type SidecarProcess } from './process';

const COMMITS = 100_000;
const REQUESTS = 300;
const PARALLEL = 8;
const MAX_WALK = 10_000;
const API = '/2.0/repositories/acme/infra';

jest.setTimeout(240_000);

describe('commit lists over a 100,000-commit history, in the serve process', () => {
  let fake: FakeBitbucket;
  let dir: string;
  let s: SidecarProcess;
  let hashes: string[];

  beforeAll(async () => {
    ({ fake, dir } = await startFake());
    s = await startSidecarProcess(fake, dir, { maxWalkCommits: MAX_WALK });
    await fastImport(s.repoDir('infra'), linearStream('history', COMMITS));
    hashes = (await git(s.repoDir('infra'), ['rev-list', 'refs/heads/history'])).trim().split('\n');
    expect(hashes).toHaveLength(COMMITS);
  });
  afterAll(() => stopAll(s, fake, dir));

  it('answers hundreds of distinct include=<commit> pages from the mirror, correctly, within its memory bounds', async () => {
    // The first call clones the mirror; every later one is answered from it.
    const first = await s.get(`${API}/commits?include=${hashes[0]}&pagelen=1`);
    expect(first.status).toBe(200);
    const from = fake.requests.length;

    const picks = Array.from({ length: REQUESTS }, (_, i) => hashes[Math.floor((i * (COMMITS - 1)) / (REQUESTS - 1))]);
    let maxRss = s.rss();
    const answers = new Map<string, any>();
    for (let i = 0; i < picks.length; i += PARALLEL) {
      const batch = picks.slice(i, i + PARALLEL);
      const replies = await Promise.all(batch.map((h) => s.get(`${API}/commits?include=${h}&pagelen=1`)));
      replies.forEach((r, k) => {
        expect({ hash: batch[k], status: r.status }).toEqual({ hash: batch[k], status: 200 });
        answers.set(batch[k], JSON.parse(r.body));
      });
      maxRss = Math.max(maxRss, s.rss());
    }
    expect(s.child.exitCode).toBeNull();
    expect((await s.get('/_sidecar/health')).status).toBe(200);

    // Every answer is the commit asked for, with the next page linked except at the root.
    for (const h of picks) {
      const a = answers.get(h);
      expect(a.values.map((v: { hash: string }) => v.hash)).toEqual([h]);
      expect(Boolean(a.next)).toBe(h !== hashes[COMMITS - 1]);
    }
    // A few against git's own view of the commit.
    for (const h of [picks[0], picks[1], picks[150], picks[REQUESTS - 2]]) {
      const [parents, message] = (await git(s.repoDir('infra'), ['log', '-1', '--format=%P%x00%B', h])).split('\0');
      const v = answers.get(h).values[0];
      expect(v.parents.map((p: { hash: string }) => p.hash)).toEqual(parents.split(' ').filter(Boolean));
      expect(v.message).toBe(message.replace(/\n$/, ''));
    }
    // None of it went to Bitbucket.
    expect(fake.requests.slice(from).filter((r) => r.kind === 'api')).toEqual([]);

    const m = await s.metrics();
    for (const table of ['commits', 'revLists', 'refs', 'trees', 'tags', 'sizes', 'repositories']) {
      const bytes = sample(m, 'bitbucket_sidecar_mirror_memory_bytes', { table })!;
      const max = sample(m, 'bitbucket_sidecar_mirror_memory_max_bytes', { table })!;
      expect(max).toBeGreaterThan(0);
      expect({ table, within: bytes <= max }).toEqual({ table, within: true });
    }
    expect(sample(m, 'bitbucket_sidecar_mirror_memory_bytes', { table: 'revLists' })).toBeGreaterThan(0);
    // The process stays within the heap bound the image documents (64 MiB + cache.maxBytes).
    expect(maxRss).toBeLessThan(s.heap.oldSpace * 1024 ** 2);
  });

  it('pages within maxWalkCommits come from the mirror; a deeper page goes upstream', async () => {
    const tip = hashes[0];
    const from = fake.requests.length;
    const second = JSON.parse((await s.get(`${API}/commits?include=${hashes[500]}&pagelen=1&page=2`)).body);
    expect(second.values.map((v: { hash: string }) => v.hash)).toEqual([hashes[501]]);
    const last = JSON.parse((await s.get(`${API}/commits?include=${tip}&pagelen=100&page=${MAX_WALK / 100}`)).body);
    expect(last.values.map((v: { hash: string }) => v.hash)).toEqual(hashes.slice(MAX_WALK - 100, MAX_WALK));
    expect(fake.requests.slice(from).filter((r) => r.kind === 'api')).toEqual([]);

    // 12,000 commits from the root: the fake (which walks everything) answers it quickly enough.
    const base = COMMITS - 12_000;
    const deep = await s.get(`${API}/commits?include=${hashes[base]}&pagelen=100&page=${MAX_WALK / 100 + 1}`);
    expect(deep.status).toBe(200);
    expect(JSON.parse(deep.body).values.map((v: { hash: string }) => v.hash)).toEqual(hashes.slice(base + MAX_WALK, base + MAX_WALK + 100));
    const up = fake.requests.slice(from).filter((r) => r.kind === 'api');
    expect(up.map((r) => [r.path, r.query.page])).toEqual([['/2.0/repositories/acme/infra/commits', String(MAX_WALK / 100 + 1)]]);
    const m = await s.metrics();
    expect(sample(m, 'bitbucket_sidecar_mirror_upstream_total', { reason: 'walk-depth' })).toBe(1);
  });
});
