import { grantCovers, lfsAuthenticateAnswer, LFS_TOKEN_PREFIX, LfsTokens } from '../../src/auth/lfs-tokens';

describe('LFS tokens', () => {
  let now = 1_000_000;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('verifies a token for its client, repository and operation until it expires', () => {
    const tokens = new LfsTokens({ ttlMs: 60_000, now: clock });
    const { token, expiresInSeconds } = tokens.issue('ci', 'acme', 'api', 'download');
    expect(token.startsWith(LFS_TOKEN_PREFIX)).toBe(true);
    expect(expiresInSeconds).toBe(60);
    expect(tokens.verify(token)).toEqual({ client: 'ci', ws: 'acme', repo: 'api', operation: 'download', expiresAt: 1_060_000 });
    now += 59_999;
    expect(tokens.verify(token)?.client).toBe('ci');
    now += 1;
    expect(tokens.verify(token)).toBeUndefined();
    expect(tokens.size).toBe(0);
  });

  it('refuses anything not issued, including a configured-token lookalike', () => {
    const tokens = new LfsTokens({ now: clock });
    const { token } = tokens.issue('ci', 'acme', 'api', 'upload');
    expect(tokens.verify(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    expect(tokens.verify('bbsc_' + 'a'.repeat(187))).toBeUndefined();
    expect(tokens.verify('')).toBeUndefined();
  });

  it('hands the same token out again while it has more than half its life left', () => {
    const tokens = new LfsTokens({ ttlMs: 60_000, now: clock });
    const first = tokens.issue('ci', 'acme', 'api', 'download').token;
    now += 29_000;
    expect(tokens.issue('ci', 'acme', 'api', 'download').token).toBe(first);
    expect(tokens.issue('ci', 'acme', 'api', 'upload').token).not.toBe(first);
    expect(tokens.issue('other', 'acme', 'api', 'download').token).not.toBe(first);
    now += 2_000;
    const renewed = tokens.issue('ci', 'acme', 'api', 'download').token;
    expect(renewed).not.toBe(first);
    // The old one stays valid to the end of its own life.
    expect(tokens.verify(first)?.client).toBe('ci');
  });

  it('keeps at most maxPerClient per client (its oldest go) and maxTokens in all', () => {
    const tokens = new LfsTokens({ maxPerClient: 2, maxTokens: 3, now: clock });
    const a1 = tokens.issue('a', 'w', 'r1', 'download').token;
    const a2 = tokens.issue('a', 'w', 'r2', 'download').token;
    const a3 = tokens.issue('a', 'w', 'r3', 'download').token;
    expect(tokens.verify(a1)).toBeUndefined();
    expect(tokens.verify(a2)).toBeDefined();
    expect(tokens.verify(a3)).toBeDefined();
    const b1 = tokens.issue('b', 'w', 'r1', 'download').token;
    expect(tokens.size).toBe(3);
    const b2 = tokens.issue('b', 'w', 'r2', 'download').token;
    expect(tokens.size).toBe(3);
    expect(tokens.verify(a2)).toBeUndefined();
    expect([a3, b1, b2].every((t) => tokens.verify(t))).toBe(true);
  });

  it('covers its repository only, and pushes only for an upload', () => {
    const download = { client: 'ci', ws: 'acme', repo: 'api', operation: 'download' as const, expiresAt: 0 };
    const upload = { ...download, operation: 'upload' as const };
    expect(grantCovers(download, 'acme', 'api', 'read')).toBe(true);
    expect(grantCovers(download, 'acme', 'api', 'git:push')).toBe(false);
    expect(grantCovers(upload, 'acme', 'api', 'git:push')).toBe(true);
    expect(grantCovers(upload, 'acme', 'web', 'read')).toBe(false);
    expect(grantCovers(upload, 'other', 'api', 'read')).toBe(false);
    expect(grantCovers(upload, 'acme', 'api', 'webhooks:manage')).toBe(false);
  });

  it('answers git-lfs-authenticate with the HTTPS endpoint and a bearer header', () => {
    const tokens = new LfsTokens({ now: clock });
    const answer = lfsAuthenticateAnswer(tokens, { client: { id: 'ci' }, ws: 'acme', repo: 'service-api', operation: 'upload', baseUrl: 'https://bitbucket.org/' });
    expect(answer.href).toBe('https://bitbucket.org/acme/service-api.git/info/lfs');
    expect(answer.expires_in).toBe(600);
    const m = /^Bearer (\S+)$/.exec(answer.header.Authorization);
    expect(tokens.verify(m![1])).toMatchObject({ client: 'ci', ws: 'acme', repo: 'service-api', operation: 'upload' });
  });
});
