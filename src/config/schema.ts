import { z } from 'zod';
import { PERMISSIONS } from '../core/client';
import { isValidGlob } from './glob';
import { SHARED_DEFAULTS } from './shared-settings';
import { parseByteSize } from './size';

const slug = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9._-]+$/, 'must be a workspace slug (letters, digits, . _ -)')
  .transform((s) => s.toLowerCase());
const sha256Hex = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex characters (the sha256 printed by `token create`)').transform((s) => s.toLowerCase());
const hostPort = z.object({ host: z.string().min(1).default('0.0.0.0'), port: z.number().int().min(0).max(65535) }).strict();
const httpUrl = z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL').transform((u) => u.replace(/\/+$/, ''));
/**
 * `upstream.proxy`: the outbound proxy, taking precedence over HTTPS_PROXY/NO_PROXY. Credentials go
 * in `username`/`password` (secret references), never in the URL, so the URL can be logged.
 */
const proxySchema = z
  .object({
    url: httpUrl.refine((u) => !/^https?:\/\/[^/]*@/.test(u), 'must not hold credentials (use username and password)').refine((u) => new URL(u).pathname === '/', 'must be a proxy origin such as http://proxy.example:3128, without a path'),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    noProxy: z.array(z.string().min(1).regex(/^[*.]?[A-Za-z0-9.-]*$/, 'must be a host name, a .domain suffix or *')).default([]),
  })
  .strict()
  .refine((p) => (p.username === undefined) === (p.password === undefined), { message: 'username and password go together' });
/** An upstream origin: the sidecar adds `/2.0/…` and `/{ws}/{repo}.git` itself, so a path is surely a mistake. */
const upstreamOrigin = httpUrl.refine((u) => new URL(u).pathname === '/' && !new URL(u).search, 'must be an origin such as https://api.bitbucket.org, without a path (the sidecar adds /2.0 itself)');
const byteSize = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const n = parseByteSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a size such as 256MiB or a byte count' });
      return z.NEVER;
    }
    return n;
  });
const date = z.union([z.date(), z.string()]).transform((v, ctx) => {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: 'must be a date (YYYY-MM-DD or ISO-8601)' });
    return z.NEVER;
  }
  return d;
});

const tokenRef = z.object({ sha256: sha256Hex, expiresAt: date.optional() }).strict();

const scopeRule = z
  .object({
    workspace: slug,
    projects: z.array(z.string().min(1).regex(/^[A-Za-z0-9_]+$/, 'must be a project key')).min(1).optional(),
    repositories: z
      .array(z.string().refine(isValidGlob, 'must be a glob over repository slugs: letters, digits, . _ - * ?'))
      .min(1)
      .optional(),
  })
  .strict();

// Webhook relay, state directory and warm refresher (docs/webhooks.md; src/webhooks/).
/** Jenkins' hook URL: the plugin refuses a Cloud delivery that carries a `server_url` query parameter. */
const hookUrl = httpUrl.refine((u) => !new URL(u).searchParams.has('server_url'), 'must not carry a server_url query parameter (Jenkins would not treat the delivery as Bitbucket Cloud)');
const WEBHOOK_QUEUE_DEFAULTS = { maxEntries: 10_000, retryMinSeconds: 1, retryMaxSeconds: 300, timeoutSeconds: 10, maxAgeSeconds: 7 * 86_400, dedupSeconds: 86_400, dedupMaxEntries: 100_000 };
// The relay's door needs no token. Bitbucket's bodies are small (it sends at most 5 commits per
// change; the recorded ones weigh 2-36 KB), so 1 MiB leaves room for pushes of many refs at once.
const WEBHOOK_INTAKE = { maxBodyBytes: 1024 ** 2, maxInFlightBytes: 8 * 1024 ** 2, bodyTimeoutMs: 5_000, minBodyBytes: 64 * 1024 };
const webhooksSchema = z
  .object({
    secret: z.string().min(1).optional(),
    forwardTo: hookUrl.optional(),
    path: z
      .string()
      .regex(/^\/_sidecar(?:\/[A-Za-z0-9._~-]+)+$/, 'must be a path under /_sidecar/ (the only prefix served without client credentials)')
      .refine((p) => !['/_sidecar/health', '/_sidecar/ready', '/_sidecar/metrics'].includes(p), 'is already used by the operations endpoints')
      .default('/_sidecar/webhooks/bitbucket'),
    maxBodyBytes: byteSize
      .refine((n) => n >= WEBHOOK_INTAKE.minBodyBytes && n <= 64 * 1024 ** 2, 'must be between 64KiB (Bitbucket sends bodies of up to ~40 KB for one ref) and 64MiB')
      .default(WEBHOOK_INTAKE.maxBodyBytes),
    maxInFlightBytes: byteSize.refine((n) => n >= WEBHOOK_INTAKE.minBodyBytes && n <= 1024 ** 3, 'must be between 64KiB and 1GiB').default(WEBHOOK_INTAKE.maxInFlightBytes),
    bodyTimeoutMs: z.number().int().min(250).max(120_000).default(WEBHOOK_INTAKE.bodyTimeoutMs),
    queue: z
      .object({
        maxEntries: z.number().int().min(1).max(10_000_000).default(WEBHOOK_QUEUE_DEFAULTS.maxEntries),
        retryMinSeconds: z.number().min(0.001).max(3600).default(WEBHOOK_QUEUE_DEFAULTS.retryMinSeconds),
        retryMaxSeconds: z.number().min(0.001).max(86_400).default(WEBHOOK_QUEUE_DEFAULTS.retryMaxSeconds),
        timeoutSeconds: z.number().min(0.1).max(600).default(WEBHOOK_QUEUE_DEFAULTS.timeoutSeconds),
        maxAgeSeconds: z.number().int().min(0).default(WEBHOOK_QUEUE_DEFAULTS.maxAgeSeconds),
        dedupSeconds: z.number().int().min(0).max(30 * 86_400).default(WEBHOOK_QUEUE_DEFAULTS.dedupSeconds),
        dedupMaxEntries: z.number().int().min(1000).max(10_000_000).default(WEBHOOK_QUEUE_DEFAULTS.dedupMaxEntries),
      })
      .strict()
      .refine((q) => q.retryMinSeconds <= q.retryMaxSeconds, { message: 'must not exceed retryMaxSeconds', path: ['retryMinSeconds'] })
      .default(WEBHOOK_QUEUE_DEFAULTS),
  })
  .strict()
  .refine((w) => w.maxBodyBytes <= w.maxInFlightBytes, { message: 'must be at least maxBodyBytes (one body must fit)', path: ['maxInFlightBytes'] })
  .optional();
const REFRESH_DEFAULTS = { enabled: false, budgetShare: 0.2, leadSeconds: 10, intervalSeconds: 1, maxKeys: 5000, forgetAfterSeconds: 86_400, confirmedSeconds: 3600 };
const refreshSchema = z
  .object({
    enabled: z.boolean().default(REFRESH_DEFAULTS.enabled),
    budgetShare: z.number().min(0).max(1).default(REFRESH_DEFAULTS.budgetShare),
    leadSeconds: z.number().min(0).max(86_400).default(REFRESH_DEFAULTS.leadSeconds),
    intervalSeconds: z.number().min(0.01).max(3600).default(REFRESH_DEFAULTS.intervalSeconds),
    maxKeys: z.number().int().min(1).max(1_000_000).default(REFRESH_DEFAULTS.maxKeys),
    forgetAfterSeconds: z.number().int().min(1).default(REFRESH_DEFAULTS.forgetAfterSeconds),
    confirmedSeconds: z.number().int().min(0).default(REFRESH_DEFAULTS.confirmedSeconds),
  })
  .strict()
  .default(REFRESH_DEFAULTS);
const stateSchema = z.object({ dir: z.string().min(1).default('/var/lib/bitbucket-sidecar') }).strict().default({ dir: '/var/lib/bitbucket-sidecar' });

/** Client `webhooks` need the relay; clients forwarding to one URL must sign with one secret. */
function checkWebhooks(
  cfg: { clients: { webhooks?: { forwardTo?: string; secret?: string } }[]; webhooks?: { forwardTo?: string } },
  ctx: z.RefinementCtx,
): void {
  const secrets = new Map<string, { secret: string; index: number }>();
  cfg.clients.forEach((c, i) => {
    if (!c.webhooks) return;
    if (!cfg.webhooks) {
      ctx.addIssue({ code: 'custom', path: ['clients', i, 'webhooks'], message: 'needs the top-level webhooks section (the relay is off without it)' });
      return;
    }
    const url = c.webhooks.forwardTo ?? cfg.webhooks.forwardTo;
    if (!url || !c.webhooks.secret) return;
    const other = secrets.get(url);
    if (other && other.secret !== c.webhooks.secret) {
      ctx.addIssue({ code: 'custom', path: ['clients', i, 'webhooks', 'secret'], message: `clients.${other.index} forwards to the same URL with another secret (one URL is one target, signed one way)` });
    } else if (!other) secrets.set(url, { secret: c.webhooks.secret, index: i });
  });
}

const client = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 characters: letters, digits, . _ -'),
    token: tokenRef.optional(),
    tokens: z.array(tokenRef).min(1).optional(),
    oauth: z
      .object({ key: z.string().refine((k) => k.length === 18 || k.length === 32, 'must be 18 or 32 characters (the shapes the plugin recognises)'), secretSha256: sha256Hex })
      .strict()
      .optional(),
    // Empty only for a client that reaches no repository (an `ops:read` monitoring client).
    scope: z.array(scopeRule),
    permissions: z.array(z.enum(PERMISSIONS)).default(['read']),
    /** This client's weight in the fair shares of the upstream budget (src/upstream/budget.ts). */
    budgetWeight: z.number().min(0.01).max(1000).optional(), // default 1
    webhooks: z.object({ forwardTo: hookUrl.optional(), secret: z.string().min(1).optional() }).strict().optional(),
  })
  .strict()
  .refine((c) => c.token || c.tokens || c.oauth, { message: 'needs token, tokens or oauth' })
  .refine((c) => c.scope.length > 0 || c.permissions.every((p) => p === 'ops:read'), { message: 'an empty scope is only for a client whose permissions are [ops:read]', path: ['scope'] });

// Cache and budget (docs/configuration.md, cache and budget). Defaults live in
// src/cache/cache.ts and src/upstream/budget.ts.
const seconds = z.number().int().min(0).max(30 * 86_400);
const share = z.number().min(0).max(1);
const freshnessSchema = z
  .object({
    immutableSeconds: seconds.default(86_400),
    metadataSeconds: seconds.default(300),
    listSeconds: seconds.default(30),
    notFoundSeconds: seconds.default(60),
  })
  .strict();
// Several sidecars sharing cache, coalescing and budget (docs/several-sidecars.md;
// src/cache/shared/).
const SHARED = SHARED_DEFAULTS;
const redisSchema = z
  .object({
    url: z
      .string()
      .refine((u) => {
        try {
          const p = new URL(u).protocol;
          return p === 'redis:' || p === 'rediss:';
        } catch {
          return false;
        }
      }, 'must be a redis:// or rediss:// (TLS) URL'),
    keyPrefix: z.string().max(128).regex(/^[\x21-\x7e]*$/, 'must be printable ASCII without spaces').default(SHARED.keyPrefix),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    tls: z
      .union([
        z.literal(true),
        z
          .object({
            caFile: z.string().min(1).optional(),
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            servername: z.string().min(1).optional(),
            rejectUnauthorized: z.boolean().default(true),
          })
          .strict()
          .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), { message: 'certFile and keyFile go together (a client certificate)', path: ['certFile'] }),
      ])
      .transform((t) => (t === true ? { rejectUnauthorized: true } : t))
      .optional(),
    connectTimeoutMs: z.number().int().min(50).max(60_000).default(SHARED.connectTimeoutMs),
    commandTimeoutMs: z.number().int().min(10).max(60_000).default(SHARED.commandTimeoutMs),
  })
  .strict();
const sharedSchema = z
  .object({
    redis: redisSchema,
    memorySeconds: z.number().min(0).max(3600).default(SHARED.memorySeconds),
    compression: z.enum(['brotli', 'gzip', 'none']).default(SHARED.compression),
    lockTtlMs: z.number().int().min(100).max(600_000).default(SHARED.lockTtlMs),
    lockWaitMs: z.number().int().min(0).max(600_000).default(SHARED.lockWaitMs),
    fallbackBudgetShare: z.number().min(0).max(1).default(SHARED.fallbackBudgetShare),
    // Default: cache.maxBytes (src/sidecar.ts).
    maxBytes: byteSize.refine((n) => n >= 64 * 1024, 'must be at least 64KiB').optional(),
  })
  .strict();
const cacheSchema = z
  .object({
    maxBytes: byteSize.default(256 * 1024 ** 2),
    freshness: freshnessSchema.default({ immutableSeconds: 86_400, metadataSeconds: 300, listSeconds: 30, notFoundSeconds: 60 }),
    staleWhileRevalidateSeconds: seconds.default(30),
    staleIfErrorSeconds: seconds.default(86_400),
    negativeMaxBytes: byteSize.refine((n) => n <= 1024 ** 2, 'must be at most 1MiB').default(2048),
    shared: sharedSchema.optional(),
  })
  .strict()
  .default({
    maxBytes: 256 * 1024 ** 2,
    freshness: { immutableSeconds: 86_400, metadataSeconds: 300, listSeconds: 30, notFoundSeconds: 60 },
    staleWhileRevalidateSeconds: 30,
    staleIfErrorSeconds: 86_400,
    negativeMaxBytes: 2048,
  });
const BUDGET_DEFAULTS = {
  repositoryRequestsPerHour: 1000,
  webhookRequestsPerHour: 1000,
  maxConcurrent: 20,
  maxQueueWaitMs: 30_000,
  maxRetryAfterSeconds: 600,
  backgroundShare: 0.5,
  burstShare: 0.3,
  windowMarginMs: 1000,
};
const budgetSchema = z
  .object({
    repositoryRequestsPerHour: z.number().int().min(1).default(BUDGET_DEFAULTS.repositoryRequestsPerHour),
    webhookRequestsPerHour: z.number().int().min(1).default(BUDGET_DEFAULTS.webhookRequestsPerHour),
    maxConcurrent: z.number().int().min(1).max(1024).default(BUDGET_DEFAULTS.maxConcurrent),
    maxQueueWaitMs: z.number().int().min(0).max(600_000).default(BUDGET_DEFAULTS.maxQueueWaitMs),
    maxRetryAfterSeconds: z.number().int().min(1).max(86_400).default(BUDGET_DEFAULTS.maxRetryAfterSeconds),
    backgroundShare: share.default(BUDGET_DEFAULTS.backgroundShare),
    burstShare: share.default(BUDGET_DEFAULTS.burstShare),
    windowMarginMs: z.number().int().min(0).max(600_000).default(BUDGET_DEFAULTS.windowMarginMs),
  })
  .strict()
  .default(BUDGET_DEFAULTS);

// Git mirror (docs/mirror.md; src/mirror/). Off unless enabled: it needs disk (a persistent
// volume sized by maxBytes), `git` in the image, and its answers differ from Bitbucket's in fields
// the plugin does not read (docs/mirror.md lists them).
const MIRROR_DEFAULTS = {
  enabled: false,
  maxBytes: 10 * 1024 ** 3,
  freshSeconds: 30,
  refreshSeconds: 600,
  waitSeconds: 10,
  syncTimeoutSeconds: 600,
  concurrency: 4,
  gitRequestsPerHour: 60_000,
  backgroundShare: 0.5,
  // Memory beside cache.maxBytes: parsed objects, rev-list pages, repository objects (src/mirror/memory.ts).
  memoryBytes: 16 * 1024 ** 2,
  maxConcurrentWalks: 4,
  maxWalkCommits: 10_000,
  workspaces: {},
};
const mirrorSchema = z
  .object({
    enabled: z.boolean().default(MIRROR_DEFAULTS.enabled),
    dir: z.string().min(1).optional(),
    maxBytes: byteSize.default(MIRROR_DEFAULTS.maxBytes),
    freshSeconds: z.number().min(0).max(86_400).default(MIRROR_DEFAULTS.freshSeconds),
    refreshSeconds: z.number().int().min(0).max(7 * 86_400).default(MIRROR_DEFAULTS.refreshSeconds),
    waitSeconds: z.number().min(0).max(600).default(MIRROR_DEFAULTS.waitSeconds),
    syncTimeoutSeconds: z.number().int().min(10).max(86_400).default(MIRROR_DEFAULTS.syncTimeoutSeconds),
    concurrency: z.number().int().min(1).max(64).default(MIRROR_DEFAULTS.concurrency),
    gitRequestsPerHour: z.number().int().min(1).default(MIRROR_DEFAULTS.gitRequestsPerHour),
    backgroundShare: share.default(MIRROR_DEFAULTS.backgroundShare),
    memoryBytes: byteSize.pipe(z.number().min(1024 ** 2)).default(MIRROR_DEFAULTS.memoryBytes),
    maxConcurrentWalks: z.number().int().min(1).max(64).default(MIRROR_DEFAULTS.maxConcurrentWalks),
    maxWalkCommits: z.number().int().min(100).max(1_000_000).default(MIRROR_DEFAULTS.maxWalkCommits),
    workspaces: z
      .record(z.string().regex(/^[A-Za-z0-9._-]+$/, 'must be a workspace slug'), z.object({ enabled: z.boolean() }).strict())
      .transform((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v])))
      .default({}),
  })
  .strict()
  .default(MIRROR_DEFAULTS);

// Repositories that git through a fork grant is served from (src/git/fork-repo.ts): each holds only
// the source branches of the open pull requests a client may use on a fork.
const FORK_GRANT_DEFAULTS = { maxBytes: 2 * 1024 ** 3, maxRepositories: 200 };
const forkGrantsSchema = z
  .object({
    maxBytes: byteSize.default(FORK_GRANT_DEFAULTS.maxBytes),
    maxRepositories: z.number().int().min(1).max(100_000).default(FORK_GRANT_DEFAULTS.maxRepositories),
  })
  .strict()
  .default(FORK_GRANT_DEFAULTS);

const upstreamAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('basic'), username: z.string().min(1), password: z.string().min(1) }).strict(),
  z.object({ type: z.literal('bearer'), token: z.string().min(1) }).strict(),
]);

export const configSchema = z
  .object({
    server: z
      .object({
        http: hostPort.default({ host: '0.0.0.0', port: 8080 }),
        https: hostPort
          .extend({ hostnames: z.array(z.string().regex(/^[a-z0-9.-]+$/i)).min(1).default(['api.bitbucket.org', 'bitbucket.org']) })
          .strict()
          .optional(),
        maxHeaderBytes: z.number().int().min(1024).max(65536).default(16384),
        maxUrlLength: z.number().int().min(256).max(65536).default(8192),
        maxBodyBytes: byteSize.default(1024 * 1024),
        // Hardening (src/listen/servers.ts): slowloris and connection limits.
        headersTimeoutMs: z.number().int().min(100).max(600_000).default(20_000),
        requestTimeoutMs: z.number().int().min(0).max(86_400_000).default(300_000),
        maxConnections: z.number().int().min(1).max(1_000_000).default(1024),
        /** Served connections one source address may hold (default: half of maxConnections). */
        maxConnectionsPerSource: z.number().int().min(1).max(1_000_000).optional(),
        /** A listener for /_sidecar/* alone (metrics without a token); loopback unless told otherwise. */
        ops: hostPort.extend({ host: z.string().min(1).default('127.0.0.1') }).strict().optional(),
      })
      .strict()
      .refine((s) => s.requestTimeoutMs === 0 || s.headersTimeoutMs <= s.requestTimeoutMs, {
        message: 'headersTimeoutMs must not exceed requestTimeoutMs (0 disables requestTimeoutMs)',
        path: ['headersTimeoutMs'],
      })
      .default({
        http: { host: '0.0.0.0', port: 8080 },
        maxHeaderBytes: 16384,
        maxUrlLength: 8192,
        maxBodyBytes: 1024 * 1024,
        headersTimeoutMs: 20_000,
        requestTimeoutMs: 300_000,
        maxConnections: 1024,
      }),
    tls: z
      .object({
        dir: z.string().min(1).default('/var/lib/bitbucket-sidecar/tls'),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        leafValidityDays: z.number().int().min(1).max(397).default(90),
      })
      .strict()
      .default({ dir: '/var/lib/bitbucket-sidecar/tls', leafValidityDays: 90 }),
    upstream: z
      .object({
        apiUrl: upstreamOrigin.default('https://api.bitbucket.org'),
        webUrl: upstreamOrigin.default('https://bitbucket.org'),
        auth: upstreamAuth,
        gitAuth: z.object({ username: z.string().min(1), password: z.string().min(1) }).strict().optional(),
        proxy: proxySchema.optional(),
        budget: budgetSchema,
        timeouts: z
          .object({ connectMs: z.number().int().min(100).default(10_000), responseMs: z.number().int().min(100).default(30_000) })
          .strict()
          .default({ connectMs: 10_000, responseMs: 30_000 }),
      })
      .strict(),
    clients: z.array(client).min(1),
    cache: cacheSchema,
    webhooks: webhooksSchema,
    state: stateSchema,
    refresh: refreshSchema,
    mirror: mirrorSchema,
    forkGrants: forkGrantsSchema,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    checkWebhooks(cfg, ctx);
    const seen = new Map<string, number>();
    cfg.clients.forEach((c, i) => {
      const id = c.id.toLowerCase();
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'id'], message: `duplicate client id "${c.id}" (also clients.${seen.get(id)})` });
      else seen.set(id, i);
    });
    const hashes = new Map<string, string>();
    cfg.clients.forEach((c, i) => {
      for (const t of [...(c.token ? [c.token] : []), ...(c.tokens ?? [])]) {
        const owner = hashes.get(t.sha256);
        if (owner && owner !== c.id) ctx.addIssue({ code: 'custom', path: ['clients', i], message: `token hash is also used by client "${owner}"` });
        hashes.set(t.sha256, c.id);
      }
    });
  });

export type Config = z.infer<typeof configSchema>;
export type ClientConfig = Config['clients'][number];
export type ScopeRuleConfig = ClientConfig['scope'][number];
