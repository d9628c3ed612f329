import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { organisationScan, ScanClient, type ScanSummary } from '../../bench/scan';
import type { FakeBitbucket } from '../../src/fake-bitbucket';
import type { SidecarOptions } from '../../src/sidecar';
import { basicAuth, startStack, type Stack } from '../helpers/stack';

export const API_BASE = 'http://api.bitbucket.org';
export const API = `${API_BASE}/2.0/repositories`;
export const CLIENT = { id: 'jenkins', scope: [{ workspace: 'acme' }], permissions: ['read', 'ops:read'] };

/**
 * A sidecar in front of `fake` sharing `redisUrl` (its own process state: memory tier, governor,
 * scope facts — only Redis is shared). Resolves once Redis is usable, unless `waitUp` is false.
 */
export async function startShared(
  fake: FakeBitbucket,
  redisUrl: string | undefined,
  options: { keyPrefix: string; shared?: Record<string, unknown>; redis?: Record<string, unknown>; config?: Record<string, unknown>; sidecar?: SidecarOptions; waitUp?: boolean; clients?: typeof CLIENT[] },
): Promise<Stack> {
  const { cache, ...rest } = (options.config ?? {}) as { cache?: Record<string, unknown> };
  const shared = redisUrl === undefined ? undefined : { redis: { url: redisUrl, keyPrefix: options.keyPrefix, ...options.redis }, ...options.shared };
  const stack = await startStack(options.clients ?? [CLIENT], { fakeInstance: fake, config: { ...rest, cache: { ...cache, ...(shared ? { shared } : {}) } }, sidecar: options.sidecar });
  if (shared && options.waitUp !== false && !(await stack.running.sidecar.shared!.whenUp(10_000))) throw new Error('the sidecar did not connect to Redis');
  return stack;
}

export const prefix = (): string => `test-${randomBytes(4).toString('hex')}:`;

export function scanClient(stack: Stack, extra: Partial<ConstructorParameters<typeof ScanClient>[0]> = {}): ScanClient {
  return new ScanClient({ serverUrl: stack.url, apiBase: API_BASE, authorization: basicAuth('jenkins@ci.example', stack.tokens.jenkins), connections: 4, ...extra });
}

/** One organisation scan of `workspace` through `stack` (the plugin's sequence, bench/scan.ts). */
export async function scan(stack: Stack, workspace = 'acme', parallelRepositories = 2, client = scanClient(stack)): Promise<{ summary: ScanSummary; client: ScanClient }> {
  try {
    const summary = await organisationScan(client, API_BASE, { workspace, parallelRepositories });
    return { summary, client };
  } finally {
    await client.close();
  }
}

export function apiCalls(fake: FakeBitbucket): number {
  return fake.requests.filter((r) => r.kind === 'api').length;
}

export interface Answer {
  status: number;
  text: string;
  cacheStatus: string;
}

export async function get(stack: Stack, url: string): Promise<Answer> {
  const u = new URL(url);
  const res = await request(new URL(u.pathname + u.search, stack.url), { headers: { host: u.host, authorization: basicAuth('jenkins@ci.example', stack.tokens.jenkins) } });
  const text = await res.body.text();
  return { status: res.statusCode, text, cacheStatus: String(res.headers['cache-status'] ?? '') };
}

/** `/_sidecar/ready` and `/_sidecar/metrics` of a stack. */
export async function ops(stack: Stack): Promise<{ ready: { status: number; json: any }; redisUp: number | undefined }> {
  const r = await request(`${stack.url}/_sidecar/ready?upstream=skip`);
  const json = await r.body.json();
  const m = await request(`${stack.url}/_sidecar/metrics`, { headers: { authorization: basicAuth('prometheus', stack.tokens.jenkins) } });
  const text = await m.body.text();
  const line = /^bitbucket_sidecar_redis_up (\d+)/m.exec(text);
  return { ready: { status: r.statusCode, json }, redisUp: line ? Number(line[1]) : undefined };
}

/** Polls until `cond` holds (a bound on waiting, not a timing assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 10): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
