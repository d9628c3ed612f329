import { ConfigError, validateConfig } from '../../src/config/load';

const base = {
  upstream: { auth: { type: 'basic', username: 'a@b.example', password: 'x' } },
  clients: [{ id: 'ci', token: { sha256: 'a'.repeat(64) }, scope: [{ workspace: 'acme' }] }],
};
const problems = (raw: Record<string, unknown>): string[] => {
  try {
    validateConfig(raw);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
};

describe('configuration: webhooks, state, refresh', () => {
  it('defaults: no relay, state in /var/lib/bitbucket-sidecar, refresher off', () => {
    const c = validateConfig(base);
    expect(c.webhooks).toBeUndefined();
    expect(c.state.dir).toBe('/var/lib/bitbucket-sidecar');
    expect(c.refresh).toEqual({ enabled: false, budgetShare: 0.2, leadSeconds: 10, intervalSeconds: 1, maxKeys: 5000, forgetAfterSeconds: 86_400, confirmedSeconds: 3600 });
  });

  it('a webhooks section gets the default path, body limit and queue bounds', () => {
    const c = validateConfig({ ...base, webhooks: { secret: 's', forwardTo: 'http://jenkins:8080/bitbucket-scmsource-hook/notify' } });
    expect(c.webhooks).toEqual({
      secret: 's',
      forwardTo: 'http://jenkins:8080/bitbucket-scmsource-hook/notify',
      path: '/_sidecar/webhooks/bitbucket',
      maxBodyBytes: 1024 ** 2,
      maxInFlightBytes: 8 * 1024 ** 2,
      bodyTimeoutMs: 5000,
      queue: { maxEntries: 10_000, retryMinSeconds: 1, retryMaxSeconds: 300, timeoutSeconds: 10, maxAgeSeconds: 604_800, dedupSeconds: 86_400, dedupMaxEntries: 100_000 },
    });
  });

  it.each([
    [{ webhooks: { path: '/hooks/bitbucket' } }, /webhooks\.path: must be a path under \/_sidecar\//],
    [{ webhooks: { path: '/_sidecar/health' } }, /webhooks\.path: is already used/],
    [{ webhooks: { forwardTo: 'http://jenkins/bitbucket-scmsource-hook/notify?server_url=https://bitbucket.org' } }, /webhooks\.forwardTo: must not carry a server_url/],
    [{ webhooks: { queue: { retryMinSeconds: 10, retryMaxSeconds: 1 } } }, /webhooks\.queue\.retryMinSeconds: must not exceed retryMaxSeconds/],
    [{ webhooks: { queue: { maxEntries: 0 } } }, /webhooks\.queue\.maxEntries/],
    [{ webhooks: { extra: 1 } }, /webhooks: unknown key "extra"/],
    [{ webhooks: { maxBodyBytes: '1KiB' } }, /webhooks\.maxBodyBytes: must be between 64KiB/],
    [{ webhooks: { maxBodyBytes: '4MiB', maxInFlightBytes: '2MiB' } }, /webhooks\.maxInFlightBytes: must be at least maxBodyBytes/],
    [{ webhooks: { bodyTimeoutMs: 10 } }, /webhooks\.bodyTimeoutMs/],
    [{ refresh: { budgetShare: 2 } }, /refresh\.budgetShare/],
    [{ state: { dir: '' } }, /state\.dir/],
  ])('%j is refused', (extra, message) => {
    expect(problems({ ...base, ...extra }).join('\n')).toMatch(message);
  });

  it('client webhooks need the relay; clients sharing a URL must share its secret', () => {
    const withClientHooks = (hooks: object[], top?: object) => ({
      ...base,
      ...(top ? { webhooks: top } : {}),
      clients: hooks.map((w, i) => ({ id: `c${i}`, token: { sha256: String(i).repeat(64) }, scope: [{ workspace: 'acme' }], webhooks: w })),
    });
    expect(problems(withClientHooks([{ forwardTo: 'http://j1/notify' }])).join()).toMatch(/clients\.0\.webhooks: needs the top-level webhooks section/);
    expect(problems(withClientHooks([{ secret: 'a' }, { secret: 'b' }], { forwardTo: 'http://j/notify' })).join()).toMatch(/clients\.1\.webhooks\.secret: clients\.0 forwards to the same URL with another secret/);
    expect(problems(withClientHooks([{ secret: 'a' }, { secret: 'a' }, { forwardTo: 'http://other/notify', secret: 'b' }], { forwardTo: 'http://j/notify' }))).toEqual([]);
  });
});
