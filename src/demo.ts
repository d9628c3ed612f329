import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_TOKEN } from './auth/demo-token';
import { sha256Hex } from './auth/tokens';
import { validateConfig } from './config/load';
import type { Config } from './config/schema';
import { startFakeBitbucket, type FakeBitbucket } from './fake-bitbucket';
import { startSidecar, type RunningSidecar } from './serve';
import type { SidecarOptions } from './sidecar';

export const DEMO_EMAIL = 'jenkins@demo.example';

export interface Demo {
  fake: FakeBitbucket;
  running: RunningSidecar;
  token: string;
  stop(): Promise<void>;
}

/** The demo client sees the `acme` workspace only; the upstream person's own `jdoe` stays hidden. */
export interface DemoListen {
  host: string;
  port: number;
  /** HTTPS as api.bitbucket.org and bitbucket.org (what Jenkins talks to in compose). */
  https?: { port: number; tlsDir: string; hostnames?: string[] };
}

export function demoConfig(fake: FakeBitbucket, listen: DemoListen): Config {
  return validateConfig({
    server: {
      http: { host: listen.host, port: listen.port },
      ...(listen.https ? { https: { host: listen.host, port: listen.https.port, ...(listen.https.hostnames ? { hostnames: listen.https.hostnames } : {}) } } : {}),
    },
    ...(listen.https ? { tls: { dir: listen.https.tlsDir } } : {}),
    upstream: {
      apiUrl: fake.url,
      webUrl: fake.url,
      auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken },
    },
    clients: [
      { id: 'demo', token: { sha256: sha256Hex(DEMO_TOKEN) }, scope: [{ workspace: 'acme' }], permissions: ['read', 'statuses:write', 'webhooks:manage', 'ops:read'] },
    ],
    // Git mirrors on (docs/mirror.md), in a directory of this run: the demo Bitbucket is new on every start.
    mirror: { enabled: true, dir: join(tmpdir(), `bitbucket-sidecar-demo-mirrors-${process.pid}`) },
  });
}

export async function startDemo(options: { host?: string; port?: number; https?: DemoListen['https']; sidecar?: SidecarOptions } = {}): Promise<Demo> {
  const fake = await startFakeBitbucket({ seed: 'demo' });
  try {
    const config = demoConfig(fake, { host: options.host ?? '127.0.0.1', port: options.port ?? 8080, https: options.https });
    const running = await startSidecar(config, options.sidecar);
    return {
      fake,
      running,
      token: DEMO_TOKEN,
      async stop() {
        await running.stop(2000);
        await fake.close();
        if (config.mirror.dir) rmSync(config.mirror.dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await fake.close();
    throw e;
  }
}

export function demoBanner(demo: Demo): string {
  const u = demo.running.httpUrl;
  const auth = `-u '${DEMO_EMAIL}:${demo.token}'`;
  return [
    '',
    'bitbucket-sidecar demo is running.',
    `  Sidecar:              ${u}  (API face: ${u}/2.0/..., git: ${u}/acme/service-api.git)`,
    `  Demo Bitbucket:       ${demo.fake.url}  (fake upstream, workspaces acme, jdoe, other)`,
    `  Client "demo" token:  ${demo.token}`,
    '  (scope: workspace acme; the token is public and only works against the demo Bitbucket)',
    `  Its permissions:      ${demoPermissions(demo).join(', ')}`,
    '  (it can also write build statuses and manage webhooks, and read metrics: a real client gets only what it needs)',
    ...(demo.running.httpsPort !== undefined
      ? [`  HTTPS (as api.bitbucket.org / bitbucket.org): port ${demo.running.httpsPort}; trust ${demo.running.sidecar.config.tls.dir}/ca.pem`]
      : []),
    '',
    'Try:',
    `  curl -s ${auth} '${u}/2.0/repositories/acme?pagelen=100'`,
    `  curl -s ${auth} '${u}/2.0/repositories/acme/service-api/src/main/Jenkinsfile?format=meta'`,
    `  curl -s -o /dev/null -w '%{http_code}\\n' ${auth} ${u}/2.0/repositories/jdoe/secret-notes   # 404: out of scope`,
    `  curl -s ${auth} ${u}/_sidecar/metrics | grep '^bitbucket_sidecar_mirror'   # answers from the git mirrors (metrics need ops:read)`,
    `  git -c credential.helper= clone '${gitUrl(u, demo.token)}' /tmp/service-api   # git through the sidecar (and its mirror)`,
    '',
  ].join('\n');
}

function demoPermissions(demo: Demo): string[] {
  return demo.running.sidecar.config.clients.find((c) => c.id === 'demo')?.permissions ?? [];
}

/** The clone URL with the demo credential in it (acceptable only because the demo token is public). */
function gitUrl(sidecarUrl: string, token: string): string {
  const u = new URL('/acme/service-api.git', sidecarUrl);
  u.username = encodeURIComponent(DEMO_EMAIL);
  u.password = token;
  return u.href;
}
