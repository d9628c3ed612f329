/**
 * /_sidecar/ready: configuration loaded, certificates valid (with HTTPS), upstream reachable — the
 * upstream probe is a bare connection (no request, so no credential and no identity), cached, and
 * skippable per probe; shutdown turns readiness off.
 */
import { rmSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { validateConfig } from '../../src/config/load';
import { createLogger } from '../../src/ops/logger';
import { createReadiness, probeConnect } from '../../src/ops/readiness';
import { startSidecar, type RunningSidecar } from '../../src/serve';
import { TLS_FILES } from '../../src/tls';
import { startStack, type Stack, logCollector } from '../helpers/stack';
import { request } from './http';

/** A TCP server that records how many bytes anyone sent it. */
async function tcpSink(): Promise<{ port: number; received: () => number; connections: () => number; close: () => Promise<void> }> {
  let bytes = 0;
  let conns = 0;
  const server = net.createServer((s) => {
    conns++;
    s.on('data', (d) => (bytes += d.length));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => bytes,
    connections: () => conns,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function closedPort(): Promise<number> {
  const s = await tcpSink();
  await s.close();
  return s.port;
}

describe('upstream probe', () => {
  it('connects without sending a single byte (no request, no credential, no identity)', async () => {
    const sink = await tcpSink();
    try {
      expect(await probeConnect(`http://127.0.0.1:${sink.port}`)).toEqual({ ok: true, detail: 'reachable' });
      await new Promise((r) => setTimeout(r, 50));
      expect(sink.connections()).toBe(1);
      expect(sink.received()).toBe(0);
    } finally {
      await sink.close();
    }
  });

  it('reports a refused connection', async () => {
    const r = await probeConnect(`http://127.0.0.1:${await closedPort()}`);
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/unreachable \(ECONNREFUSED\)/);
  });

  it('counts an https upstream as reachable only once a TLS handshake completes', async () => {
    const sink = await tcpSink(); // accepts TCP but never completes a TLS handshake
    try {
      const r = await probeConnect(`https://127.0.0.1:${sink.port}`, 300);
      expect(r.ok).toBe(false);
    } finally {
      await sink.close();
    }
  });

  it('is cached: one probe per TTL however often readiness is asked, failures retried sooner', async () => {
    let t = 0;
    let calls = 0;
    let answer = { ok: false, detail: 'unreachable (ECONNREFUSED)' };
    const r = createReadiness({ upstreamUrl: 'http://x', now: () => t, okTtlMs: 30_000, failTtlMs: 5_000, probe: async () => (calls++, answer) });
    await Promise.all([r.check(), r.check(), r.check()]);
    expect(calls).toBe(1);
    t = 4_000;
    expect((await r.check()).ok).toBe(false);
    expect(calls).toBe(1);
    t = 5_001;
    answer = { ok: true, detail: 'reachable' };
    expect((await r.check()).ok).toBe(true);
    expect(calls).toBe(2);
    t = 30_000;
    await r.check();
    expect(calls).toBe(2);
    t = 40_000;
    await r.check();
    expect(calls).toBe(3);
  });
});

describe('/_sidecar/ready', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack([{ id: 'reader', scope: [{ workspace: 'acme' }] }]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is 200 with the checks it made, and needs no credentials', async () => {
    const r = await request(`${stack.url}/_sidecar/ready`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'ready', checks: { config: 'loaded', upstream: 'reachable', credential: 'not rejected by Bitbucket' } });
    expect((await request(`${stack.url}/_sidecar/health`)).status).toBe(200);
  });

  it('is 503 while the upstream cannot be reached, and ?upstream=skip leaves that check out', async () => {
    const token = mintToken();
    const config = validateConfig({
      server: { http: { host: '127.0.0.1', port: 0 } },
      upstream: { apiUrl: `http://127.0.0.1:${await closedPort()}`, auth: { type: 'basic', username: 'u@example.com', password: 'p' } },
      clients: [{ id: 'c', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }] }],
    });
    const running = await startSidecar(config, { logger: createLogger({ level: 'silent' }) });
    try {
      const down = await request(`${running.httpUrl}/_sidecar/ready`);
      expect(down.status).toBe(503);
      const body = JSON.parse(down.body) as { status: string; checks: Record<string, string> };
      expect(body.status).toBe('not ready');
      expect(body.checks.upstream).toMatch(/^unreachable/);
      const skipped = await request(`${running.httpUrl}/_sidecar/ready?upstream=skip`);
      expect(skipped.status).toBe(200);
      expect(JSON.parse(skipped.body).checks).toEqual({ config: 'loaded', upstream: 'skipped' });
    } finally {
      await running.stop(100);
    }
  });

  it('turns to 503 "draining" once shutdown has begun', async () => {
    const r = createReadiness({ upstreamUrl: 'http://x', probe: async () => ({ ok: true, detail: 'reachable' }) });
    expect((await r.check()).ok).toBe(true);
    r.draining();
    expect(await r.check()).toEqual({ ok: false, checks: { config: 'loaded', shutdown: 'draining', upstream: 'reachable' } });
  });
});

describe('/_sidecar/ready with HTTPS', () => {
  let running: RunningSidecar;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ready-tls-'));
    const sink = await tcpSink(); // a reachable "upstream"
    const token = mintToken();
    const config = validateConfig({
      server: { http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } },
      tls: { dir },
      upstream: { apiUrl: `http://127.0.0.1:${sink.port}`, auth: { type: 'basic', username: 'u@example.com', password: 'p' } },
      clients: [{ id: 'c', token: { sha256: sha256Hex(token) }, scope: [{ workspace: 'acme' }] }],
    });
    running = await startSidecar(config, { logger: createLogger({ level: 'silent', destination: logCollector().stream }) });
    await sink.close();
  });
  afterAll(async () => {
    await running?.stop(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports the certificate while it is valid and the trust exports are in place', async () => {
    const r = await request(`${running.httpUrl}/_sidecar/ready?upstream=skip`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).checks.certificates).toMatch(/^valid until \d{4}-/);
  });

  it('is not ready when a trust export Jenkins needs is missing', async () => {
    rmSync(path.join(dir, TLS_FILES.javaTruststore));
    const r = await request(`${running.httpUrl}/_sidecar/ready?upstream=skip`);
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).checks.certificates).toBe(`trust exports missing in ${dir}: ${TLS_FILES.javaTruststore}`);
  });

  it('is not ready with an expired certificate, nor before HTTPS is listening', async () => {
    const leaf = running.tls!;
    const later = createReadiness({ upstreamUrl: 'http://x', now: () => Date.now() + 400 * 86_400_000, probe: async () => ({ ok: true, detail: 'reachable' }) });
    later.watchTls(leaf, dir, []);
    const expired = await later.check();
    expect(expired.ok).toBe(false);
    expect(expired.checks.certificates).toMatch(/^leaf certificate expired /);

    const starting = createReadiness({ upstreamUrl: 'http://x', tlsExpected: true, probe: async () => ({ ok: true, detail: 'reachable' }) });
    expect((await starting.check()).ok).toBe(false);
    starting.watchTls(leaf, dir, []);
    expect((await starting.check()).ok).toBe(true);
  });
});
