/** Shared pieces of the /2.0 handlers: the request type, list answers (q, sort, pages), JSON bodies. */
import { BbqlError, compileQuery, sortBy } from './bbql';
import { apiError, json, type ApiResult } from './http-util';
import type { FakeRepository } from './model';
import { isResult, pageParams, paginate, type PageOptions } from './pagination';
import type { ParsedTarget } from './request-target';
import type { FakeState } from './state';

export interface ApiRequest {
  method: string;
  target: ParsedTarget;
  body: Buffer;
  headers: Record<string, string>;
  state: FakeState;
}

export interface RepoRequest extends ApiRequest {
  repo: FakeRepository;
  /** decoded segments after /2.0/repositories/{ws}/{repo} (a trailing '' marks a trailing slash) */
  rest: string[];
}

export function q1(req: ApiRequest, name: string): string | undefined {
  return req.target.query[name]?.[0];
}

export function methodNotAllowed(): ApiResult {
  return apiError(405, 'Method not allowed');
}

/** Apply `q=` and `sort=` to rendered items, then paginate with absolute links. */
export function listResult(req: ApiRequest, items: unknown[], opts: PageOptions): ApiResult {
  const p = pageParams(req.target.query, opts);
  if (isResult(p)) return p;
  let list = items;
  const q = q1(req, 'q');
  if (q) {
    try {
      const pred = compileQuery(q);
      list = list.filter(pred);
    } catch (e) {
      if (e instanceof BbqlError) return apiError(400, `Invalid query: ${e.message}`, { detail: q });
      throw e;
    }
  }
  const sort = q1(req, 'sort');
  if (sort) list = sortBy(list, sort);
  return json(
    200,
    paginate(list, p, { url: req.state.url, rawPath: req.target.rawPath, rawQuery: req.target.rawQuery }, opts),
  );
}

export function parseJsonBody(req: ApiRequest): Record<string, unknown> | ApiResult {
  if (req.body.length === 0) return apiError(400, 'Request body is required');
  try {
    const v = JSON.parse(req.body.toString('utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return apiError(400, 'Request body must be a JSON object');
    return v as Record<string, unknown>;
  } catch {
    return apiError(400, 'Malformed JSON body');
  }
}

export function isApiResult(x: unknown): x is ApiResult {
  return !!x && typeof x === 'object' && typeof (x as ApiResult).status === 'number' && ('json' in (x as object) || 'body' in (x as object));
}

/** Join the remaining segments (for names that may arrive as one %2F segment or as several). */
export function joinRest(segs: string[]): string {
  return segs.filter((s, i) => !(s === '' && i === segs.length - 1)).join('/');
}
