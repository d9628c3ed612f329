import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeBitbucket } from '../../src/fake-bitbucket';
import { dirBytes } from '../../src/mirror/manager';
import { API, startMirrorStack, type MirrorStack } from './helpers';

/**
 * Disk use is measured and bounded (`mirror.maxBytes`): the least recently used mirrors go first,
 * a repository larger than the whole bound is not mirrored, and mirrors survive a restart (fetched,
 * not cloned again, on first use). The demo repositories' mirrors are about 5 KB each.
 */
describe('mirror disk use', () => {
  const dirOf = (s: MirrorStack, repo: string) => path.join(s.dir, 'mirrors', 'repos', 'acme', `${repo}.git`);
  const use = async (s: MirrorStack, repo: string) => {
    s.running.sidecar.cache.clear();
    const a = await s.plugin.get(`${API}/acme/${repo}/refs/branches`);
    expect(a.status).toBe(200);
  };

  it('keeps the total under maxBytes by deleting the least recently used mirrors', async () => {
    const s = await startMirrorStack({ mirror: { maxBytes: 12_000 } });
    try {
      await use(s, 'infra');
      await use(s, 'docs-site');
      expect(s.mirrors.manager.usage().mirrors).toBe(2);
      await use(s, 'service-web'); // a third does not fit: infra (least recently used) goes
      const u = s.mirrors.manager.usage();
      expect(u.mirrors).toBe(2);
      expect(u.bytes).toBeLessThanOrEqual(12_000);
      expect(existsSync(dirOf(s, 'infra'))).toBe(false);
      expect(existsSync(dirOf(s, 'docs-site'))).toBe(true);
      // The reported size is what is on disk.
      expect(s.mirrors.manager.peek('acme', 'docs-site')!.bytes).toBe(await dirBytes(dirOf(s, 'docs-site')));

      await use(s, 'docs-site'); // now service-web is the least recently used
      const from = s.fake.requests.length;
      await use(s, 'infra'); // cloned again on demand
      expect(s.gitSince(from)).toHaveLength(2);
      expect(existsSync(dirOf(s, 'service-web'))).toBe(false);
      expect(existsSync(dirOf(s, 'docs-site'))).toBe(true);
      expect(s.mirrors.manager.stats.pruned).toBe(2);
      expect(s.mirrors.manager.usage().bytes).toBeLessThanOrEqual(12_000);
    } finally {
      await s.stop();
    }
  });

  it('a repository larger than maxBytes on its own is not mirrored: its answers come from upstream', async () => {
    const s = await startMirrorStack({ mirror: { maxBytes: 2_000 } });
    try {
      let from = s.fake.requests.length;
      await use(s, 'infra');
      expect(s.apiSince(from)).toHaveLength(1);
      expect(s.mirrors.manager.usage().mirrors).toBe(0);
      expect(existsSync(dirOf(s, 'infra'))).toBe(false);
      // …and it is not cloned again on every request.
      s.running.sidecar.cache.clear();
      from = s.fake.requests.length;
      await use(s, 'infra');
      expect(s.gitSince(from)).toHaveLength(0);
      expect(s.apiSince(from)).toHaveLength(1);
    } finally {
      await s.stop();
    }
  });

  it('mirrors survive a restart: found on disk, fetched (not cloned) on first use', async () => {
    const state = mkdtempSync(path.join(tmpdir(), 'mirror-restart-'));
    const fake = await startFakeBitbucket({ seed: 'demo' });
    try {
      const first = await startMirrorStack({ dir: state, fakeInstance: fake });
      await use(first, 'infra');
      await use(first, 'service-api');
      const bytes = first.mirrors.manager.usage().bytes;
      await first.stop();

      const second = await startMirrorStack({ dir: state, fakeInstance: fake });
      try {
        await second.mirrors.manager.whenReady();
        expect(second.mirrors.manager.usage()).toMatchObject({ mirrors: 2, bytes });
        const from = second.fake.requests.length;
        await use(second, 'infra');
        // One info/refs: nothing new, so no upload-pack and no clone.
        expect(second.gitSince(from).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /acme/infra.git/info/refs']);
        expect(second.apiSince(from)).toHaveLength(0);
      } finally {
        await second.stop();
      }
    } finally {
      await fake.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
