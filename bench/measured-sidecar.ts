/**
 * The sidecar for bench:hit and bench:miss: bench/sidecar-child.ts in its own process, scoped to one
 * workspace of the fake Bitbucket, caching for an hour, no budget in the way; preloads
 * bench/steady-profile.ts when STEADY_PROFILE is set and SIDECAR_REQUIRE when given.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { mintToken, sha256Hex } from '../src/auth/tokens';
import type { FakeBitbucketServer } from '../src/fake-bitbucket';

export interface MeasuredSidecar {
  proc: ChildProcess;
  url: string;
  /** Basic credentials of its one client. */
  authorization: string;
  stop(): Promise<void>;
}

export async function startMeasuredSidecar(fake: FakeBitbucketServer, workspace: string): Promise<MeasuredSidecar> {
  const token = mintToken();
  const execArgv = process.env.STEADY_PROFILE ? ['-r', path.join(__dirname, 'steady-profile.js')] : [];
  if (process.env.SIDECAR_REQUIRE) execArgv.push('-r', process.env.SIDECAR_REQUIRE);
  const proc = fork(path.join(__dirname, 'sidecar-child.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  let seq = 0;
  const ask = (m: Record<string, unknown>) =>
    new Promise<{ url: string; error?: string }>((resolve) => {
      const id = ++seq;
      const on = (r: { id: number; url: string }) => {
        if (r.id !== id) return;
        proc.off('message', on);
        resolve(r);
      };
      proc.on('message', on);
      proc.send({ id, ...m });
    });
  const config = {
    server: { http: { host: '127.0.0.1', port: 0 } },
    upstream: { apiUrl: fake.url, webUrl: fake.url, auth: { type: 'basic', username: fake.credentials.email, password: fake.credentials.apiToken }, budget: { repositoryRequestsPerHour: 1_000_000 } },
    clients: [{ id: 'jenkins', token: { sha256: sha256Hex(token) }, scope: [{ workspace }], permissions: ['read'] }],
    cache: { maxBytes: '512MiB', freshness: { immutableSeconds: 86_400, metadataSeconds: 3600, listSeconds: 3600, notFoundSeconds: 3600 } },
  };
  const started = await ask({ cmd: 'start', config });
  if (started.error) throw new Error(started.error);
  return {
    proc,
    url: started.url,
    authorization: `Basic ${Buffer.from(`jenkins@ci.example:${token}`).toString('base64')}`,
    async stop() {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.send({ id: ++seq, cmd: 'stop' });
      await exited;
    },
  };
}

/** User + system CPU time of a process, in milliseconds (clock ticks are 10 ms on Linux). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
