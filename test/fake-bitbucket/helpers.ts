/** Shared helpers for the fake-bitbucket tests: authenticated requests and git child processes. */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import type { FakeBitbucket } from '../../src/fake-bitbucket';

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export function apiAuth(fake: FakeBitbucket): string {
  return basic(fake.credentials.email, fake.credentials.apiToken);
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: <T = any>() => T; // tests read loosely-typed JSON
}

/**
 * Raw HTTP request with the path sent exactly as given (no URL normalisation), so %2F, %7B…%7D, trailing
 * slashes and absolute-form targets reach the server untouched.
 */
export function raw(
  fake: FakeBitbucket,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; auth?: string | false } = {},
): Promise<Reply> {
  const u = new URL(fake.url);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.auth !== false) headers.authorization = opts.auth ?? apiAuth(fake);
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: Number(u.port), method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const get = (fake: FakeBitbucket, path: string, opts: Parameters<typeof raw>[3] = {}): Promise<Reply> =>
  raw(fake, 'GET', path, opts);

/** Follow `next` links (absolute, on the fake's origin) until the last page; returns every page. */
export async function allPages(fake: FakeBitbucket, path: string): Promise<Array<Record<string, any>>> {
  const pages = [];
  let next: string | undefined = path;
  while (next) {
    const r = await get(fake, next);
    if (r.status !== 200) throw new Error(`${next} → ${r.status} ${r.text}`);
    const page = r.json();
    pages.push(page);
    if (page.next !== undefined) {
      expect(page.next.startsWith(`${fake.url}/2.0/`)).toBe(true);
      next = page.next.slice(fake.url.length);
    } else next = undefined;
    if (pages.length > 1000) throw new Error('runaway pagination');
  }
  return pages;
}

export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the git CLI without user/system config and without prompts. */
export function runGit(args: string[], cwd?: string, env: Record<string, string> = {}): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const clean: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GIT_')) clean[k] = v;
    const child = spawn('git', args, {
      cwd,
      env: {
        ...clean,
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_NAME: 'Tester',
        GIT_AUTHOR_EMAIL: 'tester@example.com',
        GIT_COMMITTER_NAME: 'Tester',
        GIT_COMMITTER_EMAIL: 'tester@example.com',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** http://x-bitbucket-api-token-auth:TOKEN@127.0.0.1:PORT/{ws}/{repo}.git */
export function gitUrl(fake: FakeBitbucket, fullName: string, user = 'x-bitbucket-api-token-auth'): string {
  const u = new URL(fake.url);
  return `http://${user}:${encodeURIComponent(fake.credentials.apiToken)}@${u.host}/${fullName}.git`;
}
