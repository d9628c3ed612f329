/**
 * Bitbucket's paginated envelope `{pagelen, size, values, page, next, previous}` with absolute `next` links
 * built from the request's own path and query (`page` replaced and appended last).
 */
import { apiError, type ApiResult } from './http-util';

export interface PageOptions {
  defaultPagelen: number;
  maxPagelen: number;
  /** 'error' → HTTP 400 beyond maxPagelen (pull requests), 'clamp' otherwise */
  overMax?: 'clamp' | 'error';
  /** include `size` (default true) */
  size?: boolean;
  /** include `page` (default true) */
  page?: boolean;
}

export interface PageParams {
  page: number;
  pagelen: number;
}

export interface LinkBase {
  url: string;
  rawPath: string;
  rawQuery: string;
}

export function pageParams(query: Record<string, string[]>, opts: PageOptions): PageParams | ApiResult {
  const rawLen = query.pagelen?.[0];
  let pagelen = opts.defaultPagelen;
  if (rawLen !== undefined && rawLen !== '') {
    const n = Number(rawLen);
    if (!Number.isInteger(n) || n < 1) return apiError(400, `Invalid pagelen: ${rawLen}`);
    if (n > opts.maxPagelen) {
      if (opts.overMax === 'error') return apiError(400, `Invalid pagelen: maximum is ${opts.maxPagelen}`);
      pagelen = opts.maxPagelen;
    } else pagelen = n;
  }
  const rawPage = query.page?.[0];
  let page = 1;
  if (rawPage !== undefined && rawPage !== '') {
    const n = Number(rawPage);
    if (!Number.isInteger(n) || n < 1) return apiError(400, `Invalid page: ${rawPage}`);
    page = n;
  }
  return { page, pagelen };
}

export function isResult(x: PageParams | ApiResult): x is ApiResult {
  return (x as ApiResult).status !== undefined;
}

/** The same request with `page=N` (absolute, on the fake's own origin). */
export function pageHref(base: LinkBase, page: number): string {
  const parts = base.rawQuery.split('&').filter((p) => {
    if (!p) return false;
    const k = p.split('=')[0] ?? '';
    let key = k;
    try {
      key = decodeURIComponent(k);
    } catch {
      /* keep raw */
    }
    return key !== 'page';
  });
  parts.push(`page=${page}`);
  return `${base.url}${base.rawPath}?${parts.join('&')}`;
}

export function paginate<T>(items: T[], p: PageParams, base: LinkBase, opts: PageOptions): Record<string, unknown> {
  const start = (p.page - 1) * p.pagelen;
  const values = items.slice(start, start + p.pagelen);
  const env: Record<string, unknown> = { pagelen: p.pagelen };
  if (opts.size !== false) env.size = items.length;
  env.values = values;
  if (opts.page !== false) env.page = p.page;
  if (start + p.pagelen < items.length) env.next = pageHref(base, p.page + 1);
  if (p.page > 1 && opts.page !== false) env.previous = pageHref(base, p.page - 1);
  return env;
}
