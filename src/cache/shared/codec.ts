import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zlib, gunzip, gzip } from 'node:zlib';
import type { Freshness } from '../freshness';
import type { Entry } from '../store';

const brotliC = promisify(brotliCompress);
const brotliD = promisify(brotliDecompress);
const gzipC = promisify(gzip);
const gzipD = promisify(gunzip);

/**
 * A stored answer as Redis holds it:
 *
 *   [0xB5][version 1][codec][u32 BE header length][header JSON][body, compressed by codec]
 *
 * The header carries the full cache key (a read checks it), the entry's bookkeeping and `seq`:
 * the shared invalidation counter when the fetch started (an invalidation of one of the entry's
 * tags with a higher number makes the copy invalidated, see tier.ts). Codecs: 0 none, 1 gzip,
 * 2 brotli; a reader understands all of them whatever it writes itself.
 */
const MAGIC = 0xb5;
const VERSION = 1;
const HEAD = 7;
const CODECS = { none: 0, gzip: 1, brotli: 2 } as const;
export type Compression = keyof typeof CODECS;

/** Bodies smaller than this are stored as they are (compression would save little and cost a thread-pool hop). */
const COMPRESS_FROM = 512;

interface Header {
  k: string;
  s: number;
  h: Record<string, string>;
  f: Freshness;
  t: number;
  fu: number;
  ru: number;
  ku: number;
  i: boolean;
  g: readonly string[];
  q: number;
}

export interface Decoded {
  entry: Entry;
  seq: number;
}

export async function encodeEntry(key: string, e: Entry, seq: number, compression: Compression): Promise<Buffer> {
  const codec = e.body.length < COMPRESS_FROM ? 'none' : compression;
  const body =
    codec === 'brotli'
      ? await brotliC(e.body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: e.body.length } })
      : codec === 'gzip'
        ? await gzipC(e.body, { level: 6 })
        : e.body;
  const header: Header = { k: key, s: e.status, h: e.headers, f: e.freshness, t: e.storedAt, fu: e.freshUntil, ru: e.revalidateUntil, ku: e.keepUntil, i: e.invalidated, g: e.tags, q: seq };
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(HEAD);
  head[0] = MAGIC;
  head[1] = VERSION;
  head[2] = CODECS[codec];
  head.writeUInt32BE(json.length, 3);
  return Buffer.concat([head, json, body]);
}

/** The entry stored under `key`, or undefined when the value is not one of ours, is for another key, or is damaged. */
export async function decodeEntry(value: Buffer, key: string): Promise<Decoded | undefined> {
  try {
    if (value.length < HEAD || value[0] !== MAGIC || value[1] !== VERSION) return undefined;
    const len = value.readUInt32BE(3);
    const header = JSON.parse(value.subarray(HEAD, HEAD + len).toString('utf8')) as Header;
    if (header.k !== key) return undefined;
    const raw = value.subarray(HEAD + len);
    const body = ownAllocation(value[2] === CODECS.brotli ? await brotliD(raw) : value[2] === CODECS.gzip ? await gzipD(raw) : raw);
    return {
      seq: header.q,
      entry: {
        status: header.s,
        headers: header.h,
        body,
        freshness: header.f,
        storedAt: header.t,
        freshUntil: header.fu,
        revalidateUntil: header.ru,
        keepUntil: header.ku,
        invalidated: header.i,
        tags: header.g,
      },
    };
  } catch {
    return undefined;
  }
}

/**
 * Memory-tier bodies get their own allocation: a slice of a larger buffer (the Redis reply, Node's
 * 8 KiB pool) would pin all of it and break the cache's byte bound (as `ownCopy` in cache.ts).
 */
function ownAllocation(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}
