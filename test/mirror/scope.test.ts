import { existsSync } from 'node:fs';
import path from 'node:path';
import { validateConfig } from '../../src/config/load';
import { sha256Hex } from '../../src/auth/tokens';
import { PluginClient } from '../helpers/plugin';
import { basicAuth, startStack } from '../helpers/stack';
import { runGit } from '../git/helpers';
import { API, startMirrorStack, type MirrorStack } from './helpers';

/**
 * Scope is unchanged by the mirror: the gate runs before it, mirrors exist only for repositories
 * some client may read, and a workspace can be switched off. Nothing here may create a mirror of a
 * repository no client may read.
 */
describe('mirrors and scope', () => {
  const mirrorDir = (s: MirrorStack, ws: string, repo?: string) => path.join(s.dir, 'mirrors', 'repos', ws, ...(repo ? [`${repo}.git`] : []));

  it('mirror.workspaces.<ws>.enabled: false keeps that workspace on upstream (REST and git)', async () => {
    const s = await startMirrorStack({ clients: [{ id: 'jenkins', scope: [{ workspace: 'acme' }, { workspace: 'other' }] }], mirror: { workspaces: { Other: { enabled: false } } } });
    try {
      let from = s.fake.requests.length;
      expect((await s.plugin.get(`${API}/other/widgets/refs/branches?pagelen=100`)).status).toBe(200);
      expect((await s.plugin.get(`${API}/other/widgets/src/main/Jenkinsfile?format=meta`)).status).toBe(200);
      expect(s.apiSince(from)).toHaveLength(2);
      const r = await runGit(['ls-remote', `${s.url}/other/widgets.git`], { token: s.tokens.jenkins });
      expect(r.code).toBe(0);
      expect(s.gitSince(from).every((q) => q.workspace === 'other')).toBe(true);
      expect(existsSync(mirrorDir(s, 'other'))).toBe(false);
      expect(s.mirrors.stats.upstream.off).toBe(2);

      from = s.fake.requests.length;
      expect((await s.plugin.get(`${API}/acme/infra/refs/branches?pagelen=100`)).status).toBe(200);
      expect(s.apiSince(from)).toHaveLength(0);
      expect(existsSync(mirrorDir(s, 'acme', 'infra'))).toBe(true);
    } finally {
      await s.stop();
    }
  });

  it('repository globs and project rules: only repositories the client may read are mirrored', async () => {
    const s = await startMirrorStack({
      clients: [
        { id: 'jenkins', scope: [{ workspace: 'acme', repositories: ['service-*'] }] },
        { id: 'ops', scope: [{ workspace: 'acme', projects: ['OPS'] }] },
      ],
    });
    try {
      const ops = new PluginClient(s.url, basicAuth('ops@ci.example', s.tokens.ops));
      expect((await s.plugin.get(`${API}/acme/infra/refs/branches`)).status).toBe(404);
      expect((await s.plugin.get(`${API}/acme/docs-site/src/main/Jenkinsfile?format=meta`)).status).toBe(404);
      expect(existsSync(mirrorDir(s, 'acme', 'docs-site'))).toBe(false);
      expect((await s.plugin.get(`${API}/acme/service-api/refs/branches`)).status).toBe(200);
      expect((await ops.get(`${API}/acme/infra/refs/branches`)).status).toBe(200);
      expect((await ops.get(`${API}/acme/service-api/refs/branches`)).status).toBe(404);
      expect(existsSync(mirrorDir(s, 'acme', 'service-api'))).toBe(true);
      expect(existsSync(mirrorDir(s, 'acme', 'infra'))).toBe(true);
      // An out-of-scope clone is refused before any mirror is touched.
      const r = await runGit(['ls-remote', `${s.url}/acme/docs-site.git`], { token: s.tokens.jenkins });
      expect(r.code).not.toBe(0);
      expect(existsSync(mirrorDir(s, 'acme', 'docs-site'))).toBe(false);
    } finally {
      await s.stop();
    }
  });

  it('a reload that narrows the scope deletes the mirrors no client may read any more', async () => {
    const s = await startMirrorStack({ clients: [{ id: 'jenkins', scope: [{ workspace: 'acme' }] }] });
    try {
      expect((await s.plugin.get(`${API}/acme/infra/refs/branches`)).status).toBe(200);
      expect((await s.plugin.get(`${API}/acme/service-api/refs/branches`)).status).toBe(200);
      const config = s.running.sidecar.config;
      const next = validateConfig({
        server: { http: { host: '127.0.0.1', port: 0 } },
        upstream: { apiUrl: config.upstream.apiUrl, webUrl: config.upstream.webUrl, auth: config.upstream.auth },
        clients: [{ id: 'jenkins', token: { sha256: sha256Hex(s.tokens.jenkins) }, scope: [{ workspace: 'acme', repositories: ['service-*'] }] }],
      });
      s.running.sidecar.reload(next);
      await s.mirrors.manager.sweep();
      expect(existsSync(mirrorDir(s, 'acme', 'infra'))).toBe(false);
      expect(existsSync(mirrorDir(s, 'acme', 'service-api'))).toBe(true);
    } finally {
      await s.stop();
    }
  });

  it('with the mirror off (the default) every answer comes from upstream and no mirror directory is made', async () => {
    const stack = await startStack([{ id: 'jenkins', scope: [{ workspace: 'acme' }] }]);
    try {
      const plugin = new PluginClient(stack.url, basicAuth('jenkins@ci.example', stack.tokens.jenkins));
      const from = stack.fake.requests.length;
      expect((await plugin.get(`${API}/acme/infra/refs/branches`)).status).toBe(200);
      expect(stack.fake.requests.slice(from).filter((r) => r.kind === 'api')).toHaveLength(1);
      expect(stack.running.sidecar.config.mirror.enabled).toBe(false);
      expect(stack.running.sidecar.mirrors.manager.usage().mirrors).toBe(0);
    } finally {
      await stack.stop();
    }
  });
});
