/**
 * The HTTP server: one port for the API face (/2.0/...), the web face (git smart HTTP, avatars) and the
 * /_fake/ control face. Pipeline per request: parse target → log → read body → faults → auth → rate
 * limit → route → `fields=` filter → write.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkApiAuth, DEFAULT_CREDENTIALS, WWW_AUTHENTICATE } from './auth';
import { applyFields } from '../core/fields';
import { RATE_LIMIT_MESSAGE, syntheticFaultResult, writeBrokenResult } from './faults';
import { apiError, headerRecord, readBody, writeResult, type ApiResult } from './http-util';
import { createBranch, deleteBranch, pushCommit } from './push';
import { parseTarget, type ParsedTarget } from './request-target';
import { handleApi } from './routes-api';
import { handleControl } from './routes-control';
import { handleGit, handleWeb } from './routes-web';
import { LfsStore } from './lfs-store';
import { handleLfs, isLfsTarget } from './routes-lfs';
import { applySeed } from './seed-apply';
import { demoSeed } from './seed-demo';
import { generatedSeed } from './seed-generated';
import { FakeState } from './state';
import type { FakeBitbucket, FakeBitbucketOptions } from './types';

/** What startFakeBitbucket returns: the FakeBitbucket interface plus a few test helpers. */
export interface FakeBitbucketServer extends FakeBitbucket {
  /** where the git repositories live (`repos/{ws}/{slug}.git`, shared objects in `store.git`) */
  dataDir: string;
  /** create a branch pointing at a ref or hash of the same repository */
  createBranch(workspace: string, repo: string, branch: string, from: string): Promise<string>;
  deleteBranch(workspace: string, repo: string, branch: string): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Temp data dirs of running fakes, removed synchronously if the process exits without close(). */
const ownedDirs = new Set<string>();
let exitHook = false;
function ownDataDir(dir: string): void {
  ownedDirs.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const d of ownedDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

async function apiPipeline(state: FakeState, req: IncomingMessage, target: ParsedTarget, body: Buffer): Promise<ApiResult> {
  if (target.badEncoding) return apiError(400, 'Malformed percent-encoding in the request path');
  const key = checkApiAuth(req.headers.authorization, state.credentials);
  if (!key) {
    return { status: 401, headers: { 'www-authenticate': WWW_AUTHENTICATE }, json: { type: 'error', error: { message: 'Unauthorized' } } };
  }
  if (target.segments[1] === 'repositories' && !state.rateLimiter.admit(key)) {
    return { status: 429, headers: { 'content-type': 'text/plain' }, body: RATE_LIMIT_MESSAGE };
  }
  let result: ApiResult;
  try {
    result = await handleApi({ method: req.method ?? 'GET', target, body, headers: headerRecord(req), state });
  } catch (e) {
    return apiError(500, `Internal error in the fake: ${(e as Error).message}`);
  }
  const fields = target.query.fields?.join(',');
  if (fields && result.json !== undefined && result.status >= 200 && result.status < 300) {
    result = { ...result, json: applyFields(result.json, fields) };
  }
  return result;
}

async function handle(state: FakeState, lfs: LfsStore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const target = parseTarget(req.url ?? '/', state.model);
  if (target.kind === 'control') {
    const body = await readBody(req);
    writeResult(req, res, await handleControl(state, method, target, body));
    return;
  }
  const entry = state.log.add(method, target, headerRecord(req), Date.now());
  // record the status as soon as the head is written (broken responses never 'finish')
  const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse;
  res.writeHead = ((...args: unknown[]) => {
    const out = writeHead(...args);
    entry.status = res.statusCode;
    return out;
  }) as typeof res.writeHead;
  // Git LFS (batch API and media storage) streams its own bodies and has no faults.
  if (isLfsTarget(target)) return handleLfs(state, lfs, req, res, target, entry);
  let body: Buffer = Buffer.alloc(0);
  if (target.kind !== 'git') {
    body = await readBody(req);
    entry.body = body;
  }
  const { latencyMs, terminal } = state.faults.take(method, target.path, target.rawPath);
  if (latencyMs > 0) await sleep(latencyMs);
  if (terminal) {
    if (target.kind === 'git') req.resume();
    const synthetic = syntheticFaultResult(terminal);
    if (synthetic) {
      writeResult(req, res, synthetic);
      return;
    }
    const normal: ApiResult =
      target.kind === 'api'
        ? await apiPipeline(state, req, target, body)
        : target.kind === 'web'
          ? handleWeb(state, method, target)
          : { status: 200, headers: { 'content-type': 'application/x-git-upload-pack-advertisement' }, body: '001e# service=git-upload-pack\n0000' };
    writeBrokenResult(res, req, terminal.kind as 'reset' | 'truncate', normal);
    return;
  }
  if (target.kind === 'api') writeResult(req, res, await apiPipeline(state, req, target, body));
  else if (target.kind === 'git') await handleGit(state, req, res, target, entry);
  else writeResult(req, res, handleWeb(state, method, target));
}

export async function startFakeBitbucket(opts: FakeBitbucketOptions = {}): Promise<FakeBitbucketServer> {
  const credentials = opts.credentials ?? DEFAULT_CREDENTIALS;
  const ownDir = !opts.dataDir;
  let dataDir: string;
  if (opts.dataDir) {
    dataDir = opts.dataDir;
    await mkdir(dataDir, { recursive: true });
    if ((await readdir(dataDir)).length > 0) throw new Error(`fake-bitbucket dataDir ${dataDir} is not empty`);
  } else {
    dataDir = await mkdtemp(join(tmpdir(), 'fake-bitbucket-'));
    ownDataDir(dataDir);
  }
  const seed = opts.seed ?? 'demo';
  let model;
  try {
    model = await applySeed(seed === 'demo' ? demoSeed() : generatedSeed(seed), dataDir);
  } catch (e) {
    if (ownDir) {
      await rm(dataDir, { recursive: true, force: true });
      ownedDirs.delete(dataDir);
    }
    throw e;
  }

  const server = createServer();
  server.keepAliveTimeout = 5000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;
  const state = new FakeState(url, model, credentials, dataDir, opts.now ?? Date.now);
  const lfs = new LfsStore(join(dataDir, 'lfs'));

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(state, lfs, req, res).catch((e: Error) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ type: 'error', error: { message: `Internal error in the fake: ${e.message}` } }));
      } else res.destroy();
    });
  });
  server.on('clientError', (_e, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const repoOrThrow = (ws: string, repo: string) => {
    const r = model.findRepository(ws, repo);
    if (!r) throw new Error(`fake-bitbucket: no repository ${ws}/${repo}`);
    return r;
  };
  let closed: Promise<void> | undefined;
  return {
    url,
    credentials,
    requests: state.log.entries,
    model,
    dataDir,
    clearLog: () => state.log.clear(),
    addFault: (f) => state.faults.add(f),
    clearFaults: () => state.faults.clear(),
    setRateLimit: (perHour) => state.rateLimiter.set(perHour),
    lfsPut: (ws, repo, data) => lfs.put(repoOrThrow(ws, repo).workspace, repoOrThrow(ws, repo).slug, data),
    lfsHas: (ws, repo, oid) => lfs.size(repoOrThrow(ws, repo).workspace, repoOrThrow(ws, repo).slug, oid) !== undefined,
    pushCommit: (ws, repo, branch, files, message) => pushCommit(state, repoOrThrow(ws, repo), branch, files, message),
    createBranch: async (ws, repo, branch, from) => {
      const r = repoOrThrow(ws, repo);
      const sha = await state.reader(r).resolveCommitish(from);
      if (!sha) throw new Error(`fake-bitbucket: unknown ref ${from}`);
      if (!(await createBranch(state, r, branch, sha))) throw new Error(`fake-bitbucket: cannot create ${branch}`);
      return sha;
    },
    deleteBranch: async (ws, repo, branch) => {
      if (!(await deleteBranch(state, repoOrThrow(ws, repo), branch))) throw new Error(`fake-bitbucket: cannot delete ${branch}`);
    },
    close: () => {
      closed ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        state.close();
        if (ownDir) {
          await rm(dataDir, { recursive: true, force: true });
          ownedDirs.delete(dataDir);
        }
      })();
      return closed;
    },
  };
}
