/**
 * `npm run bench:miss`: what a cache miss adds over going direct. A generated workspace in the fake
 * Bitbucket (this process), the sidecar in its own process (audit log to /dev/null), one keep-alive
 * connection each way, requests sent one after another — the shape of `npm run bench`'s "per-request
 * latency" section, but over many rounds of distinct URLs (5 per repository: repository, branch and
 * tag lists, PR list, one branch), so every sidecar request is a miss. Each round sends the same
 * ROUND_URLS (default 250) URLs direct, then through the sidecar; prints the median over rounds of
 * the direct p50, the miss p50 and their difference, and the sidecar's CPU microseconds per miss
 * (from /proc; and the main thread's alone, where the JavaScript runs: steadier on shared cores); and the first round alone, which is what `npm run bench` measures (its 250 misses
 * come right after a short warm-up, so they run partly before the JIT has optimised the miss path).
 * REPOS (default 1500) and ROUNDS bound the rounds. With STEADY_PROFILE=FILE the sidecar writes
 * a CPU profile of the steady state (bench/steady-profile.ts); SIDECAR_REQUIRE=FILE preloads a module
 * into the sidecar (instrumentation).
 */
import { readFileSync } from 'node:fs';
import { startFakeBitbucket } from '../src/fake-bitbucket';
import { cpuMs, startMeasuredSidecar } from './measured-sidecar';
import { percentile, ScanClient } from './scan';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const WS = 'bench';
const API_BASE = 'http://api.bitbucket.org';


/**
 * The main thread's time on a CPU and waiting for one, in microseconds (nanosecond counters, from
 * /proc): the sidecar's JavaScript runs there, GC helpers and the JIT's compiler threads do not.
 * Steadier than wall-clock latency when other processes share the cores.
 */
function mainThread(pid: number): { run: number; wait: number } {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { run: run / 1000, wait: wait / 1000 };
}

const median = (xs: number[]) => percentile(xs, 50);

async function main(): Promise<void> {
  const repos = Number(process.env.REPOS ?? 1500);
  const maxRounds = Number(process.env.ROUNDS ?? Infinity);
  const perRound = Number(process.env.ROUND_URLS ?? 250);
  const fake = await startFakeBitbucket({ seed: { workspace: WS, repositories: repos, branches: 5, pullRequests: 2, tags: 1 } });
  const sidecar = await startMeasuredSidecar(fake, WS);
  const proc = sidecar.proc;

  const paths: string[] = [];
  for (let i = 1; i <= repos; i++) {
    const r = `/2.0/repositories/${WS}/repo-${String(i).padStart(4, '0')}`;
    paths.push(r, `${r}/refs/branches?pagelen=100`, `${r}/refs/tags?pagelen=100`, `${r}/pullrequests?pagelen=50`, `${r}/refs/branches/main`);
  }
  const direct = new ScanClient({ serverUrl: fake.url, apiBase: fake.url, authorization: basic(fake.credentials.email, fake.credentials.apiToken), connections: 1 });
  const plugin = new ScanClient({ serverUrl: sidecar.url, apiBase: API_BASE, authorization: sidecar.authorization, connections: 1 });
  const sequential = async (client: ScanClient, urls: string[]) => {
    client.records.length = 0;
    for (const u of urls) await client.get(u);
    return client.records;
  };
  // Warm-up as in `npm run bench` (JIT, connections), on URLs not measured.
  for (let i = 0; i < 300; i++) {
    const warm = `/2.0/repositories/${WS}/repo-0001/refs/branches/warm-up-${i % 150}`;
    await direct.get(`${fake.url}${warm}`);
    await direct.get(`${fake.url}${paths[i % paths.length]}`);
    await plugin.get(`${API_BASE}${warm}`);
  }
  const rows: { direct: number; miss: number; run: number; wait: number }[] = [];
  let cpu = 0;
  let misses = 0;
  let notMiss = 0;
  for (let at = 0; at + perRound <= paths.length && rows.length < maxRounds; at += perRound) {
    const urls = paths.slice(at, at + perRound);
    const d = (await sequential(direct, urls.map((p) => `${fake.url}${p}`))).map((r) => r.ms);
    const cpu0 = cpuMs(proc.pid!);
    const t0 = mainThread(proc.pid!);
    const recs = await sequential(plugin, urls.map((p) => `${API_BASE}${p}`));
    const t1 = mainThread(proc.pid!);
    cpu += cpuMs(proc.pid!) - cpu0;
    misses += recs.length;
    notMiss += recs.filter((r) => !/fwd=miss/.test(r.cacheStatus ?? '')).length;
    rows.push({ direct: median(d), miss: median(recs.map((r) => r.ms)), run: (t1.run - t0.run) / recs.length, wait: (t1.wait - t0.wait) / recs.length });
    const r = rows[rows.length - 1];
    if (process.env.ROUNDS_VERBOSE) console.log(`round ${rows.length}: direct ${r.direct.toFixed(3)} miss ${r.miss.toFixed(3)} main thread ${r.run.toFixed(0)} µs/miss (waited ${r.wait.toFixed(0)})`);
  }
  const first = rows[0];
  console.log(
    `first round (what \`npm run bench\` measures): direct p50 ${first.direct.toFixed(3)} ms  miss p50 ${first.miss.toFixed(3)} ms  added ${(first.miss - first.direct).toFixed(3)} ms  sidecar main thread ${first.run.toFixed(0)} µs/miss (waited for a CPU ${first.wait.toFixed(0)})`,
  );
  const dP50 = median(rows.map((r) => r.direct));
  const mP50 = median(rows.map((r) => r.miss));
  const added = median(rows.map((r) => r.miss - r.direct));
  console.log(
    `${rows.length} rounds of ${perRound}: direct p50 ${dP50.toFixed(3)} ms  miss p50 ${mP50.toFixed(3)} ms  added ${added.toFixed(3)} ms (median of per-round differences)  sidecar CPU ${((cpu * 1000) / misses).toFixed(0)} µs/miss, main thread ${median(rows.map((r) => r.run)).toFixed(0)} (waited ${median(rows.map((r) => r.wait)).toFixed(0)})  not a miss ${notMiss}`,
  );
  await direct.close();
  await plugin.close();
  await sidecar.stop();
  await fake.close();
}

void main();
