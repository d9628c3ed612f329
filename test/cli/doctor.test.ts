import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { runCli } from '../../src/cli';
import { startFakeBitbucket, type FakeBitbucket } from '../../src/fake-bitbucket';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy';

/**
 * `bitbucket-sidecar doctor` against the fake Bitbucket on loopback: a good configuration passes
 * every check (exit 0); a rejected credential, an unreachable upstream, an unreadable TLS export
 * and an unreachable webhook target each fail with their name and what to do (exit 1).
 */
const PROXY_VARS = ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'];

async function doctor(config: Record<string, unknown>, extra: string[] = []): Promise<{ code: number; out: string; err: string }> {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(config));
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += d));
  err.on('data', (d) => (e += d));
  const code = await runCli(['doctor', '--config', file, ...extra], out, err);
  return { code, out: o, err: e };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TLS directory laid out as the sidecar writes it, with the modes the documented use needs. */
function tlsDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'doctor-tls-'));
  chmodSync(d, 0o755);
  for (const f of ['ca.pem', 'ca-bundle.pem', 'truststore.p12']) writeFileSync(join(d, f), 'x', { mode: 0o644 });
  for (const f of ['issuing-ca.key', 'leaf.key']) writeFileSync(join(d, f), 'x', { mode: 0o600 });
  return d;
}

let dir: string;
let fake: FakeBitbucket;
let proxy: ForwardProxy;
const saved: Record<string, string | undefined> = {};

const HASH = 'a'.repeat(64);
function config(over: { upstream?: Record<string, unknown>; [k: string]: unknown } = {}): Record<string, unknown> {
  const { upstream, ...rest } = over;
  return {
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, ...upstream },
    clients: [{ id: 'jenkins', token: { sha256: HASH }, scope: [{ workspace: 'acme', repositories: ['*'] }] }],
    ...rest,
  };
}

beforeAll(async () => {
  for (const k of PROXY_VARS) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  dir = mkdtempSync(join(tmpdir(), 'doctor-'));
  fake = await startFakeBitbucket({ seed: 'demo' });
  proxy = await startForwardProxy();
});

afterAll(async () => {
  await fake.close();
  await proxy.close();
  for (const k of PROXY_VARS) if (saved[k] !== undefined) process.env[k] = saved[k];
});

describe('bitbucket-sidecar doctor', () => {
  it('passes every check with a good configuration and exits 0', async () => {
    const tls = tlsDir();
    const before = fake.requests.length;
    const r = await doctor(config({ server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } }, tls: { dir: tls } }));
    expect(r.out).not.toContain('✗');
    expect(r.code).toBe(0);
    for (const check of ['configuration', 'upstream.apiUrl DNS', 'upstream.apiUrl TCP', 'credential reads acme', 'rate limit', 'git credential', 'tls.dir', 'export ca.pem', 'key leaf.key']) expect(r.out).toContain(`✓ ${check}`);
    expect(r.out).toMatch(/all \d+ checks passed/);
    // Only the workspace in scope was asked about, and the secret never printed.
    const asked = fake.requests.slice(before).map((l) => l.path);
    expect(asked.every((p) => /^\/(2\.0\/repositories\/acme|acme\/|\/?$)/.test(p))).toBe(true);
    expect(r.out).not.toContain(fake.credentials.apiToken);
  });

  it('names a rejected upstream credential and what to do, exit 1', async () => {
    const r = await doctor(config({ upstream: { auth: { type: 'basic', username: fake.credentials.email, password: 'wrong-token-value' } } }));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/✗ credential reads acme: Bitbucket rejected the upstream credential \(HTTP 401\)/);
    expect(r.out).toContain('→ replace upstream.auth');
    expect(r.out).not.toContain('wrong-token-value');
  });

  it('names an unreachable upstream: a refused TCP connection and a name that does not resolve', async () => {
    const port = await closedPort();
    const refused = await doctor(config({ upstream: { apiUrl: `http://127.0.0.1:${port}`, webUrl: `http://127.0.0.1:${port}` } }));
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/✗ upstream.apiUrl TCP: cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(refused.out).toContain('✗ upstream credential: not checked');

    const unknown = await doctor(config({ upstream: { apiUrl: 'http://bitbucket.proxied.test', webUrl: 'http://bitbucket.proxied.test' } }));
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/✗ upstream.apiUrl DNS: bitbucket\.proxied\.test does not resolve \((ENOTFOUND|EAI_AGAIN)\)/);
  });

  it('checks the upstream through the outbound proxy when one is configured', async () => {
    const port = new URL(fake.url).port;
    const origin = `http://bitbucket.proxied.test:${port}`;
    const before = proxy.seen.length;
    const r = await doctor(config({ upstream: { apiUrl: origin, webUrl: origin, proxy: { url: proxy.url } } }));
    expect(r.out).toContain('✓ proxy for upstream.apiUrl TCP');
    expect(r.out).toContain('✓ upstream.apiUrl through the proxy');
    expect(r.out).toContain('✓ credential reads acme');
    expect(r.code).toBe(0);
    // The name resolves only inside the proxy: every answer above came through it.
    expect(proxy.seen.slice(before).some((s) => s.target.includes('bitbucket.proxied.test'))).toBe(true);
  });

  it('names an export other users cannot read and a private key others can', async () => {
    const tls = tlsDir();
    chmodSync(join(tls, 'truststore.p12'), 0o600);
    chmodSync(join(tls, 'leaf.key'), 0o644);
    const r = await doctor(config({ server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } }, tls: { dir: tls } }));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/✗ export truststore\.p12: .* is mode 0600/);
    expect(r.out).toContain(`→ chmod 644 ${join(tls, 'truststore.p12')}`);
    expect(r.out).toMatch(/✗ key leaf\.key: .* a private key others can read/);

    const closed = join(tmpdir(), `doctor-closed-${process.pid}`);
    mkdirSync(closed, { mode: 0o700, recursive: true });
    const r2 = await doctor(config({ server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } }, tls: { dir: closed } }));
    expect(r2.out).toMatch(/✗ tls.dir: .* is mode 0700/);
  });

  it('names an unreachable webhook target, and gives JSON with --json', async () => {
    const port = await closedPort();
    const r = await doctor(config({ webhooks: { forwardTo: `http://127.0.0.1:${port}/bitbucket-scmsource-hook/notify` } }), ['--json']);
    expect(r.code).toBe(1);
    const checks = JSON.parse(r.out) as { check: string; ok: boolean; detail: string; fix?: string }[];
    const hook = checks.find((c) => c.check.startsWith('webhooks.forwardTo'));
    expect(hook).toMatchObject({ ok: false, detail: 'not reachable (ECONNREFUSED)' });
    expect(hook?.fix).toContain('Jenkins');
    expect(checks.find((c) => c.check === 'credential reads acme')?.ok).toBe(true);
  });

  it('reports a configuration error as a failed check', async () => {
    const r = await doctor({ upstream: { auth: { type: 'bearer' } }, clients: [] });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^✗ configuration: /);
  });
});
