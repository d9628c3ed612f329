/**
 * Webhook relay and warm cache, measured in upstream calls (docs/webhooks.md, issue 7):
 *
 *   1. push:    a warm 200-repository organisation re-index after one push (delivered through the
 *               relay) makes upstream calls only for the pushed repository;
 *   2. refresh: with the warm refresher on and no deliveries, a re-index right after the cached
 *               lists expired makes 0 upstream calls at the client's request (control: refresher off).
 *
 *   npm run bench:webhooks
 *   BENCH_WEBHOOKS_REPOS=200 BENCH_WEBHOOKS_NO_RECORD=1 npm run bench:webhooks
 *
 * The fake Bitbucket (generated workspace) and the sidecar run in this process; the scan is the
 * plugin's (bench/scan.ts). The sidecar's clock is a manual clock, so "expiry" is reached by moving
 * it, not by waiting; the budget limit is raised so the scan is not paced (this bench counts calls,
 * the budget bench measures pacing). Results are printed and appended to bench/RESULTS.md.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mintToken, sha256Hex } from '../src/auth/tokens';
import { validateConfig } from '../src/config/load';
import { generatedSlug, startFakeBitbucket, type FakeBitbucket } from '../src/fake-bitbucket';
import { createLogger } from '../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../src/serve';
import { ManualClock } from '../src/upstream/budget-clock';
import { sign } from '../src/webhooks/signature';
import { organisationScan, ScanClient } from './scan';
import { resultsFile } from './results-file';

const REPOS = Number(process.env.BENCH_WEBHOOKS_REPOS ?? 200);
const WS = 'bench';
const SECRET = 'bench-webhook-secret';
const LIFETIME_S = 300;
const LEAD_S = 30;
const API_BASE = 'http://api.bitbucket.org';

interface Sidecar {
  running: RunningSidecar;
  token: string;
  clock: ManualClock;
  stateDir: string;
}

async function startBenchSidecar(fake: FakeBitbucket, jenkinsUrl: string, refresh: boolean): Promise<Sidecar> {
  const token = mintToken();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'bench-webhooks-'));
  const config = validateConfig({
    server: { http: { host: '127.0.0.1', port: 0 } },
    upstream: {
      apiUrl: fake.url,
      webUrl: fake.url,
      auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
      budget: { repositoryRequestsPerHour: 1_000_000 },
    },
    clients: [{ id: 'jenkins', token: { sha256: sha256Hex(token) }, scope: [{ workspace: WS }] }],
    cache: { freshness: { listSeconds: LIFETIME_S, metadataSeconds: LIFETIME_S }, staleWhileRevalidateSeconds: 0 },
    webhooks: { secret: SECRET, forwardTo: jenkinsUrl },
    refresh: { enabled: refresh, budgetShare: 1, leadSeconds: LEAD_S, intervalSeconds: 3600, maxKeys: 20_000 },
    state: { dir: stateDir },
  });
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const running = await startSidecar(config, { logger: createLogger({ level: 'warn' }), clock });
  return { running, token, clock, stateDir };
}

function scanClient(s: Sidecar): ScanClient {
  return new ScanClient({ serverUrl: s.running.httpUrl, apiBase: API_BASE, authorization: `Basic ${Buffer.from(`jenkins@ci.example:${s.token}`).toString('base64')}` });
}

interface ScanResult {
  upstream: number;
  byRepo: Map<string, number>;
  requests: number;
  hits: number;
  ms: number;
}

async function scan(fake: FakeBitbucket, s: Sidecar): Promise<ScanResult> {
  fake.clearLog();
  const client = scanClient(s);
  const t0 = process.hrtime.bigint();
  try {
    const summary = await organisationScan(client, API_BASE, { workspace: WS, parallelRepositories: 8 });
    if (summary.failedRepositories.length > 0) throw new Error(`scan failed for ${summary.failedRepositories.join(', ')}`);
  } finally {
    await client.close();
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const calls = fake.requests.filter((r) => r.kind === 'api');
  const byRepo = new Map<string, number>();
  for (const c of calls) {
    const k = c.repository ?? '(workspace)';
    byRepo.set(k, (byRepo.get(k) ?? 0) + 1);
  }
  return { upstream: calls.length, byRepo, requests: client.records.length, hits: client.records.filter((r) => /; hit/.test(r.cacheStatus ?? '')).length, ms };
}

function startJenkins(): Promise<{ server: Server; url: string; received: number[] }> {
  const received: number[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(Date.now());
      res.end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bitbucket-scmsource-hook/notify`, received })));
}

function pushBody(repo: string, branch: string, hash: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      push: { changes: [{ new: { type: 'branch', name: branch, target: { type: 'commit', hash } }, old: { type: 'branch', name: branch }, created: false, closed: false, forced: false }] },
      repository: { type: 'repository', full_name: `${WS}/${repo}`, name: repo, is_private: true, project: { type: 'project', key: 'P1' } },
      actor: { type: 'user', display_name: 'Bench' },
    }),
  );
}

async function main(): Promise<void> {
  const fake = await startFakeBitbucket({ seed: { workspace: WS, repositories: REPOS, branches: 3, pullRequests: 1, tags: 1 } });
  fake.setRateLimit(null);
  const jenkins = await startJenkins();
  const rows: string[][] = [];
  const checks: string[] = [];
  const sidecars: Sidecar[] = [];
  try {
    // --- 1. one push -------------------------------------------------------------------------
    const a = await startBenchSidecar(fake, jenkins.url, false);
    sidecars.push(a);
    const cold = await scan(fake, a);
    const warm = await scan(fake, a);
    const pushed = generatedSlug(7);
    const hash = await fake.pushCommit(WS, pushed, 'main', { 'bench.txt': 'pushed\n' }, 'Bench push');
    const body = pushBody(pushed, 'main', hash);
    const res = await fetch(`${a.running.httpUrl}/_sidecar/webhooks/bitbucket`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-event-key': 'repo:push', 'x-request-uuid': '{bench-0001}', 'x-hub-signature': sign(body, SECRET) },
      body,
    });
    if (res.status !== 200) throw new Error(`delivery answered ${res.status}`);
    const afterPush = await scan(fake, a);
    const others = [...afterPush.byRepo].filter(([r]) => r !== pushed).reduce((n, [, c]) => n + c, 0);
    while (jenkins.received.length < 1) await new Promise((r) => setTimeout(r, 5));
    rows.push(['push', 'cold scan', String(cold.requests), String(cold.upstream), '-', fmt(cold.ms)]);
    rows.push(['push', 'warm re-index', String(warm.requests), String(warm.upstream), String(warm.hits), fmt(warm.ms)]);
    rows.push(['push', `re-index after one push to ${pushed}`, String(afterPush.requests), `${afterPush.upstream} (${pushed}: ${afterPush.byRepo.get(pushed) ?? 0}, others: ${others})`, String(afterPush.hits), fmt(afterPush.ms)]);
    checks.push(`after one push, upstream calls only for the pushed repository: ${others === 0 && (afterPush.byRepo.get(pushed) ?? 0) > 0 ? 'yes' : 'NO'}`);
    checks.push(`delivery forwarded to Jenkins: ${jenkins.received.length === 1 ? 'once' : `${jenkins.received.length} times`}`);

    // --- 2. refresher, no deliveries ------------------------------------------------------------
    for (const refresh of [false, true]) {
      const s = await startBenchSidecar(fake, jenkins.url, refresh);
      sidecars.push(s);
      const label = refresh ? 'refresher on' : 'refresher off (control)';
      await scan(fake, s);
      s.clock.advance((LIFETIME_S - LEAD_S + 1) * 1000); // inside the lead window
      fake.clearLog();
      const t0 = process.hrtime.bigint();
      const refresher = s.running.sidecar.webhooks.refresher;
      if (refresh) await refresher.runOnce();
      const refreshMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const background = fake.requests.filter((r) => r.kind === 'api').length;
      s.clock.advance(LEAD_S * 1000); // past the first answers' expiry
      const again = await scan(fake, s);
      rows.push(['refresh', `${label}: background refresh before expiry`, '-', String(background), '-', refresh ? fmt(refreshMs) : '-']);
      rows.push(['refresh', `${label}: re-index right after expiry`, String(again.requests), String(again.upstream), String(again.hits), fmt(again.ms)]);
      if (refresh) checks.push(`refresher on: re-index after expiry made ${again.upstream} upstream calls at the client's request (tracked answers: ${refresher.trackedCount})`);
    }
  } finally {
    for (const s of sidecars) {
      await s.running.stop(200);
      rmSync(s.stateDir, { recursive: true, force: true });
    }
    await new Promise<void>((r) => jenkins.server.close(() => r()));
    await fake.close();
  }

  const header = ['scenario', 'step', 'client requests', 'upstream calls', 'cache hits', 'wall ms'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(`\nwebhook relay and warm cache — ${REPOS} repositories (3 branches, 1 PR, 1 tag each)\n`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log('');
  for (const c of checks) console.log(`* ${c}`);

  if (process.env.BENCH_WEBHOOKS_NO_RECORD) return;
  const cpus = os.cpus();
  const machine = `${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
  const md = [
    '',
    `## Webhook relay and warm cache — ${new Date().toISOString()}`,
    '',
    `${machine}. \`npm run bench:webhooks\`: fake Bitbucket with ${REPOS} generated repositories (3 branches, 1 PR, 1 tag each), the plugin's organisation scan (bench/scan.ts), list/metadata lifetime ${LIFETIME_S} s, refresher lead ${LEAD_S} s, manual clock.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    ...checks.map((c) => `* ${c}`),
    '',
  ].join('\n');
  const file = resultsFile();
  appendFileSync(file, md);
  console.log(`\nappended to ${path.relative(process.cwd(), file)}`);
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}


main().catch((e) => {
  console.error(e);
  process.exit(1);
});
