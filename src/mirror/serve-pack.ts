/**
 * Serves git smart HTTP from a local bare repository with `git upload-pack --stateless-rpc`
 * (protocol v0 and v2, gzip request bodies): used for mirrors and for fork-grant repositories.
 * Pack data is streamed with backpressure and the child killed when the client goes away.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import { mirrorGitEnv } from './git-run';

const GIT_PROTOCOL = /^[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?(:[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?)*$/;

export interface ServePackOptions {
  dir: string;
  /** `info/refs` (the ref advertisement) rather than a `git-upload-pack` POST. */
  advertise: boolean;
  /** `-c key=value` settings for upload-pack (which wants it accepts). */
  config: readonly string[];
  log: Logger;
  /** For logs: the repository served. */
  repository: string;
  /** What the client reads when upload-pack fails. */
  failure: string;
}

function pkt(line: string): string {
  return `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;
}

export function serveUploadPack(req: IncomingMessage, res: ServerResponse, opts: ServePackOptions): Promise<void> {
  const header = req.headers['git-protocol'];
  const protocol = typeof header === 'string' && header.length <= 256 && GIT_PROTOCOL.test(header) ? header : undefined;
  const v2 = protocol !== undefined && /(^|:)version=2(:|$)/.test(protocol);
  const args = [...opts.config.flatMap((c) => ['-c', c]), 'upload-pack', '--stateless-rpc', '--strict', ...(opts.advertise ? ['--advertise-refs'] : []), opts.dir];
  return new Promise<void>((resolve) => {
    const child = spawn('git', args, { env: mirrorGitEnv({ GIT_PROTOCOL: protocol }), stdio: ['pipe', 'pipe', 'pipe'] });
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      resolve();
    };
    const errors: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => {
      if (errors.length < 16) errors.push(c);
    });
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => {
      opts.log.warn({ repository: opts.repository, err: e.message }, 'git upload-pack could not start');
      if (!res.headersSent) sendPlain(res, 500, opts.failure);
      else res.destroy();
      done();
    });
    res.once('close', () => {
      if (!res.writableFinished) child.kill('SIGKILL');
      done();
    });
    child.on('close', (code) => {
      if (code !== 0 && !res.writableFinished) {
        opts.log.warn({ repository: opts.repository, code, err: Buffer.concat(errors).toString('utf8').trim().slice(0, 300) }, 'git upload-pack failed');
        if (!res.headersSent) sendPlain(res, 500, opts.failure);
        else res.destroy();
      }
      done();
    });

    res.writeHead(200, {
      'content-type': opts.advertise ? 'application/x-git-upload-pack-advertisement' : 'application/x-git-upload-pack-result',
      'cache-control': 'no-cache, max-age=0, must-revalidate',
    });
    if (opts.advertise && !v2) res.write(`${pkt('# service=git-upload-pack\n')}0000`);
    child.stdout.pipe(res);
    if (opts.advertise || req.method === 'HEAD') {
      req.resume();
      child.stdin.end();
    } else if (/^\s*(x-)?gzip\s*$/i.test(String(req.headers['content-encoding'] ?? ''))) {
      const gunzip = createGunzip();
      gunzip.on('error', () => child.kill('SIGKILL'));
      req.pipe(gunzip).pipe(child.stdin);
    } else {
      req.pipe(child.stdin);
    }
  });
}

export function sendPlain(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return void res.destroy();
  const body = Buffer.from(`${message}\n`);
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-cache' });
  res.end(body);
}
