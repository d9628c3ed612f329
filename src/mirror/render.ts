/**
 * Bitbucket Cloud's JSON for what a mirror can answer: branches, tags, commits and `src` entries,
 * and the paginated envelope. Shapes follow the recorded payloads (reference bitbucket-payloads/api)
 * and fake-bitbucket's renderer, field for field, with these documented differences (docs/mirror.md "Git
 * mirror"):
 *
 *  - `author.user` / `tagger.user` (the Bitbucket account behind an e-mail address) is absent: git
 *    does not know it. Bitbucket itself omits it for addresses no account claims, so the shape is
 *    one Bitbucket sends; the plugin reads only `author.raw`.
 *  - `summary.html` / `rendered.message.html` are a plain paragraph of the escaped message, not
 *    Bitbucket's Markdown rendering (the plugin reads neither).
 *  - branch `merge_strategies` / `default_merge_strategy` are Bitbucket's defaults, not the
 *    repository's branching-model settings (not read by the plugin).
 *  - `repository` inside a commit is taken from the repository object the sidecar has seen (listing
 *    or repository answer); without one it lacks `uuid` and `links.avatar`.
 *
 * Links are absolute on the upstream bases (`apiUrl`, `webUrl`); the respond stage rewrites them to
 * the base the client used, as it does for upstream answers.
 */
import type { CommitObject, GitIdent, TagObject } from './objects';

type J = Record<string, unknown>;
const href = (h: string): { href: string } => ({ href: h });

/** What commit JSON says about its repository (`{type, full_name, links{self,html,avatar}, name, uuid}`). */
export type RepositoryMini = J;

export interface RenderBases {
  /** `upstream.apiUrl`, e.g. https://api.bitbucket.org */
  apiUrl: string;
  /** `upstream.webUrl`, e.g. https://bitbucket.org */
  webUrl: string;
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function rendered(raw: string): J {
  const t = raw.trim();
  return { type: 'rendered', raw, markup: 'markdown', html: t ? `<p>${escapeHtml(t)}</p>` : '' };
}

/** Commit dates: UTC, whole seconds, `+00:00` (`2025-04-26T09:43:26+00:00`). */
export function isoSeconds(epochSeconds: number): string {
  return `${new Date(epochSeconds * 1000).toISOString().slice(0, 19)}+00:00`;
}

/** A file path in a link: each segment percent-encoded, slashes kept. */
export function encodePath(p: string): string {
  return p
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/** Ref names in links (recorded `refs/tags/special-%22$;%3E%3C&%23_=@!%7C.,/test`): encodeURI plus `#` and `?`. */
export function encodeRefForLink(name: string): string {
  return encodeURI(name).replace(/#/g, '%23').replace(/\?/g, '%3F');
}

export const MIMETYPES: Record<string, string> = {
  bat: 'application/x-msdos-program',
  cmd: 'application/x-msdos-program',
  sh: 'application/x-sh',
  json: 'application/json',
  xml: 'application/xml',
  md: 'text/markdown',
  txt: 'text/plain',
  html: 'text/html',
  css: 'text/css',
  js: 'application/javascript',
  png: 'image/png',
  jpg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  zip: 'application/zip',
  py: 'text/x-python',
  java: 'text/x-java',
};

/** Bitbucket's `mimetype` of a file: by extension, null when unknown (recorded: `.properties` → null). */
export function mimetypeFor(path: string): string | null {
  const base = path.split('/').pop() ?? '';
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return null;
  return MIMETYPES[base.slice(dot + 1).toLowerCase()] ?? null;
}

/** `attributes` of a tree entry: symlink → link, gitlink → subrepository, 100755 → executable. */
export function attributesFor(mode: string): string[] {
  if (mode === '120000') return ['link'];
  if (mode === '160000') return ['subrepository'];
  if (mode === '100755') return ['executable'];
  return [];
}

export class MirrorRenderer {
  readonly repoApi: string;
  readonly repoWeb: string;

  constructor(
    bases: RenderBases,
    readonly ws: string,
    readonly repo: string,
    private readonly mini: RepositoryMini,
  ) {
    this.repoApi = `${bases.apiUrl}/2.0/repositories/${ws}/${repo}`;
    this.repoWeb = `${bases.webUrl}/${ws}/${repo}`;
  }

  /** The repository mini object for `repo`, from a full repository object when one is known. */
  static mini(bases: RenderBases, ws: string, repo: string, full?: J): RepositoryMini {
    const links = (full?.links ?? {}) as Record<string, unknown>;
    const api = `${bases.apiUrl}/2.0/repositories/${ws}/${repo}`;
    const out: J = {
      type: 'repository',
      full_name: typeof full?.full_name === 'string' ? full.full_name : `${ws}/${repo}`,
      links: {
        self: links.self ?? href(api),
        html: links.html ?? href(`${bases.webUrl}/${ws}/${repo}`),
        ...(links.avatar ? { avatar: links.avatar } : {}),
      },
      name: typeof full?.name === 'string' ? full.name : repo,
    };
    if (typeof full?.uuid === 'string') out.uuid = full.uuid;
    return out;
  }

  author(id: GitIdent): J {
    return { type: 'author', raw: id.email || id.name ? `${id.name} <${id.email}>` : id.name };
  }

  commitRef(hash: string): J {
    return { hash, links: { self: href(`${this.repoApi}/commit/${hash}`), html: href(`${this.repoWeb}/commits/${hash}`) }, type: 'commit' };
  }

  /** A commit as the `target` of a branch or tag. */
  commitTarget(c: CommitObject): J {
    const api = `${this.repoApi}/commit/${c.sha}`;
    return {
      type: 'commit',
      hash: c.sha,
      date: isoSeconds(c.author.time),
      author: this.author(c.author),
      message: c.message,
      links: {
        self: href(api),
        html: href(`${this.repoWeb}/commits/${c.sha}`),
        diff: href(`${this.repoApi}/diff/${c.sha}`),
        approve: href(`${api}/approve`),
        comments: href(`${api}/comments`),
        statuses: href(`${api}/statuses`),
        patch: href(`${this.repoApi}/patch/${c.sha}`),
      },
      parents: c.parents.map((p) => this.commitRef(p)),
      repository: this.mini,
    };
  }

  /** `GET …/commit/{hash}` and the values of `…/commits`. */
  commit(c: CommitObject): J {
    const t = this.commitTarget(c);
    return {
      type: 'commit',
      hash: c.sha,
      date: t.date,
      author: t.author,
      message: c.message,
      summary: rendered(c.message),
      links: t.links,
      parents: t.parents,
      rendered: { message: rendered(c.message) },
      repository: t.repository,
      participants: [],
    };
  }

  branch(name: string, c: CommitObject): J {
    const enc = encodeRefForLink(name);
    return {
      name,
      links: {
        commits: href(`${this.repoApi}/commits/${enc}`),
        self: href(`${this.repoApi}/refs/branches/${enc}`),
        html: href(`${this.repoWeb}/branch/${enc}`),
      },
      default_merge_strategy: 'merge_commit',
      merge_strategies: ['merge_commit', 'squash', 'fast_forward'],
      type: 'branch',
      target: this.commitTarget(c),
    };
  }

  tag(name: string, t: TagObject | undefined, c: CommitObject): J {
    const enc = encodeRefForLink(name);
    return {
      name,
      type: 'tag',
      message: t ? t.message : null,
      date: t?.tagger ? isoSeconds(t.tagger.time) : null,
      tagger: t?.tagger ? this.author(t.tagger) : null,
      target: this.commitTarget(c),
      links: {
        self: href(`${this.repoApi}/refs/tags/${enc}`),
        commits: href(`${this.repoApi}/commits/${enc}`),
        html: href(`${this.repoWeb}/commits/tag/${enc}`),
      },
    };
  }

  srcFile(commit: string, path: string, attributes: string[], size: number, mimetype: string | null): J {
    const base = `${this.repoApi}/src/${commit}/${encodePath(path)}`;
    return {
      path,
      commit: this.commitRef(commit),
      type: 'commit_file',
      attributes,
      escaped_path: path,
      size,
      mimetype,
      links: {
        self: href(base),
        meta: href(`${base}?format=meta`),
        history: href(`${this.repoApi}/filehistory/${commit}/${encodePath(path)}`),
      },
    };
  }

  srcDirectory(commit: string, path: string): J {
    const base = `${this.repoApi}/src/${commit}/${path ? `${encodePath(path)}/` : ''}`;
    return { path, type: 'commit_directory', links: { self: href(base), meta: href(`${base}?format=meta`) }, commit: this.commitRef(commit) };
  }
}

export interface PageShape {
  defaultPagelen: number;
  maxPagelen: number;
  /** Include `size` (refs and src listings do; commit lists do not). */
  size: boolean;
  /** Include `page` and `previous` (commit lists have neither). */
  page: boolean;
}

export const REFS_PAGE: PageShape = { defaultPagelen: 10, maxPagelen: 100, size: true, page: true };
export const SRC_PAGE: PageShape = { defaultPagelen: 10, maxPagelen: 100, size: true, page: true };
export const COMMITS_PAGE: PageShape = { defaultPagelen: 30, maxPagelen: 100, size: false, page: false };

/**
 * `page=N` replaced in (and appended last to) the request's own upstream path and query — what
 * Bitbucket (and fake-bitbucket) put in `next`/`previous`.
 */
export function pageHref(apiUrl: string, path: string, query: string, page: number): string {
  const parts = query.split('&').filter((p) => p && decodeURIComponent(p.split('=')[0]) !== 'page');
  parts.push(`page=${page}`);
  return `${apiUrl}${path}?${parts.join('&')}`;
}

/** Bitbucket's paginated envelope over `total` items of which `values` are page `page`. */
export function envelope(values: unknown[], total: number, page: number, pagelen: number, shape: PageShape, link: (page: number) => string): J {
  const env: J = { pagelen };
  if (shape.size) env.size = total;
  env.values = values;
  if (shape.page) env.page = page;
  const start = (page - 1) * pagelen;
  if (start + pagelen < total) env.next = link(page + 1);
  if (page > 1 && shape.page) env.previous = link(page - 1);
  return env;
}
