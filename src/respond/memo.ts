/**
 * A cached answer's body is the same Buffer on every hit, so work derived from it — the parsed
 * JSON, and the bytes shaped for one client view — is kept beside it and reused. The parsed object
 * is shared: shaping and learning only ever read it.
 *
 * Only for the bodies used most recently, within MEMO_MAX_BYTES: a parsed body takes about 1.2–1.4×
 * its size on the V8 heap and every shaped view as much as the body again, so keeping them for as
 * long as each cached body lives (a WeakMap beside the cache) would hold two to three times
 * `cache.maxBytes` with every entry of the cache once hit, none of it counted by the cache.
 */
interface Derived {
  parsed?: { value: unknown };
  views?: Map<string, Buffer>;
  /** What this record keeps alive, as counted against MEMO_MAX_BYTES. */
  bytes: number;
}

/**
 * Bytes of derived work kept (body, parsed object, shaped views), least recently used dropped first.
 * Small on purpose: what pays is an answer asked for again soon (one hot key, or the several parses
 * of one body in one request); a scan cycling through thousands of keys gets nothing from a few MB
 * more. Kept objects are promoted to V8's old space, so a large memo of miss bodies (an upstream
 * answer's own Buffer, never seen again) costs heap growth and GC time: with 8 MiB the memory
 * benchmark's fill ended some 5 MB higher in RSS and used more CPU than with 1 MiB.
 */
export const MEMO_MAX_BYTES = 2 * 1024 ** 2;
/** The parsed object, counted as this many times the body (1.2–1.4× measured for commit, src and ref JSON). */
const PARSED_FACTOR = 2;
const MAX_VIEWS_PER_BODY = 64;

/** Insertion order is recency order: a record used again is moved to the end. */
const memo = new Map<Buffer, Derived>();
let memoBytes = 0;

function recall(body: Buffer): Derived | undefined {
  const d = memo.get(body);
  if (d) {
    memo.delete(body);
    memo.set(body, d);
  }
  return d;
}

function remember(body: Buffer, d: Derived | undefined, add: (d: Derived) => number): void {
  if (!d) {
    // The body itself is counted too: the record keeps it alive (an upstream answer's own copy outlives the request).
    d = { bytes: body.length };
    memo.set(body, d);
    memoBytes += d.bytes;
  }
  const added = add(d);
  d.bytes += added;
  memoBytes += added;
  for (const [oldest, o] of memo) {
    if (memoBytes <= MEMO_MAX_BYTES || oldest === body) break;
    memo.delete(oldest);
    memoBytes -= o.bytes;
  }
}

export function parseJsonBody(body: Buffer): unknown {
  const d = recall(body);
  if (d?.parsed) return d.parsed.value;
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    value = undefined;
  }
  remember(body, d, (r) => {
    r.parsed = { value };
    return body.length * PARSED_FACTOR;
  });
  return value;
}

/** The shaped bytes of `body` for one view (client bases, and the client where filtering applies). */
export function shapedOnce(body: Buffer, view: string, shape: () => Buffer): Buffer {
  const d = recall(body);
  const known = d?.views?.get(view);
  if (known) return known;
  const shaped = shape();
  remember(body, d, (r) => {
    let freed = 0;
    if (!r.views) r.views = new Map();
    if (r.views.size >= MAX_VIEWS_PER_BODY) {
      for (const v of r.views.values()) freed += v.length;
      r.views.clear();
    }
    r.views.set(view, shaped);
    return shaped.length - freed;
  });
  return shaped;
}

/** Drops everything kept (tests). */
export function clearMemo(): void {
  memo.clear();
  memoBytes = 0;
}

/** Bytes and bodies currently kept (tests, diagnostics). */
export function memoUsage(): { bytes: number; bodies: number } {
  return { bytes: memoBytes, bodies: memo.size };
}
