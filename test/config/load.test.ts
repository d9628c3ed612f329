import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfigText } from '../../src/config/load';

const HASH = 'a'.repeat(64);
const base = (clients: string, extra = '') => `
upstream:
  auth:
    type: basic
    username: jdoe@example.com
    password: \${UPSTREAM_TOKEN}
clients:
${clients}
${extra}`;
const oneClient = `  - id: jenkins-acme
    token: { sha256: "${HASH}" }
    scope:
      - workspace: acme
        repositories: ["service-*"]
    permissions: [read, statuses:write]`;
const env = { UPSTREAM_TOKEN: 'upstream-secret-value' };

function problems(text: string, e: NodeJS.ProcessEnv = env): string[] {
  try {
    parseConfigText(text, e);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the configuration to be refused');
}

describe('configuration', () => {
  it('accepts the documented shape and applies defaults', () => {
    const c = parseConfigText(base(oneClient), env);
    expect(c.upstream.apiUrl).toBe('https://api.bitbucket.org');
    expect(c.upstream.auth).toEqual({ type: 'basic', username: 'jdoe@example.com', password: 'upstream-secret-value' });
    expect(c.server.http.port).toBe(8080);
    expect(c.cache.maxBytes).toBe(256 * 1024 * 1024);
    expect(c.clients[0].permissions).toEqual(['read', 'statuses:write']);
    expect(c.upstream.budget.repositoryRequestsPerHour).toBe(1000);
  });

  it('names the key path of an unknown key (a typo never silently changes a scope)', () => {
    const typo = oneClient.replace('repositories:', 'repositoreis:');
    expect(problems(base(typo))).toEqual([expect.stringMatching(/^clients\.0\.scope\.0: unknown key "repositoreis"/)]);
    expect(problems(base(oneClient, 'cache: { maxBytez: 10 }'))[0]).toMatch(/^cache: unknown key "maxBytez"/);
  });

  it('refuses a missing environment secret without printing any secret', () => {
    const p = problems(base(oneClient), {});
    expect(p).toEqual(['upstream.auth.password: environment variable UPSTREAM_TOKEN is not set']);
  });

  it('reads ${file:...} secrets and names an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'from-file\n');
    const text = base(oneClient).replace('${UPSTREAM_TOKEN}', `\${file:${file}}`);
    expect(parseConfigText(text, {}).upstream.auth).toMatchObject({ password: 'from-file' });
    expect(problems(text.replace(file, join(dir, 'missing')), {})[0]).toMatch(/^upstream\.auth\.password: secret file .*missing cannot be read \(ENOENT\)/);
  });

  it('refuses bad globs', () => {
    expect(problems(base(oneClient.replace('"service-*"', '"service/[a-z]"')))[0]).toMatch(/^clients\.0\.scope\.0\.repositories\.0: must be a glob/);
    expect(problems(base(oneClient.replace('"service-*"', '"{a,b}"')))[0]).toMatch(/repositories\.0: must be a glob/);
  });

  it('refuses duplicate client ids and shared token hashes', () => {
    const second = oneClient.replace('jenkins-acme', 'Jenkins-ACME');
    const p = problems(base(`${oneClient}\n${second}`));
    expect(p).toEqual(expect.arrayContaining([expect.stringMatching(/^clients\.1\.id: duplicate client id "Jenkins-ACME"/), expect.stringMatching(/^clients\.1: token hash is also used/)]));
  });

  it('refuses unknown permissions, bad hashes, clients without credentials and empty scopes', () => {
    expect(problems(base(oneClient.replace('statuses:write', 'admin')))[0]).toMatch(/^clients\.0\.permissions\.1:/);
    expect(problems(base(oneClient.replace(HASH, 'xyz')))[0]).toMatch(/^clients\.0\.token\.sha256: must be 64 hex/);
    expect(problems(base(oneClient.replace(`    token: { sha256: "${HASH}" }\n`, '')))[0]).toMatch(/^clients\.0: needs token, tokens or oauth/);
    expect(problems(base(`  - id: x\n    token: { sha256: "${HASH}" }\n    scope: []`))[0]).toMatch(/^clients\.0\.scope:/);
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(problems('clients: [')[0]).toMatch(/^\(config\):\d+:\d+: YAML:/);
    expect(problems(`${base(oneClient)}\ncache: {}\ncache: {}`)[0]).toMatch(/^\(config\):\d+:\d+: YAML: Map keys must be unique/);
  });

  it('parses sizes and expiry dates', () => {
    const c = parseConfigText(base(oneClient.replace(`token: { sha256: "${HASH}" }`, `tokens: [{ sha256: "${HASH}", expiresAt: 2027-03-01 }]`), 'cache: { maxBytes: 64MiB }'), env);
    expect(c.cache.maxBytes).toBe(64 * 1024 * 1024);
    expect(c.clients[0].tokens?.[0].expiresAt?.toISOString()).toBe('2027-03-01T00:00:00.000Z');
    expect(problems(base(oneClient, 'cache: { maxBytes: lots }'))[0]).toMatch(/^cache\.maxBytes: must be a size/);
  });

  it('names a YAML syntax error\'s file, line and column with the library\'s excerpt, and only the first few', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-yaml-'));
    const file = join(dir, 'sidecar.yaml');
    const lines = base(oneClient).split('\n');
    lines.splice(4, 0, '    password2: "unterminated');
    writeFileSync(file, `${lines.join('\n')}\n${'  - ] oops\n'.repeat(20)}`);
    let got: string[] = [];
    try {
      loadConfigFile(file, env);
    } catch (e) {
      got = (e as ConfigError).problems;
    }
    expect(got[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: YAML: `));
    expect(got[0]).toContain('password2: "unterminated');
    expect(got[0]).toMatch(/\n\s*\^/);
    expect(got.length).toBeLessThanOrEqual(4);
    expect(got.join('\n')).not.toContain('upstream-secret-value');
  });

  it('refuses upstream URLs with a path and proxy URLs with credentials', () => {
    expect(problems(base(oneClient, 'x: 1').replace('upstream:\n', 'upstream:\n  apiUrl: https://api.bitbucket.org/2.0\n'))).toEqual(expect.arrayContaining([expect.stringMatching(/^upstream\.apiUrl: must be an origin/)]));
    const proxied = (proxy: string) => problems(base(oneClient).replace('upstream:\n', `upstream:\n  proxy: ${proxy}\n`));
    expect(proxied('{ url: "http://u:p@proxy.example:3128" }')).toEqual([expect.stringMatching(/^upstream\.proxy\.url: must not hold credentials/)]);
    expect(proxied('{ url: "http://proxy.example:3128", username: u }')).toEqual([expect.stringMatching(/username and password go together/)]);
    expect(() => parseConfigText(base(oneClient).replace('upstream:\n', 'upstream:\n  proxy: { url: "http://proxy.example:3128", noProxy: [".corp.example"] }\n'), env)).not.toThrow();
  });
});

