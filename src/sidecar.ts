import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ClientDirectory } from './auth/clients';
import { parseAuthorization } from './auth/credentials';
import { OAuthIssuer } from './auth/oauth';
import { LfsTokens } from './auth/lfs-tokens';
import { createLfs } from './lfs';
import { avatarHandler } from './upstream/avatar';
import type { Config } from './config/schema';
import { createGitProxy, GIT_IDLE_TIMEOUT_MS } from './git';
import { gitClientShare } from './git/client-share';
import { invalidateAfterPush } from './git/push-invalidation';
import { forkGitHandler } from './git/fork-git';
import { ForkRepos } from './git/fork-repo';
import { persistForkGrants } from './scope/grant-store';
import { faceNames } from './listen/face';
import { createPipeline } from './listen/pipeline';
import type { StreamHandler } from './core/stream';
import { createLogger } from './ops/logger';
import { ConnectionDrain } from './ops/drain';
import { countGitBytes, countUpstreamCalls, createMetrics, METRIC_PREFIX, type SidecarMetrics } from './ops/metrics';
import { createReadiness, type Readiness } from './ops/readiness';
import { opsRouter } from './ops/routes';
import type { Source } from './core/call';
import { dropClosedGrants, ScopeFacts } from './scope/facts';
import { ScopeGate } from './scope/gate';
import { learningSource } from './scope/learn';
import { UpstreamClient } from './upstream/client';
import { upstreamCredentials } from './upstream/credentials';
import { proxyChooser } from './upstream/proxy';
import { upstreamSource } from './upstream/source';
import { CredentialHealth, credentialName, credentialSource } from './upstream/credential-health';
import { ResponseCache } from './cache/cache';
import { registerCacheShareMetrics } from './cache/metrics';
import { BodyMemo } from './core/body-memo';
import { stackSources } from './core/stack';
import { credentialId } from './cache/key';
import { createShared, maxEntryLifetimeMs, withRedisCheck, type Shared } from './cache/shared';
import { BudgetGovernor, budgetClassOf, budgetWindowMs } from './upstream/budget';
import { systemClock, type Clock } from './upstream/budget-clock';
import { budgetSource } from './upstream/budget-source';
import { createWebhooks, type Webhooks } from './webhooks';
import { createMirrors, mirrorScope, registerMirrorMetrics, type Mirrors } from './mirror';

export const VERSION = '0.1.0';

export interface SidecarOptions {
  logger?: Logger;
  now?: () => number;
  /** Wraps the upstream REST source, inside the cache and the budget governor (tests). */
  wrapSource?: (inner: Source) => Source;
  /** Clock of the budget governor (tests, the budget benchmark); defaults to the system clock. */
  clock?: Clock;
  handlers?: Partial<Record<'git' | 'oauth' | 'avatar' | 'lfs', StreamHandler>>;
  /** Sees every git process the mirrors spawn (tests check their command lines). */
  onGitSpawn?: (pid: number, args: readonly string[]) => void;
}

export interface Sidecar {
  config: Config;
  logger: Logger;
  /** The current clients (a reload swaps them). */
  clients(): ClientDirectory;
  /**
   * Applies a new configuration's clients (tokens, scopes, permissions) without dropping
   * connections. Other sections need a restart; they are compared and reported.
   */
  reload(next: Config): { applied: string[]; needsRestart: string[] };
  facts: ScopeFacts;
  upstream: UpstreamClient;
  /** Parsed and shaped bodies (benchmarks clear it between runs). */
  memo: BodyMemo;
  /** Stage 5; its invalidate* methods are the invalidation API (webhook relay, writes). */
  cache: ResponseCache;
  budget: BudgetGovernor;
  /** `cache.shared.redis`: the Redis tier, budget window and their state (`up`, `whenUp`); absent without it. */
  shared?: Shared;
  /** Webhook relay (when `webhooks:` is configured; `queueDepth()` for metrics) and warm refresher. */
  webhooks: Webhooks;
  /** Repositories git through a fork grant is served from (`forkGrants:`). */
  forkRepos: ForkRepos;
  /**
   * Short-lived Git LFS tokens: the SSH face answers `git-lfs-authenticate` with
   * `lfsAuthenticateAnswer(sidecar.lfsTokens, …)` (src/auth/lfs-tokens.ts); the web face accepts them on LFS routes.
   */
  lfsTokens: LfsTokens;
  /** Git mirrors (`mirror:`): `markStale` / `refresh` are the invalidation API, `manager.usage()` the disk use. */
  mirrors: Mirrors;
  /** Prometheus registry behind /_sidecar/metrics; other stages report through it (src/ops/metrics.ts). */
  metrics: SidecarMetrics;
  /** Behind /_sidecar/ready; HTTPS start-up hands it the TLS manager (`watchTls`), shutdown marks it `draining`. */
  readiness: Readiness;
  /** Keep-alive connections closed as their answers finish, on shutdown (RunningSidecar.stop). */
  drain: ConnectionDrain;
  /** The request handler for every listener. */
  app: RequestListener;
  /** The handler of the `server.ops` listener: /_sidecar/* only, metrics without a token. */
  opsApp: RequestListener;
  close(): Promise<void>;
}

/** Wires the stages (docs/architecture.md) together from a validated configuration. */
export function createSidecar(config: Config, options: SidecarOptions = {}): Sidecar {
  const logger = options.logger ?? createLogger();
  const now = options.now ?? Date.now;
  let clients = new ClientDirectory(config.clients);
  let current = config;
  const oauth = new OAuthIssuer(() => clients, 3600, now, config.server.headersTimeoutMs);
  const facts = new ScopeFacts(now);
  const creds = upstreamCredentials(config.upstream);
  // One choice per upstream origin (config, else HTTPS_PROXY/NO_PROXY), shared by REST and git.
  const outbound = proxyChooser(config.upstream.proxy);
  const apiProxy = outbound(config.upstream.apiUrl);
  const webProxy = outbound(config.upstream.webUrl);
  // Parsed and shaped bodies, shared by the stages that read the same answer (src/core/body-memo.ts).
  const memo = new BodyMemo(config.cache.maxBytes);
  const upstream = new UpstreamClient({
    memo,
    apiUrl: config.upstream.apiUrl,
    authorization: creds.rest,
    connectTimeoutMs: config.upstream.timeouts.connectMs,
    responseTimeoutMs: config.upstream.timeouts.responseMs,
    userAgent: `bitbucket-sidecar/${VERSION}`,
    proxy: apiProxy,
  });
  const metrics = createMetrics();
  const credentialHealth = new CredentialHealth(logger);
  const readiness = createReadiness({ upstreamUrl: config.upstream.apiUrl, tlsExpected: config.server.https !== undefined, credential: () => credentialHealth.check() });
  // A client's weight for its share of the budget and of the cache (clients[].budgetWeight).
  const budgetWeight = (id: string): number => clients.byId(id)?.budgetWeight ?? 1;
  const clock = options.clock ?? (options.now ? { ...systemClock, now: options.now } : systemClock);
  // Several sidecars (cache.shared.redis): a second cache tier, cross-sidecar coalescing and one budget window in Redis.
  const shared = config.cache.shared
    ? createShared(config.cache.shared, { credential: credentialId(creds.rest), now: () => clock.now(), logger, windowMs: budgetWindowMs(config.upstream.budget), maxEntryLifetimeMs: maxEntryLifetimeMs(config.cache), cacheMaxBytes: config.cache.maxBytes, weight: budgetWeight })
    : undefined;
  const budget = new BudgetGovernor(config.upstream.budget, clock, shared?.budgetWindow, {
    weight: budgetWeight,
    clients: () => clients.budgetClients,
  });
  const cache = new ResponseCache(config.cache, {
    memo,
    credential: credentialId(creds.rest),
    now: () => clock.now(),
    pressure: (call) => budget.wouldWait(budgetClassOf(call)),
    onBackgroundError: (e, call) => logger.warn({ route: call.route.id, err: (e as Error).message }, 'background refresh failed'),
    shared: shared?.tier,
    weight: budgetWeight,
  });
  // Git mirrors: between the cache and the budget (REST), and in front of the git proxy (git).
  const mirrors = createMirrors(config.mirror, {
    stateDir: config.state.dir,
    apiUrl: config.upstream.apiUrl,
    webUrl: config.upstream.webUrl,
    gitAuthorization: creds.git.header,
    proxy: webProxy,
    inScope: (ws, repo) => mirrorScope(clients.clients, facts, ws, repo),
    metadataSeconds: config.cache.freshness.metadataSeconds,
    logger,
    now,
    onSpawn: options.onGitSpawn,
  });
  // Every invalidation, this sidecar's (webhook relay, our writes) or one another sidecar published
  // (cache.shared.redis), marks the repository's mirror stale and ends the fork grants of closed PRs.
  cache.onInvalidated((tags) => {
    mirrors.onInvalidatedTags(tags);
    dropClosedGrants(facts, tags);
  });
  // The warm refresher reads below the cache (it refreshes what the cache holds).
  const webhooks = createWebhooks(config, { clients: () => clients.clients, facts, cache, upstream: (call, ctx) => sources.mirror(call, ctx), budget, clock, logger, userAgent: `bitbucket-sidecar/${VERSION}` });
  /*
   * The REST source stack, one layer per stage; each answers what it can and hands the rest down:
   *
   *   request pipeline (scope gate, shaping)
   *   └ learn        scope facts from complete answers         src/scope/learn.ts
   *     └ observe    repositories the warm refresher keeps     src/webhooks
   *       └ cache    memory, then the shared Redis tier        src/cache
   *         └ mirror answers from local git mirrors            src/mirror
   *           └ budget      each client's share of the hour    src/upstream/budget-source.ts
   *             └ hook      SidecarOptions.wrapSource (tests)
   *               └ credential  a 401 to our credential: 502   src/upstream/credential-health.ts
   *                 └ metrics   upstream calls by status       src/ops/metrics.ts
   *                   └ upstream  Bitbucket                    src/upstream/source.ts
   */
  const sources = stackSources(upstreamSource(upstream), [
    ['metrics', (inner) => countUpstreamCalls(inner, metrics, budgetClassOf)],
    ['credential', (inner) => credentialSource(inner, credentialHealth, credentialName(config.upstream.auth))],
    ['hook', (inner) => (options.wrapSource ? options.wrapSource(inner) : inner)], // tests only
    ['budget', (inner) => budgetSource(inner, budget)],
    ['mirror', (inner) => mirrors.source(inner)],
    ['cache', (inner) => cache.wrap(inner)],
    ['observe', (inner) => webhooks.observe(inner)],
    ['learn', (inner) => learningSource(inner, facts, memo)],
  ]);
  const source = sources.learn;
  const gate = new ScopeGate(facts, source, config.cache.freshness.listSeconds * 1000);
  const git = createGitProxy({
    webUrl: config.upstream.webUrl,
    authorization: creds.git.header,
    userAgent: `bitbucket-sidecar/${VERSION}`,
    connectTimeoutMs: config.upstream.timeouts.connectMs,
    idleTimeoutMs: GIT_IDLE_TIMEOUT_MS,
    proxy: webProxy,
    onUpstreamStatus: (status) => credentialHealth.note(status, 'upstream.gitAuth', `upstream.gitAuth (${creds.git.username})`),
    logger,
  });
  // Git through a fork grant is served from a repository holding only the PR's source branch (src/git/fork-repo.ts).
  const forkRepos = new ForkRepos({
    dir: join(config.state.dir, 'fork-grants'),
    webUrl: config.upstream.webUrl,
    authorization: creds.git.header,
    proxy: webProxy,
    maxBytes: config.forkGrants.maxBytes,
    maxRepositories: config.forkGrants.maxRepositories,
    fetchTimeoutMs: config.mirror.syncTimeoutSeconds * 1000,
    concurrency: config.mirror.concurrency,
    logger,
    now,
    noteUpstream: (n) => mirrors.budget.note(n),
    onSpawn: options.onGitSpawn,
  });
  // Git LFS (docs/lfs.md): batch API and proxied object transfers, with the upstream git credential.
  const lfsTokens = new LfsTokens({ now });
  const lfs = createLfs({
    webUrl: config.upstream.webUrl,
    authorization: creds.git.header,
    userAgent: `bitbucket-sidecar/${VERSION}`,
    connectTimeoutMs: config.upstream.timeouts.connectMs,
    idleTimeoutMs: GIT_IDLE_TIMEOUT_MS,
    proxyFor: outbound,
    tokens: lfsTokens,
    transfers: { now },
    onUpstreamStatus: (status) => credentialHealth.note(status, 'upstream.gitAuth', `upstream.gitAuth (${creds.git.username})`),
    logger,
  });
  // An LFS token names its client by id: whoever the current configuration says that client is.
  const authenticateLfs = (secret: string) => {
    const grant = lfsTokens.verify(secret);
    const client = grant && clients.byId(grant.client);
    return client && grant ? { client, grant } : undefined;
  };
  const grantStore = persistForkGrants(facts, join(config.state.dir, 'fork-grants.json'), logger);
  const forkGrantsOf = (fork: string) => facts.forkGrants(fork);
  facts.onForkGrantsChanged(() => {
    grantStore.changed();
    forkRepos.reconcile(forkGrantsOf);
  });
  forkRepos.watch(forkGrantsOf);
  const names = faceNames(config.server.https?.hostnames ?? ['api.bitbucket.org', 'bitbucket.org']);
  metrics.trackTokens(() => clients.tokenUsage());
  metrics.trackBudget(() => budget.snapshot());
  metrics.trackCache(() => ({ bytes: cache.store.bytes, entries: cache.store.entries, maxBytes: cache.store.maxBytes }));
  shared?.registerMetrics(metrics.registry, METRIC_PREFIX);
  registerMirrorMetrics(metrics.registry, mirrors);
  registerCacheShareMetrics(metrics.registry, cache, shared?.tier);
  metrics.trackWebhookQueue(() => webhooks.queueDepth());
  const opsEndpoints = {
    ready: async (opts?: { skip?: string[] }) => withRedisCheck(await readiness.check(opts), shared, opts),
    metrics: () => metrics.render(),
  };
  // Metrics name clients: on the API listeners they need a token with ops:read.
  const authorizeOps = (req: IncomingMessage): 'ok' | 'unauthenticated' | 'forbidden' => {
    const presented = parseAuthorization(req.headers.authorization);
    const client = presented.kind === 'basic' || presented.kind === 'bearer' ? clients.authenticate(presented.secret) ?? oauth.authenticate(presented.secret) : undefined;
    if (!client) return 'unauthenticated';
    return client.permissions.has('ops:read') ? 'ok' : 'forbidden';
  };
  const ops = opsRouter({
    ...opsEndpoints,
    authorize: authorizeOps,
    webhook: webhooks.relay && { path: webhooks.relay.settings.path, handler: webhooks.relay.handler },
  });
  // `server.ops`: the operations endpoints alone, without a token (it listens on loopback by default).
  const opsOnly = opsRouter(opsEndpoints);

  const pipeline = createPipeline({
    clients: () => clients,
    authenticateIssued: (secret) => oauth.authenticate(secret),
    authenticateLfs,
    facts,
    gate,
    source,
    memo,
    names,
    upstream: { api: config.upstream.apiUrl, web: config.upstream.webUrl },
    limits: { maxUrlLength: config.server.maxUrlLength, maxBodyBytes: config.server.maxBodyBytes },
    handlers: { git: invalidateAfterPush(countGitBytes(forkGitHandler({ repos: forkRepos, logger }, mirrors.gitHandler(gitClientShare(git.handler, { requestsPerHour: config.mirror.gitRequestsPerHour, now }))), metrics), (tags) => cache.invalidateTags(tags)), oauth: oauth.handler, avatar: avatarHandler({ webUrl: config.upstream.webUrl, proxy: webProxy, ttlSeconds: config.cache.freshness.metadataSeconds }, () => clients), lfs: lfs.handler, ...options.handlers },
    ops: (req: IncomingMessage, res: ServerResponse) => ops(req, res),
    logger,
    onFinished: (record, seconds) => metrics.observeRequest(record, seconds),
  });

  const drain = new ConnectionDrain();
  // The pipeline is the whole request handler: express only routes the few /_sidecar endpoints.
  const app: RequestListener = (req, res) => {
    drain.track(req, res);
    void pipeline(req, res);
  };

  return {
    config,
    logger,
    clients: () => clients,
    reload(next: Config) {
      clients = new ClientDirectory(next.clients);
      const needsRestart = (['server', 'tls', 'upstream', 'cache', 'webhooks', 'mirror', 'state', 'refresh', 'forkGrants'] as const).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(current[k]));
      current = { ...current, clients: next.clients };
      logger.info({ clients: next.clients.length, needsRestart }, 'configuration reloaded');
      return { applied: ['clients'], needsRestart };
    },
    facts,
    upstream,
    memo,
    cache,
    budget,
    shared,
    webhooks,
    forkRepos,
    lfsTokens,
    mirrors,
    metrics,
    readiness,
    drain,
    app,
    opsApp: (req, res) => {
      drain.track(req, res);
      opsOnly(req, res);
    },
    close: async () => {
      git.close();
      await lfs.close();
      await grantStore.close();
      await forkRepos.close();
      await mirrors.close();
      await webhooks.close();
      await shared?.close();
      return upstream.close();
    },
  };
}
