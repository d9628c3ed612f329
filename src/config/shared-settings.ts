/**
 * The `cache.shared` configuration section, resolved (src/config/schema.ts validates it;
 * docs/several-sidecars.md documents every key).
 */
export interface SharedSettings {
  redis: RedisSettings;
  /** A memory copy is served without asking Redis for at most this long (the short-lived first tier). */
  memorySeconds: number;
  /** How stored bodies are compressed in Redis (readers handle all of them). */
  compression: 'brotli' | 'gzip' | 'none';
  /** A sidecar fetching a key holds its lock at most this long (single flight across sidecars). */
  lockTtlMs: number;
  /** Another sidecar waits at most this long for the lock holder's answer, then calls itself. */
  lockWaitMs: number;
  /** While Redis is unreachable, each sidecar spends at most this share of every hourly limit alone. */
  fallbackBudgetShare: number;
  /**
   * Bytes of answers this sidecar keeps in Redis (counted from its writes until they expire),
   * divided among clients like `cache.maxBytes`; default `cache.maxBytes`.
   */
  maxBytes?: number;
}

export interface RedisSettings {
  /** `redis://[user:pass@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** Prepended to every key and channel, so several sidecar groups (or other programs) can share one Redis. */
  keyPrefix: string;
  username?: string;
  password?: string;
  /** TLS options; present (or a `rediss://` URL) means TLS. Files are read at start. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; servername?: string; rejectUnauthorized: boolean };
  connectTimeoutMs: number;
  /** A command that takes longer counts as a failure (the request goes on without Redis). */
  commandTimeoutMs: number;
}

export const SHARED_DEFAULTS = {
  keyPrefix: 'bitbucket-sidecar:',
  connectTimeoutMs: 2000,
  commandTimeoutMs: 500,
  memorySeconds: 5,
  compression: 'brotli' as const,
  lockTtlMs: 30_000,
  lockWaitMs: 20_000,
  fallbackBudgetShare: 0.5,
};
