import { ROUTES } from '../../src/routes/catalog';
import { canonicalQuery, upstreamPath } from '../../src/routes/call';
import { matchRoute } from '../../src/routes/match';
import { parseRequestTarget } from '../../src/routes/canonical';
import { SPECIAL_TAG } from '../../src/fake-bitbucket';
import { API, asClientSees, startMirrorStack, withoutDocumentedDifferences, type MirrorStack } from './helpers';

/**
 * The point 5: every answer the mirror computes is compared, field by field, with
 * fake-bitbucket's own answer for the same request on the same repository state (the fake computes
 * its JSON from its real git repositories, so both must agree). Whole objects are compared, minus
 * the documented differences (docs/mirror.md: `author.user` / `tagger.user`).
 */

/** What the sidecar sends upstream for a client URL: the canonical path and sorted query. */
function upstreamOf(url: string): string {
  const u = new URL(url);
  const target = parseRequestTarget(u.pathname + u.search, 8192);
  const found = matchRoute('api', 'GET', target);
  if (found.kind !== 'match') throw new Error(`no route for ${url}`);
  return upstreamPath({ route: found.match.route, params: found.match.params, trailingSlash: found.match.trailingSlash, query: canonicalQuery(target.query, found.match.route.query) });
}

const seg = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

describe('mirror answers are field-for-field the answers of the fake for the same repository state', () => {
  let s: MirrorStack;
  const compared: Record<string, number> = {};

  beforeAll(async () => {
    s = await startMirrorStack();
    // The scan starts with the listing: the repository objects commits name come from it.
    await s.plugin.getAll(`${API}/acme?pagelen=100`);
  });
  afterAll(async () => {
    await s.stop();
  });

  /** Asks the sidecar with an empty cache, checks no REST call was made, and compares with the fake. */
  async function same(url: string, opts: { raw?: boolean } = {}): Promise<any> {
    s.running.sidecar.cache.clear();
    const route = matchRoute('api', 'GET', parseRequestTarget(new URL(url).pathname + new URL(url).search, 8192));
    const id = route.kind === 'match' ? route.match.route.id : '?';
    const from = s.fake.requests.length;
    const before = s.mirrors.stats.answered[id] ?? 0;
    const mine = await s.plugin.get(url);
    expect({ url, rest: s.apiSince(from).map((r) => r.rawUrl) }).toEqual({ url, rest: [] });
    expect(s.mirrors.stats.answered[id]).toBe(before + 1);
    const theirs = await s.direct(upstreamOf(url));
    expect({ url, status: mine.status }).toEqual({ url, status: theirs.status });
    if (opts.raw && mine.status === 200) {
      expect(Buffer.from(mine.text)).toEqual(theirs.body);
    } else {
      expect({ url, body: withoutDocumentedDifferences(mine.json) }).toEqual({ url, body: withoutDocumentedDifferences(asClientSees(s.fake.url, theirs.json)) });
    }
    compared[id] = (compared[id] ?? 0) + 1;
    return mine.json;
  }

  for (const repo of ['service-api', 'service-web', 'infra', 'docs-site']) {
    it(`${repo}: branches, tags, commits, commit ranges and src`, async () => {
      const base = `${API}/acme/${repo}`;
      const branches = (await same(`${base}/refs/branches?pagelen=100`)).values as any[];
      expect(branches.length).toBeGreaterThanOrEqual(3);
      await same(`${base}/refs/branches`);
      await same(`${base}/refs/branches?pagelen=1`);
      await same(`${base}/refs/branches?page=2&pagelen=1`);
      await same(`${base}/refs/branches?page=3&pagelen=2`);
      for (const b of branches) {
        await same(`${base}/refs/branches/${seg(b.name)}`);
        await same(`${base}/commit/${b.target.hash}`);
        await same(`${base}/commit/${b.target.hash.slice(0, 12)}`);
        for (const p of b.target.parents) await same(`${base}/commit/${p.hash}`);
        await same(`${base}/src/${b.target.hash}/Jenkinsfile?format=meta`);
        await same(`${base}/src/${b.target.hash.slice(0, 12)}/Jenkinsfile?format=meta`);
        await same(`${base}/src/${seg(b.name)}/Jenkinsfile?format=meta`);
        await same(`${base}/commits?include=${seg(b.name)}`);
        await same(`${base}/commits?exclude=main&include=${seg(b.name)}`);
      }
      const tags = (await same(`${base}/refs/tags?pagelen=100`)).values as any[];
      expect(tags.map((t) => t.name)).toEqual(expect.arrayContaining(['v1.0', SPECIAL_TAG]));
      await same(`${base}/refs/tags?pagelen=1`);
      for (const t of tags) {
        await same(`${base}/refs/tags/${seg(t.name)}`);
        await same(`${base}/commit/${t.target.hash}`);
        await same(`${base}/src/${t.target.hash}/Jenkinsfile?format=meta`);
      }
      await same(`${base}/src/v1.0/VERSION?format=meta`);

      const main = branches.find((b) => b.name === 'main').target.hash as string;
      await same(`${base}/commits?include=main&pagelen=2`);
      await same(`${base}/commits?include=main&page=2&pagelen=2`);
      await same(`${base}/commits?exclude=${main.slice(0, 12)}&include=feature%2FBB-1`);

      // Directory listings (paged like Bitbucket: 10 by default), every entry's meta and content.
      const root = await same(`${base}/src/${main}/`);
      expect(root.next).toEqual(expect.stringMatching(/^http:\/\/api\.bitbucket\.org\/2\.0\//));
      await same(`${base}/src/${main}/?page=2`);
      const all = (await same(`${base}/src/${main}/?pagelen=100`)).values as any[];
      const byPath = Object.fromEntries(all.map((e) => [e.path, e]));
      expect(byPath['link-to-readme'].attributes).toEqual(['link']);
      expect(byPath['libs'].type).toBe('commit_directory');
      for (const e of all) {
        await same(`${base}/src/${main}/${seg(e.path)}?format=meta`);
        if (e.type === 'commit_file') await same(`${base}/src/${main}/${seg(e.path)}`, { raw: true });
        else await same(`${base}/src/${main}/${seg(e.path)}/`);
      }
      const sub = await same(`${base}/src/${main}/libs%2Fshared?format=meta`);
      expect(sub.attributes).toEqual(['subrepository']);
      expect((await same(`${base}/src/${main}/scripts%2Fbuild.sh?format=meta`)).attributes).toEqual(['executable']);
      await same(`${base}/src/${main}/src/nested`);
      await same(`${base}/src/${main}/src%2Fnested%2Fdeep.txt?format=meta`);
      await same(`${base}/src/${main}/dir%2FJenkinsfile?format=meta`);
      await same(`${base}/src/${main}/src?format=meta`);
      await same(`${base}/src/${main}/?format=meta`);
      // #15 lightweight checkout: the hash with ?at=, and without a hash (every segment is the path).
      await same(`${base}/src/${main}/Jenkinsfile?at=main`, { raw: true });
      await same(`${base}/src/folder%2Ffile.properties?at=main`, { raw: true });
      await same(`${base}/src/Jenkinsfile?at=tags%2Fv1.0`, { raw: true });
      await same(`${base}/src/main/script.bat`, { raw: true });

      // What is not there is 404 from the mirror too.
      expect((await same(`${base}/src/${main}/nope%2FJenkinsfile?format=meta`)).type).toBe('error');
      expect((await same(`${base}/refs/branches/no-such-branch`)).type).toBe('error');
      expect((await same(`${base}/refs/tags/no-such-tag`)).type).toBe('error');
      await same(`${base}/src/${main}/libs%2Fshared`);
    });
  }

  it('derives the repository object and the default branch from the workspace listing', async () => {
    for (const repo of ['service-api', 'service-web', 'infra', 'docs-site']) {
      await same(`${API}/acme/${repo}`);
      await same(`${API}/acme/${repo}/?fields=mainbranch.name`);
    }
  });

  it('covered every mirror route', () => {
    const mirrored = ROUTES.filter((r) => ['branches', 'branch', 'tags', 'tag', 'commit', 'commits', 'src', 'repository'].includes(r.id)).map((r) => r.id);
    for (const id of mirrored) expect({ id, compared: (compared[id] ?? 0) > 0 }).toEqual({ id, compared: true });
  });
});
