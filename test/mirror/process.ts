/**
 * The real `serve` command in a child process with the container image's V8 heap bounds (the
 * Dockerfile's NODE_OPTIONS), git mirrors on, in front of an in-process fake Bitbucket whose
 * repositories the test fills with large histories first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { dockerEnv, freePort, heapBounds, parseDockerfile, read, ROOT } from '../deploy/helpers';
import { basic, parseMetrics, request, sample, type Reply } from '../ops/http';

export interface SidecarProcess {
  fake: FakeBitbucket;
  child: ChildProcess;
  /** The fake's bare repository of `acme/{repo}` (fill it before the mirror clones it). */
  repoDir(repo: string): string;
  /** `GET {path}` on the sidecar as the Jenkins client (keep-alive). */
  get(pathAndQuery: string): Promise<Reply>;
  /** Samples of `/_sidecar/metrics`. */
  metrics(): Promise<Map<string, number>>;
  /** VmRSS of the sidecar process, in bytes. */
  rss(): number;
  /** The heap bound the image sets (MiB). */
  heap: { semiSpace: number; oldSpace: number };
  output(): string;
  stop(): Promise<void>;
}

export { sample };

/** The image's NODE_OPTIONS heap bounds (runtime stage). */
export function imageHeap(): { semiSpace: number; oldSpace: number } {
  const instructions = parseDockerfile(read('Dockerfile'));
  const runtime = Math.max(...instructions.map((i) => i.stage));
  const b = heapBounds(dockerEnv(instructions, runtime).NODE_OPTIONS);
  if (!b.oldSpace || !b.semiSpace) throw new Error('the Dockerfile sets no heap bound');
  return { semiSpace: b.semiSpace, oldSpace: b.oldSpace };
}

export async function startFake(): Promise<{ fake: FakeBitbucket; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mirror-memory-'));
  const fake = await startFakeBitbucket({ seed: 'demo', dataDir: path.join(dir, 'fake') });
  return { fake, dir };
}

export async function startSidecarProcess(fake: FakeBitbucket, dir: string, mirror: Record<string, unknown> = {}): Promise<SidecarProcess> {
  const token = mintToken();
  const port = await freePort();
  const heap = imageHeap();
  const mirrorYaml = Object.entries({ enabled: true, dir: path.join(dir, 'mirrors'), refreshSeconds: 0, waitSeconds: 120, ...mirror })
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  const config = [
    'server:',
    `  http: { host: 127.0.0.1, port: ${port} }`,
    'state:',
    `  dir: ${JSON.stringify(path.join(dir, 'state'))}`,
    'upstream:',
    `  apiUrl: ${fake.url}`,
    `  webUrl: ${fake.url}`,
    '  auth: { type: basic, username: "${UPSTREAM_EMAIL}", password: "${UPSTREAM_TOKEN}" }',
    'clients:',
    `  - { id: jenkins, token: { sha256: "${sha256Hex(token)}" }, scope: [{ workspace: acme }], permissions: [read, "ops:read"] }`,
    'mirror:',
    mirrorYaml,
  ].join('\n');
  writeFileSync(path.join(dir, 'config.yaml'), config);
  const child = spawn(process.execPath, [`--max-semi-space-size=${heap.semiSpace}`, `--max-old-space-size=${heap.oldSpace}`, 'dist/main.js', 'serve', '--config', path.join(dir, 'config.yaml')], {
    cwd: ROOT,
    // Only what the sidecar needs: no CA, proxy or GIT_* variables of the test environment.
    env: { PATH: process.env.PATH, HOME: dir, LOG_LEVEL: 'warn', UPSTREAM_EMAIL: fake.credentials.email, UPSTREAM_TOKEN: fake.credentials.apiToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited early (${child.exitCode}):\n${output}`);
    const up = await request(`${base}/_sidecar/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (Date.now() > until) throw new Error(`serve did not become ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const authorization = basic('jenkins@example.com', token);
  return {
    fake,
    child,
    heap,
    repoDir: (repo) => path.join(dir, 'fake', 'repos', 'acme', `${repo}.git`),
    get: (p) => request(`${base}${p}`, { agent, headers: { authorization } }),
    async metrics() {
      const r = await request(`${base}/_sidecar/metrics`, { agent, headers: { authorization } });
      if (r.status !== 200) throw new Error(`metrics: ${r.status} ${r.body}`);
      return parseMetrics(r.body).samples;
    },
    rss() {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (!m) throw new Error('no VmRSS');
      return Number(m[1]) * 1024;
    },
    output: () => output,
    async stop() {
      agent.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export async function stopAll(p: SidecarProcess | undefined, fake: FakeBitbucket | undefined, dir: string | undefined): Promise<void> {
  await p?.stop();
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
