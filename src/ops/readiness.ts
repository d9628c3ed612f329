/**
 * `/_sidecar/ready`: may Jenkins be pointed at this sidecar now?
 *
 *  - `config`: a configuration was loaded and validated (always true once a sidecar exists; kept as
 *    a check so the answer says what was looked at);
 *  - `certificates` (only when HTTPS is on): the HTTPS listener is up, the leaf certificate is inside
 *    its validity period and, when the sidecar's own CA issued it, the trust exports Jenkins reads are
 *    in `tls.dir`;
 *  - `credential`: Bitbucket has not rejected the sidecar's own credential (401) since a call last
 *    succeeded with it (skipped with `upstream`);
 *  - `upstream`: Bitbucket's API host accepts a connection. A TCP connect (plus a TLS handshake for
 *    https) and nothing more: no HTTP request is sent, so no credential is used and no identity is
 *    learnt or reported. The result is cached (`okTtlMs` / `failTtlMs`) so probes cost nothing.
 *
 * `?upstream=skip` leaves the upstream check out, for probes whose failure must not take Jenkins down
 * with Bitbucket (a Kubernetes pod's readiness, see examples/kubernetes).
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import * as path from 'node:path';
import tls from 'node:tls';

export interface CheckResult {
  ok: boolean;
  detail: string;
}
export interface ReadyAnswer {
  ok: boolean;
  checks: Record<string, string>;
}

/** What the readiness check needs of the TLS manager (src/tls TlsManager fits). */
export interface TlsView {
  leafCertificatePem(): string;
  readonly caPem: string | undefined;
}

export interface Readiness {
  check(options?: { skip?: readonly string[] }): Promise<ReadyAnswer>;
  /** Called once the HTTPS listener is up; until then `certificates` is "starting" (when `tlsExpected`). */
  watchTls(manager: TlsView, dir: string, trustFiles: readonly string[]): void;
  /** Marks the sidecar as shutting down: every later check answers not ready. */
  draining(): void;
}

export interface ReadinessOptions {
  upstreamUrl: string;
  /** HTTPS is configured: not ready until `watchTls` was called (the listener is up). */
  tlsExpected?: boolean;
  probe?: (url: string) => Promise<CheckResult>;
  /** Whether Bitbucket accepts the sidecar's own credentials (from the answers it gave). */
  credential?: () => CheckResult;
  okTtlMs?: number;
  failTtlMs?: number;
  now?: () => number;
}

export function createReadiness(options: ReadinessOptions): Readiness {
  const now = options.now ?? Date.now;
  const probe = options.probe ?? ((url: string) => probeConnect(url));
  const okTtl = options.okTtlMs ?? 30_000;
  const failTtl = options.failTtlMs ?? 5_000;
  let cached: { at: number; result: CheckResult } | undefined;
  let inflight: Promise<CheckResult> | undefined;
  let tlsWatch: { manager: TlsView; dir: string; files: readonly string[] } | undefined;
  let stopping = false;

  async function upstream(): Promise<CheckResult> {
    const t = now();
    if (cached && t - cached.at < (cached.result.ok ? okTtl : failTtl)) return cached.result;
    inflight ??= probe(options.upstreamUrl)
      .catch((e: unknown) => ({ ok: false, detail: `unreachable (${(e as Error).message})` }))
      .then((result) => {
        cached = { at: now(), result };
        inflight = undefined;
        return result;
      });
    return inflight;
  }

  return {
    async check(opts = {}) {
      const skip = new Set(opts.skip ?? []);
      const checks: Record<string, string> = { config: 'loaded' };
      let ok = true;
      if (stopping) {
        checks.shutdown = 'draining';
        ok = false;
      }
      if (!skip.has('certificates')) {
        if (tlsWatch) {
          const c = await certificates(tlsWatch.manager, tlsWatch.dir, tlsWatch.files, now());
          checks.certificates = c.detail;
          ok &&= c.ok;
        } else if (options.tlsExpected) {
          checks.certificates = 'starting: HTTPS is not listening yet';
          ok = false;
        }
      }
      if (!skip.has('upstream')) {
        const u = await upstream();
        checks.upstream = u.detail;
        ok &&= u.ok;
        if (options.credential) {
          const c = options.credential();
          checks.credential = c.detail;
          ok &&= c.ok;
        }
      } else {
        checks.upstream = 'skipped';
      }
      return { ok, checks };
    },
    watchTls(manager, dir, files) {
      tlsWatch = { manager, dir, files };
    },
    draining() {
      stopping = true;
    },
  };
}

async function certificates(manager: TlsView, dir: string, files: readonly string[], t: number): Promise<CheckResult> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(manager.leafCertificatePem());
  } catch (e) {
    return { ok: false, detail: `leaf certificate unreadable (${(e as Error).message})` };
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (t < from) return { ok: false, detail: `leaf certificate not valid before ${new Date(from).toISOString()}` };
  if (t >= to) return { ok: false, detail: `leaf certificate expired ${new Date(to).toISOString()}` };
  if (manager.caPem !== undefined) {
    const missing: string[] = [];
    for (const f of files) {
      try {
        await fs.access(path.join(dir, f));
      } catch {
        missing.push(f);
      }
    }
    if (missing.length > 0) return { ok: false, detail: `trust exports missing in ${dir}: ${missing.join(', ')}` };
  }
  return { ok: true, detail: `valid until ${new Date(to).toISOString()}` };
}

/**
 * Opens a connection to the URL's host and port and closes it: TCP for http, TCP + TLS handshake
 * (certificate verified against the system roots) for https. Sends no request.
 */
export function probeConnect(url: string, timeoutMs = 3000): Promise<CheckResult> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const port = Number(u.port || (secure ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: CheckResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket: net.Socket = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] }, () => finish({ ok: true, detail: 'reachable' }))
      : net.connect({ host, port }, () => finish({ ok: true, detail: 'reachable' }));
    socket.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, detail: `unreachable (${e.code ?? e.message})` }));
    const timer = setTimeout(() => finish({ ok: false, detail: `unreachable (no connection within ${timeoutMs} ms)` }), timeoutMs);
    timer.unref();
  });
}
