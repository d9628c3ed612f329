/**
 * SIGTERM (`docker stop`, a Kubernetes pod deletion) on the real `serve` command in a child process:
 * the sidecar stops accepting connections, lets the requests in flight — a slow REST call and a slow
 * git stream, both on keep-alive connections as Jenkins makes them — finish with 200, and exits 0
 * without waiting out its grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { freePort, ROOT } from '../deploy/helpers';
import { basic, request } from './http';

const LATENCY_MS = 1500;
const GRACE_MS = 25_000; // stopOnSignals' default: the exit must come long before it

describe('graceful shutdown on SIGTERM', () => {
  let fake: FakeBitbucket;
  let child: ChildProcess;
  let dir: string;
  let port: number;
  let output = '';
  const token = mintToken();

  beforeAll(async () => {
    fake = await startFakeBitbucket({ seed: 'demo' });
    dir = mkdtempSync(path.join(tmpdir(), 'sigterm-'));
    port = await freePort();
    const config = [
      'server:',
      `  http: { host: 127.0.0.1, port: ${port} }`,
      'upstream:',
      `  apiUrl: ${fake.url}`,
      `  webUrl: ${fake.url}`,
      '  auth: { type: basic, username: "${UPSTREAM_EMAIL}", password: "${UPSTREAM_TOKEN}" }',
      'clients:',
      `  - { id: jenkins, token: { sha256: "${sha256Hex(token)}" }, scope: [{ workspace: acme }] }`,
    ].join('\n');
    writeFileSync(path.join(dir, 'config.yaml'), config);
    child = spawn(process.execPath, ['dist/main.js', 'serve', '--config', path.join(dir, 'config.yaml')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: dir, LOG_LEVEL: 'info', UPSTREAM_EMAIL: fake.credentials.email, UPSTREAM_TOKEN: fake.credentials.apiToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const until = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`serve exited early (${child.exitCode}):\n${output}`);
      const up = await request(`http://127.0.0.1:${port}/_sidecar/ready`).then((r) => r.status === 200, () => false);
      if (up) break;
      if (Date.now() > until) throw new Error(`serve did not become ready:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drains a slow REST call and a slow git stream, refuses new connections, and exits 0', async () => {
    fake.addFault({ kind: 'latency', latencyMs: LATENCY_MS, match: { pathPrefix: '/2.0/repositories/acme/service-api/refs/branches' } });
    fake.addFault({ kind: 'latency', latencyMs: LATENCY_MS, match: { pathPrefix: '/acme/service-api.git/info/refs' } });
    fake.clearLog();
    const agent = new http.Agent({ keepAlive: true }); // Jenkins' HTTP client keeps connections open
    const base = `http://127.0.0.1:${port}`;
    const rest = request(`${base}/2.0/repositories/acme/service-api/refs/branches?pagelen=100`, { agent, headers: { authorization: basic('jenkins@example.com', token) } });
    const git = request(`${base}/acme/service-api.git/info/refs?service=git-upload-pack`, { agent, headers: { authorization: basic('x-bitbucket-api-token-auth', token) } });

    // Both are in flight once Bitbucket has seen them.
    const seen = () => ['api', 'git'].every((k) => fake.requests.some((q) => q.kind === k));
    for (let i = 0; i < 100 && !seen(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen()).toBe(true);

    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
    );
    const sentAt = Date.now();
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));

    // No longer accepting: a new connection is refused while the old ones drain.
    await expect(request(`${base}/_sidecar/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const [r1, r2] = await Promise.all([rest, git]);
    const answeredAt = Date.now();
    expect(r1.status).toBe(200);
    expect((JSON.parse(r1.body) as { values: { name: string }[] }).values.map((b) => b.name)).toContain('main');
    expect(r2.status).toBe(200);
    expect(r2.body).toContain('# service=git-upload-pack');
    expect(answeredAt - sentAt).toBeGreaterThanOrEqual(LATENCY_MS - 400); // they really were in flight

    const { code, signal, at } = await exited;
    agent.destroy();
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(at).toBeGreaterThanOrEqual(answeredAt - 50);
    expect(at - answeredAt).toBeLessThan(GRACE_MS / 5); // idle keep-alive connections did not hold it up
    expect(output).toMatch(/shutting down: draining in-flight requests/);
  });
});
