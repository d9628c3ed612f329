import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { FakeBitbucket, FakeBitbucketOptions, LoggedRequest } from '../../src/fake-bitbucket';
import type { Mirrors } from '../../src/mirror';
import { rewriteLinks } from '../../src/respond/links';
import type { SidecarOptions } from '../../src/sidecar';
import { PluginClient } from '../helpers/plugin';
import { basicAuth, startStack, type Stack, type StackClient } from '../helpers/stack';

export const API = 'http://api.bitbucket.org/2.0/repositories';

export interface MirrorStack extends Stack {
  dir: string;
  mirrors: Mirrors;
  plugin: PluginClient;
  /** The fake's own answer for a path (`/2.0/...?...`), fetched directly with the upstream credential. */
  direct(pathAndQuery: string): Promise<{ status: number; json: any; body: Buffer }>;
  /** REST (kind 'api') requests the fake received since `from` (an index into its log). */
  apiSince(from: number): LoggedRequest[];
  gitSince(from: number): LoggedRequest[];
}

/**
 * The fake, and a sidecar with git mirrors on (in a temporary directory removed by `stop`). Requests
 * wait up to 60 s for a clone or fetch (`waitSeconds`), so that a loaded machine does not turn a
 * slow clone into an upstream answer; tests about that wait set their own.
 */
export async function startMirrorStack(
  options: {
    clients?: StackClient[];
    fake?: FakeBitbucketOptions;
    /** Another stack's fake (not closed by `stop`). */
    fakeInstance?: FakeBitbucket;
    /** A state directory to use (and keep) instead of a fresh temporary one. */
    dir?: string;
    mirror?: Record<string, unknown>;
    config?: Record<string, unknown>;
    sidecar?: SidecarOptions;
  } = {},
): Promise<MirrorStack> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'mirror-test-'));
  const clients = options.clients ?? [{ id: 'jenkins', scope: [{ workspace: 'acme' }] }];
  const stack = await startStack(clients, {
    fake: options.fake,
    fakeInstance: options.fakeInstance,
    sidecar: options.sidecar,
    config: { state: { dir }, mirror: { enabled: true, dir: join(dir, 'mirrors'), refreshSeconds: 0, waitSeconds: 60, ...options.mirror }, ...options.config },
  });
  const plugin = new PluginClient(stack.url, basicAuth('jenkins@ci.example', stack.tokens[clients[0].id]));
  const restAuth = basicAuth(stack.fake.credentials.email, stack.fake.credentials.apiToken);
  return {
    ...stack,
    dir,
    mirrors: stack.running.sidecar.mirrors,
    plugin,
    async direct(pathAndQuery) {
      const res = await request(`${stack.fake.url}${pathAndQuery}`, { headers: { authorization: restAuth } });
      const body = Buffer.from(await res.body.arrayBuffer());
      let json: any;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, json, body };
    },
    apiSince: (from) => stack.fake.requests.slice(from).filter((r) => r.kind === 'api'),
    gitSince: (from) => stack.fake.requests.slice(from).filter((r) => r.kind === 'git'),
    async stop() {
      await stack.stop();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The fake's links as the sidecar hands them to a client that called `http://api.bitbucket.org`. */
export function asClientSees(fakeUrl: string, json: unknown): unknown {
  return rewriteLinks(json, { upstreamApi: fakeUrl, upstreamWeb: fakeUrl, clientApi: 'http://api.bitbucket.org', clientWeb: 'http://bitbucket.org' });
}

/**
 * The documented differences of mirror answers (docs/mirror.md): git does not know which
 * Bitbucket account an e-mail address belongs to, so `author.user` / `tagger.user` are absent.
 */
export function withoutDocumentedDifferences(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDocumentedDifferences);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === 'user' && o.type === 'author') continue;
      out[k] = withoutDocumentedDifferences(v);
    }
    return out;
  }
  return value;
}

/** Resolves when `predicate` holds (bounded; no wall-clock assertion). */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!(await predicate())) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
