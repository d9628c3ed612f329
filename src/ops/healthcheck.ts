/**
 * The container health check: `node dist/ops/healthcheck.js [URL]` exits 0 when URL answers 200
 * within the timeout, 1 otherwise. The image has no curl; node is all a probe needs.
 * URL defaults to $SIDECAR_HEALTH_URL, then http://127.0.0.1:8080/_sidecar/health.
 */
import http from 'node:http';

export const DEFAULT_HEALTH_URL = 'http://127.0.0.1:8080/_sidecar/health';

export function probe(url: string, timeoutMs = 3000): Promise<{ ok: boolean; status?: number; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve({ ok: res.statusCode === 200, status: res.statusCode });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ ok: false, error: e.message }));
  });
}

if (require.main === module) {
  const url = process.argv[2] ?? process.env.SIDECAR_HEALTH_URL ?? DEFAULT_HEALTH_URL;
  void probe(url).then((r) => {
    if (!r.ok) process.stderr.write(`${url}: ${r.status ?? r.error}\n`);
    process.exit(r.ok ? 0 : 1);
  });
}
