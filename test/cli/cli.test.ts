import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../src/cli';
import { sha256Hex } from '../../src/auth/tokens';

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += d));
  err.on('data', (d) => (e += d));
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await runCli(args, out, err);
    return { code, out: o, err: e };
  } finally {
    process.env = saved;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'cli-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const good = (hash: string) => `
upstream:
  auth: { type: bearer, token: "\${BB_TOKEN}" }
clients:
  - id: jenkins
    token: { sha256: "${hash}" }
    scope: [{ workspace: acme }]
`;

describe('bitbucket-sidecar CLI', () => {
  it('token create prints a 192-character token and the matching sha256 line', async () => {
    const r = await cli(['token', 'create', '--client', 'jenkins']);
    expect(r.code).toBe(0);
    const token = /^token: (\S+)$/m.exec(r.out)![1];
    expect(token).toHaveLength(192);
    expect(r.out).toContain(`token: { sha256: "${sha256Hex(token)}" }`);
  });

  it('token create --oauth prints an 18/32 pair and the secret hash', async () => {
    const r = await cli(['token', 'create', '--client', 'jenkins', '--oauth']);
    expect(r.code).toBe(0);
    const key = /^key: +(\S+)$/m.exec(r.out)![1];
    const secret = /^secret: +(\S+)$/m.exec(r.out)![1];
    expect([key.length, secret.length]).toEqual([18, 32]);
    expect(r.out).toContain(`secretSha256: "${sha256Hex(secret)}"`);
  });

  it('config check accepts a valid file (also via BITBUCKET_SIDECAR_CONFIG)', async () => {
    const p = file('good.yaml', good('b'.repeat(64)));
    expect(await cli(['config', 'check', '--config', p], { BB_TOKEN: 'x' })).toMatchObject({ code: 0, out: expect.stringContaining('1 client(s): jenkins') });
    expect((await cli(['config', 'check'], { BB_TOKEN: 'x', BITBUCKET_SIDECAR_CONFIG: p })).code).toBe(0);
  });

  it('config check exits 1 naming the key path and never printing secrets', async () => {
    const p = file('typo.yaml', good('b'.repeat(64)).replace('scope:', 'scopes:'));
    const r = await cli(['config', 'check', '--config', p], { BB_TOKEN: 'very-secret-upstream' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/clients\.0: unknown key "scopes"/);
    expect(r.err).not.toContain('very-secret-upstream');
    const missing = await cli(['config', 'check', '--config', file('ok.yaml', good('c'.repeat(64)))], {});
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('upstream.auth.token: environment variable BB_TOKEN is not set');
    expect((await cli(['config', 'check', '--config', join(dir, 'nope.yaml')])).code).toBe(1);
  });

  it('usage errors exit 2; --help exits 0', async () => {
    expect((await cli(['config', 'check'])).code).toBe(2);
    expect((await cli(['token', 'create'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['demo', '--port', 'x'])).code).toBe(2);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/serve[\s\S]*config[\s\S]*token[\s\S]*demo/);
  });

  it('ca export --config needs only tls.dir: the upstream secrets may be absent', async () => {
    const tlsDir = join(dir, 'tls');
    const p = file('trust.yaml', `${good('d'.repeat(64))}tls:\n  dir: ${tlsDir}\n`);
    const out = join(dir, 'ca.pem');
    const r = await cli(['ca', 'export', '--format', 'pem', '--out', out, '--config', p], {});
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`trust export of ${tlsDir}`);
    expect(readFileSync(out, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // What it does read is still checked.
    const bad = await cli(['ca', 'export', '--format', 'pem', '--out', out, '--config', file('bad-trust.yaml', 'tls: { dir: 7 }\n')], {});
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/tls\.dir: /);
  });
});

