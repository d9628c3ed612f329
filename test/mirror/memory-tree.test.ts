/**
 * A wide tree does not exhaust the sidecar's memory: `src/<commit>/?pagelen=1` at 1,500 distinct commits
 * over a 3,000-file root tree (every commit its own root tree), against the real `serve` process
 * with the image's heap bound. Parsed trees are kept in a byte-bounded table that evicts the least
 * recently used, never beyond its bound.
 */
import type { FakeBitbucket } from '../../src/fake-bitbucket';
import { fastImport, git, wideName, wideStream } from './histories';
import { sample, startFake, startSidecarProcess, stopAll, type SidecarProcess } from './process';

const FILES = 3_000;
const COMMITS = 1_500;
const REQUESTS = COMMITS;
const PARALLEL = 8;
const API = '/2.0/repositories/acme/docs-site';

jest.setTimeout(240_000);

describe('src listings of a 3,000-file tree at each of 1,500 commits, in the serve process', () => {
  let fake: FakeBitbucket;
  let dir: string;
  let s: SidecarProcess;
  let hashes: string[];

  beforeAll(async () => {
    ({ fake, dir } = await startFake());
    s = await startSidecarProcess(fake, dir);
    await fastImport(s.repoDir('docs-site'), wideStream('wide', FILES, COMMITS));
    hashes = (await git(s.repoDir('docs-site'), ['rev-list', 'refs/heads/wide'])).trim().split('\n');
    expect(hashes).toHaveLength(COMMITS);
  });
  afterAll(() => stopAll(s, fake, dir));

  it('answers every listing from the mirror, correctly, with the tree table within its bound', async () => {
    const first = await s.get(`${API}/src/${hashes[0]}/?pagelen=1`);
    expect(first.status).toBe(200);
    const from = fake.requests.length;

    const picks = hashes.slice(0, REQUESTS);
    let maxRss = s.rss();
    const answers = new Map<string, any>();
    for (let i = 0; i < picks.length; i += PARALLEL) {
      const batch = picks.slice(i, i + PARALLEL);
      const replies = await Promise.all(batch.map((h) => s.get(`${API}/src/${h}/?pagelen=1`)));
      replies.forEach((r, k) => {
        expect({ hash: batch[k], status: r.status }).toEqual({ hash: batch[k], status: 200 });
        answers.set(batch[k], JSON.parse(r.body));
      });
      maxRss = Math.max(maxRss, s.rss());
    }
    expect(s.child.exitCode).toBeNull();
    expect((await s.get('/_sidecar/health')).status).toBe(200);

    for (const h of picks) {
      const a = answers.get(h);
      expect([a.size, a.values.length, a.values[0].path, a.values[0].commit.hash]).toEqual([FILES, 1, wideName(0), h]);
    }
    // The first file's size changes with the commit: compare with git's own.
    for (const h of [picks[0], picks[1], picks[750], picks[REQUESTS - 1]]) {
      const size = Number((await git(s.repoDir('docs-site'), ['cat-file', '-s', `${h}:${wideName(0)}`])).trim());
      expect(answers.get(h).values[0].size).toBe(size);
    }
    expect(fake.requests.slice(from).filter((r) => r.kind === 'api')).toEqual([]);

    const m = await s.metrics();
    for (const table of ['commits', 'revLists', 'refs', 'trees', 'tags', 'sizes', 'repositories']) {
      const bytes = sample(m, 'bitbucket_sidecar_mirror_memory_bytes', { table })!;
      const max = sample(m, 'bitbucket_sidecar_mirror_memory_max_bytes', { table })!;
      expect({ table, within: bytes <= max }).toEqual({ table, within: true });
    }
    // Trees were kept and, at this count, evicted to stay within the bound.
    expect(sample(m, 'bitbucket_sidecar_mirror_memory_bytes', { table: 'trees' })).toBeGreaterThan(0);
    expect(sample(m, 'bitbucket_sidecar_mirror_memory_evictions_total', { table: 'trees' })).toBeGreaterThan(0);
    expect(maxRss).toBeLessThan(s.heap.oldSpace * 1024 ** 2);
  });
});
