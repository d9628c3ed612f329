/**
 * Object reads through one long-lived `git cat-file --batch-command` per repository (a bounded
 * pool, idle processes closed), for the mirrors and the fake Bitbucket alike.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface RawObject {
  sha: string;
  type: string;
  size: number;
  data?: Buffer;
}

interface Pending {
  kind: 'info' | 'contents';
  resolve: (v: RawObject | undefined) => void;
  reject: (e: Error) => void;
}

/** One `git cat-file --batch-command` process; requests are answered in order. */
class BatchReader {
  private readonly child: ChildProcessWithoutNullStreams;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before parsing can make progress (a large object arriving in pieces). */
  private need = 0;
  private readonly queue: Pending[] = [];
  private dead: Error | undefined;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(gitDir: string, env: NodeJS.ProcessEnv) {
    this.child = spawn('git', ['cat-file', '--batch-command'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (c: Buffer) => this.onData(c));
    this.child.stderr.resume();
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (e) => this.fail(e));
    this.child.on('close', () => this.fail(new Error('git cat-file exited')));
  }

  get busy(): boolean {
    return this.queue.length > 0;
  }

  request(kind: 'info' | 'contents', name: string): Promise<RawObject | undefined> {
    if (this.dead) return Promise.reject(this.dead);
    if (/[\s]/.test(name)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, resolve, reject });
      this.child.stdin.write(`${kind} ${name}\n`);
    });
  }

  close(): void {
    if (!this.dead) this.dead = new Error('closed');
    this.child.stdin.end();
    this.child.kill();
  }

  private fail(e: Error): void {
    if (!this.dead) this.dead = e;
    while (this.queue.length) this.queue.shift()!.reject(this.dead);
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.need) return;
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.need = 0;
    while (this.queue.length) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) break;
      const header = buf.subarray(0, nl).toString('utf8');
      const head = this.queue[0];
      if (/ (missing|ambiguous)$/.test(header)) {
        this.queue.shift();
        buf = buf.subarray(nl + 1);
        head.resolve(undefined);
        continue;
      }
      const [sha, type, sizeText] = header.split(' ');
      const size = Number(sizeText);
      if (!sha || !type || !Number.isFinite(size)) {
        this.fail(new Error(`unexpected git cat-file output: ${header.slice(0, 100)}`));
        this.close();
        return;
      }
      if (head.kind === 'info') {
        this.queue.shift();
        buf = buf.subarray(nl + 1);
        head.resolve({ sha, type, size });
        continue;
      }
      if (buf.length < nl + 1 + size + 1) {
        this.need = nl + 1 + size + 1;
        break;
      }
      const data = Buffer.from(buf.subarray(nl + 1, nl + 1 + size));
      buf = buf.subarray(nl + 1 + size + 1);
      this.queue.shift();
      head.resolve({ sha, type, size, data });
    }
    this.chunks = buf.length ? [buf] : [];
    this.buffered = buf.length;
  }
}

export interface ReaderPoolOptions {
  /** The environment of the cat-file process for a git directory. */
  env: (gitDir: string) => NodeJS.ProcessEnv;
  /** Processes kept at most (default 32). */
  max?: number;
  /** An idle process is closed after this long (default 20 s). */
  idleMs?: number;
}

/** Bounded pool of batch readers keyed by git directory; least recently used closed first. */
export class ReaderPool {
  private readonly readers = new Map<string, BatchReader>();
  private readonly max: number;
  private readonly idleMs: number;

  constructor(private readonly options: ReaderPoolOptions) {
    this.max = options.max ?? 32;
    this.idleMs = options.idleMs ?? 20_000;
  }

  private get(gitDir: string): BatchReader {
    let r = this.readers.get(gitDir);
    if (r) {
      this.readers.delete(gitDir);
      this.readers.set(gitDir, r);
    } else {
      r = new BatchReader(gitDir, this.options.env(gitDir));
      this.readers.set(gitDir, r);
      for (const [dir, other] of this.readers) {
        if (this.readers.size <= this.max) break;
        if (other.busy) continue;
        this.drop(dir);
      }
    }
    if (r.idleTimer) clearTimeout(r.idleTimer);
    const reader = r;
    r.idleTimer = setTimeout(() => {
      if (this.readers.get(gitDir) === reader) this.readers.delete(gitDir);
      reader.close();
    }, this.idleMs);
    r.idleTimer.unref();
    return r;
  }

  async request(gitDir: string, kind: 'info' | 'contents', name: string): Promise<RawObject | undefined> {
    try {
      return await this.get(gitDir).request(kind, name);
    } catch {
      // The process died (closed while idle, a fetch repacked under it): once more with a new one.
      this.drop(gitDir);
      return this.get(gitDir).request(kind, name);
    }
  }

  drop(gitDir: string): void {
    const r = this.readers.get(gitDir);
    if (!r) return;
    this.readers.delete(gitDir);
    if (r.idleTimer) clearTimeout(r.idleTimer);
    r.close();
  }

  closeAll(): void {
    for (const dir of [...this.readers.keys()]) this.drop(dir);
  }
}

