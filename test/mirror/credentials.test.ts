import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { upstreamCredentials } from '../../src/upstream/credentials';
import { API, startMirrorStack, type MirrorStack } from './helpers';

/**
 * The upstream git credential reaches git only through its environment (GIT_CONFIG_COUNT …
 * `http.<webUrl>/.extraHeader`): never a command line (`ps` shows those to every user), never a
 * URL, never a file in the mirror, never a log line.
 */
describe('the upstream credential and the mirror git processes', () => {
  let s: MirrorStack;
  const spawned: { pid: number; args: readonly string[] }[] = [];
  let secrets: string[];

  beforeAll(async () => {
    s = await startMirrorStack({ sidecar: { onGitSpawn: (pid, args) => spawned.push({ pid, args }) } });
    const creds = upstreamCredentials(s.running.sidecar.config.upstream);
    secrets = [s.fake.credentials.apiToken, creds.git.header, creds.git.header.replace(/^Basic /, ''), creds.rest.replace(/^Basic /, '')];
  });
  afterAll(() => s.stop());

  /** Command lines of this test's own descendants: other suites running in parallel spawn git too. */
  const cmdlines = (): { pid: string; cmd: string }[] => {
    const parent = new Map<string, string>();
    const cmd = new Map<string, string>();
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        cmd.set(pid, readFileSync(`/proc/${pid}/cmdline`).toString('utf8').replace(/\0/g, ' '));
      } catch {
        // gone meanwhile
      }
    }
    const mine = (pid: string): boolean => {
      for (let p = parent.get(pid), hops = 0; p && hops < 64; p = parent.get(p), hops++) if (p === String(process.pid)) return true;
      return false;
    };
    return [...cmd].filter(([pid]) => mine(pid)).map(([pid, c]) => ({ pid, cmd: c }));
  };

  it('no process command line carries it while a clone and a fetch run', async () => {
    // Slow git answers keep the mirror's git processes alive long enough to be looked at.
    s.fake.addFault({ kind: 'latency', latencyMs: 800, match: { pathIncludes: '/acme/infra.git/' }, times: 2 });
    const seen = new Map<string, string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const p of cmdlines()) if (/\bgit\b|git-remote/.test(p.cmd)) seen.set(`${p.pid} ${p.cmd}`, p.cmd);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    expect((await s.plugin.get(`${API}/acme/infra/refs/branches`)).status).toBe(200);
    s.fake.addFault({ kind: 'latency', latencyMs: 800, match: { pathIncludes: '/acme/infra.git/' }, times: 1 });
    expect(await s.mirrors.refresh('acme', 'infra')).toBe(true);
    watching = false;
    await watcher;

    const lines = [...seen.values()];
    expect(lines.some((l) => l.includes('clone') && l.includes('--mirror'))).toBe(true);
    expect(lines.some((l) => l.includes('fetch') && l.includes('--prune'))).toBe(true);
    expect(lines.some((l) => /remote-https?/.test(l))).toBe(true);
    for (const l of lines) {
      for (const secret of secrets) expect(l.includes(secret)).toBe(false);
      expect(l).not.toMatch(/authorization|extraheader/i);
      expect(l).not.toMatch(/https?:\/\/[^/\s]*@/);
    }
    // Every command the manager spawned, by design.
    expect(spawned.length).toBeGreaterThanOrEqual(2);
    for (const { args } of spawned) for (const secret of secrets) expect(args.join(' ').includes(secret)).toBe(false);
  });

  it('the environment that carries it is readable by the sidecar user only', async () => {
    s.fake.addFault({ kind: 'latency', latencyMs: 800, match: { pathIncludes: '/acme/docs-site.git/' }, times: 1 });
    let settled = false;
    const pending = s.plugin.get(`${API}/acme/docs-site/refs/branches`).finally(() => (settled = true));
    let checked = 0;
    while (checked === 0 && !settled) {
      for (const { pid, args } of spawned) {
        if (!args.includes('clone') || !args.some((a) => a.includes('docs-site'))) continue;
        try {
          expect(statSync(`/proc/${pid}/environ`).mode & 0o077).toBe(0);
          checked++;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await pending).status).toBe(200);
    expect(checked).toBeGreaterThan(0);
  });

  it('neither the mirror on disk nor any log line holds it', async () => {
    const dir = path.join(s.dir, 'mirrors', 'repos', 'acme', 'infra.git');
    const config = readFileSync(path.join(dir, 'config'), 'utf8');
    expect(config).toContain(`url = ${s.fake.url}/acme/infra.git`);
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    for (const f of walk(path.join(s.dir, 'mirrors'))) {
      const text = readFileSync(f).toString('latin1');
      for (const secret of secrets) expect({ f, leaked: text.includes(secret) }).toEqual({ f, leaked: false });
    }
    for (const line of s.logs) for (const secret of secrets) expect(line.includes(secret)).toBe(false);
  });
});
