import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';

/** Collects the sidecar's log lines (secret-hygiene assertions). */
export function lineCollector(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  /** true once the upstream saw the connection close before it finished answering */
  aborted: boolean;
  closed: Promise<void>;
}

export type Responder = (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void;

/** A scripted upstream standing in for bitbucket.org: records what reaches it, answers per test. */
export async function scriptedUpstream(): Promise<{ url: string; port: number; seen: SeenRequest[]; respond: (r: Responder) => void; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  let responder: Responder = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement' });
    res.end('001e# service=git-upload-pack\n0000');
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let markClosed!: () => void;
    const entry: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      aborted: false,
      closed: new Promise<void>((r) => (markClosed = r)),
    };
    seen.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.aborted = true;
      markClosed();
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      entry.body = Buffer.concat(chunks);
    });
    responder(req, res, entry);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    respond: (r) => {
      responder = r;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Environment for a git child: no inherited GIT_* or CA/proxy variables, no user or system config,
 * never prompting. `GIT_TOKEN` feeds the credential helper used by `gitArgs`.
 */
export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const drop = /^(GIT_|SSL_CERT_|CURL_CA_BUNDLE$|NODE_EXTRA_CA_CERTS$|REQUESTS_CA_BUNDLE$|https?_proxy$|HTTPS?_PROXY$|all_proxy$|ALL_PROXY$|no_proxy$|NO_PROXY$)/;
  for (const [k, v] of Object.entries(process.env)) if (!drop.test(k)) env[k] = v;
  Object.assign(env, {
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    LC_ALL: 'C',
    GIT_AUTHOR_NAME: 'Sidecar Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Sidecar Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
  });
  return { ...env, ...extra };
}

/**
 * Options that make git answer a 401 challenge the way Jenkins' git client does: a credential
 * helper handing over `x-bitbucket-api-token-auth` and the sidecar token (from the environment,
 * so it never appears on a command line).
 */
export const CREDENTIAL_HELPER = ['-c', 'credential.helper=', '-c', 'credential.helper=!f() { test "$1" = get && echo username=${GIT_USER:-x-bitbucket-api-token-auth} && echo password=$GIT_TOKEN; }; f'];

/** `group`: run git in its own process group, so that the whole tree (git, git-remote-http) can be killed like a CI job. */
export function spawnGit(args: string[], opts: { cwd?: string; token?: string; user?: string; env?: Record<string, string>; group?: boolean } = {}): ChildProcess {
  const extra: Record<string, string> = { ...(opts.env ?? {}) };
  if (opts.token) extra.GIT_TOKEN = opts.token;
  if (opts.user) extra.GIT_USER = opts.user;
  const helper = opts.token ? CREDENTIAL_HELPER : ['-c', 'credential.helper='];
  return spawn('git', [...helper, ...args], { cwd: opts.cwd, env: gitEnv(extra), stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group ?? false });
}

export function runGit(args: string[], opts: { cwd?: string; token?: string; user?: string; env?: Record<string, string> } = {}): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const child = spawnGit(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Resolves when `predicate` holds, checking on every event-loop turn (bounded by the jest timeout). */
export async function until(predicate: () => boolean, what: string, limit = 20_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > limit) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
