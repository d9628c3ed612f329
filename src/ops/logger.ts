import pino, { type Logger } from 'pino';

/** JSON logs; credentials are never put in log records, and these paths are redacted regardless. */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'bitbucket-sidecar' },
      redact: { paths: ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'token', 'password', 'secret', '*.token', '*.password', '*.secret'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? process.stdout,
  );
}
