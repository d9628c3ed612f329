import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisSettings } from '../../config/shared-settings';

/** Reconnection delays: quickly at first, then every 2 s for as long as Redis stays away. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);
}

/** How often both connections are checked with a PING (a Redis that hangs keeps its sockets open). */
const HEARTBEAT_MS = 5000;

/**
 * The two connections to Redis: one for commands and scripts, one subscribed to the sidecars'
 * event channel (a subscribed connection can run nothing else).
 *
 * Commands never wait for a connection (no offline queue, no retries): while Redis is away they
 * fail at once and the caller goes on without it. A command that times out, or a heartbeat PING
 * that gets no answer, drops the connection (a hung Redis or a silent network cut would otherwise
 * cost every request the command timeout). Both connections reconnect on their own, forever, at
 * most every 2 s. `up` — both connections ready — is what the shared tier, the budget window,
 * `/_sidecar/ready` and the `redis_up` gauge go by.
 */
export class RedisLink {
  readonly cmd: Redis;
  readonly sub: Redis;
  private state = false;
  private readonly listeners: ((up: boolean) => void)[] = [];
  /** Why Redis is not usable (last connection error), for readiness and logs. Never holds a secret. */
  lastError: string | undefined;
  /** When `up` last changed (wall clock, ms). */
  changedAt = Date.now();
  private closed = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    readonly settings: RedisSettings,
    private readonly logger: Logger,
    channel: string,
    onMessage: (message: string) => void,
  ) {
    const options = redisOptions(settings);
    // Loaded here, not with the module: only sidecars with cache.shared.redis need ioredis (~8 MB of RSS).
    const IORedis = (require('ioredis') as typeof import('ioredis')).default;
    this.cmd = new IORedis(settings.url, { ...options, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: settings.commandTimeoutMs, enableAutoPipelining: true });
    // The subscriber queues its SUBSCRIBE until connected and re-subscribes after every reconnect.
    this.sub = new IORedis(settings.url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    this.sub.on('message', (ch: string, message: string) => {
      if (ch === channel) onMessage(message);
    });
    this.sub.subscribe(channel).catch((e: Error) => this.failed(e));
    for (const conn of [this.cmd, this.sub]) {
      conn.on('ready', () => this.update());
      conn.on('close', () => this.update());
      conn.on('end', () => this.update());
      conn.on('error', (e: Error) => this.failed(e));
    }
    this.heartbeat = setInterval(() => {
      for (const conn of [this.cmd, this.sub]) if (conn.status === 'ready') void this.check(conn);
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get up(): boolean {
    return this.state;
  }

  /** `fn(up)` runs whenever Redis becomes usable or stops being usable. */
  onChange(fn: (up: boolean) => void): void {
    this.listeners.push(fn);
  }

  /** Resolves true once Redis is usable, false after `timeoutMs` (tests, start-up logs). */
  whenUp(timeoutMs: number): Promise<boolean> {
    if (this.state) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.state), timeoutMs);
      timer.unref();
      this.listeners.push((up) => {
        if (up) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
  }

  /** A command failed: the caller already went on without Redis; keep the reason for readiness. */
  failed(e: unknown): void {
    const message = describeError(e);
    if (message !== this.lastError && !this.closed) this.logger.debug({ err: message }, 'redis command or connection failed');
    this.lastError = message;
    if (/timed out/i.test(message) && this.cmd.status === 'ready') this.drop(this.cmd, message);
  }

  /** A PING that must answer within the command timeout, or the connection is dropped. */
  private async check(conn: Redis): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.settings.commandTimeoutMs)));
    const answer = await Promise.race([conn.ping().catch(() => 'failed'), late]);
    clearTimeout(timer);
    if (answer === 'late' && conn.status === 'ready') this.drop(conn, 'no answer to PING');
  }

  private drop(conn: Redis, why: string): void {
    if (this.closed) return;
    this.lastError = why;
    this.logger.warn({ err: why }, 'redis does not answer: reconnecting (memory tier meanwhile)');
    conn.disconnect(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    // QUIT when connected (a clean goodbye); otherwise stop reconnecting at once.
    await Promise.all(
      [this.cmd, this.sub].map(async (c) => {
        if (c.status !== 'ready') {
          // A connection attempt in progress (a TLS handshake, say): end it now, quietly.
          const stream = c.stream as (typeof c.stream & { on?: unknown }) | undefined;
          if (stream && typeof stream.on === 'function') stream.on('error', () => undefined);
          c.disconnect();
          stream?.destroy();
          return;
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([c.quit().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
        clearTimeout(timer);
        c.disconnect();
      }),
    );
    this.update();
  }

  private update(): void {
    const up = !this.closed && this.cmd.status === 'ready' && this.sub.status === 'ready';
    if (up === this.state) return;
    this.state = up;
    this.changedAt = Date.now();
    if (up) this.lastError = undefined;
    for (const fn of this.listeners) fn(up);
  }
}

function redisOptions(s: RedisSettings): RedisOptions {
  const options: RedisOptions = {
    connectTimeout: s.connectTimeoutMs,
    connectionName: 'bitbucket-sidecar',
    retryStrategy: reconnectDelayMs,
    // A READONLY reply (a replica after failover): reconnect, the name now points at the new primary.
    reconnectOnError: (e) => /READONLY/.test(e.message),
    lazyConnect: false,
    // On disconnect, a socket that has not closed by then is destroyed (ioredis waits 2 s by default,
    // which holds a shutting-down process).
    disconnectTimeout: 200,
  };
  if (s.username !== undefined) options.username = s.username;
  if (s.password !== undefined) options.password = s.password;
  const tlsWanted = s.tls !== undefined || s.url.startsWith('rediss://');
  if (tlsWanted) {
    const t = s.tls;
    const tls: ConnectionOptions = { rejectUnauthorized: t?.rejectUnauthorized ?? true };
    if (t?.caFile) tls.ca = readFileSync(t.caFile);
    if (t?.certFile) tls.cert = readFileSync(t.certFile);
    if (t?.keyFile) tls.key = readFileSync(t.keyFile);
    if (t?.servername) tls.servername = t.servername;
    options.tls = tls;
  }
  return options;
}

/** An error as one line without secrets (ioredis messages carry host:port, never credentials). */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

/** The URL without its password, for logs and readiness. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return 'redis (unparsable URL)';
  }
}
