import { ClientDirectory } from '../../src/auth/clients';
import { parseAuthorization } from '../../src/auth/credentials';
import { looksLikeSidecarToken, mintOAuthConsumer, mintToken, sha256Hex, TOKEN_LENGTH } from '../../src/auth/tokens';
import { DEMO_TOKEN } from '../../src/auth/demo-token';
import { validateConfig } from '../../src/config/load';

describe('tokens', () => {
  it('are exactly 192 URL-safe characters with the recognisable prefix, and unique', () => {
    const a = mintToken();
    const b = mintToken();
    expect(a).toHaveLength(TOKEN_LENGTH);
    expect(a).toMatch(/^bbsc_[A-Za-z0-9_-]{187}$/);
    expect(looksLikeSidecarToken(a)).toBe(true);
    expect(a).not.toBe(b);
    expect(looksLikeSidecarToken(DEMO_TOKEN)).toBe(true);
  });

  it('OAuth consumer pairs have the 18/32 shape the plugin recognises', () => {
    const { key, secret } = mintOAuthConsumer();
    expect(key).toMatch(/^[A-Za-z0-9]{18}$/);
    expect(secret).toMatch(/^[A-Za-z0-9]{32}$/);
  });
});

describe('Authorization parsing', () => {
  const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
  it.each([
    [undefined, { kind: 'none' }],
    [`Basic ${b64('jenkins@ci.example:secret')}`, { kind: 'basic', username: 'jenkins@ci.example', secret: 'secret' }],
    [`basic ${b64('x-token-auth:a:b')}`, { kind: 'basic', username: 'x-token-auth', secret: 'a:b' }],
    ['Bearer abc', { kind: 'bearer', secret: 'abc' }],
  ])('%s', (header, expected) => {
    expect(parseAuthorization(header)).toEqual(expected);
  });
  it.each(['Digest abc', 'Negotiate YIIB', 'Token abc'])('treats %s as no credential of ours', (header) => {
    expect(parseAuthorization(header).kind).toBe('unsupported');
  });
  it.each(['Basic', 'Basic !!!', `Basic ${b64('nocolon')}`, 'Bearer a b', `Bearer ${'x'.repeat(5000)}`])('refuses %s', (header) => {
    expect(parseAuthorization(header).kind).toBe('malformed');
  });
});

describe('client directory', () => {
  const t1 = mintToken();
  const t2 = mintToken();
  const expired = mintToken();
  const dir = new ClientDirectory(
    validateConfig({
      upstream: { auth: { type: 'bearer', token: 'x' } },
      clients: [
        { id: 'a', tokens: [{ sha256: sha256Hex(t1) }, { sha256: sha256Hex(expired), expiresAt: '2020-01-01' }], scope: [{ workspace: 'acme' }] },
        { id: 'b', token: { sha256: sha256Hex(t2).toUpperCase() }, scope: [{ workspace: 'other' }] },
      ],
    }).clients,
  );

  it('finds the client of a token, refuses unknown and expired ones', () => {
    expect(dir.authenticate(t1)?.id).toBe('a');
    expect(dir.authenticate(t2)?.id).toBe('b');
    expect(dir.authenticate(mintToken())).toBeUndefined();
    expect(dir.authenticate(expired)).toBeUndefined();
    expect(dir.authenticate('')).toBeUndefined();
  });

  it('reports last use by the token\'s place in its client\'s list, never the token or any part of its hash', () => {
    dir.authenticate(t1, 1234);
    const usage = dir.tokenUsage();
    expect(usage.find((u) => u.client === 'a' && u.token === '1')?.lastUsed).toBe(1234);
    expect(usage.find((u) => u.client === 'a' && u.token === '2')?.lastUsed).toBeUndefined();
    const text = JSON.stringify(usage);
    for (const t of [t1, t2, expired]) {
      expect(text).not.toContain(t);
      expect(text).not.toContain(sha256Hex(t).slice(0, 12));
    }
  });
});
