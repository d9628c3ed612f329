import pino, { type Logger } from 'pino';

/**
 * JSON logs. Credentials are never put in log records; regardless, every record passes
 * `scrubSecrets` on its way out (values of credential-named keys at any depth, and anything shaped
 * like a sidecar token).
 * `destination`: a stream, or a file to append to; default standard output. Files and standard output
 * get the lines of one event-loop turn in one synchronous write (`LinesPerTurn`).
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream | string } = {}): Logger {
  const destination = options.destination ?? 1;
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'bitbucket-sidecar' },
      formatters: { log: (record) => scrubSecrets(record) },
      timestamp: isoTimeOncePerMillisecond,
    },
    typeof destination === 'object' ? destination : new LinesPerTurn(pino.destination({ dest: destination, sync: true })),
  );
}

interface SyncSink {
  write(data: string): unknown;
  flushSync(): void;
}

/**
 * Lines written during one event-loop turn, handed to a synchronous sink in one write at the end of
 * the turn (and at once past 64 KiB, and when the process exits). Measured on cache hits: a
 * synchronous write per audit line cost ~10 µs of a ~90 µs hit; sonic-boom's own asynchronous and
 * batched modes cost more than that. Lines are out of the process within the turn that wrote them;
 * only a SIGKILL within that turn loses them.
 */
export class LinesPerTurn {
  private pending = '';
  private readonly flushNow = () => this.flushSync();

  constructor(private readonly sink: SyncSink) {}

  write(line: string): boolean {
    if (this.pending === '') {
      waiting.add(this);
      setImmediate(this.flushNow);
      if (waiting.size === 1) process.once('exit', flushAllWaiting);
    }
    this.pending += line;
    if (this.pending.length >= 65_536) this.flushSync();
    return true;
  }

  flushSync(): void {
    if (this.pending === '') return;
    const lines = this.pending;
    this.pending = '';
    waiting.delete(this);
    if (waiting.size === 0) process.off('exit', flushAllWaiting);
    this.sink.write(lines);
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    try {
      this.flushSync();
      this.sink.flushSync();
      cb?.();
    } catch (e) {
      cb?.(e as Error);
    }
  }
}

/** Batchers holding lines; the process's `exit` listener is there only while some do. */
const waiting = new Set<LinesPerTurn>();
function flushAllWaiting(): void {
  for (const b of [...waiting]) b.flushSync();
}

/** pino's `isoTime`, formatted once per millisecond (several audit lines share one under load). */
let lastMs = -1;
let lastTime = '';
function isoTimeOncePerMillisecond(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/** Keys whose values are never logged, at any depth (compared case-insensitively). */
const SECRET_KEYS = new Set(['authorization', 'token', 'password', 'secret', 'cookie', 'set-cookie', 'proxy-authorization']);
const CENSOR = '[redacted]';

/**
 * Sidecar tokens and the OAuth tokens the sidecar issues have a fixed, recognisable shape
 * (`bbsc_…`). A client that puts one where it does not belong — a URL, a branch name — must not
 * get it written to the log, wherever in a record it ends up.
 */
const SIDECAR_TOKEN = /bbsc_[A-Za-z0-9_-]{16,}/g;

export function scrubSecrets<T>(value: T, depth = 0): T {
  return needsScrubbing(value, depth) ? scrubbed(value, depth) : value;
}

const isSecretKey = (k: string) => SECRET_KEYS.has(k) || (/[A-Z]/.test(k) && SECRET_KEYS.has(k.toLowerCase()));

/** Most records hold nothing to scrub: finding that out allocates nothing, unlike copying them. */
function needsScrubbing(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return value.includes('bbsc_');
  if (depth > 8 || value === null || typeof value !== 'object') return false;
  if (value instanceof Error) return true;
  if (Array.isArray(value)) return value.some((v) => needsScrubbing(v, depth + 1));
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    if (isSecretKey(k) || k.includes('bbsc_') || needsScrubbing((value as Record<string, unknown>)[k], depth + 1)) return true;
  }
  return false;
}

function scrubbed<T>(value: T, depth: number): T {
  if (typeof value === 'string') return (value.includes('bbsc_') ? value.replace(SIDECAR_TOKEN, 'bbsc_[redacted]') : value) as T;
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return scrubbed({ ...value, type: value.name, message: value.message, stack: value.stack }, depth + 1) as T;
  }
  if (Array.isArray(value)) return value.map((v) => scrubbed(v, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[scrubbed(k, depth)] = isSecretKey(k) && v !== undefined && v !== null ? CENSOR : scrubbed(v, depth + 1);
  }
  return out as T;
}
