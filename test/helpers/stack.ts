import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { validateConfig } from '../../src/config/load';
import { startFakeBitbucket, type FakeBitbucket, type FakeBitbucketOptions } from '../../src/fake-bitbucket';
import { createLogger } from '../../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../../src/serve';
import type { SidecarOptions } from '../../src/sidecar';

export interface StackClient {
  id: string;
  scope: { workspace: string; projects?: string[]; repositories?: string[] }[];
  permissions?: string[];
  budgetWeight?: number;
}

export interface Stack {
  fake: FakeBitbucket;
  running: RunningSidecar;
  url: string;
  tokens: Record<string, string>;
  logs: string[];
  stop(): Promise<void>;
}

/** Collects every log line the sidecar writes, for assertions (audit, secret hygiene). */
export function logCollector(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

/** The fake Bitbucket and a sidecar in front of it, on ephemeral loopback ports. */
export async function startStack(
  clients: StackClient[],
  options: { fake?: FakeBitbucketOptions; fakeInstance?: FakeBitbucket; config?: Record<string, unknown>; sidecar?: SidecarOptions } = {},
): Promise<Stack> {
  const fake = options.fakeInstance ?? (await startFakeBitbucket(options.fake ?? { seed: 'demo' }));
  const tokens: Record<string, string> = {};
  for (const c of clients) tokens[c.id] = mintToken();
  // A state directory of its own unless the test names one (fork grants persist there).
  const ownState = options.config?.state === undefined ? mkdtempSync(join(tmpdir(), 'sidecar-state-')) : undefined;
  const config = validateConfig({
    server: { http: { host: '127.0.0.1', port: 0 } },
    ...(ownState ? { state: { dir: ownState } } : {}),
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken } },
    clients: clients.map((c) => ({ id: c.id, token: { sha256: sha256Hex(tokens[c.id]) }, scope: c.scope, permissions: c.permissions ?? ['read'], ...(c.budgetWeight ? { budgetWeight: c.budgetWeight } : {}) })),
    ...options.config,
  });
  const { lines, stream } = logCollector();
  const running = await startSidecar(config, { logger: createLogger({ level: 'info', destination: stream }), ...options.sidecar });
  return {
    fake,
    running,
    url: running.httpUrl,
    tokens,
    logs: lines,
    async stop() {
      await running.stop(500);
      if (!options.fakeInstance) await fake.close();
      if (ownState) rmSync(ownState, { recursive: true, force: true });
    },
  };
}

export const basicAuth = (user: string, token: string) => `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`;
