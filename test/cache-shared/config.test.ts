import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError, validateConfig } from '../../src/config/load';
import { startFakeBitbucket, type FakeBitbucketServer } from '../../src/fake-bitbucket';
import type { Stack } from '../helpers/stack';
import { API, get, ops, prefix, startShared, until } from './helpers';
import { startRedis, type RedisServer } from './redis-server';

const base = {
  upstream: { auth: { type: 'bearer', token: 't' } },
  clients: [{ id: 'j', token: { sha256: 'a'.repeat(64) }, scope: [{ workspace: 'acme' }] }],
};
const withShared = (shared: unknown) => ({ ...base, cache: { shared } });
const problems = (raw: unknown): string[] => {
  try {
    validateConfig(raw, {});
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
};

describe('cache.shared configuration', () => {
  it('fills the defaults, and is absent unless configured', () => {
    expect(validateConfig(base, {}).cache.shared).toBeUndefined();
    expect(validateConfig(withShared({ redis: { url: 'redis://redis:6379' } }), {}).cache.shared).toEqual({
      redis: { url: 'redis://redis:6379', keyPrefix: 'bitbucket-sidecar:', connectTimeoutMs: 2000, commandTimeoutMs: 500 },
      memorySeconds: 5,
      compression: 'brotli',
      lockTtlMs: 30_000,
      lockWaitMs: 20_000,
      fallbackBudgetShare: 0.5,
    });
  });

  it('resolves the password from a reference and reads `tls: true` as TLS with the system CAs', () => {
    const c = validateConfig(withShared({ redis: { url: 'rediss://r:6380/2', password: '${REDIS_PASSWORD}', tls: true } }), { REDIS_PASSWORD: 's3cret' });
    expect(c.cache.shared?.redis).toMatchObject({ password: 's3cret', tls: { rejectUnauthorized: true } });
  });

  it.each([
    [{ redis: { url: 'http://redis:6379' } }, 'cache.shared.redis.url: must be a redis:// or rediss:// (TLS) URL'],
    [{ redis: { url: 'redis://r', tls: { certFile: '/c.pem' } } }, 'cache.shared.redis.tls.certFile: certFile and keyFile go together (a client certificate)'],
    [{ redis: { url: 'redis://r', keyPrefix: 'a b' } }, 'cache.shared.redis.keyPrefix: must be printable ASCII without spaces'],
    [{ redis: { url: 'redis://r' }, fallbackBudgetShare: 2 }, 'cache.shared.fallbackBudgetShare'],
    [{ redis: { url: 'redis://r' }, compression: 'zstd' }, 'cache.shared.compression'],
    [{ redis: { url: 'redis://r', host: 'r' } }, 'cache.shared.redis: unknown key "host"'],
    [{ url: 'redis://r' }, 'cache.shared: unknown key "url"'],
    [{ redis: { url: 'redis://r' }, maxBytes: 1000 }, 'cache.shared.maxBytes: must be at least 64KiB'],
  ])('refuses %j', (shared, problem) => {
    expect(problems(withShared(shared)).join('\n')).toContain(problem);
  });

  it('bounds negative entries (cache.negativeMaxBytes) and what a sidecar keeps in Redis (cache.shared.maxBytes)', () => {
    expect(validateConfig(base, {}).cache.negativeMaxBytes).toBe(2048);
    const c = validateConfig({ ...base, cache: { negativeMaxBytes: '4KiB', shared: { redis: { url: 'redis://r' }, maxBytes: '1GiB' } } }, {});
    expect(c.cache.negativeMaxBytes).toBe(4096);
    expect(c.cache.shared?.maxBytes).toBe(1024 ** 3);
    expect(problems({ ...base, cache: { negativeMaxBytes: '2MiB' } }).join('\n')).toContain('cache.negativeMaxBytes: must be at most 1MiB');
  });

  it('names the missing environment variable of a password reference, never a value', () => {
    expect(problems(withShared({ redis: { url: 'redis://r', password: '${NOT_SET_ANYWHERE}' } }))).toEqual(['cache.shared.redis.password: environment variable NOT_SET_ANYWHERE is not set']);
  });
});

describe('Redis with TLS and a password', () => {
  const PASSWORD = 'redis-test-password-7f3a';
  let dir: string;
  let redis: RedisServer;
  let fake: FakeBitbucketServer;
  const stacks: Stack[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'redis-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    redis = await startRedis(['--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no', '--requirepass', PASSWORD], { tlsPort: true });
    fake = await startFakeBitbucket({ seed: 'demo' });
    process.env.REDIS_TEST_PASSWORD = PASSWORD;
  });
  afterAll(async () => {
    for (const s of stacks) await s.stop();
    await fake?.close();
    await redis?.stop();
    delete process.env.REDIS_TEST_PASSWORD;
    rmSync(dir, { recursive: true, force: true });
  });

  it('shares over rediss:// with the CA file and the password from ${ENV}', async () => {
    const keyPrefix = prefix();
    const redisOptions = { password: '${REDIS_TEST_PASSWORD}', tls: { caFile: path.join(dir, 'cert.pem') } };
    const a = await startShared(fake, redis.url, { keyPrefix, redis: redisOptions });
    stacks.push(a);
    const b = await startShared(fake, redis.url, { keyPrefix, redis: redisOptions });
    stacks.push(b);
    expect(redis.url).toMatch(/^rediss:/);
    const url = `${API}/acme/docs-site/refs/tags?pagelen=100`;
    expect((await get(a, url)).cacheStatus).toMatch(/fwd=miss/);
    expect((await get(b, url)).cacheStatus).toMatch(/\bhit\b.*detail=shared/);
    // The password never shows: not in readiness, not in the logs.
    expect(JSON.stringify((await ops(a)).ready.json)).not.toContain(PASSWORD);
    expect(a.logs.join('\n')).not.toContain(PASSWORD);
  });

  it('a wrong password degrades (and says why), it does not fail requests', async () => {
    const c = await startShared(fake, redis.url, { keyPrefix: prefix(), redis: { password: 'wrong-password', tls: { caFile: path.join(dir, 'cert.pem') } }, waitUp: false });
    stacks.push(c);
    expect((await get(c, `${API}/acme/infra`)).status).toBe(200);
    let o = await ops(c);
    await until(async () => /WRONGPASS|invalid username-password/.test((o = await ops(c)).ready.json.checks.redis), 'the refused password to be reported', 5000, 20);
    expect(o.ready.status).toBe(200);
    expect(o.ready.json.checks.redis).toMatch(/^degraded since /);
    expect(o.redisUp).toBe(0);
    expect(JSON.stringify(o.ready.json)).not.toContain('wrong-password');
  });

  it('a server certificate that the CA file does not vouch for is refused (degraded)', async () => {
    const c = await startShared(fake, redis.url, { keyPrefix: prefix(), redis: { password: PASSWORD }, waitUp: false });
    stacks.push(c);
    expect((await get(c, `${API}/acme/infra`)).status).toBe(200);
    let check = '';
    await until(async () => /certificate/i.test((check = (await ops(c)).ready.json.checks.redis)), 'the TLS failure to be reported', 5000, 20);
    expect(check).toMatch(/^degraded since .*(self.signed|certificate)/i);
  });
});
