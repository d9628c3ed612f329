/**
 * Start-up footprint: a sidecar without HTTPS, Redis or webhooks does not load the modules only
 * those need (certificate code, ioredis, better-sqlite3) — each costs RSS for as long as the process
 * lives. Runs the built dist/ (test/global-setup.ts) in a child process, which is what counts:
 * jest's own module registry would not show it.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { TRUSTSTORE_PASSWORD } from '../../src/tls';
import { TRUSTSTORE_PASSWORD as WRITTEN_WITH } from '../../src/tls/trust';
import { ROOT } from '../deploy/helpers';

const ONLY_WHEN_CONFIGURED = ['pkijs', 'asn1js', '@peculiar/x509', '@peculiar/asn1-schema', '@peculiar/asn1-x509', 'reflect-metadata', 'tsyringe', 'ioredis', 'better-sqlite3'];

/** Starts a sidecar from dist/ with `extra` merged into a minimal configuration and lists the packages loaded. */
function packagesLoaded(extra: Record<string, unknown>): string[] {
  const script = `
    const { validateConfig } = require(${JSON.stringify(path.join(ROOT, 'dist/config/load'))});
    const { createLogger } = require(${JSON.stringify(path.join(ROOT, 'dist/ops/logger'))});
    const { startSidecar } = require(${JSON.stringify(path.join(ROOT, 'dist/serve'))});
    const config = validateConfig({
      server: { http: { host: '127.0.0.1', port: 0 } },
      upstream: { apiUrl: 'http://127.0.0.1:9', webUrl: 'http://127.0.0.1:9', auth: { type: 'basic', username: 'u', password: 'p' } },
      clients: [{ id: 'jenkins', token: { sha256: '${'a'.repeat(64)}' }, scope: [{ workspace: 'acme' }] }],
      ...${JSON.stringify(extra)},
    });
    startSidecar(config, { logger: createLogger({ level: 'silent' }) }).then(async (running) => {
      const names = new Set();
      for (const file of Object.keys(require.cache)) {
        const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file);
        if (m) names.add(m[1]);
      }
      process.stdout.write(JSON.stringify([...names]));
      await running.stop(0);
      process.exit(0);
    }, (e) => { console.error(e); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`the sidecar did not start: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe('modules loaded at start', () => {
  it('without server.https, cache.shared.redis and webhooks: no certificate code, ioredis or SQLite', () => {
    const loaded = packagesLoaded({});
    // express serves /_sidecar/* (src/ops/routes.ts).
    expect(loaded).toEqual(expect.arrayContaining(['undici', 'prom-client', 'express']));
    expect(loaded.filter((p) => ONLY_WHEN_CONFIGURED.includes(p))).toEqual([]);
  });

  it('the truststore password src/tls exports is the one the truststore is written with', () => {
    expect(TRUSTSTORE_PASSWORD).toBe(WRITTEN_WITH);
  });
});
