/**
 * `npm run bench:hit`: the CPU cost of one cached answer. A generated workspace in the fake
 * Bitbucket (this process), the sidecar in its own process (audit log to /dev/null), 50 keep-alive
 * connections asking for one cached branch list for 5 s after a 1 s warm-up; prints requests/s and
 * the sidecar's CPU microseconds per request (from /proc, steadier than requests/s on a shared
 * machine). `P=/2.0/…` asks for another path. With STEADY_PROFILE=FILE the sidecar writes a CPU
 * profile of the steady state (bench/steady-profile.ts).
 */
import { Pool } from 'undici';
import { startFakeBitbucket } from '../src/fake-bitbucket';
import { cpuMs, startMeasuredSidecar } from './measured-sidecar';



async function main(): Promise<void> {
  const fake = await startFakeBitbucket({ seed: { workspace: 'bench', repositories: 5, branches: 5, pullRequests: 2, tags: 1 } });
  const sidecar = await startMeasuredSidecar(fake, 'bench');
  const proc = sidecar.proc;
  const p = process.env.P ?? '/2.0/repositories/bench/repo-0001/refs/branches?pagelen=100';
  const headers = { host: 'api.bitbucket.org', authorization: sidecar.authorization };
  const pool = new Pool(sidecar.url, { connections: 50, pipelining: 1 });
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
  await sidecar.stop();
  await fake.close();
}

void main();
