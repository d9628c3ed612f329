/**
 * `npm run bench:hit`: the CPU cost of one cached answer. A generated workspace in the fake
 * Bitbucket (this process), the sidecar in its own process (audit log to /dev/null), 50 keep-alive
 * connections asking for one cached branch list for 5 s after a 1 s warm-up; prints requests/s and
 * the sidecar's CPU microseconds per request (from /proc, steadier than requests/s on a shared
 * machine). `P=/2.0/…` asks for another path. With STEADY_PROFILE=FILE the sidecar writes a CPU
 * profile of the steady state (bench/steady-profile.ts).
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Pool } from 'undici';
import { mintToken, sha256Hex } from '../src/auth/tokens';
import { startFakeBitbucket } from '../src/fake-bitbucket';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** User + system CPU time of a process, in milliseconds (clock ticks are 10 ms on Linux). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function main(): Promise<void> {
  const fake = await startFakeBitbucket({ seed: { workspace: 'bench', repositories: 5, branches: 5, pullRequests: 2, tags: 1 } });
  const token = mintToken();
  const execArgv = process.env.STEADY_PROFILE ? ['-r', path.join(__dirname, 'steady-profile.js')] : [];
  const proc = fork(path.join(__dirname, 'sidecar-child.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  let seq = 0;
  const ask = (m: Record<string, unknown>) =>
    new Promise<{ url: string; error?: string }>((resolve) => {
      const id = ++seq;
      const on = (r: { id: number; url: string }) => {
        if (r.id !== id) return;
        proc.off('message', on);
        resolve(r);
      };
      proc.on('message', on);
      proc.send({ id, ...m });
    });
  const config = {
    server: { http: { host: '127.0.0.1', port: 0 } },
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: { repositoryRequestsPerHour: 1_000_000 } },
    clients: [{ id: 'jenkins', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'bench' }], permissions: ['read'] }],
    cache: { maxBytes: '512MiB', freshness: { immutableSeconds: 86_400, metadataSeconds: 3600, listSeconds: 3600, notFoundSeconds: 3600 } },
  };
  const started = await ask({ cmd: 'start', config });
  if (started.error) throw new Error(started.error);
  const p = process.env.P ?? '/2.0/repositories/bench/repo-0001/refs/branches?pagelen=100';
  const headers = { host: 'api.bitbucket.org', authorization: basic('jenkins@ci.example', token) };
  const pool = new Pool(started.url, { connections: 50, pipelining: 1 });
  let n = 0;
  let failed = 0;
  const run = async (until: number) => {
    while (Date.now() < until) {
      const r = await pool.request({ path: p, method: 'GET', headers });
      await r.body.dump();
      if (r.statusCode !== 200) failed++;
      n++;
    }
  };
  await Promise.all(Array.from({ length: 50 }, () => run(Date.now() + 1000)));
  n = 0;
  const cpu0 = cpuMs(proc.pid!);
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 50 }, () => run(Date.now() + 5000)));
  const seconds = (Date.now() - t0) / 1000;
  console.log(`requests/s ${(n / seconds).toFixed(0)}  sidecar CPU ${(((cpuMs(proc.pid!) - cpu0) * 1000) / n).toFixed(1)} µs/request  non-200 ${failed}`);
  await pool.close();
  const exited = new Promise((r) => proc.once('exit', r));
  proc.send({ id: ++seq, cmd: 'stop' });
  await exited;
  await fake.close();
}

void main();
