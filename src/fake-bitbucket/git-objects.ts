/**
 * Object access through long-lived `git cat-file --batch-command` processes (one per repository, LRU-bounded,
 * closed when idle) plus parsers for commit, tag and tree objects. Parsed objects are cached by hash:
 * objects are content-addressed, so the cache never needs invalidation.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { gitEnv } from './git-exec';

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

class BatchProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private buf: Buffer = Buffer.alloc(0);
  /** chunks received while waiting for `need` bytes (avoids quadratic concatenation of large objects) */
  private chunks: Buffer[] = [];
  private received = 0;
  private need = 0;
  private readonly queue: Pending[] = [];
  private dead: Error | undefined;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(gitDir: string) {
    this.child = spawn('git', ['cat-file', '--batch-command'], {
      env: gitEnv({ GIT_DIR: gitDir }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (c: Buffer) => this.onData(c));
    this.child.stderr.resume();
    this.child.stdin.on('error', () => undefined);
    this.child.on('error', (e) => this.fail(e));
    this.child.on('close', () => this.fail(new Error('git cat-file exited')));
  }

  request(kind: 'info' | 'contents', name: string): Promise<RawObject | undefined> {
    if (this.dead) return Promise.reject(this.dead);
    if (/[\r\n]/.test(name)) return Promise.resolve(undefined);
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
    this.received += chunk.length;
    if (this.received < this.need) return;
    this.buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [];
    this.received = 0;
    this.need = 0;
    this.parse();
    if (this.buf.length) {
      this.chunks = [this.buf];
      this.received = this.buf.length;
    }
  }

  private parse(): void {
    while (this.queue.length) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return;
      const header = this.buf.subarray(0, nl).toString('utf8');
      const head = this.queue[0]!;
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        this.queue.shift();
        this.buf = this.buf.subarray(nl + 1);
        head.resolve(undefined);
        continue;
      }
      const [sha, type, sizeStr] = header.split(' ');
      const size = Number(sizeStr);
      if (!sha || !type || !Number.isFinite(size)) {
        this.fail(new Error(`unexpected cat-file output: ${header}`));
        return;
      }
      if (head.kind === 'info') {
        this.queue.shift();
        this.buf = this.buf.subarray(nl + 1);
        head.resolve({ sha, type, size });
        continue;
      }
      if (this.buf.length < nl + 1 + size + 1) {
        this.need = nl + 1 + size + 1;
        return;
      }
      const data = Buffer.from(this.buf.subarray(nl + 1, nl + 1 + size));
      this.buf = this.buf.subarray(nl + 1 + size + 1);
      this.queue.shift();
      head.resolve({ sha, type, size, data });
    }
  }
}

/** LRU pool of cat-file processes keyed by git directory. */
export class ObjectPool {
  private readonly procs = new Map<string, BatchProcess>();

  constructor(
    private readonly max = 16,
    private readonly idleMs = 15000,
  ) {}

  private get(gitDir: string): BatchProcess {
    let p = this.procs.get(gitDir);
    if (p) {
      this.procs.delete(gitDir);
      this.procs.set(gitDir, p);
    } else {
      p = new BatchProcess(gitDir);
      this.procs.set(gitDir, p);
      while (this.procs.size > this.max) {
        const [oldest, proc] = this.procs.entries().next().value as [string, BatchProcess];
        this.procs.delete(oldest);
        proc.close();
      }
    }
    if (p.idleTimer) clearTimeout(p.idleTimer);
    const proc = p;
    p.idleTimer = setTimeout(() => {
      if (this.procs.get(gitDir) === proc) this.procs.delete(gitDir);
      proc.close();
    }, this.idleMs);
    p.idleTimer.unref();
    return p;
  }

  async request(gitDir: string, kind: 'info' | 'contents', name: string): Promise<RawObject | undefined> {
    try {
      return await this.get(gitDir).request(kind, name);
    } catch {
      // the process died (e.g. evicted while busy): retry once with a fresh one
      this.drop(gitDir);
      return this.get(gitDir).request(kind, name);
    }
  }

  drop(gitDir: string): void {
    const p = this.procs.get(gitDir);
    if (!p) return;
    this.procs.delete(gitDir);
    if (p.idleTimer) clearTimeout(p.idleTimer);
    p.close();
  }

  closeAll(): void {
    for (const k of [...this.procs.keys()]) this.drop(k);
  }
}

export interface GitIdent {
  name: string;
  email: string;
  /** epoch seconds */
  time: number;
  tz: string;
}

export interface CommitInfo {
  sha: string;
  tree: string;
  parents: string[];
  author: GitIdent;
  committer: GitIdent;
  message: string;
}

export interface TagInfo {
  sha: string;
  object: string;
  type: string;
  tag: string;
  tagger?: GitIdent;
  message: string;
}

export interface TreeEntry {
  mode: string;
  name: string;
  sha: string;
  kind: 'blob' | 'tree' | 'commit';
}

function parseIdent(v: string): GitIdent {
  const m = /^(.*) <([^>]*)> (\d+) ([+-]\d{4})$/.exec(v);
  if (!m) return { name: v, email: '', time: 0, tz: '+0000' };
  return { name: m[1] as string, email: m[2] as string, time: Number(m[3]), tz: m[4] as string };
}

function parseHeaders(data: Buffer): { headers: Array<[string, string]>; message: string } {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  const headers: Array<[string, string]> = [];
  for (const line of head.split('\n')) {
    if (line.startsWith(' ') && headers.length) {
      headers[headers.length - 1]![1] += `\n${line.slice(1)}`;
      continue;
    }
    const sp = line.indexOf(' ');
    headers.push(sp < 0 ? [line, ''] : [line.slice(0, sp), line.slice(sp + 1)]);
  }
  return { headers, message };
}

export function parseCommit(sha: string, data: Buffer): CommitInfo {
  const { headers, message } = parseHeaders(data);
  const c: CommitInfo = {
    sha,
    tree: '',
    parents: [],
    author: parseIdent(''),
    committer: parseIdent(''),
    message,
  };
  for (const [k, v] of headers) {
    if (k === 'tree') c.tree = v;
    else if (k === 'parent') c.parents.push(v);
    else if (k === 'author') c.author = parseIdent(v);
    else if (k === 'committer') c.committer = parseIdent(v);
  }
  return c;
}

export function parseTag(sha: string, data: Buffer): TagInfo {
  const { headers, message } = parseHeaders(data);
  const t: TagInfo = { sha, object: '', type: '', tag: '', message };
  for (const [k, v] of headers) {
    if (k === 'object') t.object = v;
    else if (k === 'type') t.type = v;
    else if (k === 'tag') t.tag = v;
    else if (k === 'tagger') t.tagger = parseIdent(v);
  }
  return t;
}

export function parseTree(data: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    const nul = data.indexOf(0x00, sp);
    if (sp < 0 || nul < 0 || nul + 21 > data.length) break;
    const mode = data.subarray(i, sp).toString('ascii');
    const name = data.subarray(sp + 1, nul).toString('utf8');
    const sha = data.subarray(nul + 1, nul + 21).toString('hex');
    const kind = mode === '40000' || mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob';
    out.push({ mode: mode.padStart(6, '0'), name, sha, kind });
    i = nul + 21;
  }
  return out;
}
