/**
 * `npm run bench:mirror` — the git mirror, measured (issue 9):
 *
 *  1. Cold organisation scan of a generated workspace (700 repositories; 5 branches, 2 PRs, 1 tag
 *     each) through the sidecar with mirrors on: REST calls per repository and git requests, counted
 *     from the fake Bitbucket's request log; the same scan with mirrors off as the control.
 *  2. Warm re-index after one push: a commit on one repository, the webhook relay's invalidation
 *     (src/webhooks/invalidate.ts, what a `repo:push` delivery does), the whole scan again.
 *  3. Clone from the mirror vs streamed from upstream, both through the sidecar, with 150 ms injected
 *     latency on Bitbucket's git endpoints (`addFault({kind:'latency', latencyMs:150})`): a small
 *     repository (the demo's) and two with generated history (about 6 and 17 MB packs), fresh mirror
 *     and mirror invalidated by a webhook just before the clone (fetch first). The latency is per
 *     request (not a bandwidth limit), so the mirror's advantage shrinks as the pack grows: the
 *     client's own work (receiving and indexing the pack) is the same both ways.
 *
 *   npm run bench:mirror
 *   BENCH_MIRROR_REPOS=200 BENCH_MIRROR_RUNS=5 BENCH_MIRROR_NO_RECORD=1 npm run bench:mirror
 *
 * Everything runs in this process (fake, sidecars, load): the counts are exact, the times indicative.
 * The REST budget is raised to 100,000/h so that pacing does not stretch the control scan (this
 * bench counts calls; the budget governor's behaviour is bench/run.ts's). Results are printed and
 * written to bench/RESULTS.md between the `bench:mirror` markers (other sections are kept).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mintToken, sha256Hex } from '../src/auth/tokens';
import { validateConfig } from '../src/config/load';
import { startFakeBitbucket, type FakeBitbucket } from '../src/fake-bitbucket';
import { createLogger } from '../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../src/serve';
import { invalidateFor } from '../src/webhooks/invalidate';
import type { Delivery } from '../src/webhooks/delivery';
import { organisationScan, ScanClient } from './scan';
import { resultsFile } from './results-file';

const REPOS = Number(process.env.BENCH_MIRROR_REPOS ?? 700);
const RUNS = Number(process.env.BENCH_MIRROR_RUNS ?? 5);
const PARALLEL = Number(process.env.BENCH_MIRROR_PARALLEL ?? 8);
const LATENCY_MS = 150;
/** Repositories cloned: the demo's (a few KB) and two with generated history (commits of 4 × 24 KB text files). */
const CLONE_HISTORIES: Record<string, number> = { 'service-api': 0, 'docs-site': 100, infra: 300 };
const WS = 'gen';
const API_BASE = 'http://api.bitbucket.org';
const MB = 1024 ** 2;
const log = (...a: unknown[]) => console.error('[bench:mirror]', ...a);
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const fmt = (n: number, d = 1) => n.toFixed(d);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Side {
  running: RunningSidecar;
  token: string;
  url: string;
}

async function sidecar(fake: FakeBitbucket, state: string, workspace: string, mirror: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Side> {
  const token = mintToken();
  const config = validateConfig({
    server: { http: { host: '127.0.0.1', port: 0 } },
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: { repositoryRequestsPerHour: 100_000 } },
    clients: [{ id: 'jenkins', token: { sha256: sha256Hex(token) }, scope: [{ workspace }], permissions: ['read'] }],
    state: { dir: state },
    mirror: { dir: path.join(state, 'mirrors'), ...mirror },
    ...extra,
  });
  const running = await startSidecar(config, { logger: createLogger({ level: 'warn' }) });
  return { running, token, url: running.httpUrl };
}

function gitEnv(token?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(GIT_|https?_proxy$|HTTPS?_PROXY$)/.test(k)) env[k] = v;
  return { ...env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', ...(token ? { BENCH_TOKEN: token } : {}) };
}

function git(args: string[], opts: { gitDir?: string; token?: string; input?: (stdin: NodeJS.WritableStream) => Promise<void> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = gitEnv(opts.token);
    if (opts.gitDir) env.GIT_DIR = opts.gitDir;
    const helper = opts.token ? ['-c', 'credential.helper=!f() { echo username=x-bitbucket-api-token-auth; echo password=$BENCH_TOKEN; }; f'] : [];
    const child = spawn('git', [...helper, ...args], { env, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`git ${args.join(' ')}: ${err.trim()}`))));
    if (opts.input) opts.input(child.stdin!).catch(reject);
  });
}

/** `commits` commits on `branch`, each rewriting 4 of 40 text files of 24 KB (a typical service's history). */
async function generateHistory(gitDir: string, branch: string, parent: string, commits: number): Promise<void> {
  const write = (stdin: NodeJS.WritableStream, chunk: string | Buffer) =>
    new Promise<void>((resolve) => {
      if (stdin.write(chunk)) resolve();
      else stdin.once('drain', resolve);
    });
  await git(['fast-import', '--quiet', '--done'], {
    gitDir,
    input: async (stdin) => {
      let from = parent;
      const t0 = Math.floor(Date.now() / 1000) - commits * 60;
      for (let c = 1; c <= commits; c++) {
        const who = `Bench <bench@example.com> ${t0 + c * 60} +0000`;
        const msg = `change ${c}\n`;
        let cmd = `commit refs/heads/${branch}\nmark :${c}\nauthor ${who}\ncommitter ${who}\ndata ${msg.length}\n${msg}from ${from}\n`;
        for (let f = 0; f < 4; f++) {
          const content = `${randomBytes(12 * 1024).toString('hex')}\n`;
          cmd += `M 100644 inline src/module-${String((c * 4 + f) % 40).padStart(2, '0')}.txt\ndata ${Buffer.byteLength(content)}\n${content}\n`;
        }
        await write(stdin, cmd);
        from = `:${c}`;
      }
      await write(stdin, 'done\n');
      stdin.end();
    },
  });
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const s = statSync(p);
    total += s.isDirectory() ? dirBytes(p) : s.size;
  }
  return total;
}

const classify = (p: string) =>
  /\/pullrequests$/.test(p) ? 'pull requests' : /^\/2\.0\/workspaces\//.test(p) ? 'workspace' : /^\/2\.0\/repositories\/[^/]+$/.test(p) ? 'listing' : 'other';

interface ScanRow {
  step: string;
  rest: number;
  perRepo: number;
  byKind: string;
  git: number;
  wallMs: number;
  notes: string;
}

async function scanPart(work: string): Promise<{ rows: ScanRow[]; checks: string[] }> {
  log(`seeding ${REPOS} repositories (5 branches, 2 PRs, 1 tag)`);
  const fake = await startFakeBitbucket({ seed: { workspace: WS, repositories: REPOS, branches: 5, pullRequests: 2, tags: 1 }, dataDir: path.join(work, 'fake-scan') });
  const rows: ScanRow[] = [];
  const checks: string[] = [];
  try {
    // Webhooks keep the cache and the mirrors honest, so both may be trusted for an hour (README).
    const mirrorOn = await sidecar(fake, path.join(work, 'state-on'), WS, { enabled: true, freshSeconds: 3600, refreshSeconds: 0 }, { cache: { freshness: { listSeconds: 3600, metadataSeconds: 3600 } } });
    const mirrorOff = await sidecar(fake, path.join(work, 'state-off'), WS, { enabled: false });
    const scan = async (side: Side, step: string, notes: string) => {
      const client = new ScanClient({ serverUrl: side.url, apiBase: API_BASE, authorization: basic('jenkins@ci.example', side.token), connections: 20 });
      const from = fake.requests.length;
      const started = Date.now();
      const summary = await organisationScan(client, API_BASE, { workspace: WS, parallelRepositories: PARALLEL });
      const wallMs = Date.now() - started;
      await client.close();
      const seen = fake.requests.slice(from);
      const rest = seen.filter((r) => r.kind === 'api');
      const kinds: Record<string, number> = {};
      for (const r of rest) kinds[classify(r.path)] = (kinds[classify(r.path)] ?? 0) + 1;
      const byKind = Object.entries(kinds)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      if (summary.failedRepositories.length || summary.droppedHeads) throw new Error(`${step}: ${summary.failedRepositories.length} repositories failed, ${summary.droppedHeads} heads dropped`);
      const row = { step, rest: rest.length, perRepo: rest.length / REPOS, byKind, git: seen.filter((r) => r.kind === 'git').length, wallMs, notes };
      rows.push(row);
      log(`${step}: ${row.rest} REST (${fmt(row.perRepo, 3)}/repository), ${row.git} git, ${wallMs} ms`);
      return { row, seen };
    };

    const cold = await scan(mirrorOn, 'cold scan, mirrors on', '');
    const usage = mirrorOn.running.sidecar.mirrors.manager.usage();
    cold.row.notes = `${usage.mirrors} mirrors, ${fmt(usage.bytes / MB)} MB on disk; git budget used ${mirrorOn.running.sidecar.mirrors.budget.used()} of ${mirrorOn.running.sidecar.mirrors.budget.limit}/h`;
    checks.push(`cold scan REST calls per repository: ${fmt(cold.row.perRepo, 3)} (target ≤ 1.05: ${cold.row.perRepo <= 1.05 ? 'met' : 'NOT met'})`);
    checks.push(`cold scan git requests: ${cold.row.git} (${fmt(cold.row.git / REPOS, 2)} per repository; within the git budget of 60,000/h: ${cold.row.git <= 60_000 ? 'yes' : 'NO'})`);

    const target = `repo-${String(Math.min(7, REPOS)).padStart(4, '0')}`;
    const pushed = await fake.pushCommit(WS, target, 'main', { 'pushed.txt': `pushed at ${new Date().toISOString()}\n` });
    const delivery: Delivery = { eventKey: 'repo:push', requestUuid: 'bench', contentType: 'application/json', workspace: WS, repository: target, projectKey: 'P1', refs: [{ type: 'branch', name: 'main' }], deletedBranches: [], emptyPush: false };
    const fromPush = fake.requests.length;
    invalidateFor(mirrorOn.running.sidecar.cache, delivery);
    const warm = await scan(mirrorOn, `warm re-index after one push to ${target}`, '');
    const afterPush = fake.requests.slice(fromPush);
    const restOther = warm.seen.filter((r) => r.kind === 'api' && r.repository !== target).length;
    const gitOther = afterPush.filter((r) => r.kind === 'git' && r.repository !== target).length;
    const gitThat = afterPush.filter((r) => r.kind === 'git' && r.repository === target).length;
    warm.row.git = afterPush.filter((r) => r.kind === 'git').length;
    warm.row.notes = `REST for other repositories: ${restOther}; git: ${gitThat} for ${target} (its fetch), ${gitOther} for others`;
    const head = (await new ScanClient({ serverUrl: mirrorOn.url, apiBase: API_BASE, authorization: basic('jenkins@ci.example', mirrorOn.token) }).get(`${API_BASE}/2.0/repositories/${WS}/${target}/refs/branches/main`)).json?.target?.hash;
    checks.push(`warm re-index after one push: REST calls only for ${target}'s pull requests: ${warm.row.rest === 1 && restOther === 0 ? 'yes' : 'NO'} (${warm.row.rest}); git fetch for that one mirror only: ${gitOther === 0 && gitThat > 0 ? 'yes' : 'NO'}; new head visible: ${head === pushed ? 'yes' : 'NO'}`);

    const control = await scan(mirrorOff, 'control: cold scan, mirrors off', 'every answer from Bitbucket');
    checks.push(
      `at Bitbucket's 1,000 REST calls/hour the cold scan needs ${fmt(cold.row.rest / 1000, 2)} h of budget with mirrors, ${fmt(control.row.rest / 1000, 2)} h without (wall times here have no REST latency: the fake answers in-process)`,
    );
    await mirrorOn.running.stop(0);
    await mirrorOff.running.stop(0);
  } finally {
    await fake.close();
  }
  return { rows, checks };
}

interface CloneRow {
  repository: string;
  packMb: number;
  upstream: number;
  mirror: number;
  refetch: number;
}

async function clonePart(work: string): Promise<{ rows: CloneRow[]; checks: string[] }> {
  const fake = await startFakeBitbucket({ seed: 'demo', dataDir: path.join(work, 'fake-clone') });
  const rows: CloneRow[] = [];
  const checks: string[] = [];
  try {
    for (const [name, commits] of Object.entries(CLONE_HISTORIES)) {
      if (!commits) continue;
      const repo = fake.model.findRepository('acme', name);
      if (!repo) throw new Error(`demo seed has no acme/${name}`);
      const main = (await git(['rev-parse', `refs/heads/${repo.mainBranch}`], { gitDir: repo.gitDir })).trim();
      log(`generating ${commits} commits of history in acme/${name}`);
      await generateHistory(repo.gitDir, repo.mainBranch, main, commits);
      // One pack with a bitmap, as Git hosts keep them.
      await git(['repack', '-a', '-d', '-q', '--write-bitmap-index'], { gitDir: repo.gitDir });
    }

    const mirrored = await sidecar(fake, path.join(work, 'clone-on'), 'acme', { enabled: true, freshSeconds: 3600, refreshSeconds: 0 });
    const streamed = await sidecar(fake, path.join(work, 'clone-off'), 'acme', { enabled: false });
    fake.addFault({ kind: 'latency', latencyMs: LATENCY_MS, match: { pathIncludes: '.git/' } });
    const into = path.join(work, 'clone.git');
    const clone = async (side: Side, name: string): Promise<{ seconds: number; bytes: number }> => {
      rmSync(into, { recursive: true, force: true });
      const started = process.hrtime.bigint();
      await git(['-c', 'protocol.version=2', 'clone', '--bare', '--quiet', `${side.url}/acme/${name}.git`, into], { token: side.token });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const bytes = dirBytes(path.join(into, 'objects', 'pack'));
      rmSync(into, { recursive: true, force: true });
      return { seconds, bytes };
    };
    for (const name of Object.keys(CLONE_HISTORIES)) {
      // Warm-up: creates the mirror, loads code paths and the page cache.
      await clone(mirrored, name);
      await clone(streamed, name);
      const up: number[] = [];
      const fresh: number[] = [];
      const refetch: number[] = [];
      let bytes = 0;
      for (let i = 0; i < RUNS; i++) {
        const u = await clone(streamed, name);
        const m = await clone(mirrored, name);
        mirrored.running.sidecar.mirrors.markStale('acme', name); // what a push webhook does
        const r = await clone(mirrored, name);
        up.push(u.seconds);
        fresh.push(m.seconds);
        refetch.push(r.seconds);
        bytes = m.bytes;
        log(`${name} run ${i + 1}: upstream ${fmt(u.seconds, 3)} s, mirror ${fmt(m.seconds, 3)} s, mirror after webhook ${fmt(r.seconds, 3)} s`);
      }
      rows.push({ repository: `acme/${name}`, packMb: bytes / MB, upstream: median(up), mirror: median(fresh), refetch: median(refetch) });
    }
    for (const r of rows) {
      const ratio = r.upstream / r.mirror;
      checks.push(`clone ${r.repository} (${fmt(r.packMb, 2)} MB): mirror ${fmt(ratio, 2)}× the throughput of streamed-from-upstream (target ≥ 2: ${ratio >= 2 ? 'met' : 'NOT met'}); after a webhook (fetch first) ${fmt(r.upstream / r.refetch, 2)}×`);
    }
    await mirrored.running.stop(0);
    await streamed.running.stop(0);
  } finally {
    await fake.close();
  }
  return { rows, checks };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-mirror-'));
  try {
    const scans = await scanPart(work);
    const clones = await clonePart(work);
    const gitVersion = (await git(['--version'])).trim();
    const cpus = os.cpus();
    const machine = `${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}, ${fmt(os.totalmem() / 1024 ** 3, 0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}, ${gitVersion}`;
    const date = new Date().toISOString();
    const md = [
      '<!-- bench:mirror -->',
      `## Git mirror — ${date}`,
      '',
      `${machine}. \`npm run bench:mirror\` (bench/mirror.ts): fake Bitbucket, sidecars and load in one process; counts from the fake's request log. ${REPOS} generated repositories (5 branches, 2 PRs, 1 tag each), the plugin's organisation scan (bench/scan.ts) with ${PARALLEL} repositories indexed at once; mirror and cache trusted for 1 h (webhooks configured), REST budget raised to 100,000/h so that only calls are counted.`,
      '',
      '| step | REST calls | per repository | REST by kind | git requests | wall ms | notes |',
      '|---|---|---|---|---|---|---|',
      ...scans.rows.map((r) => `| ${r.step} | ${r.rest} | ${fmt(r.perRepo, 3)} | ${r.byKind} | ${r.git} | ${r.wallMs} | ${r.notes} |`),
      '',
      `Clones through the sidecar, \`git clone --bare\` protocol v2, ${LATENCY_MS} ms injected latency on every Bitbucket git request; median of ${RUNS} (alternating); "after a webhook": the mirror was marked stale just before the clone, so it fetched first (one no-op fetch: one ${LATENCY_MS} ms round trip).`,
      '',
      '| repository | pack | streamed from upstream | from the mirror | ratio | mirror after a webhook | ratio |',
      '|---|---|---|---|---|---|---|',
      ...clones.rows.map((r) => `| ${r.repository} | ${fmt(r.packMb, 2)} MB | ${fmt(r.upstream, 3)} s (${fmt(r.packMb / r.upstream, 1)} MB/s) | ${fmt(r.mirror, 3)} s (${fmt(r.packMb / r.mirror, 1)} MB/s) | ${fmt(r.upstream / r.mirror, 2)}× | ${fmt(r.refetch, 3)} s | ${fmt(r.upstream / r.refetch, 2)}× |`),
      '',
      ...[...scans.checks, ...clones.checks].map((c) => `* ${c}`),
      '<!-- /bench:mirror -->',
      '',
    ].join('\n');
    console.log(`\n${md}`);
    if (!process.env.BENCH_MIRROR_NO_RECORD) {
      const file = resultsFile();
      const old = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\n';
      const re = /<!-- bench:mirror -->[\s\S]*?<!-- \/bench:mirror -->\n?/;
      writeFileSync(file, re.test(old) ? old.replace(re, md) : `${old.replace(/\n*$/, '\n\n')}${md}`);
      log(`recorded in ${file}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
