import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchConfigFile } from '../../src/config/watch';

const until = async (ok: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms;
  while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
};

describe('watchConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'watch-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a change made right after watching starts (same size, same inode)', async () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, 'token: aaaa\n');
    let changes = 0;
    const stop = watchConfigFile(file, () => changes++, 20);
    try {
      // Before any poll: this must not become the baseline.
      writeFileSync(file, 'token: bbbb\n');
      await until(() => changes > 0);
      expect(changes).toBe(1);
      await new Promise((r) => setTimeout(r, 100));
      expect(changes).toBe(1); // nothing changed since: no further reports
    } finally {
      stop();
    }
  });

  it('reports a file replaced by rename (a new inode), and one that comes back after disappearing', async () => {
    const file = join(dir, 'b.yaml');
    writeFileSync(file, 'x: 1\n');
    let changes = 0;
    const stop = watchConfigFile(file, () => changes++, 20);
    try {
      writeFileSync(join(dir, 'b.new'), 'x: 1\n');
      renameSync(join(dir, 'b.new'), file);
      await until(() => changes === 1);
      expect(changes).toBe(1);
      rmSync(file);
      await new Promise((r) => setTimeout(r, 100));
      expect(changes).toBe(1); // gone: nothing to load
      writeFileSync(file, 'x: 2\n');
      await until(() => changes === 2);
      expect(changes).toBe(2);
    } finally {
      stop();
    }
  });
});
