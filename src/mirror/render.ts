/**
 * What a mirror renders: the git objects through the shared renderer (git-objects/render.ts) and
 * Bitbucket's paginated envelope. Differences from Bitbucket's own answers are documented in
 * docs/mirror.md: no `author.user` (git knows no accounts; Bitbucket omits it for addresses no
 * account claims), summaries as a plain paragraph, Bitbucket's default merge strategies, and the
 * repository mini object taken from the repository answer the sidecar has seen (without one it
 * lacks `uuid` and `links.avatar`).
 */
import { GitRenderer, href, type Json } from '../git-objects/render';

export { attributesFor, mimetypeFor } from '../git-objects/render';

type J = Json;

/** What commit JSON says about its repository (`{type, full_name, links{self,html,avatar}, name, uuid}`). */
export type RepositoryMini = J;

export interface RenderBases {
  /** `upstream.apiUrl`, e.g. https://api.bitbucket.org */
  apiUrl: string;
  /** `upstream.webUrl`, e.g. https://bitbucket.org */
  webUrl: string;
}

export class MirrorRenderer extends GitRenderer {
  constructor(
    bases: RenderBases,
    readonly ws: string,
    readonly repo: string,
    mini: RepositoryMini,
  ) {
    super({ repoApi: `${bases.apiUrl}/2.0/repositories/${ws}/${repo}`, repoWeb: `${bases.webUrl}/${ws}/${repo}`, mini });
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
