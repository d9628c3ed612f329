import { GitRenderer, encodeRefForLink, isoSeconds, mimetypeFor } from '../../src/git-objects/render';
import { entryAt, parseCommit, parseTag, parseTree, type TreeEntry } from '../../src/git-objects/parse';
import { resolveRefName } from '../../src/git-objects/refs';

/**
 * The one renderer the mirrors and the fake Bitbucket share, checked against the shapes Bitbucket
 * Cloud sends: the key sets below are those of recorded answers (commit, branch, tag, file meta),
 * written here so the suite needs nothing outside the repository.
 */
const API = 'https://api.bitbucket.org/2.0/repositories/acme/app';
const WEB = 'https://bitbucket.org/acme/app';
const mini = { type: 'repository', full_name: 'acme/app', links: { self: { href: API }, html: { href: WEB }, avatar: { href: 'https://bytebucket.org/ravatar/x' } }, name: 'app', uuid: '{u}' };
const render = new GitRenderer({ repoApi: API, repoWeb: WEB, mini });

const commit = parseCommit(
  '046d9a3c1532acf4cf08fe93235c00e4d673c1d2',
  Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nauthor Antonio Muñiz <amuniz@example.com> 1537541363 +0200\ncommitter Antonio Muñiz <amuniz@example.com> 1537541363 +0200\n\nAdd a file\n'),
);
const tag = parseTag('2222222222222222222222222222222222222222', Buffer.from(`object ${commit.sha}\ntype commit\ntag v0.0.0\ntagger Antonio Muñiz <amuniz@example.com> 1685433598 +0000\n\nFirst release\n`));

const keys = (o: unknown): string[] => Object.keys(o as object).sort();

describe('git objects rendered as Bitbucket Cloud renders them', () => {
  it('parses commits and annotated tags', () => {
    expect(commit.tree).toBe('4b825dc642cb6eb9a060e54bf8d69288fbee4904');
    expect(commit.parents).toEqual(['1111111111111111111111111111111111111111']);
    expect(commit.author).toEqual({ name: 'Antonio Muñiz', email: 'amuniz@example.com', time: 1537541363, tz: '+0200' });
    expect(tag).toMatchObject({ object: commit.sha, type: 'commit', tag: 'v0.0.0', message: 'First release\n' });
  });

  it('renders a commit with every key of a recorded commit answer, dates in UTC seconds', () => {
    const c = render.commit(commit);
    expect(keys(c)).toEqual(expect.arrayContaining(['author', 'date', 'hash', 'links', 'message', 'parents', 'participants', 'repository', 'summary', 'type']));
    expect(keys(c.links)).toEqual(['approve', 'comments', 'diff', 'html', 'patch', 'self', 'statuses']);
    expect(c.date).toBe('2018-09-21T14:49:23+00:00');
    expect(c.author).toEqual({ type: 'author', raw: 'Antonio Muñiz <amuniz@example.com>' });
    expect((c.links as Record<string, { href: string }>).self.href).toBe(`${API}/commit/${commit.sha}`);
    expect(keys(c.summary)).toEqual(['html', 'markup', 'raw', 'type']);
    expect(c.repository).toBe(mini);
  });

  it('renders branches and tags with the recorded link layout', () => {
    const b = render.branch('feature/x', commit);
    expect(keys(b)).toEqual(['default_merge_strategy', 'links', 'merge_strategies', 'name', 'target', 'type']);
    expect(b.links).toEqual({ commits: { href: `${API}/commits/feature/x` }, self: { href: `${API}/refs/branches/feature/x` }, html: { href: `${WEB}/branch/feature/x` } });
    const t = render.tag('v0.0.0', tag, commit);
    expect(keys(t)).toEqual(['date', 'links', 'message', 'name', 'tagger', 'target', 'type']);
    expect(t.date).toBe('2023-05-30T07:59:58+00:00');
    expect(t.links).toEqual({ self: { href: `${API}/refs/tags/v0.0.0` }, commits: { href: `${API}/commits/v0.0.0` }, html: { href: `${WEB}/commits/tag/v0.0.0` } });
    // A lightweight tag has no message, date or tagger: Bitbucket sends nulls.
    expect(render.tag('light', undefined, commit)).toMatchObject({ message: null, date: null, tagger: null });
  });

  it('renders file meta and directories, encoding each path segment', () => {
    const f = render.srcFile(commit.sha, 'folder/file name.properties', [], 12, mimetypeFor('folder/file.properties'));
    expect(keys(f)).toEqual(['attributes', 'commit', 'escaped_path', 'links', 'mimetype', 'path', 'size', 'type']);
    expect(f.mimetype).toBeNull();
    expect((f.links as Record<string, { href: string }>).meta.href).toBe(`${API}/src/${commit.sha}/folder/file%20name.properties?format=meta`);
    expect(render.srcDirectory(commit.sha, '')).toMatchObject({ type: 'commit_directory', path: '', links: { self: { href: `${API}/src/${commit.sha}/` } } });
  });

  it('encodes ref names in links the way Bitbucket does', () => {
    expect(encodeRefForLink('special-"$;><&#_=@!|.,/test')).toBe('special-%22$;%3E%3C&%23_=@!%7C.,/test');
    expect(isoSeconds(0)).toBe('1970-01-01T00:00:00+00:00');
  });

  it('walks trees to a path and resolves ref names in Bitbucket order', async () => {
    const blob = 'ab'.repeat(20);
    const sub = 'cd'.repeat(20);
    const tree = (entries: [string, string, string][]) => Buffer.concat(entries.map(([mode, name, sha]) => Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.from(sha, 'hex')])));
    const trees: Record<string, TreeEntry[]> = { root: parseTree(tree([['40000', 'dir', sub]])), [sub]: parseTree(tree([['100755', 'run.sh', blob]])) };
    const read = async (sha: string) => trees[sha];
    expect(await entryAt(read, 'root', '')).toEqual({ kind: 'root', tree: 'root', path: '' });
    expect(await entryAt(read, 'root', '/dir//run.sh')).toMatchObject({ kind: 'blob', mode: '100755', sha: blob, path: 'dir/run.sh' });
    expect(await entryAt(read, 'root', 'dir/run.sh/more')).toBeUndefined();
    expect(await entryAt(read, 'root', 'missing')).toBeUndefined();
    const refs = { branches: new Map([['main', 'b1'], ['tags/x', 'b2']]), tags: new Map([['main', { commit: 't1' }], ['x', { commit: 't2' }]]) };
    expect(resolveRefName(refs, 'main')).toBe('b1');
    expect(resolveRefName(refs, 'tags/x')).toBe('b2');
    expect(resolveRefName(refs, 'refs/tags/x')).toBe('t2');
    expect(resolveRefName(refs, 'heads/main')).toBe('b1');
    expect(resolveRefName(refs, 'nope')).toBeUndefined();
  });
});
