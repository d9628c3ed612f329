/**
 * Running the git CLI for the mirrors with a predictable environment and the upstream credential
 * kept off every command line.
 *
 * The credential reaches git only through the environment (`GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_n`
 * / `GIT_CONFIG_VALUE_n`, git ≥ 2.31) as an `http.<webUrl>/.extraHeader`, scoped to the upstream
 * web URL: it is never part of a URL, an argument (`ps` shows those to every user) or a file (the
 * mirror's `config` names the remote without user information). `/proc/<pid>/environ` is readable
 * only by the sidecar's own user.
 */
import { spawn } from 'node:child_process';
import { cleanGitEnv } from '../git-objects/env';
import { gitProxyConfig, type OutboundProxy } from '../upstream/proxy';

/** Operator settings for git's TLS that are kept although every other `GIT_*` variable is dropped. */
const KEPT_GIT_VARIABLES = new Set(['GIT_SSL_CAINFO', 'GIT_SSL_CAPATH', 'GIT_EXEC_PATH']);

/**
 * The clean git environment (git-objects/env.ts) keeping the operator's CA settings for git's TLS;
 * the proxy for the upstream is set per URL by `upstreamGitConfig`, so git and REST make the same
 * choice.
 */
export function mirrorGitEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return cleanGitEnv(extra, KEPT_GIT_VARIABLES);
}

/**
 * Environment entries that make git send `authorization` to the upstream web URL (and nowhere
 * else), never follow a redirect (which could carry the request elsewhere) and never ask a
 * credential helper or a terminal, and reach it through the outbound proxy chosen for it (or directly). Protocol v0 costs one request for a fetch that finds nothing
 * new (v2 needs two), which matters when a mirror is checked once per scan.
 */
export function upstreamGitConfig(webUrl: string, authorization: string, proxy?: OutboundProxy): Record<string, string> {
  const pairs: [string, string][] = [
    [`http.${webUrl.replace(/\/+$/, '')}/.extraHeader`, `Authorization: ${authorization}`],
    ...gitProxyConfig(webUrl, proxy),
    ['http.followRedirects', 'false'],
    ['credential.helper', ''],
    ['protocol.version', '0'],
    ['gc.autoDetach', 'false'],
  ];
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return env;
}

export interface GitResult {
  code: number;
  signal?: NodeJS.Signals;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  gitDir?: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: Buffer | string;
  /** Killed (SIGKILL) after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Sees every spawned git process (tests check their command lines). */
  onSpawn?: (pid: number, args: readonly string[]) => void;
  /** stdout beyond this is an error (a misbehaving command must not exhaust memory). */
  maxStdoutBytes?: number;
}

export function runGit(args: string[], opts: RunOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: opts.cwd,
      env: mirrorGitEnv({ ...(opts.gitDir ? { GIT_DIR: opts.gitDir } : {}), ...(opts.env ?? {}) }),
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid, args);
    const out: Buffer[] = [];
    let outBytes = 0;
    const err: Buffer[] = [];
    let errBytes = 0;
    let overflow = false;
    const max = opts.maxStdoutBytes ?? 256 * 1024 ** 2;
    child.stdout.on('data', (c: Buffer) => {
      outBytes += c.length;
      if (outBytes > max) {
        overflow = true;
        child.kill('SIGKILL');
        return;
      }
      out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      // Keep the first 64 KiB: enough for any error message.
      if (errBytes < 65_536) err.push(c);
      errBytes += c.length;
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    timer?.unref();
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (overflow) return reject(new Error(`git ${args[0]} wrote more than ${max} bytes`));
      resolve({ code: code ?? -1, signal: signal ?? undefined, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A one-line, credential-free summary of git's stderr for logs. */
export function gitError(r: GitResult): string {
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(hint|warning):/i.test(l));
  const text = lines.slice(-3).join(' | ') || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
  return text.replace(/(authorization:\s*)\S+(\s+\S+)?/gi, '$1[redacted]').slice(0, 500);
}
