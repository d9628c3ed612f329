/**
 * /_sidecar/metrics after real traffic through a sidecar in front of the fake Bitbucket: every
 * documented metric is served, request counts follow route / decision / cache outcome, upstream
 * calls match what Bitbucket actually received, the budget gauge follows them, git bytes are
 * counted, token last-use is reported by the token's place in its client's list, and no secret appears.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { mintToken, sha256Hex } from '../../src/auth/tokens';
import { cacheStatus } from '../../src/core/cache-status';
import { cacheLabel, createMetrics, METRICS } from '../../src/ops/metrics';
import { startStack, type Stack } from '../helpers/stack';
import { basic, parseMetrics, request, sample } from './http';

describe('cacheLabel', () => {
  it.each([
    [undefined, 'none'],
    [cacheStatus({ hit: true, ttlSeconds: 20 }), 'hit'],
    [cacheStatus({ hit: true, ttlSeconds: 20, detail: 'derived' }), 'hit'],
    [cacheStatus({ hit: true, ttlSeconds: -3, detail: 'stale-while-revalidate' }), 'stale'],
    [cacheStatus({ hit: true, ttlSeconds: -3, detail: 'budget' }), 'stale'],
    [cacheStatus({ fwd: 'miss', fwdStatus: 200, stored: true, ttlSeconds: 30 }), 'miss'],
    [cacheStatus({ fwd: 'stale', fwdStatus: 200, stored: true, ttlSeconds: 30 }), 'miss'],
    [cacheStatus({ fwd: 'stale', fwdStatus: 503, ttlSeconds: -10, detail: 'stale-if-error' }), 'stale-fallback'],
    [cacheStatus({ fwd: 'miss', detail: 'budget-refused' }), 'miss'],
    [cacheStatus({ fwd: 'bypass' }), 'bypass'],
  ])('%s → %s', (status, label) => {
    expect(cacheLabel(status)).toBe(label);
  });
});

describe('createMetrics', () => {
  it('registers every documented metric, with its help text, in its own registry', async () => {
    const a = createMetrics({ processMetrics: false });
    const b = createMetrics({ processMetrics: false });
    a.requests.inc({ route: 'x', decision: 'allow', cache: 'hit', status: '200' });
    const { help, types, samples } = parseMetrics((await a.render()).body);
    for (const m of Object.values(METRICS)) {
      expect(help.get(m.name)).toBe(m.help);
      expect(types.get(m.name)).toBe(m.type);
    }
    expect(sample(samples, METRICS.requests.name)).toBe(1);
    expect(sample(parseMetrics((await b.render()).body).samples, METRICS.requests.name)).toBeUndefined();
  });

  it('reads pull-based state at scrape time and turns a cumulative eviction count into a counter', async () => {
    const m = createMetrics({ processMetrics: false });
    let view = { bytes: 10, entries: 1, maxBytes: 100, evictions: 2 };
    m.trackCache(() => view);
    m.trackWebhookQueue(() => 3);
    m.trackBudget(() => ({ classes: { repository: { limit: 1000, usedInWindow: 40, queued: 2 }, other: { limit: Infinity, usedInWindow: 5, queued: 0 } } }));
    let s = parseMetrics((await m.render()).body).samples;
    expect(sample(s, METRICS.cacheBytes.name)).toBe(10);
    expect(sample(s, METRICS.cacheMaxBytes.name)).toBe(100);
    expect(sample(s, METRICS.cacheEvictions.name)).toBe(2);
    expect(sample(s, METRICS.webhookQueueDepth.name)).toBe(3);
    expect(sample(s, METRICS.budgetRemaining.name, { class: 'repository' })).toBe(960);
    expect(sample(s, METRICS.budgetQueued.name, { class: 'repository' })).toBe(2);
    expect(sample(s, METRICS.budgetRemaining.name, { class: 'other' })).toBeUndefined(); // no limit, no gauge
    view = { bytes: 5, entries: 1, maxBytes: 100, evictions: 7 };
    s = parseMetrics((await m.render()).body).samples;
    expect(sample(s, METRICS.cacheEvictions.name)).toBe(7);
    expect(sample(s, METRICS.cacheBytes.name)).toBe(5);
  });
});

describe('/_sidecar/metrics on a running sidecar', () => {
  let stack: Stack;
  const spare = mintToken(); // configured, never used
  const scrape = async () => {
    const r = await request(`${stack.url}/_sidecar/metrics`, { headers: { authorization: basic('prometheus', stack.tokens.monitor) } });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return { text: r.body, ...parseMetrics(r.body) };
  };

  beforeAll(async () => {
    stack = await startStack([
      { id: 'reader', scope: [{ workspace: 'acme' }] },
      { id: 'monitor', scope: [], permissions: ['ops:read'] },
    ]);
    // A second token for the same client (rotation), via a reload.
    const cfg = stack.running.sidecar.config;
    stack.running.sidecar.reload({ ...cfg, clients: [{ ...cfg.clients[0], token: undefined, tokens: [{ sha256: sha256Hex(stack.tokens.reader) }, { sha256: sha256Hex(spare) }] }, cfg.clients[1]] });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('counts requests by route, decision and cache outcome; upstream calls match what Bitbucket received', async () => {
    const auth = { authorization: basic('jenkins@example.com', stack.tokens.reader) };
    stack.fake.clearLog();
    const list = `${stack.url}/2.0/repositories/acme?pagelen=100`;
    expect((await request(list, { headers: auth })).status).toBe(200);
    expect((await request(list, { headers: auth })).status).toBe(200);
    expect((await request(`${stack.url}/2.0/repositories/jdoe/secret-notes`, { headers: auth })).status).toBe(404);
    expect((await request(`${stack.url}/2.0/repositories/acme`)).status).toBe(401);
    const refs = await request(`${stack.url}/acme/service-api.git/info/refs?service=git-upload-pack`, { headers: auth });
    expect(refs.status).toBe(200);

    const { samples, text } = await scrape();
    const req = (labels: Record<string, string>) => sample(samples, METRICS.requests.name, labels);
    expect(req({ route: 'repositories', decision: 'allow', cache: 'miss', status: '200' })).toBe(1);
    expect(req({ route: 'repositories', decision: 'allow', cache: 'hit', status: '200' })).toBe(1);
    expect(req({ decision: 'out-of-scope', status: '404' })).toBe(1);
    expect(req({ decision: 'unauthenticated', status: '401' })).toBe(1);
    expect(req({ route: 'git-info-refs', decision: 'allow', status: '200' })).toBe(1);
    expect(sample(samples, `${METRICS.requestDuration.name}_count`, { route: 'repositories', cache: 'hit' })).toBe(1);
    // The ops endpoints themselves are not counted.
    expect(text).not.toMatch(/route="ops"/);

    // Every REST call Bitbucket saw, and no more: the cache hit and the refusals made none.
    const restSeen = stack.fake.requests.filter((q) => q.kind === 'api').length;
    expect(restSeen).toBeGreaterThan(0);
    expect(sample(samples, METRICS.upstreamCalls.name)).toBe(restSeen);
    const snapshot = stack.running.sidecar.budget.snapshot().classes.repository;
    expect(sample(samples, METRICS.budgetRemaining.name, { class: 'repository' })).toBe(snapshot.limit - snapshot.usedInWindow);
    expect(sample(samples, METRICS.budgetLimit.name, { class: 'repository' })).toBe(1000);

    // Git: the ref advertisement's bytes went to the client.
    expect(sample(samples, METRICS.gitBytes.name, { direction: 'download' })).toBeGreaterThanOrEqual(Buffer.byteLength(refs.body));

    // The cache holds what was stored.
    expect(sample(samples, METRICS.cacheEntries.name)).toBe(stack.running.sidecar.cache.store.entries);
    expect(sample(samples, METRICS.cacheBytes.name)).toBeGreaterThan(0);
    expect(sample(samples, METRICS.webhookQueueDepth.name)).toBe(stack.running.sidecar.webhooks.queueDepth());
  });

  it('reports token last use per client and place in its list, never the token or any part of its hash', async () => {
    const { samples, text } = await scrape();
    const lastUsed = sample(samples, METRICS.tokenLastUsed.name, { client: 'reader', token: '1' })!;
    expect(Math.abs(lastUsed - Date.now() / 1000)).toBeLessThan(60);
    expect(sample(samples, METRICS.tokenLastUsed.name, { client: 'reader', token: '2' })).toBe(0);
    for (const secret of [stack.tokens.reader, spare, stack.tokens.monitor, stack.fake.credentials.apiToken]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(sha256Hex(secret).slice(0, 12));
    }
    expect(text).not.toContain(stack.fake.credentials.email);
  });

  it('serves every metric in the reference table of docs/operations.md, and the table lists only real metrics', async () => {
    const { help } = await scrape();
    for (const m of Object.values(METRICS)) expect(help.has(m.name)).toBe(true);
    const section = readFileSync(path.resolve(__dirname, '../../docs/operations.md'), 'utf8');
    const documented = new Set([...section.matchAll(/`(bitbucket_sidecar_[a-z_]+)`/g)].map((m) => m[1]));
    const defined = new Set<string>(Object.values(METRICS).map((m) => m.name));
    expect([...defined].filter((n) => !documented.has(n))).toEqual([]);
    // Process metrics (prom-client defaults) are documented as a group, not one by one.
    expect([...documented].filter((n) => !defined.has(n) && !help.has(n))).toEqual([]);
  });

  it('has process metrics with the same prefix', async () => {
    const { help } = await scrape();
    expect(help.has('bitbucket_sidecar_process_resident_memory_bytes') || help.has('bitbucket_sidecar_process_cpu_seconds_total')).toBe(true);
  });
});
