/** Shared by the tls tests: temp dirs, local HTTPS servers, real client processes with a clean env. */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

const created: string[] = [];

/** A fresh directory under the OS temp dir, removed by removeTempDirs() (call it in afterAll). */
export async function tempDir(prefix = 'tls-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(created.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
}

/**
 * The machine sets CA variables (GIT_SSL_CAINFO silently overrides http.sslCAInfo, CURL_CA_BUNDLE,
 * SSL_CERT_FILE, ...) and may set proxies or JVM options: a child that is handed our CA explicitly
 * must see none of them, or the test would prove nothing.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dropped = /(^|_)(CA_?BUNDLE|CAINFO|CAPATH|CA_CERTS|CA_CERTS_FILE|CERT_FILE|CERT_DIR|SSL_CERT_FILE|EXTRA_CA_CERTS)$|^(PIP_CERT|HTTPLIB2_CA_CERTS)$|proxy$|^(JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!dropped.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: opts.env ?? cleanEnv(), cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export interface SeenRequest {
  host: string | undefined;
  url: string | undefined;
}

export interface TestServer {
  server: https.Server;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** A plain HTTPS server on 127.0.0.1: 200 JSON, except 404 (Bitbucket-shaped) for git paths. */
export async function startHttps(options: https.ServerOptions): Promise<TestServer> {
  const seen: SeenRequest[] = [];
  const server = https.createServer(options, (req, res) => {
    seen.push({ host: req.headers.host, url: req.url });
    const git = (req.url ?? '').includes('.git/');
    res.writeHead(git ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(git ? { type: 'error', error: { message: 'Repository not found' } } : { ok: true, host: req.headers.host }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The serial number of the certificate a fresh TLS connection is shown (servername undefined: no SNI). */
export function peerSerial(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: servername ?? '', rejectUnauthorized: false }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}
