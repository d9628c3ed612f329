import { LRUCache } from 'lru-cache';

/**
 * A cached answer's body is the same Buffer on every hit, so work derived from it is kept beside it
 * and reused, in two byte-bounded, least-recently-used tables with different costs and uses:
 *
 * - the parsed JSON (shared: shaping and learning only ever read it). A parsed body takes about
 *   1.2–1.4× its size on the V8 heap and is promoted to old space when kept; what pays is the several
 *   parses of one body in one request (client, cache, learning, shaping), so the table is small.
 * - the bytes shaped for one client view (links rewritten to the client's base). Plain Buffers,
 *   about the body's size, outside the V8 heap; this is what a cache hit answers with, so the table
 *   holds a scan's working set: without it every hit would parse, rewrite and serialise again.
 *
 * Both bounds are part of `cache.maxBytes` (the stored answers get the rest, see ResponseCache); the
 * shaped table is sized with the cache (a sixteenth of it: 16 MiB for the default 256 MiB). One
 * instance belongs to a sidecar, which hands it to the upstream client, the cache, learning and
 * shaping: the parse one of them made is the one the others find.
 */
export const PARSED_MAX_BYTES = 2 * 1024 ** 2;
export const SHAPED_MAX_BYTES = 16 * 1024 ** 2;
const SHAPED_MIN_BYTES = 4 * 1024 ** 2;
/** The parsed object, counted as this many times the body (1.2–1.4× measured for commit, src and ref JSON). */
const PARSED_FACTOR = 2;
const MAX_VIEWS_PER_BODY = 64;
/** Counted for a body's record besides its bytes (Map, record, Buffer objects). */
const RECORD_OVERHEAD = 200;

const shapedBytesFor = (cacheMaxBytes: number) => Math.max(SHAPED_MIN_BYTES, Math.floor(cacheMaxBytes / 16));

/** Both tables' bounds beside a cache of `cacheMaxBytes` (the response cache counts them in its own, see src/cache/cache.ts). */
export function memoMaxBytes(cacheMaxBytes: number): number {
  return shapedBytesFor(cacheMaxBytes) + PARSED_MAX_BYTES;
}

export class BodyMemo {
  private readonly parsedBodies = new LRUCache<Buffer, { value: unknown }>({
    maxSize: PARSED_MAX_BYTES,
    // The body is counted too: the record keeps it alive (an upstream answer's own copy outlives the request).
    sizeCalculation: (_v, body) => body.length * (1 + PARSED_FACTOR) + RECORD_OVERHEAD,
  });
  private readonly shapedBodies: LRUCache<Buffer, Map<string, Buffer>>;

  /** The shaped table is a sixteenth of a cache of `cacheMaxBytes`, at least 4 MiB. */
  constructor(cacheMaxBytes = 256 * 1024 ** 2) {
    this.shapedBodies = new LRUCache<Buffer, Map<string, Buffer>>({
      maxSize: shapedBytesFor(cacheMaxBytes),
      sizeCalculation: (views, body) => {
        let n = body.length + RECORD_OVERHEAD;
        for (const v of views.values()) n += v.length;
        return n;
      },
    });
  }

  /** The body's JSON (undefined when it is not JSON), parsed once while the body is kept. */
  parse(body: Buffer): unknown {
    const known = this.parsedBodies.get(body);
    if (known) return known.value;
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      value = undefined;
    }
    this.parsedBodies.set(body, { value });
    return value;
  }

  /** `to` has the bytes of `from` (the cache's stored copy of an upstream body): its parse is `from`'s. */
  rememberParsedAs(from: Buffer, to: Buffer): void {
    const known = this.parsedBodies.get(from);
    if (!known) return;
    this.parsedBodies.delete(from);
    this.parsedBodies.set(to, known);
  }

  /** The shaped bytes of `body` for one view (client bases, and the client where filtering applies). */
  shapedOnce(body: Buffer, view: string, shape: () => Buffer): Buffer {
    const views = this.shapedBodies.get(body);
    const known = views?.get(view);
    if (known) return known;
    const shaped = shape();
    const next = views && views.size < MAX_VIEWS_PER_BODY ? views : new Map<string, Buffer>();
    next.set(view, shaped);
    // Set again so that the size is counted anew.
    this.shapedBodies.set(body, next);
    return shaped;
  }

  /** Drops everything kept (tests, benchmarks). */
  clear(): void {
    this.parsedBodies.clear();
    this.shapedBodies.clear();
  }

  /** Bytes and bodies currently kept (tests, diagnostics). */
  usage(): { parsed: { bytes: number; bodies: number }; shaped: { bytes: number; bodies: number; maxBytes: number } } {
    return {
      parsed: { bytes: this.parsedBodies.calculatedSize, bodies: this.parsedBodies.size },
      shaped: { bytes: this.shapedBodies.calculatedSize, bodies: this.shapedBodies.size, maxBytes: this.shapedBodies.maxSize },
    };
  }
}
