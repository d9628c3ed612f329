/**
 * Object reads from a mirror through one long-lived `git cat-file --batch-command` per mirror
 * (a bounded pool, idle processes closed), and parsers for commit, tag and tree objects. Parsed
 * objects are kept in small bounded maps keyed by object id: content-addressed, never stale.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mirrorGitEnv } from './git-run';

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

  constructor(gitDir: string) {
    this.child = spawn('git', ['cat-file', '--batch-command'], { env: mirrorGitEnv({ GIT_DIR: gitDir }), stdio: ['pipe', 'pipe', 'pipe'] });
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

/** Bounded pool of batch readers keyed by mirror directory; least recently used closed first. */
export class ReaderPool {
  private readonly readers = new Map<string, BatchReader>();

  constructor(
    private readonly max = 32,
    private readonly idleMs = 20_000,
  ) {}

  private get(gitDir: string): BatchReader {
    let r = this.readers.get(gitDir);
    if (r) {
      this.readers.delete(gitDir);
      this.readers.set(gitDir, r);
    } else {
      r = new BatchReader(gitDir);
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

export interface GitIdent {
  name: string;
  email: string;
  /** Epoch seconds. */
  time: number;
  tz: string;
}

export interface CommitObject {
  sha: string;
  tree: string;
  parents: string[];
  author: GitIdent;
  committer: GitIdent;
  message: string;
}

export interface TagObject {
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
  return { name: m[1], email: m[2], time: Number(m[3]), tz: m[4] };
}

function parseHeaders(data: Buffer): { headers: [string, string][]; message: string } {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  const headers: [string, string][] = [];
  for (const line of head.split('\n')) {
    if (line.startsWith(' ') && headers.length) {
      headers[headers.length - 1][1] += `\n${line.slice(1)}`;
      continue;
    }
    const sp = line.indexOf(' ');
    headers.push(sp < 0 ? [line, ''] : [line.slice(0, sp), line.slice(sp + 1)]);
  }
  return { headers, message };
}

export function parseCommit(sha: string, data: Buffer): CommitObject {
  const { headers, message } = parseHeaders(data);
  const c: CommitObject = { sha, tree: '', parents: [], author: parseIdent(''), committer: parseIdent(''), message };
  for (const [k, v] of headers) {
    if (k === 'tree') c.tree = v;
    else if (k === 'parent') c.parents.push(v);
    else if (k === 'author') c.author = parseIdent(v);
    else if (k === 'committer') c.committer = parseIdent(v);
  }
  return c;
}

export function parseTag(sha: string, data: Buffer): TagObject {
  const { headers, message } = parseHeaders(data);
  const t: TagObject = { sha, object: '', type: '', tag: '', message };
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
    const mode = data.subarray(i, sp).toString('ascii').padStart(6, '0');
    const name = data.subarray(sp + 1, nul).toString('utf8');
    const sha = data.subarray(nul + 1, nul + 21).toString('hex');
    const kind = mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob';
    out.push({ mode, name, sha, kind });
    i = nul + 21;
  }
  return out;
}

/** A map that forgets its oldest entries beyond `max`. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(k: K, v: V): this {
    if (!this.has(k) && this.size >= this.max) {
      const first = this.keys().next();
      if (!first.done) this.delete(first.value);
    }
    return super.set(k, v);
  }
}
