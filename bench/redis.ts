/**
 * `npm run bench:redis` — several sidecars, one cache and one budget (issue 11):
 *
 *   1. Calls: a 200-repository organisation scan (5 branches, 2 PRs, 1 tag each; 100 ms injected
 *      upstream latency; 20 repositories indexed at once, the plugin's pool) through
 *        a. one sidecar alone;
 *        b. two sidecars without Redis, both scanning at once;
 *        c. two sidecars sharing one Redis, both scanning at once;
 *        d. then a third sidecar, just started (empty memory), on the same Redis.
 *      Budget raised to 1,000,000/h: this part counts upstream calls, not pacing.
 *   2. One budget: the default 1,000/h and the fake enforcing 1,000/h (Bitbucket's rule), on a clock
 *      running 1000× (an hour in 3.6 s): one sidecar alone, then two scanning at once with Redis, and
 *      without (each sidecar counting only its own calls). Most calls the fake saw in any hour,
 *      Bitbucket's 429s, 429s the clients saw.
 *
 *   npm run bench:redis
 *   npm run bench:redis -- --repos=50 --no-budget --no-record
 *
 * Every sidecar runs in its own process (this file with --child) and only Redis is shared; the fake
 * Bitbucket, redis-server and the load generator run beside them on the same cores. Results are
 * printed and written to bench/RESULTS.md between the `bench:redis` markers.
 */
import { fork, type ChildProcess } from 'node:child_process';
import Redis from 'ioredis';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mintToken, sha256Hex } from '../src/auth/tokens';
import { validateConfig } from '../src/config/load';
import { startFakeBitbucket, type FakeBitbucketServer } from '../src/fake-bitbucket';
import { createLogger } from '../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../src/serve';
import { HOUR_MS } from '../src/upstream/budget';
import { scaledClock } from '../src/upstream/budget-clock';
import { startRedis, type RedisServer } from '../test/cache-shared/redis-server';
import { organisationScan, percentile, ScanClient, type ScanSummary } from './scan';
import { resultsFile } from './results-file';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'] as const;
  }),
);
const REPOS = Number(args.get('repos') ?? 200);
const LATENCY_MS = Number(args.get('latency') ?? 100);
const PARALLEL = 20;
const SPEED = 1000;
const WS = 'bench';
const API_BASE = 'http://api.bitbucket.org';
const LONG = 30 * 86_400; // freshness: nothing expires during a run, even at 1000×
const CACHE = { maxBytes: '512MiB', freshness: { immutableSeconds: LONG, metadataSeconds: LONG, listSeconds: LONG, notFoundSeconds: LONG } };
const log = (...a: unknown[]) => console.error('[bench:redis]', ...a);
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

// --- a sidecar in its own process ---------------------------------------------------------------

interface ChildStats {
  granted: Record<string, number>;
  refused: Record<string, number>;
  shared?: { reads: Record<string, number>; flights: Record<string, number>; refusedShared: number };
}

class Child {
  private seq = 0;
  private readonly waiting = new Map<number, (m: any) => void>();
  url = '';
  readonly token = mintToken();

  private constructor(private readonly proc: ChildProcess) {
    proc.on('message', (m: any) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.(m);
    });
  }

  static async start(fake: FakeBitbucketServer, extra: { redis?: string; keyPrefix?: string; budget?: Record<string, unknown>; clock?: { speed: number; epoch: number; origin: number } }): Promise<Child> {
    const child = new Child(fork(__filename, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const config = {
      server: { http: { host: '127.0.0.1', port: 0 } },
      upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: extra.budget ?? { repositoryRequestsPerHour: 1_000_000 } },
      clients: [{ id: 'jenkins', token: { sha256: sha256Hex(child.token) }, scope: [{ workspace: WS }] }],
      cache: { ...CACHE, ...(extra.redis ? { shared: { redis: { url: extra.redis, keyPrefix: extra.keyPrefix } } } : {}) },
    };
    const m = await child.ask({ cmd: 'start', config, clock: extra.clock });
    if (m.error) throw new Error(m.error);
    child.url = m.url;
    return child;
  }

  client(): ScanClient {
    return new ScanClient({ serverUrl: this.url, apiBase: API_BASE, authorization: basic('jenkins@ci.example', this.token), connections: PARALLEL });
  }

  stats(): Promise<ChildStats> {
    return this.ask({ cmd: 'stats' });
  }

  ask(msg: Record<string, unknown>): Promise<any> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.send({ id, ...msg });
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    void this.ask({ cmd: 'stop' });
    await exited;
  }
}

async function childMain(): Promise<void> {
  let running: RunningSidecar | undefined;
  process.on('message', (m: { id: number; cmd: string; config?: unknown; clock?: { speed: number; epoch: number; origin: number } }) => {
    const reply = (body: Record<string, unknown>) => process.send?.({ id: m.id, ...body });
    void (async () => {
      switch (m.cmd) {
        case 'start': {
          const clock = m.clock ? scaledClock(m.clock.speed, m.clock.epoch, m.clock.origin) : undefined;
          running = await startSidecar(validateConfig(m.config), { logger: createLogger({ level: 'silent' }), ...(clock ? { clock } : {}) });
          if (running.sidecar.shared && !(await running.sidecar.shared.whenUp(10_000))) throw new Error('no Redis');
          return reply({ url: running.httpUrl });
        }
        case 'stats': {
          const s = running!.sidecar;
          const shared = s.shared && { reads: s.shared.tier.stats.reads, flights: s.shared.tier.stats.flights, refusedShared: s.shared.budgetWindow.refusedShared };
          return reply({ granted: s.budget.granted, refused: s.budget.refused, shared });
        }
        case 'stop':
          await running?.stop(0);
          reply({});
          process.exit(0);
      }
    })().catch((e: Error) => reply({ error: e.stack ?? e.message }));
  });
}

// --- measuring ----------------------------------------------------------------------------------

interface Run {
  label: string;
  upstream: number;
  perSidecar: number[];
  followers: number;
  wallMs: number;
  p50: number;
  p99: number;
  requests: number;
  client429: number;
  fake429: number;
  /** Most repository-class calls the fake saw in any hour (simulated clock runs only). */
  maxPerHour?: number;
  summaries: ScanSummary[];
}

async function scanAll(label: string, fake: FakeBitbucketServer, children: Child[], toClock?: (wallTime: number) => number): Promise<Run> {
  fake.clearLog();
  const before = await Promise.all(children.map((c) => c.stats()));
  const clients = children.map((c) => c.client());
  const started = process.hrtime.bigint();
  const summaries = await Promise.all(clients.map((c) => organisationScan(c, API_BASE, { workspace: WS, parallelRepositories: PARALLEL })));
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  await Promise.all(clients.map((c) => c.close()));
  const after = await Promise.all(children.map((c) => c.stats()));
  const calls = (s: ChildStats) => Object.values(s.granted).reduce((a, b) => a + b, 0);
  const records = clients.flatMap((c) => c.records);
  const lat = records.map((r) => r.ms);
  const api = fake.requests.filter((r) => r.kind === 'api');
  const run: Run = {
    label,
    upstream: api.length,
    perSidecar: after.map((s, i) => calls(s) - calls(before[i])),
    followers: after.reduce((n, s, i) => n + (s.shared?.flights.follower ?? 0) - (before[i].shared?.flights.follower ?? 0), 0),
    wallMs,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    requests: records.length,
    client429: records.filter((r) => r.status === 429).length,
    fake429: api.filter((r) => r.status === 429).length,
    summaries,
  };
  if (toClock) run.maxPerHour = maxInWindow(api.filter((r) => r.path.startsWith('/2.0/repositories/')).map((r) => toClock(r.time)), HOUR_MS);
  log(`${label}: ${run.requests} requests, ${run.upstream} upstream (${run.perSidecar.join(' + ')}), ${(wallMs / 1000).toFixed(1)} s${run.maxPerHour !== undefined ? `, max ${run.maxPerHour} in an hour, ${run.fake429} Bitbucket 429s, ${run.client429} client 429s` : ''}`);
  return run;
}

function maxInWindow(times: number[], span: number): number {
  times.sort((a, b) => a - b);
  let max = 0;
  for (let lo = 0, hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= span) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

// --- the runs -----------------------------------------------------------------------------------

/** What Redis holds after the shared scan: keys and memory (answers are stored compressed). */
interface RedisUse {
  keys: number;
  usedBytes: number;
  answers: number;
  answerBytes: number;
}

async function redisUse(url: string, keyPrefix: string): Promise<RedisUse> {
  const r = new Redis(url);
  try {
    const info = await r.info('memory');
    const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    let answers = 0;
    let answerBytes = 0;
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${keyPrefix}e:*`, 'COUNT', 1000);
      cursor = next;
      answers += keys.length;
      if (keys.length > 0) for (const n of await Promise.all(keys.map((k) => r.strlen(k)))) answerBytes += n;
    } while (cursor !== '0');
    return { keys: await r.dbsize(), usedBytes: used, answers, answerBytes };
  } finally {
    r.disconnect();
  }
}

let use: RedisUse | undefined;

async function calls(fake: FakeBitbucketServer, redis: RedisServer): Promise<Run[]> {
  fake.clearFaults();
  fake.addFault({ match: { pathPrefix: '/2.0/' }, kind: 'latency', latencyMs: LATENCY_MS });
  const runs: Run[] = [];
  const one = await Child.start(fake, {});
  runs.push(await scanAll('one sidecar', fake, [one]));
  await one.stop();

  const alone = await Promise.all([Child.start(fake, {}), Child.start(fake, {})]);
  runs.push(await scanAll('two sidecars, no Redis, scanning at once', fake, alone));
  await Promise.all(alone.map((c) => c.stop()));

  const keyPrefix = `bench-${Date.now()}:`;
  const pair = await Promise.all([Child.start(fake, { redis: redis.url, keyPrefix }), Child.start(fake, { redis: redis.url, keyPrefix })]);
  runs.push(await scanAll('two sidecars sharing Redis, scanning at once', fake, pair));
  use = await redisUse(redis.url, keyPrefix);
  const third = await Child.start(fake, { redis: redis.url, keyPrefix });
  runs.push(await scanAll('a third sidecar joins (empty memory, same Redis)', fake, [third]));
  await Promise.all([...pair, third].map((c) => c.stop()));
  fake.clearFaults();
  return runs;
}

async function oneBudget(fake: FakeBitbucketServer, redis: RedisServer, setClock: (now: () => number) => void): Promise<Run[]> {
  const runs: Run[] = [];
  // Requests wait for their paced turn (up to 10 simulated minutes) instead of being pushed back
  // with Retry-After: the plugin would retry them, this scan client does not.
  // windowMarginMs: Bitbucket counts a call when it arrives; at 1000× the few milliseconds between
  // our count and its are seconds, more than the default 1 s margin: 300 s tolerates 300 ms of delay
  // on a loaded machine (see test/cache-shared/budget.test.ts).
  const budget = { repositoryRequestsPerHour: 1000, maxQueueWaitMs: 600_000, windowMarginMs: 300_000 };
  const modes = [
    { label: 'one sidecar alone, 1,000/h', sidecars: 1, shared: false },
    { label: 'one budget (Redis): two sidecars, 1,000/h', sidecars: 2, shared: true },
    { label: 'control: two sidecars without Redis, 1,000/h each', sidecars: 2, shared: false },
  ];
  for (const { label, sidecars, shared } of modes) {
    const epoch = 1_800_000_000_000;
    const origin = Date.now();
    const clock = scaledClock(SPEED, epoch, origin);
    setClock(() => clock.now());
    fake.setRateLimit(1000);
    // No injected latency here: at 1000× a 100 ms call lasts 100 simulated seconds, and 20
    // connections could not make 1,000 calls an hour — the budget would not be what binds.
    fake.clearFaults();
    const keyPrefix = `bench-budget-${Date.now()}:`;
    const opts = { budget, clock: { speed: SPEED, epoch, origin }, ...(shared ? { redis: redis.url, keyPrefix } : {}) };
    const pair = await Promise.all(Array.from({ length: sidecars }, () => Child.start(fake, opts)));
    runs.push(await scanAll(label, fake, pair, (wall) => epoch + (wall - origin) * SPEED));
    await Promise.all(pair.map((c) => c.stop()));
  }
  fake.setRateLimit(null);
  fake.clearFaults();
  setClock(Date.now);
  return runs;
}

// --- results ------------------------------------------------------------------------------------

function section(callRuns: Run[], budgetRuns: Run[]): string {
  const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  const s = (n: number) => (n / 1000).toFixed(1);
  const single = callRuns[0];
  const lines = [
    `## Several sidecars, one Redis — ${new Date().toISOString()}`,
    '',
    `${cpu} × ${os.cpus().length}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}. \`npm run bench:redis\` (bench/redis.ts): fake Bitbucket with ${REPOS} generated repositories (5 branches, 2 PRs, 1 tag each), ${LATENCY_MS} ms injected latency on every API call, the plugin's organisation scan (bench/scan.ts) with ${PARALLEL} repositories indexed at once per scan; every sidecar in its own process, sharing only redis-server (loopback, no persistence); default \`cache.shared\` settings (brotli, memory copies trusted 5 s).`,
    '',
    '| scenario | client requests | upstream calls | per sidecar | vs one sidecar | waited for another sidecar | wall s | p50 ms | p99 ms | failed repositories |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...callRuns.map((r) => `| ${r.label} | ${r.requests} | ${r.upstream} | ${r.perSidecar.join(' + ')} | ${(r.upstream / single.upstream).toFixed(2)}× | ${r.followers} | ${s(r.wallMs)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.summaries.reduce((n, x) => n + x.failedRepositories.length, 0)} |`),
  ];
  if (budgetRuns.length > 0) {
    lines.push(
      '',
      `One budget: the same scan with \`repositoryRequestsPerHour: 1000\` on every sidecar — one alone, then two scanning at once —, the fake enforcing 1,000/h per credential like Bitbucket, a clock running ${SPEED}× (an hour in ${(3600 / SPEED).toFixed(1)} s; no injected latency, so that the budget is what binds; \`windowMarginMs: 300000\`: the milliseconds between the sidecar's count and the fake's (and any scheduling delay on a loaded machine) are simulated seconds here; \`maxQueueWaitMs: 600000\` so that paced requests wait their turn instead of being pushed back with Retry-After, which this scan client does not retry).`,
      '',
      '| scenario | upstream calls | per sidecar | most calls in any hour (Bitbucket counts) | Bitbucket 429s | 429s to clients | simulated hours | failed repositories |',
      '|---|---|---|---|---|---|---|---|',
      ...budgetRuns.map((r) => `| ${r.label} | ${r.upstream} | ${r.perSidecar.join(' + ')} | ${r.maxPerHour} | ${r.fake429} | ${r.client429} | ${((r.wallMs * SPEED) / HOUR_MS).toFixed(1)} | ${r.summaries.reduce((n, x) => n + x.failedRepositories.length, 0)} |`),
    );
  }
  const shared = callRuns[2];
  const third = callRuns[3];
  lines.push(
    '',
    `* two sidecars scanning at once with Redis: ${shared.upstream} upstream calls, ${(shared.upstream / single.upstream).toFixed(2)}× one sidecar's ${single.upstream} (without Redis: ${callRuns[1].upstream}, ${(callRuns[1].upstream / single.upstream).toFixed(2)}×)`,
    `* a sidecar started later on the same Redis: ${third.upstream} upstream calls for its whole scan`,
  );
  if (use) lines.push(`* Redis after the shared scan: ${use.answers} stored answers in ${(use.answerBytes / 1024 ** 2).toFixed(1)} MB (compressed), ${use.keys} keys, ${(use.usedBytes / 1024 ** 2).toFixed(1)} MB used by redis-server`);
  for (const r of budgetRuns) lines.push(`* ${r.label}: at most ${r.maxPerHour} calls in any hour (limit 1000: ${r.maxPerHour! <= 1000 ? 'kept' : 'exceeded'}), ${r.fake429} answered 429 by Bitbucket`);
  return lines.join('\n') + '\n';
}


function record(md: string): void {
  const file = resultsFile();
  const begin = '<!-- bench:redis -->';
  const end = '<!-- /bench:redis -->';
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const block = `${begin}\n${md}${end}\n`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length + 1) : `${text.replace(/\n*$/, '\n\n')}${block}`;
  writeFileSync(file, text);
  log(`written to ${file}`);
}

async function main(): Promise<void> {
  let nowFn: () => number = Date.now;
  log(`generating ${REPOS} repositories…`);
  const fake = await startFakeBitbucket({ seed: { workspace: WS, repositories: REPOS, branches: 5, pullRequests: 2, tags: 1 }, now: () => nowFn() });
  const redis = await startRedis();
  try {
    const callRuns = await calls(fake, redis);
    const budgetRuns = args.has('no-budget') ? [] : await oneBudget(fake, redis, (f) => (nowFn = f));
    const md = section(callRuns, budgetRuns);
    console.log(`\n${md}`);
    if (!args.has('no-record')) record(md);
  } finally {
    await redis.stop('SIGTERM');
    await fake.close();
  }
}

if (process.argv.includes('--child')) {
  void childMain();
} else {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
