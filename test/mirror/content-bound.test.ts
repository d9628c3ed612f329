/**
 * Raw file contents read from a mirror at once stay within `mirror.memoryBytes`: a file larger
 * than `memoryBytes / maxConcurrentWalks` is read from upstream (like any mirror miss), a smaller
 * one from the mirror.
 */
import { API, startMirrorStack, type MirrorStack } from './helpers';

describe('raw file contents from the mirror', () => {
  let s: MirrorStack;
  let commit: string;
  const big = `${'0123456789abcdef'.repeat(96 * 1024)}\n`; // 1.5 MiB
  const small = 'small\n';

  beforeAll(async () => {
    // 4 MiB over 4 walks: files above 1 MiB go upstream.
    s = await startMirrorStack({ mirror: { memoryBytes: '4MiB', maxConcurrentWalks: 4 } });
    commit = await s.fake.pushCommit('acme', 'infra', 'main', { 'big.txt': big, 'small.txt': small });
  });
  afterAll(() => s.stop());

  it('reads a file within the bound from the mirror and a larger one from upstream', async () => {
    expect(s.mirrors.manager.maxContentBytes).toBe(1024 ** 2);
    const first = await s.plugin.get(`${API}/acme/infra/src/${commit}/small.txt`);
    expect([first.status, first.text]).toEqual([200, small]);
    const from = s.fake.requests.length;
    s.running.sidecar.cache.clear();
    const again = await s.plugin.get(`${API}/acme/infra/src/${commit}/small.txt`);
    expect([again.status, again.text]).toEqual([200, small]);
    expect(s.apiSince(from)).toEqual([]);

    const large = await s.plugin.get(`${API}/acme/infra/src/${commit}/big.txt`);
    expect(large.status).toBe(200);
    expect(large.text === big).toBe(true);
    expect(s.apiSince(from).map((r) => r.path)).toEqual([`/2.0/repositories/acme/infra/src/${commit}/big.txt`]);
    expect(s.mirrors.stats.upstream['large file']).toBe(1);
  });
});
