import pino, { type Logger } from 'pino';

/** JSON logs; credentials are never put in log records, and these paths are redacted regardless. */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'bitbucket-sidecar' },
      redact: { paths: ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'token', 'password', 'secret', '*.token', '*.password', '*.secret'], censor: '[redacted]' },
      formatters: { log: (record) => scrubTokens(record) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? process.stdout,
  );
}

/**
 * Sidecar tokens and the OAuth tokens the sidecar issues have a fixed, recognisable shape
 * (`bbsc_…`). A client that puts one where it does not belong — a URL, a branch name — must not
 * get it written to the log, wherever in a record it ends up.
 */
const SIDECAR_TOKEN = /bbsc_[A-Za-z0-9_-]{16,}/g;

export function scrubTokens<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return (value.includes('bbsc_') ? value.replace(SIDECAR_TOKEN, 'bbsc_[redacted]') : value) as T;
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return scrubTokens({ ...value, type: value.name, message: value.message, stack: value.stack }, depth + 1) as T;
  }
  if (Array.isArray(value)) return value.map((v) => scrubTokens(v, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubTokens(v, depth + 1);
  return out as T;
}
