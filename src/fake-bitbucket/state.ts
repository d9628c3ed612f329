/** Everything a request handler needs: model, renderer, git readers, faults, limiter, log. */
import { join } from 'node:path';
import { isoMicros } from './ids';
import { FaultStore } from './faults';
import { ReaderPool } from '../git-objects/cat-file';
import { gitEnv } from './git-exec';
import { RepoReader } from './git-reader';
import type { FakeModel, FakeRepository } from './model';
import { RateLimiter } from './rate-limit';
import { Renderer } from './render';
import { RequestLog } from './request-log';
import type { FakeCredentials } from './types';

export class FakeState {
  readonly pool = new ReaderPool({ env: (gitDir) => gitEnv({ GIT_DIR: gitDir }), max: 16, idleMs: 15_000 });
  readonly faults = new FaultStore();
  readonly log = new RequestLog();
  readonly rateLimiter: RateLimiter;
  readonly render: Renderer;
  private readonly readers = new Map<string, RepoReader>();
  private readonly pushLocks = new Map<string, Promise<unknown>>();

  constructor(
    readonly url: string,
    readonly model: FakeModel,
    readonly credentials: FakeCredentials,
    readonly dataDir: string,
    readonly now: () => number,
  ) {
    this.rateLimiter = new RateLimiter(now);
    this.render = new Renderer(url, model);
  }

  reader(repo: FakeRepository): RepoReader {
    let r = this.readers.get(repo.uuid);
    if (!r || r.gitDir !== repo.gitDir) {
      r = new RepoReader(repo.gitDir, this.pool, join(this.dataDir, 'store.git'));
      this.readers.set(repo.uuid, r);
    }
    return r;
  }

  /** After any ref change: drop cached git state and bump `updated_on`. */
  markPushed(repo: FakeRepository): void {
    this.reader(repo).invalidate();
    repo.updatedOn = isoMicros(Date.now(), `push:${repo.uuid}:${Date.now()}`);
  }

  /** Serialise ref-changing operations per repository. */
  async withRepoLock<T>(repo: FakeRepository, fn: () => Promise<T>): Promise<T> {
    const prev = this.pushLocks.get(repo.uuid) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.pushLocks.set(repo.uuid, settled);
    try {
      return await run;
    } finally {
      if (this.pushLocks.get(repo.uuid) === settled) this.pushLocks.delete(repo.uuid);
    }
  }

  close(): void {
    this.pool.closeAll();
  }
}
