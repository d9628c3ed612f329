/**
 * The newcomer's first command: `bitbucket-sidecar demo` (what `npm start` runs) prints a banner
 * naming the demo client's permissions and a `git clone` through the sidecar that works as printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runGit } from '../git/helpers';

const ROOT = path.resolve(__dirname, '../..');

describe('the demo banner', () => {
  let child: ChildProcess;
  let banner = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'demo-banner-'));

  beforeAll(async () => {
    child = spawn(process.execPath, ['dist/main.js', 'demo', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        banner += d.toString('utf8');
        if (/^Try:[\s\S]*\n\s*git .* clone .*\n/m.test(banner)) resolve();
      });
      child.on('exit', (code) => reject(new Error(`demo exited with ${code}`)));
    });
  });
  afterAll(() => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('says what the demo token may do', () => {
    expect(banner).toMatch(/permissions:\s+read, statuses:write, webhooks:manage, ops:read/);
    expect(banner).toMatch(/build statuses/);
  });

  it('prints a git clone that works as printed', async () => {
    const line = banner.split('\n').find((l) => l.trim().startsWith('git ') && l.includes(' clone '))!;
    const command = line.trim().replace(/\s+#.*$/, '');
    const [, url] = /'([^']+)'/.exec(command)!;
    const target = path.join(dir, 'service-api');
    expect(command).toContain(`clone '${url}'`);
    const r = await runGit(['clone', '--quiet', url, target]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await runGit(['-C', target, 'ls-files'])).stdout).toContain('Jenkinsfile');
  });
});
