/**
 * Git smart HTTP through the real `git http-backend` CGI, streamed both ways (pack data is never buffered
 * here). Gzip request bodies are passed through untouched with HTTP_CONTENT_ENCODING set, and the
 * client's `Git-Protocol` header becomes GIT_PROTOCOL (protocol v2).
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname } from 'node:path';
import { gitEnv } from './git-exec';

export interface BackendOptions {
  gitDir: string;
  /** path below the repository, e.g. `info/refs`, `git-upload-pack` */
  pathRest: string;
  rawQuery: string;
  remoteUser: string;
  /** tee of the request body (for the log) */
  onBodyChunk?: (chunk: Buffer) => void;
  /** runs after the CGI exited and before the response is ended (cache invalidation after a push) */
  beforeEnd?: (exitCode: number) => void;
}

/** Resolves when the response is complete (or the client went away); the value is the CGI exit code. */
export function serveGit(req: IncomingMessage, res: ServerResponse, opts: BackendOptions): Promise<number> {
  return new Promise((resolve) => {
    const h = req.headers;
    const env = gitEnv({
      GIT_PROJECT_ROOT: dirname(opts.gitDir),
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${basename(opts.gitDir)}/${opts.pathRest}`,
      REMOTE_USER: opts.remoteUser,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: opts.rawQuery,
      CONTENT_TYPE: h['content-type'] ?? '',
      CONTENT_LENGTH: h['content-length'],
      GIT_PROTOCOL: typeof h['git-protocol'] === 'string' ? h['git-protocol'] : undefined,
      HTTP_GIT_PROTOCOL: typeof h['git-protocol'] === 'string' ? h['git-protocol'] : undefined,
      HTTP_CONTENT_ENCODING: typeof h['content-encoding'] === 'string' ? h['content-encoding'] : undefined,
      SERVER_PROTOCOL: 'HTTP/1.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
    });
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let exitCode = -1;
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      resolve(exitCode);
    };
    const stderr: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`git http-backend failed: ${e.message}\n`);
      } else res.destroy();
      done();
    });
    if (opts.onBodyChunk) req.on('data', (c: Buffer) => opts.onBodyChunk!(c));
    req.pipe(child.stdin);
    req.on('aborted', () => child.kill());
    res.on('close', () => {
      if (!res.writableFinished) child.kill();
    });

    let head: Buffer = Buffer.alloc(0);
    let headersDone = false;
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      let sep = head.indexOf('\r\n\r\n');
      let sepLen = 4;
      if (sep < 0) {
        sep = head.indexOf('\n\n');
        sepLen = 2;
      }
      if (sep < 0) return;
      headersDone = true;
      child.stdout.off('data', onData);
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = parseInt(v, 10) || 200;
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      const restBody = head.subarray(sep + sepLen);
      if (restBody.length) res.write(restBody);
      child.stdout.pipe(res, { end: false });
    };
    child.stdout.on('data', onData);
    child.on('close', (code) => {
      exitCode = code ?? -1;
      if (!headersDone) {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`git http-backend produced no response: ${Buffer.concat(stderr).toString('utf8')}\n`);
        }
        done();
        return;
      }
      try {
        opts.beforeEnd?.(exitCode);
      } finally {
        res.end();
        done();
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) done();
    });
  });
}
