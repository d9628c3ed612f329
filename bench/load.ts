/**
 * `npm run bench:load` — the sidecar under the load of several Jenkins controllers scanning at once,
 * with Bitbucket misbehaving (issue 10, "Load"). A bench, not a test: it prints a table and appends
 * it to bench/RESULTS.md (between the `bench:load` markers), and exits non-zero only when it could
 * not run.
 *
 *  - 200 concurrent keep-alive clients (one connection each) for 60 s on a mix of the plugin's
 *    calls (Jenkinsfile probes, branch/tag/PR lists, repository objects, default branch, commits,
 *    workspace listing with paging, build status POSTs), git fetches (info/refs + a real
 *    upload-pack negotiation that returns a pack) and out-of-scope or badly authenticated attempts;
 *  - 10 % of the requests that reach the fake Bitbucket get a fault: latency beyond the upstream
 *    timeout, 500, 503, an HTML 500, 429 with Retry-After, a reset mid-body, truncated JSON;
 *  - prints requests/s, p50/p99, error counts by kind, and the sidecar's RSS and open file
 *    descriptors (/proc/self/fd of the sidecar process) sampled every 2 s, its live heap (after a
 *    full GC) every 10 s, with their trends after a 15 s warm-up.
 *
 * Targets: 0 crashes, 0 answers outside Bitbucket's error shape (API: JSON `{"type":"error",...}`;
 * git: text/plain), 0 out-of-scope answers, no RSS or fd growth trend.
 *
 * Three processes: the sidecar (so the numbers are its own), the fake Bitbucket with the fault
 * injector, and this one (the load generator).
 *
 *   npm run bench:load
 *   npm run bench:load -- --seconds=20 --clients=50 --faults=0.1 --no-record
 *   npm run bench:load -- --only-hostile --hostile-seconds=30   # the hostile-tenant row alone
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'undici';
import { mintToken, sha256Hex } from '../src/auth/tokens';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'] as const;
  }),
);
const ROLE = args.get('role') ?? 'main';
const SECONDS = Number(args.get('seconds') ?? 60);
const CLIENTS = Number(args.get('clients') ?? 200);
const FAULT_RATE = Number(args.get('faults') ?? 0.1);
const REPOS = Number(args.get('repos') ?? 30);
const RECORD = !args.has('no-record');
const SAMPLE_MS = 2000;
const UPSTREAM_RESPONSE_MS = 2000;

// ------------------------------------------------------------------------------------------------
// IPC plumbing

type Msg = { id: number; cmd: string; [k: string]: unknown };

function serve(handlers: Record<string, (m: Msg) => Promise<Record<string, unknown>>>): void {
  process.on('message', (m: Msg) => {
    const h = handlers[m.cmd];
    if (!h) return void process.send?.({ id: m.id, error: `unknown command ${m.cmd}` });
    h(m).then(
      (r) => process.send?.({ id: m.id, ...r }),
      (e: Error) => process.send?.({ id: m.id, error: e.stack ?? e.message }),
    );
  });
}

class Child {
  private seq = 0;
  private readonly waiting = new Map<number, (m: Record<string, unknown>) => void>();
  exited?: { code: number | null; signal: NodeJS.Signals | null; during: boolean };
  running = false;

  constructor(readonly name: string, readonly proc: ChildProcess) {
    proc.on('message', (m: { id: number }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.(m as Record<string, unknown>);
    });
    proc.on('exit', (code, signal) => {
      this.exited = { code, signal, during: this.running };
      for (const w of this.waiting.values()) w({ error: `${name} exited (${code ?? signal})` });
      this.waiting.clear();
    });
  }

  ask<T = Record<string, unknown>>(cmd: string, body: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (m) => (m.error ? reject(new Error(String(m.error))) : resolve(m as T)));
      this.proc.send({ id, cmd, ...body });
    });
  }
}

function spawnRole(role: string, execArgv: string[] = []): Child {
  return new Child(role, fork(__filename, [`--role=${role}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }));
}

// ------------------------------------------------------------------------------------------------
// Role: the fake Bitbucket with a fault injector

interface Dataset {
  url: string;
  credentials: { email: string; apiToken: string };
  repos: { slug: string; branches: string[]; prs: number[]; mainHash: string; tags: string[] }[];
}

const FAULT_KINDS: { weight: number; fault: Record<string, unknown>; label: string }[] = [
  { weight: 15, label: 'latency > timeout', fault: { kind: 'latency', latencyMs: UPSTREAM_RESPONSE_MS + 500 } },
  { weight: 15, label: '500', fault: { kind: 'status', status: 500 } },
  { weight: 10, label: '503', fault: { kind: 'status', status: 503 } },
  { weight: 15, label: 'HTML 500', fault: { kind: 'html500' } },
  { weight: 10, label: '429', fault: { kind: 'rate429', retryAfter: 1 } },
  { weight: 20, label: 'reset mid-body', fault: { kind: 'reset' } },
  { weight: 15, label: 'truncated', fault: { kind: 'truncate' } },
];

async function fakeRole(): Promise<void> {
  const { startFakeBitbucket } = await import('../src/fake-bitbucket');
  let fake: Awaited<ReturnType<typeof startFakeBitbucket>> | undefined;
  let rate = 0;
  let due = 0;
  const injected: Record<string, number> = {};
  let seen = 0;
  let upstreamByKind: Record<string, number> = {};
  let timer: NodeJS.Timeout | undefined;
  const totalWeight = FAULT_KINDS.reduce((n, k) => n + k.weight, 0);
  const pickFault = () => {
    let r = Math.random() * totalWeight;
    for (const k of FAULT_KINDS) if ((r -= k.weight) < 0) return k;
    return FAULT_KINDS[0];
  };
  serve({
    start: async (m) => {
      fake = await startFakeBitbucket({ seed: { workspace: 'acme', repositories: Number(m.repos), branches: 4, pullRequests: 2, tags: 2 } });
      const f = fake;
      const repos = f.model.repositories.map((r) => ({
        slug: r.slug,
        branches: ['main', 'feature/b1', 'feature/b2', 'feature/b3'],
        prs: f.model.pullRequests.filter((p) => (p.repository === r.uuid || p.repository === `${r.workspace}/${r.slug}`) && p.state === 'OPEN').map((p) => p.id),
        mainHash: '',
        tags: ['v1.0', 'v1.1'],
      }));
      return { url: f.url, credentials: f.credentials, repos } satisfies Dataset;
    },
    faults: async (m) => {
      rate = Number(m.rate);
      // Every 20 ms: one fault (fired by the next request that reaches the fake) per 1/rate requests seen.
      timer = setInterval(() => {
        if (!fake) return;
        const n = fake.requests.length;
        for (const r of fake.requests) upstreamByKind[r.kind] = (upstreamByKind[r.kind] ?? 0) + 1;
        fake.clearLog();
        seen += n;
        due += n * rate;
        while (due >= 1) {
          const k = pickFault();
          fake.addFault({ ...(k.fault as object), times: 1 } as never);
          injected[k.label] = (injected[k.label] ?? 0) + 1;
          due -= 1;
        }
      }, 20);
      return {};
    },
    stats: async () => {
      const r = { seen, injected, upstreamByKind };
      upstreamByKind = {};
      return r;
    },
    stop: async () => {
      if (timer) clearInterval(timer);
      fake?.clearFaults();
      await fake?.close();
      setImmediate(() => process.exit(0));
      return {};
    },
  });
}

// ------------------------------------------------------------------------------------------------
// Role: the sidecar

async function sidecarRole(): Promise<void> {
  const { validateConfig } = await import('../src/config/load');
  const { createLogger } = await import('../src/ops/logger');
  const { startSidecar } = await import('../src/serve');
  let running: Awaited<ReturnType<typeof startSidecar>> | undefined;
  serve({
    start: async (m) => {
      const config = validateConfig(m.config);
      // The audit log is written as in production (to /dev/null): its cost is part of the numbers.
      running = await startSidecar(config, { logger: createLogger({ level: 'info', destination: '/dev/null' }) });
      return { url: running.httpUrl, port: running.httpPort, pid: process.pid };
    },
    sample: async (m) => {
      // With --expose-gc: heapUsed after a full collection is the live set (a leak shows as a trend).
      if (m.gc) (globalThis as { gc?: () => void }).gc?.();
      const mem = process.memoryUsage();
      const s = running?.sidecar;
      return {
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        fds: readdirSync('/proc/self/fd').length,
        cache: s ? { entries: s.cache.store.entries, bytes: s.cache.store.bytes, hits: s.cache.stats.hits, misses: s.cache.stats.misses, staleIfError: s.cache.stats.staleIfError } : undefined,
      };
    },
    stop: async () => {
      await running?.stop(2000);
      setImmediate(() => process.exit(0));
      return {};
    },
  });
}

// ------------------------------------------------------------------------------------------------
// Role: main — the load generator

interface Op {
  name: string;
  weight: number;
  run(c: Client, pick: Picker): Promise<void>;
}

interface Picker {
  repo(): Dataset['repos'][number];
  rnd<T>(xs: readonly T[]): T;
}

const stats = {
  latencies: [] as number[],
  windowLatencies: [] as number[],
  requests: 0,
  windowRequests: 0,
  byKind: new Map<string, number>(),
  offShape: 0,
  offShapeExamples: [] as string[],
  outOfScope: 0,
  outOfScopeExamples: [] as string[],
  byOp: new Map<string, number>(),
};

const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

function isBitbucketError(body: string): boolean {
  try {
    const j = JSON.parse(body) as { type?: unknown; error?: { message?: unknown } };
    return j?.type === 'error' && typeof j.error?.message === 'string';
  } catch {
    return false;
  }
}

/** One request through a keep-alive client; classifies the answer and checks its shape. */
async function send(
  c: Client,
  op: string,
  opts: { method?: 'GET' | 'POST'; path: string; host: string; auth?: string; body?: Buffer | string; contentType?: string; git?: boolean; expect?: 'ok' | 'denied' },
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> } | undefined> {
  const t0 = performance.now();
  try {
    const res = await c.request({
      method: opts.method ?? 'GET',
      path: opts.path,
      headers: { host: opts.host, ...(opts.auth ? { authorization: opts.auth } : {}), ...(opts.contentType ? { 'content-type': opts.contentType } : {}), 'user-agent': opts.git ? 'git/2.43.0' : 'Apache-HttpClient/5 (Java/17)' },
      body: opts.body,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const ms = performance.now() - t0;
    stats.latencies.push(ms);
    stats.windowLatencies.push(ms);
    stats.requests++;
    stats.windowRequests++;
    count(stats.byOp, op);
    const type = String(res.headers['content-type'] ?? '');
    const text = body.toString('utf8');
    if (res.statusCode >= 400) {
      count(stats.byKind, opts.expect === 'denied' ? `${res.statusCode} (expected: denied)` : `${res.statusCode}`);
      const ok = opts.git && /^text\/plain/.test(type) ? true : /^application\/json/.test(type) && isBitbucketError(text);
      if (!ok) {
        stats.offShape++;
        if (stats.offShapeExamples.length < 5) stats.offShapeExamples.push(`${op} ${res.statusCode} ${type} ${text.slice(0, 100)}`);
      }
    } else if (/json/i.test(type)) {
      try {
        JSON.parse(text);
      } catch {
        stats.offShape++;
        if (stats.offShapeExamples.length < 5) stats.offShapeExamples.push(`${op} ${res.statusCode} corrupt JSON success ${text.slice(0, 60)}`);
      }
    }
    if (opts.expect === 'denied' && res.statusCode < 400) {
      stats.outOfScope++;
      if (stats.outOfScopeExamples.length < 5) stats.outOfScopeExamples.push(`${op} ${opts.path} → ${res.statusCode}`);
    }
    return { status: res.statusCode, body, headers: res.headers };
  } catch (e) {
    const ms = performance.now() - t0;
    stats.latencies.push(ms);
    stats.windowLatencies.push(ms);
    stats.requests++;
    stats.windowRequests++;
    count(stats.byOp, op);
    // A git answer already streaming when upstream fails can only be cut (git reports the early EOF).
    count(stats.byKind, `connection cut: ${(e as { code?: string }).code ?? (e as Error).name} (${op})`);
    return undefined;
  }
}

const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`;

function ops(auth: string, gitAuth: string, badAuth: string): Op[] {
  const API = '/2.0/repositories/acme';
  const api = 'api.bitbucket.org';
  const enc = encodeURIComponent;
  return [
    { name: 'jenkinsfile probe', weight: 30, run: (c, p) => { const r = p.repo(); return send(c, 'probe', { path: `${API}/${r.slug}/src/${enc(p.rnd(r.branches))}/Jenkinsfile?format=meta`, host: api, auth }).then(() => undefined); } },
    { name: 'branches', weight: 12, run: (c, p) => send(c, 'branches', { path: `${API}/${p.repo().slug}/refs/branches?pagelen=100`, host: api, auth }).then(() => undefined) },
    { name: 'pull requests', weight: 10, run: (c, p) => send(c, 'prs', { path: `${API}/${p.repo().slug}/pullrequests?pagelen=50`, host: api, auth }).then(() => undefined) },
    { name: 'pull request', weight: 4, run: (c, p) => { const r = p.repo(); return send(c, 'pr', { path: `${API}/${r.slug}/pullrequests/${p.rnd(r.prs.length ? r.prs : [1])}`, host: api, auth }).then(() => undefined); } },
    { name: 'tags', weight: 5, run: (c, p) => send(c, 'tags', { path: `${API}/${p.repo().slug}/refs/tags?pagelen=100`, host: api, auth }).then(() => undefined) },
    { name: 'repository', weight: 10, run: (c, p) => send(c, 'repository', { path: `${API}/${p.repo().slug}`, host: api, auth }).then(() => undefined) },
    { name: 'default branch', weight: 5, run: (c, p) => send(c, 'mainbranch', { path: `${API}/${p.repo().slug}/?fields=mainbranch.name`, host: api, auth }).then(() => undefined) },
    {
      name: 'branch + commit',
      weight: 5,
      run: async (c, p) => {
        const r = p.repo();
        const b = await send(c, 'branch', { path: `${API}/${r.slug}/refs/branches/${enc(p.rnd(r.branches))}`, host: api, auth });
        const hash = b && b.status === 200 ? (JSON.parse(b.body.toString()).target?.hash as string | undefined) : undefined;
        if (hash) await send(c, 'commit', { path: `${API}/${r.slug}/commit/${hash.slice(0, 12)}`, host: api, auth });
      },
    },
    {
      name: 'workspace listing (all pages)',
      weight: 2,
      run: async (c) => {
        await send(c, 'workspace', { path: '/2.0/workspaces/acme', host: api, auth });
        let next: string | undefined = `${API}?pagelen=10`;
        for (let i = 0; next && i < 20; i++) {
          const page = await send(c, 'listing', { path: next, host: api, auth });
          const n = page && page.status === 200 ? (JSON.parse(page.body.toString()).next as string | undefined) : undefined;
          next = n ? new URL(n).pathname + new URL(n).search : undefined;
        }
      },
    },
    {
      name: 'build status POST',
      weight: 4,
      run: async (c, p) => {
        const r = p.repo();
        const b = await send(c, 'branch', { path: `${API}/${r.slug}/refs/branches/main`, host: api, auth });
        const hash = b && b.status === 200 ? (JSON.parse(b.body.toString()).target?.hash as string | undefined) : undefined;
        if (!hash) return;
        const body = JSON.stringify({ state: 'INPROGRESS', key: sha256Hex(String(Math.random())).slice(0, 32), url: 'https://ci.example/job/x/1/', name: 'load #1', refname: 'main' });
        await send(c, 'status POST', { method: 'POST', path: `${API}/${r.slug}/commit/${hash.slice(0, 12)}/statuses/build`, host: api, auth, body, contentType: 'application/json; charset=UTF-8' });
      },
    },
    {
      name: 'git fetch',
      weight: 5,
      run: async (c, p) => {
        const r = p.repo();
        const refs = await send(c, 'git info/refs', { path: `/acme/${r.slug}.git/info/refs?service=git-upload-pack`, host: 'bitbucket.org', auth: gitAuth, git: true });
        if (!refs || refs.status !== 200) return;
        const m = /([0-9a-f]{40}) refs\/heads\/main/.exec(refs.body.toString('latin1'));
        if (!m) return;
        const body = `${pkt(`want ${m[1]}\n`)}0000${pkt('done\n')}`;
        const pack = await send(c, 'git upload-pack', { method: 'POST', path: `/acme/${r.slug}.git/git-upload-pack`, host: 'bitbucket.org', auth: gitAuth, body, contentType: 'application/x-git-upload-pack-request', git: true });
        // Upstream ended the stream cleanly after half the pack (the "truncated" fault): a streaming
        // proxy cannot tell; git rejects the pack (checksum). Counted apart from the sidecar's own errors.
        if (pack && pack.status === 200 && !/PACK[\s\S]{12,}/.test(pack.body.toString('latin1'))) count(stats.byKind, 'git 200 with a cut pack (upstream truncated)');
      },
    },
    {
      name: 'out of scope / bad credentials',
      weight: 3,
      run: async (c, p) => {
        const which = p.rnd(['jdoe', 'other', 'bad']);
        if (which === 'bad') await send(c, 'bad token', { path: `${API}/${p.repo().slug}`, host: api, auth: badAuth, expect: 'denied' });
        else await send(c, 'out of scope', { path: `/2.0/repositories/${which}/${p.repo().slug}/refs/branches`, host: api, auth, expect: 'denied' });
      },
    },
  ];
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Least-squares slope of y over x (per minute of x in ms). */
function slopePerMinute(points: { t: number; y: number }[]): number {
  if (points.length < 3) return NaN;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.t - mx) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.t - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60_000;
}

async function main(): Promise<void> {
  const fake = spawnRole('fake');
  const sidecar = spawnRole('sidecar', ['--expose-gc']);
  const cleanup = async () => {
    await Promise.allSettled([sidecar.ask('stop'), fake.ask('stop')]);
  };
  try {
    const data = await fake.ask<Dataset>('start', { repos: REPOS });
    const token = mintToken();
    const config = {
      server: { http: { host: '127.0.0.1', port: 0 }, maxConnections: Math.max(1024, CLIENTS * 2) },
      upstream: {
        apiUrl: data.url,
        webUrl: data.url,
        auth: { type: 'basic', username: data.credentials.email, password: data.credentials.apiToken },
        timeouts: { connectMs: 2000, responseMs: UPSTREAM_RESPONSE_MS },
        // The serving path is measured, not the budget: a budget that never runs out in 60 s.
        budget: { repositoryRequestsPerHour: 10_000_000, webhookRequestsPerHour: 10_000_000, maxConcurrent: 64 },
      },
      clients: [{ id: 'jenkins', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write'] }],
    };
    const started = await sidecar.ask<{ url: string; port: number; pid: number }>('start', { config });
    sidecar.running = true;
    fake.running = true;
    const auth = `Basic ${Buffer.from(`jenkins@ci.example:${token}`).toString('base64')}`;
    const gitAuth = `Basic ${Buffer.from(`x-bitbucket-api-token-auth:${token}`).toString('base64')}`;
    const badAuth = `Basic ${Buffer.from(`jenkins@ci.example:${mintToken()}`).toString('base64')}`;
    const mix = ops(auth, gitAuth, badAuth);
    const totalWeight = mix.reduce((n, o) => n + o.weight, 0);
    const picker: Picker = { repo: () => data.repos[Math.floor(Math.random() * data.repos.length)], rnd: (xs) => xs[Math.floor(Math.random() * xs.length)] };
    const pickOp = () => {
      let r = Math.random() * totalWeight;
      for (const o of mix) if ((r -= o.weight) < 0) return o;
      return mix[0];
    };

    process.stdout.write(
      `bench:load — ${CLIENTS} keep-alive clients for ${SECONDS} s, ${REPOS} repositories, ${(FAULT_RATE * 100).toFixed(0)} % of upstream requests faulted; sidecar pid ${started.pid}\n`,
    );
    const samples: { t: number; rss: number; fds: number; heapUsed: number; gc: boolean }[] = [];
    let sampleNo = 0;
    const timeline: string[] = [];
    const t0 = Date.now();
    const end = t0 + SECONDS * 1000;
    await fake.ask('faults', { rate: FAULT_RATE });
    let lastTick = t0;
    const sampler = setInterval(() => {
      // A full collection every 10 s (not every sample: it pauses the sidecar) measures the live heap.
      const gc = ++sampleNo % 5 === 0;
      void sidecar
        .ask<{ rss: number; fds: number; heapUsed: number; cache?: { entries: number } }>('sample', { gc })
        .then((s) => {
          const now = Date.now();
          samples.push({ t: now - t0, rss: s.rss, fds: s.fds, heapUsed: s.heapUsed, gc });
          const secs = (now - lastTick) / 1000;
          const line = `${((now - t0) / 1000).toFixed(0).padStart(4)} s  ${(stats.windowRequests / secs).toFixed(0).padStart(6)} req/s  p50 ${percentile(stats.windowLatencies, 50).toFixed(1).padStart(7)} ms  p99 ${percentile(stats.windowLatencies, 99).toFixed(1).padStart(8)} ms  RSS ${(s.rss / 2 ** 20).toFixed(1)} MiB  heap ${(s.heapUsed / 2 ** 20).toFixed(1)} MiB${gc ? ' (live, after GC)' : ''}  fds ${s.fds}  cache ${s.cache?.entries ?? 0}`;
          timeline.push(line);
          process.stdout.write(`${line}\n`);
          stats.windowRequests = 0;
          stats.windowLatencies = [];
          lastTick = now;
        })
        .catch(() => undefined);
    }, SAMPLE_MS);

    const clients = Array.from({ length: CLIENTS }, () => new Client(started.url, { pipelining: 1, keepAliveTimeout: 30_000, connections: 1 } as ConstructorParameters<typeof Client>[1]));
    await Promise.all(
      clients.map(async (c) => {
        while (Date.now() < end && !sidecar.exited) await pickOp().run(c, picker);
      }),
    );
    clearInterval(sampler);
    const elapsed = (Date.now() - t0) / 1000;
    const finalSample = await sidecar.ask<{ rss: number; fds: number; heapUsed: number }>('sample').catch(() => undefined);
    const health = await clients[0].request({ method: 'GET', path: '/_sidecar/health', headers: { host: 'x' } }).then(async (r) => (await r.body.dump(), r.statusCode)).catch(() => 0);
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    const upstream = await fake.ask<{ seen: number; injected: Record<string, number> }>('stats');
    const crashed = sidecar.exited?.during ?? false;

    // Trends after warm-up (the first 15 s fill the cache and the connection pools).
    const steady = samples.filter((s) => s.t >= 15_000);
    const rssSlope = slopePerMinute(steady.map((s) => ({ t: s.t, y: s.rss / 2 ** 20 })));
    const fdSlope = slopePerMinute(steady.map((s) => ({ t: s.t, y: s.fds })));
    const live = samples.filter((s) => s.gc && s.t >= 15_000);
    const heapSlope = slopePerMinute(live.map((s) => ({ t: s.t, y: s.heapUsed / 2 ** 20 })));
    // A trend over the second half only: a plateau after warm-up shows as ~0 here.
    const lateRss = steady.filter((s) => s.t >= steady[0].t + (steady[steady.length - 1].t - steady[0].t) / 2);
    const lateRssSlope = slopePerMinute(lateRss.map((s) => ({ t: s.t, y: s.rss / 2 ** 20 })));
    const rssFirst = steady[0]?.rss ?? NaN;
    const rssLast = steady[steady.length - 1]?.rss ?? NaN;
    const fdsMin = Math.min(...steady.map((s) => s.fds));
    const fdsMax = Math.max(...steady.map((s) => s.fds));
    const injectedTotal = Object.values(upstream.injected).reduce((a, b) => a + b, 0);
    const kinds = [...stats.byKind.entries()].sort((a, b) => b[1] - a[1]);
    const opsCount = [...stats.byOp.entries()].sort((a, b) => b[1] - a[1]);

    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const rows: [string, string][] = [
      ['duration, clients', `${elapsed.toFixed(1)} s, ${CLIENTS} keep-alive connections`],
      ['requests', `${stats.requests} (${(stats.requests / elapsed).toFixed(0)} req/s)`],
      ['latency p50 / p99 / max', `${percentile(stats.latencies, 50).toFixed(1)} / ${percentile(stats.latencies, 99).toFixed(1)} / ${stats.latencies.reduce((m, x) => (x > m ? x : m), 0).toFixed(0)} ms`],
      ['requests that reached the fake Bitbucket', `${upstream.seen}`],
      ['faults injected (fired on the next upstream request)', `${injectedTotal} (${((injectedTotal / Math.max(1, upstream.seen)) * 100).toFixed(1)} %): ${Object.entries(upstream.injected).map(([k, v]) => `${k} ${v}`).join(', ')}`],
      ['answers by error kind', kinds.length ? kinds.map(([k, v]) => `${k}: ${v}`).join(', ') : 'none'],
      ['answers outside Bitbucket\'s error shape', `${stats.offShape}${stats.offShapeExamples.length ? ` (${stats.offShapeExamples.join(' | ')})` : ''}`],
      ['out-of-scope attempts answered other than 4xx', `${stats.outOfScope}${stats.outOfScopeExamples.length ? ` (${stats.outOfScopeExamples.join(' | ')})` : ''}`],
      ['sidecar crashes', crashed ? `1 (exit ${sidecar.exited?.code ?? sidecar.exited?.signal})` : '0'],
      ['health after the run', String(health)],
      ['sidecar RSS after warm-up: first / last / trend', `${mib(rssFirst)} / ${mib(rssLast)} / ${rssSlope >= 0 ? '+' : ''}${rssSlope.toFixed(2)} MiB per minute`],
      ['sidecar RSS trend over the second half', `${lateRssSlope >= 0 ? '+' : ''}${lateRssSlope.toFixed(2)} MiB per minute (${lateRss.length} samples)`],
      ['sidecar live heap (after a full GC, every 10 s) after warm-up: values / trend', `${live.map((s) => (s.heapUsed / 2 ** 20).toFixed(1)).join(', ')} MiB / ${heapSlope >= 0 ? '+' : ''}${heapSlope.toFixed(2)} MiB per minute`],
      ['sidecar open fds after warm-up: min / max / trend', `${fdsMin} / ${fdsMax} / ${fdSlope >= 0 ? '+' : ''}${fdSlope.toFixed(2)} per minute`],
      ['final sample', finalSample ? `RSS ${mib(finalSample.rss)}, heap ${mib(finalSample.heapUsed)}, fds ${finalSample.fds}` : 'n/a'],
      ['requests by operation', opsCount.map(([k, v]) => `${k} ${v}`).join(', ')],
    ];
    const table = ['| measure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`)].join('\n');
    const verdicts = [
      `crashes: ${crashed ? 'FAILED' : '0 (met)'}`,
      `answers outside Bitbucket's error shape: ${stats.offShape === 0 ? '0 (met)' : `${stats.offShape} (NOT met)`}`,
      `out-of-scope answers: ${stats.outOfScope === 0 ? '0 (met)' : `${stats.outOfScope} (NOT met)`}`,
      `memory after warm-up: RSS ${rssSlope.toFixed(2)} MiB/min over ${steady.length} samples (${lateRssSlope.toFixed(2)} over the second half), live heap ${heapSlope.toFixed(2)} MiB/min over ${live.length} samples: ${lateRssSlope < 5 && heapSlope < 2 ? 'no growth trend' : 'GROWING'}`,
      `open fds after warm-up: ${fdSlope.toFixed(2)}/min, range ${fdsMin}–${fdsMax} with ${CLIENTS} client connections (${fdSlope < 10 ? 'no growth trend' : 'GROWING'})`,
    ];
    process.stdout.write(`\n${table}\n\n${verdicts.map((v) => `* ${v}`).join('\n')}\n`);

    if (RECORD) {
      const cpu = os.cpus();
      const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'} × ${cpu.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
      const section = [
        '<!-- bench:load -->',
        `## Load with upstream faults — ${new Date().toISOString()}`,
        '',
        `${machine}. \`npm run bench:load\` (bench/load.ts): the sidecar in its own process; the fake Bitbucket (generated workspace, ${REPOS} repositories, 4 branches, 2 PRs, 2 tags each) with a fault injector in a second; the load generator in a third, all on the same cores (the 1-min load average was ${os.loadavg()[0].toFixed(2)} at the end; other work on the machine makes single runs noisy). ${CLIENTS} keep-alive clients, one connection each, for ${SECONDS} s on the mix below; ${(FAULT_RATE * 100).toFixed(0)} % of requests reaching Bitbucket faulted (latency beyond \`upstream.timeouts.responseMs\` = ${UPSTREAM_RESPONSE_MS} ms, 500, 503, HTML 500, 429 + Retry-After, reset mid-body, truncated JSON). REST budget raised so that it never runs out (the serving path is measured, not the budget). Audit log written to /dev/null as in production. The sidecar runs with \`--expose-gc\`: every fifth sample (every 10 s) is taken after a full collection, so "live heap" is what is really held (each collection pauses the sidecar briefly).`,
        '',
        table,
        '',
        ...verdicts.map((v) => `* ${v}`),
        '',
        '<details><summary>timeline (every 2 s)</summary>',
        '',
        '```',
        ...timeline,
        '```',
        '</details>',
        '<!-- /bench:load -->',
      ].join('\n');
      const file = path.join(__dirname, '..', '..', 'bench', 'RESULTS.md');
      const target = existsSync(file) ? file : path.join(process.cwd(), 'bench', 'RESULTS.md');
      const old = existsSync(target) ? readFileSync(target, 'utf8') : '# Benchmark results\n';
      const marked = /<!-- bench:load -->[\s\S]*?<!-- \/bench:load -->/;
      writeFileSync(target, marked.test(old) ? old.replace(marked, section) : `${old.replace(/\n*$/, '\n')}\n${section}\n`);
      process.stdout.write(`\nwritten to ${path.relative(process.cwd(), target)}\n`);
    }
  } finally {
    sidecar.running = false;
    fake.running = false;
    await cleanup();
  }
}

// ------------------------------------------------------------------------------------------------
// Hostile tenant (issue 21): a read-only client spending the sidecar's own work against it

interface Timed {
  latencies: number[];
  statuses: Map<string, number>;
}
const timed = (): Timed => ({ latencies: [], statuses: new Map() });

async function timedGet(c: Client, path: string, auth: string, into: Timed): Promise<{ status: number; body: Buffer } | undefined> {
  const t0 = performance.now();
  try {
    const res = await c.request({ method: 'GET', path, headers: { host: 'api.bitbucket.org', authorization: auth }, headersTimeout: 60_000, bodyTimeout: 60_000 });
    const body = Buffer.from(await res.body.arrayBuffer());
    into.latencies.push(performance.now() - t0);
    count(into.statuses, String(res.statusCode));
    return { status: res.statusCode, body };
  } catch (e) {
    into.latencies.push(performance.now() - t0);
    count(into.statuses, `cut ${(e as { code?: string }).code ?? 'error'}`);
    return undefined;
  }
}

/**
 * One client scans (the plugin's read calls) alone, then while another client of the same workspace,
 * read-only, floods the sidecar with requests that cost it work but no scope: distinct missing paths
 * under a commit (the mirror answers 404 for free), distinct random commit hashes (each a 404
 * upstream, charged to its budget share), and `commits?include=` / `src/{commit}/` over the commits it
 * knows. The sidecar runs with the image's heap bounds and the mirror on; the budget is Bitbucket's
 * 1,000/h, so the scan keeps only its own share.
 */
async function hostileTenant(seconds: number, connections: number): Promise<{ table: string; verdicts: string[] }> {
  const fake = spawnRole('fake');
  const sidecar = spawnRole('sidecar', ['--max-semi-space-size=4', '--max-old-space-size=320']);
  try {
    const data = await fake.ask<Dataset>('start', { repos: REPOS });
    const scanToken = mintToken();
    const hostileToken = mintToken();
    const mirrorDir = path.join(os.tmpdir(), `bench-hostile-${process.pid}`);
    const config = {
      server: { http: { host: '127.0.0.1', port: 0 } },
      upstream: { apiUrl: data.url, webUrl: data.url, auth: { type: 'basic', username: data.credentials.email, password: data.credentials.apiToken }, budget: { repositoryRequestsPerHour: 1000 } },
      cache: { maxBytes: '64MiB' },
      state: { dir: mirrorDir },
      mirror: { enabled: true, dir: path.join(mirrorDir, 'mirrors'), waitSeconds: 30 },
      clients: [
        { id: 'scan', token: { sha256: sha256Hex(scanToken) }, scope: [{ workspace: 'acme' }] },
        { id: 'hostile', token: { sha256: sha256Hex(hostileToken) }, scope: [{ workspace: 'acme' }] },
      ],
    };
    const started = await sidecar.ask<{ url: string; pid: number }>('start', { config });
    sidecar.running = true;
    fake.running = true;
    const scanAuth = `Basic ${Buffer.from(`jenkins@ci.example:${scanToken}`).toString('base64')}`;
    const hostileAuth = `Basic ${Buffer.from(`tenant@ci.example:${hostileToken}`).toString('base64')}`;
    const API = '/2.0/repositories/acme';
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];
    const known: string[] = [];
    const scanOnce = async (c: Client, into: Timed) => {
      const r = pick(data.repos);
      const which = Math.floor(Math.random() * 6);
      if (which === 0) await timedGet(c, `${API}/${r.slug}/refs/branches?pagelen=100`, scanAuth, into);
      else if (which === 1) await timedGet(c, `${API}/${r.slug}/pullrequests?pagelen=50`, scanAuth, into);
      else if (which === 2) await timedGet(c, `${API}/${r.slug}/src/main/Jenkinsfile?format=meta`, scanAuth, into);
      else if (which === 3) await timedGet(c, `${API}/${r.slug}/refs/tags?pagelen=100`, scanAuth, into);
      else if (which === 4) await timedGet(c, `${API}/${r.slug}`, scanAuth, into);
      else {
        const b = await timedGet(c, `${API}/${r.slug}/refs/branches/${encodeURIComponent(pick(r.branches))}`, scanAuth, into);
        const hash = b?.status === 200 ? (JSON.parse(b.body.toString()).target?.hash as string | undefined) : undefined;
        if (hash) {
          if (known.length < 5000) known.push(`${r.slug} ${hash}`);
          await timedGet(c, `${API}/${r.slug}/commit/${hash.slice(0, 12)}`, scanAuth, into);
        }
      }
    };
    const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
    const attackOnce = async (c: Client, into: Timed) => {
      const [slug, hash] = (known.length ? pick(known) : `${pick(data.repos).slug} ${hex(40)}`).split(' ');
      const which = Math.floor(Math.random() * 4);
      if (which === 0) await timedGet(c, `${API}/${slug}/src/${hash}/${hex(64)}/${hex(64)}/${hex(64)}.txt`, hostileAuth, into);
      else if (which === 1) await timedGet(c, `${API}/${slug}/commit/${hex(40)}`, hostileAuth, into);
      else if (which === 2) await timedGet(c, `${API}/${slug}/commits?include=${hash}&pagelen=1`, hostileAuth, into);
      else await timedGet(c, `${API}/${slug}/src/${hash}/?pagelen=1`, hostileAuth, into);
    };
    const rssMax = { alone: 0, attacked: 0 };
    const run = async (phase: 'alone' | 'attacked') => {
      const scan = timed();
      const attack = timed();
      const end = Date.now() + seconds * 1000;
      const sampler = setInterval(() => {
        void sidecar.ask<{ rss: number }>('sample', {}).then((m) => (rssMax[phase] = Math.max(rssMax[phase], m.rss))).catch(() => undefined);
      }, 1000);
      const open = (n: number) => Array.from({ length: n }, () => new Client(started.url, { connections: 1, keepAliveTimeout: 30_000 } as ConstructorParameters<typeof Client>[1]));
      const scanners = open(connections);
      const attackers = phase === 'attacked' ? open(connections) : [];
      await Promise.all([
        ...scanners.map(async (c) => {
          while (Date.now() < end && !sidecar.exited) await scanOnce(c, scan);
        }),
        ...attackers.map(async (c) => {
          while (Date.now() < end && !sidecar.exited) await attackOnce(c, attack);
        }),
      ]);
      clearInterval(sampler);
      await Promise.all([...scanners, ...attackers].map((c) => c.close().catch(() => undefined)));
      return { scan, attack };
    };
    const alone = await run('alone');
    const attacked = await run('attacked');
    const after = await sidecar.ask<{ rss: number; cache?: { entries: number; bytes: number } }>('sample', { gc: false }).catch(() => undefined);
    const fmt = (t: Timed) => `${percentile(t.latencies, 50).toFixed(1)} / ${percentile(t.latencies, 99).toFixed(1)} ms`;
    const statuses = (t: Timed) => [...t.statuses.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`).join(' ');
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    const crashed = Boolean(sidecar.exited);
    const rows: [string, string][] = [
      ['scan alone: requests, p50 / p99, statuses', `${alone.scan.latencies.length}, ${fmt(alone.scan)}, ${statuses(alone.scan)}`],
      ['scan beside the hostile tenant: requests, p50 / p99, statuses', `${attacked.scan.latencies.length}, ${fmt(attacked.scan)}, ${statuses(attacked.scan)}`],
      ['hostile tenant: requests, p50 / p99, statuses', `${attacked.attack.latencies.length}, ${fmt(attacked.attack)}, ${statuses(attacked.attack)}`],
      ['sidecar RSS max: alone / attacked (cache.maxBytes 64 MiB, mirror.memoryBytes 16 MiB, heap bound 320 MiB)', `${mib(rssMax.alone)} / ${mib(rssMax.attacked)}`],
      ['cache after the run: entries, bytes', after?.cache ? `${after.cache.entries}, ${mib(after.cache.bytes)}` : 'n/a'],
      ['sidecar crashed', crashed ? 'yes' : 'no'],
    ];
    const scan429 = attacked.scan.statuses.get('429') ?? 0;
    const verdicts = [
      `crashes: ${crashed ? 'FAILED' : '0 (met)'}`,
      `429s seen by the scanning client while attacked: ${scan429}${scan429 === 0 ? ' (met)' : ' (NOT met)'}`,
      `scan p99 beside the hostile tenant: ${percentile(attacked.scan.latencies, 99).toFixed(1)} ms vs ${percentile(alone.scan.latencies, 99).toFixed(1)} ms alone`,
      `RSS while attacked: ${mib(rssMax.attacked)} (bound: 320 MiB heap + native: ${rssMax.attacked < 400 * 2 ** 20 ? 'within 400 MiB' : 'ABOVE 400 MiB'})`,
    ];
    return { table: ['| measure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n'), verdicts };
  } finally {
    sidecar.running = false;
    fake.running = false;
    await Promise.allSettled([sidecar.ask('stop'), fake.ask('stop')]);
  }
}

async function hostileMain(): Promise<void> {
  const seconds = Number(args.get('hostile-seconds') ?? 30);
  const { table, verdicts } = await hostileTenant(seconds, 20);
  process.stdout.write(`\n${table}\n\n${verdicts.map((v) => `* ${v}`).join('\n')}\n`);
  if (!RECORD) return;
  const cpu = os.cpus();
  const machine = `${cpu[0]?.model.trim() ?? 'unknown CPU'} × ${cpu.length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}`;
  const section = [
    '<!-- bench:load-hostile -->',
    `## Hostile tenant — ${new Date().toISOString()}`,
    '',
    `${machine}. \`npm run bench:load\` (bench/load.ts, \`hostileTenant\`; \`-- --only-hostile\` runs this part alone): the sidecar in its own process with the image's heap bounds and the mirror on, the fake Bitbucket (${REPOS} generated repositories) in a second, the load in a third, same cores (1-min load average ${os.loadavg()[0].toFixed(2)} at the end). Budget 1,000/h. 20 connections of a scanning client for ${seconds} s alone, then ${seconds} s beside 20 connections of a read-only client of the same workspace sending distinct missing paths under known commits (mirror 404s), random commit hashes (upstream 404s), \`commits?include=\` and \`src/{commit}/\` of the commits it knows.`,
    '',
    table,
    '',
    ...verdicts.map((v) => `* ${v}`),
    '<!-- /bench:load-hostile -->',
  ].join('\n');
  const file = path.join(__dirname, '..', '..', 'bench', 'RESULTS.md');
  const target = existsSync(file) ? file : path.join(process.cwd(), 'bench', 'RESULTS.md');
  const old = existsSync(target) ? readFileSync(target, 'utf8') : '# Benchmark results\n';
  const marked = /<!-- bench:load-hostile -->[\s\S]*?<!-- \/bench:load-hostile -->/;
  writeFileSync(target, marked.test(old) ? old.replace(marked, section) : `${old.replace(/\n*$/, '\n')}\n${section}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), target)}\n`);
}

const roles: Record<string, () => Promise<void>> = {
  main: async () => {
    if (!args.has('only-hostile')) await main();
    if (!args.has('no-hostile')) await hostileMain();
  },
  fake: fakeRole,
  sidecar: sidecarRole,
};
(roles[ROLE] ?? main)().catch((e: Error) => {
  process.stderr.write(`${e.stack ?? e.message}\n`);
  process.exit(1);
});
