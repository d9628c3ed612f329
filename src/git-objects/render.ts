/**
 * Bitbucket Cloud's JSON for git objects — commits, branches, tags and `src` entries — rendered
 * from parsed objects. The mirrors and the fake Bitbucket both render through this one class, so
 * one renderer is tested against Bitbucket's recorded shapes. Links are absolute on the bases
 * given; the sidecar's respond stage rewrites them to the base each client used.
 */
import type { CommitObject, GitIdent, TagObject } from './parse';

export type Json = Record<string, unknown>;
export const href = (h: string): { href: string } => ({ href: h });

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** `summary` / `rendered.*`: a plain paragraph of the escaped text (not Bitbucket's Markdown). */
export function rendered(raw: string): Json {
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

/** Ref names in links, as Bitbucket writes them (`special-%22$;%3E%3C&%23_=@!%7C.,/test`): encodeURI plus `#` and `?`. */
export function encodeRefForLink(name: string): string {
  return encodeURI(name).replace(/#/g, '%23').replace(/\?/g, '%3F');
}

const MIMETYPES: Record<string, string> = {
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

/** Bitbucket's `mimetype` of a file: by extension, null when unknown (`.properties` → null). */
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

export interface GitRendererOptions {
  /** `https://api.bitbucket.org/2.0/repositories/{ws}/{repo}` */
  repoApi: string;
  /** `https://bitbucket.org/{ws}/{repo}` */
  repoWeb: string;
  /** The repository mini object commits carry (`{type, full_name, links, name, uuid}`). */
  mini: Json;
  /** `author` / `tagger` objects; by default the raw identity only (git knows no accounts). */
  author?: (id: GitIdent) => Json;
}

/** Renders one repository's git objects. */
export class GitRenderer {
  readonly repoApi: string;
  readonly repoWeb: string;
  private readonly mini: Json;
  private readonly authorOf: (id: GitIdent) => Json;

  constructor(options: GitRendererOptions) {
    this.repoApi = options.repoApi;
    this.repoWeb = options.repoWeb;
    this.mini = options.mini;
    this.authorOf = options.author ?? ((id) => ({ type: 'author', raw: id.email || id.name ? `${id.name} <${id.email}>` : id.name }));
  }

  author(id: GitIdent): Json {
    return this.authorOf(id);
  }

  commitRef(hash: string): Json {
    return { hash, links: { self: href(`${this.repoApi}/commit/${hash}`), html: href(`${this.repoWeb}/commits/${hash}`) }, type: 'commit' };
  }

  /** A commit as the `target` of a branch or tag (no summary, no rendered). */
  commitTarget(c: CommitObject): Json {
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
  commit(c: CommitObject): Json {
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

  branch(name: string, c: CommitObject): Json {
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

  tag(name: string, t: TagObject | undefined, c: CommitObject): Json {
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

  srcFile(commit: string, path: string, attributes: string[], size: number, mimetype: string | null): Json {
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

  srcDirectory(commit: string, path: string): Json {
    const base = `${this.repoApi}/src/${commit}/${path ? `${encodePath(path)}/` : ''}`;
    return { path, type: 'commit_directory', links: { self: href(base), meta: href(`${base}?format=meta`) }, commit: this.commitRef(commit) };
  }
}
