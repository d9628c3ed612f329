import { validateConfig } from '../../src/config/load';
import { GitBudget } from '../../src/mirror/budget';
import { plan } from '../../src/mirror/answers';
import { gitError, upstreamGitConfig } from '../../src/mirror/git-run';
import { pageHref } from '../../src/mirror/render';
import { routeById, type RouteId } from '../../src/routes/catalog';
import type { ApiCall } from '../../src/core/call';

const route = (id: RouteId) => routeById(id);
const call = (id: RouteId, params: ApiCall['params'], query: [string, string][] = []): ApiCall => ({ method: 'GET', route: route(id), params: { ws: 'acme', repo: 'r', ...params }, trailingSlash: false, query });

describe('mirror units', () => {
  it('config: off by default, documented defaults, workspace switches by slug (case-insensitive), strict keys', () => {
    const base = { upstream: { auth: { type: 'bearer', token: 't' } }, clients: [{ id: 'c', token: { sha256: 'a'.repeat(64) }, scope: [{ workspace: 'acme' }] }] };
    const c = validateConfig(base);
    expect(c.mirror).toEqual({ enabled: false, maxBytes: 10 * 1024 ** 3, freshSeconds: 30, refreshSeconds: 600, waitSeconds: 10, syncTimeoutSeconds: 600, concurrency: 4, gitRequestsPerHour: 60_000, backgroundShare: 0.5, memoryBytes: 16 * 1024 ** 2, maxConcurrentWalks: 4, maxWalkCommits: 10_000, workspaces: {} });
    const on = validateConfig({ ...base, mirror: { enabled: true, maxBytes: '2GiB', workspaces: { Big: { enabled: false } } } });
    expect(on.mirror).toMatchObject({ enabled: true, maxBytes: 2 * 1024 ** 3, workspaces: { big: { enabled: false } } });
    expect(() => validateConfig({ ...base, mirror: { enable: true } })).toThrow(/mirror/);
    expect(() => validateConfig({ ...base, mirror: { concurrency: 0 } })).toThrow(/concurrency/);
  });

  it('git budget: a refresh someone waits for may use the whole hour, a scheduled one only its share', () => {
    let t = 0;
    const b = new GitBudget({ requestsPerHour: 10, backgroundShare: 0.5 }, () => t);
    expect(b.take(2, 'background')).toBe(true);
    expect(b.take(2, 'background')).toBe(true);
    expect(b.take(2, 'background')).toBe(false); // 6 > 5
    b.note(3); // a clone streamed upstream counts too
    expect(b.used()).toBe(7);
    expect(b.take(2, 'foreground')).toBe(true);
    expect(b.take(2, 'foreground')).toBe(false); // 11 > 10
    t += 3_600_001;
    expect(b.used()).toBe(0);
    expect(b.take(2, 'background')).toBe(true);
  });

  it('the credential is configuration for the upstream URL only, sent as a header, never a redirect target', () => {
    const env = upstreamGitConfig('https://bitbucket.org/', 'Basic c2VjcmV0');
    const pairs = Object.fromEntries(Array.from({ length: Number(env.GIT_CONFIG_COUNT) }, (_, i) => [env[`GIT_CONFIG_KEY_${i}`], env[`GIT_CONFIG_VALUE_${i}`]]));
    expect(pairs).toEqual({
      'http.https://bitbucket.org/.extraHeader': 'Authorization: Basic c2VjcmV0',
      // No proxy chosen: an empty per-URL proxy, so an inherited https_proxy cannot redirect git.
      'http.https://bitbucket.org/.proxy': '',
      'http.followRedirects': 'false',
      'credential.helper': '',
      'protocol.version': '0',
      'gc.autoDetach': 'false',
    });
    expect(gitError({ code: 128, stdout: Buffer.alloc(0), stderr: 'fatal: unable to access: Authorization: Basic c2VjcmV0\n' })).not.toContain('c2VjcmV0');
  });

  it('what the mirror leaves to upstream: fields, q, sort, odd paging, other formats', () => {
    expect(plan(call('branches', {}, [['pagelen', '100']]))).toEqual({ ok: true, fresh: true });
    expect(plan(call('branches', {}, [['q', 'name~"x"']]))).toEqual({ ok: false, reason: 'q' });
    expect(plan(call('branches', {}, [['sort', '-target.date']]))).toEqual({ ok: false, reason: 'sort' });
    expect(plan(call('branch', { name: 'main' }, [['fields', 'name']]))).toEqual({ ok: false, reason: 'fields' });
    expect(plan(call('branches', {}, [['pagelen', '500']]))).toEqual({ ok: false, reason: 'paging' });
    expect(plan(call('branches', {}, [['page', '0']]))).toEqual({ ok: false, reason: 'paging' });
    expect(plan(call('commit', { hash: 'abcdef123456' }))).toEqual({ ok: true, fresh: false });
    expect(plan(call('commit', { hash: 'abcdef1' }))).toEqual({ ok: true, fresh: true });
    expect(plan(call('src', { rev: 'a'.repeat(40), path: 'Jenkinsfile' }, [['format', 'meta']]))).toEqual({ ok: true, fresh: false });
    expect(plan(call('src', { rev: 'main', path: 'Jenkinsfile' }, [['format', 'meta']]))).toEqual({ ok: true, fresh: true });
    expect(plan(call('src', { rev: 'main', path: 'x' }, [['format', 'rendered']]))).toEqual({ ok: false, reason: 'format' });
    expect(plan(call('commits', {}, [['exclude', 'b'.repeat(40)], ['include', 'a'.repeat(40)]]))).toEqual({ ok: true, fresh: false });
    expect(plan(call('commits', {}, [['include', 'main']]))).toEqual({ ok: true, fresh: true });
    expect(plan(call('pullrequests', {}))).toEqual({ ok: false, reason: 'route' });
  });

  it('next links: the request URL with page replaced and appended last', () => {
    expect(pageHref('https://api.bitbucket.org', '/2.0/repositories/a/b/refs/branches', 'page=2&pagelen=1', 3)).toBe('https://api.bitbucket.org/2.0/repositories/a/b/refs/branches?pagelen=1&page=3');
    expect(pageHref('https://api.bitbucket.org', '/2.0/repositories/a/b/src/abc/', '', 2)).toBe('https://api.bitbucket.org/2.0/repositories/a/b/src/abc/?page=2');
  });
});
