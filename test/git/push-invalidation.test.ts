import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { request } from 'undici';
import { basicAuth, startStack, type Stack } from '../helpers/stack';
import { runGit } from './helpers';

/** A push through the sidecar makes the cached branch list stale at once (no webhook needed). */
describe('push through the sidecar', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([{ id: 'pusher', scope: [{ workspace: 'acme' }], permissions: ['read', 'git:push'] }]);
  });
  afterAll(() => stack.stop());

  const branches = () =>
    request(`${stack.url}/2.0/repositories/acme/service-web/refs/branches?pagelen=100`, { headers: { authorization: basicAuth('j@ci.example', stack.tokens.pusher) } }).then(async (r) => ({
      cache: String(r.headers['cache-status'] ?? ''),
      names: (JSON.parse(await r.body.text()) as { values: { name: string }[] }).values.map((b) => b.name),
    }));

  it('invalidates the repository so the next branch list shows the pushed branch', async () => {
    const before = await branches();
    expect(before.names).not.toContain('pushed-here');
    expect((await branches()).cache).toMatch(/hit/);

    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'push-')), 'w');
    const url = `${stack.url}/acme/service-web.git`;
    const ok = (r: { code: number; stderr: string }) => expect([r.code, r.stderr]).toEqual([0, expect.any(String)]);
    ok(await runGit(['clone', '--quiet', url, dir], { token: stack.tokens.pusher }));
    writeFileSync(path.join(dir, 'p.txt'), 'p\n');
    ok(await runGit(['add', 'p.txt'], { cwd: dir }));
    ok(await runGit(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', 'p'], { cwd: dir }));
    ok(await runGit(['push', '--quiet', 'origin', 'HEAD:refs/heads/pushed-here'], { cwd: dir, token: stack.tokens.pusher }));

    const after = await branches();
    expect(after.cache).not.toMatch(/; hit/);
    expect(after.names).toContain('pushed-here');
  });
});
