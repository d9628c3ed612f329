/** Dispatcher for the API face (/2.0/...), after authentication. */
import { type ApiRequest, listResult, methodNotAllowed, type RepoRequest } from './api-common';
import { encodeSegment } from './ids';
import { json, notFound, REPO_NOT_FOUND, type ApiResult } from './http-util';
import { handleRepositoryList, handleUser, handleUsers, handleWorkspaces } from './routes-account';
import { handleCommit, handleCommits } from './routes-commits';
import { handleHooks } from './routes-hooks';
import { handlePullRequests } from './routes-prs';
import { handleRefs } from './routes-refs';
import { handleSrc } from './routes-src';

/** Drop a trailing '' (trailing slash) except where it is meaningful. */
function trimTrailing(segs: string[]): string[] {
  return segs.length && segs[segs.length - 1] === '' ? segs.slice(0, -1) : segs;
}

function redirectLocation(req: ApiRequest, ws: string, slug: string, rest: string[]): string {
  const tail = rest.map((s) => encodeSegment(s)).join('/');
  const q = req.target.rawQuery ? `?${req.target.rawQuery}` : '';
  return `${req.state.url}/2.0/repositories/${ws}/${slug}${tail || rest.length ? `/${tail}` : ''}${q}`;
}

export async function handleApi(req: ApiRequest): Promise<ApiResult> {
  const segs = req.target.segments.slice(1); // after "2.0"
  const top = segs[0];
  const rest = trimTrailing(segs.slice(1));
  switch (top) {
    case 'user':
      return handleUser(req, rest);
    case 'users':
      return handleUsers(req, rest);
    case 'workspaces':
    case 'teams':
      return handleWorkspaces(req, rest);
    case 'repositories':
      break;
    default:
      return notFound('Resource not found');
  }
  const [ws, repoId] = rest;
  if (ws === undefined) return handleRepositoryList(req, undefined);
  if (repoId === undefined) return handleRepositoryList(req, ws);
  const { model } = req.state;
  const repoRest = segs.slice(3); // keep a trailing '' (src/{hash}/)
  const repo = model.findRepository(ws, repoId);
  if (!repo) {
    const moved = model.redirectFor(ws, repoId);
    if (moved) {
      const location = redirectLocation(req, moved.workspace, moved.slug, repoRest);
      return { status: 301, headers: { location }, json: { type: 'error', error: { message: 'Moved Permanently' } } };
    }
    if (!model.findWorkspace(ws)) return notFound(`No workspace with identifier '${ws}'.`);
    return notFound(REPO_NOT_FOUND);
  }
  const rr: RepoRequest = { ...req, repo, rest: repoRest };
  const section = repoRest[0];
  if (section === undefined || (section === '' && repoRest.length === 1)) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
    return json(200, req.state.render.repository(repo));
  }
  const trimmed: RepoRequest = section === 'src' ? rr : { ...rr, rest: trimTrailing(repoRest) };
  switch (section) {
    case 'refs':
      return handleRefs(trimmed);
    case 'commit':
      return handleCommit(trimmed);
    case 'commits':
      return handleCommits(trimmed);
    case 'src':
      return handleSrc(rr);
    case 'pullrequests':
      return handlePullRequests(trimmed);
    case 'hooks':
      return handleHooks(trimmed);
    case 'forks': {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
      return listResult(trimmed, model.forksOf(repo).map((f) => req.state.render.repository(f)), { defaultPagelen: 10, maxPagelen: 100 });
    }
    default:
      return notFound('Resource not found');
  }
}
