import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { request } from 'undici';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { validateConfig } from '../../src/config/load';
import type { FakeBitbucket } from '../../src/fake-bitbucket';
import { createLogger } from '../../src/ops/logger';
import { startSidecar, type RunningSidecar } from '../../src/serve';
import type { SidecarOptions } from '../../src/sidecar';
import { logCollector } from '../helpers/stack';

/** Hand-written webhook bodies shaped like Bitbucket Cloud's (test/fixtures/webhooks). */
export const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'webhooks');

/** The raw bytes of an in-repo fixture (signatures are computed over exactly these). */
export function fixture(name: string): Buffer {
  return readFileSync(path.join(FIXTURES, name));
}

export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  body: Buffer;
  status: number;
}

/** A stand-in for Jenkins' /bitbucket-scmsource-hook/notify: records deliveries, answers `status`. */
export interface FakeJenkins {
  url: string;
  port: number;
  received: ReceivedHook[];
  status: number;
  /** Delivered = answered 2xx. */
  delivered(requestUuid?: string): ReceivedHook[];
  close(): Promise<void>;
}

export async function startJenkins(port = 0, status = 200): Promise<FakeJenkins> {
  const received: ReceivedHook[] = [];
  const state = { status };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks), status: state.status });
      res.writeHead(state.status, { 'content-type': 'text/plain' });
      res.end(state.status < 300 ? 'ok' : 'unavailable');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/bitbucket-scmsource-hook/notify`,
    port: actual,
    received,
    get status() {
      return state.status;
    },
    set status(s: number) {
      state.status = s;
    },
    delivered: (uuid) => received.filter((r) => r.status < 300 && (uuid === undefined || r.headers['x-request-uuid'] === uuid)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Polls until `cond` holds (a bound on waiting, not a timing assertion). */
export async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface RelayClient {
  id: string;
  scope: { workspace: string; projects?: string[]; repositories?: string[] }[];
  webhooks?: { forwardTo?: string; secret?: string };
}

export interface RelayStack {
  running: RunningSidecar;
  url: string;
  tokens: Record<string, string>;
  logs: string[];
  stop(): Promise<void>;
}

/** A sidecar in front of `fake` with the given webhook/refresh configuration (its own state dir unless given). */
export async function startRelay(
  fake: FakeBitbucket,
  clients: RelayClient[],
  config: Record<string, unknown>,
  options: { stateDir?: string; tokens?: Record<string, string>; sidecar?: SidecarOptions } = {},
): Promise<RelayStack> {
  const tokens: Record<string, string> = { ...options.tokens };
  for (const c of clients) tokens[c.id] ??= mintToken();
  const stateDir = options.stateDir ?? mkdtempSync(path.join(tmpdir(), 'sidecar-state-'));
  const cfg = validateConfig({
    server: { http: { host: '127.0.0.1', port: 0 } },
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken } },
    clients: clients.map((c) => ({ id: c.id, token: { sha256: sha256Hex(tokens[c.id]) }, scope: c.scope, ...(c.webhooks ? { webhooks: c.webhooks } : {}) })),
    state: { dir: stateDir },
    ...config,
  });
  const { lines, stream } = logCollector();
  const running = await startSidecar(cfg, { logger: createLogger({ level: 'debug', destination: stream }), ...options.sidecar });
  return {
    running,
    url: running.httpUrl,
    tokens,
    logs: lines,
    async stop() {
      await running.stop(200);
      if (!options.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export async function deliver(sidecarUrl: string, body: Buffer | string, headers: Record<string, string>, pathname = '/_sidecar/webhooks/bitbucket'): Promise<{ status: number; json: any }> {
  const r = await request(`${sidecarUrl}${pathname}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await r.body.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.statusCode, json };
}

let seq = 0;
export const requestUuid = (): string => `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;

/**
 * A repo:push body shaped like Bitbucket's (fixture `repo-push.json`), about `ws/repo` with one
 * updated branch.
 */
export function pushBody(ws: string, repo: string, project: string, branch: string, hash: string, opts: { created?: boolean; type?: 'branch' | 'tag' } = {}): Buffer {
  const j = JSON.parse(fixture('repo-push.json').toString('utf8'));
  j.repository.full_name = `${ws}/${repo}`;
  j.repository.name = repo;
  j.repository.project = { ...j.repository.project, key: project };
  const change = j.push.changes[0];
  const type = opts.type ?? 'branch';
  change.new = { ...change.new, type, name: branch, target: { ...change.new.target, hash } };
  change.old = opts.created ? null : { ...change.old, type, name: branch };
  change.created = Boolean(opts.created);
  change.closed = false;
  j.push.changes = [change];
  return Buffer.from(JSON.stringify(j));
}

/** A pullrequest:* body shaped like Bitbucket's (fixture `pullrequest-created.json`). */
export function pullRequestBody(ws: string, repo: string, project: string, id: number, source: string, destination: string): Buffer {
  const j = JSON.parse(fixture('pullrequest-created.json').toString('utf8'));
  j.repository.full_name = `${ws}/${repo}`;
  j.repository.project = { ...j.repository.project, key: project };
  j.pullrequest.id = id;
  j.pullrequest.source.repository.full_name = `${ws}/${repo}`;
  j.pullrequest.source.branch.name = source;
  j.pullrequest.destination.repository.full_name = `${ws}/${repo}`;
  j.pullrequest.destination.branch.name = destination;
  return Buffer.from(JSON.stringify(j));
}

export function headersFor(eventKey: string, uuid = requestUuid(), extra: Record<string, string> = {}): Record<string, string> {
  return { 'x-event-key': eventKey, 'x-request-uuid': uuid, 'x-hook-uuid': '{d7b3d0c9-0b7e-4c71-9b8b-000000000001}', 'user-agent': 'Bitbucket-Webhooks/2.0', ...extra };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}
