/**
 * Git LFS object storage of the fake: one file per object under `{dataDir}/lfs/{ws}/{repo}/{oid}`,
 * written through a temporary file while its SHA-256 is computed, so a wrong object is never kept.
 * Media links are signed per repository, object and action with a secret of this fake's own.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export const OID = /^[0-9a-f]{64}$/;

export class LfsStore {
  private readonly secret = randomBytes(32);

  constructor(private readonly dir: string) {}

  private path(ws: string, repo: string, oid: string): string {
    if (!OID.test(oid)) throw new Error('bad oid');
    return join(this.dir, ws, repo, oid);
  }

  size(ws: string, repo: string, oid: string): number | undefined {
    const p = this.path(ws, repo, oid);
    return existsSync(p) ? statSync(p).size : undefined;
  }

  read(ws: string, repo: string, oid: string, start = 0): Readable {
    return createReadStream(this.path(ws, repo, oid), { start });
  }

  /** Stores `data` directly (test set-up); returns its oid. */
  async put(ws: string, repo: string, data: Buffer): Promise<string> {
    const oid = createHash('sha256').update(data).digest('hex');
    await mkdir(join(this.dir, ws, repo), { recursive: true });
    await writeFile(this.path(ws, repo, oid), data);
    return oid;
  }

  /** Streams an upload; `ok` only when its bytes hash to `oid` and number `size`. */
  async receive(ws: string, repo: string, oid: string, size: number | undefined, req: IncomingMessage): Promise<'ok' | 'mismatch'> {
    await mkdir(join(this.dir, ws, repo), { recursive: true });
    const tmp = `${this.path(ws, repo, oid)}.${randomBytes(6).toString('hex')}.tmp`;
    const hash = createHash('sha256');
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(tmp);
      req.on('data', (c: Buffer) => {
        hash.update(c);
        n += c.length;
      });
      req.pipe(out);
      out.on('finish', () => resolve());
      out.on('error', reject);
      req.on('error', reject);
    });
    if (hash.digest('hex') !== oid || (size !== undefined && size !== n)) {
      await rm(tmp, { force: true });
      return 'mismatch';
    }
    await rename(tmp, this.path(ws, repo, oid));
    return 'ok';
  }

  /** The media token for one action on one object. */
  sign(ws: string, repo: string, oid: string, action: string): string {
    return createHmac('sha256', this.secret).update(`${ws}/${repo}/${oid}/${action}`).digest('base64url');
  }

  checkSignature(header: string | undefined, ws: string, repo: string, oid: string, action: string): boolean {
    const m = /^Bearer ([A-Za-z0-9_-]+)$/.exec(header ?? '');
    if (!m) return false;
    const a = Buffer.from(m[1]);
    const b = Buffer.from(this.sign(ws, repo, oid, action));
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
