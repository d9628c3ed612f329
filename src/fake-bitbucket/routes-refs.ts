/** …/refs, …/refs/branches[/{name}], …/refs/tags[/{name}] — computed from for-each-ref + commit objects. */
import { type RepoRequest, isApiResult, joinRest, listResult, methodNotAllowed, parseJsonBody } from './api-common';
import { apiError, json, notFound, type ApiResult } from './http-util';
import { createBranch, deleteBranch } from './push';

const PAGE = { defaultPagelen: 10, maxPagelen: 100 };

async function renderBranch(req: RepoRequest, name: string, sha: string): Promise<Record<string, unknown> | undefined> {
  const c = await req.state.reader(req.repo).commit(sha);
  return c ? req.state.render.branch(req.repo, name, c) : undefined;
}

async function renderTag(req: RepoRequest, name: string): Promise<Record<string, unknown> | undefined> {
  const reader = req.state.reader(req.repo);
  const t = (await reader.refs()).tags.get(name);
  if (!t) return undefined;
  const c = await reader.commit(t.commit);
  if (!c) return undefined;
  const tagObj = t.annotated ? await reader.tag(t.objectSha) : undefined;
  return req.state.render.tag(req.repo, name, tagObj, c);
}

async function allBranches(req: RepoRequest): Promise<Array<Record<string, unknown>>> {
  const refs = await req.state.reader(req.repo).refs();
  const out = await Promise.all([...refs.branches].map(([n, sha]) => renderBranch(req, n, sha)));
  return out.filter((x): x is Record<string, unknown> => !!x);
}

async function allTags(req: RepoRequest): Promise<Array<Record<string, unknown>>> {
  const refs = await req.state.reader(req.repo).refs();
  const out = await Promise.all([...refs.tags.keys()].map((n) => renderTag(req, n)));
  return out.filter((x): x is Record<string, unknown> => !!x);
}

export async function handleRefs(req: RepoRequest): Promise<ApiResult> {
  const [, kind, ...nameSegs] = req.rest;
  const name = joinRest(nameSegs);
  const isGet = req.method === 'GET' || req.method === 'HEAD';
  if (kind === undefined || kind === '') {
    if (!isGet) return methodNotAllowed();
    const items = [...(await allBranches(req)), ...(await allTags(req))].sort((a, b) =>
      String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0,
    );
    return listResult(req, items, PAGE);
  }
  if (kind === 'branches') {
    if (!name) {
      if (isGet) return listResult(req, await allBranches(req), PAGE);
      if (req.method === 'POST') return createBranchFromBody(req);
      return methodNotAllowed();
    }
    const sha = (await req.state.reader(req.repo).refs()).branches.get(name);
    if (req.method === 'DELETE') {
      if (!sha) return notFound(`Branch "${name}" does not exist`);
      if (name === req.repo.mainBranch) return apiError(400, 'Cannot delete the main branch');
      await deleteBranch(req.state, req.repo, name);
      return { status: 204 };
    }
    if (!isGet) return methodNotAllowed();
    const b = sha ? await renderBranch(req, name, sha) : undefined;
    return b ? json(200, b) : notFound(`Branch "${name}" does not exist`);
  }
  if (kind === 'tags') {
    if (!isGet) return methodNotAllowed();
    if (!name) return listResult(req, await allTags(req), PAGE);
    const t = await renderTag(req, name);
    return t ? json(200, t) : notFound(`Tag "${name}" does not exist`);
  }
  return notFound('Resource not found');
}

async function createBranchFromBody(req: RepoRequest): Promise<ApiResult> {
  const body = parseJsonBody(req);
  if (isApiResult(body)) return body;
  const name = body.name;
  const target = (body.target as { hash?: unknown } | undefined)?.hash;
  if (typeof name !== 'string' || typeof target !== 'string') return apiError(400, 'name and target.hash are required');
  const reader = req.state.reader(req.repo);
  const sha = await reader.resolveCommitish(target);
  if (!sha) return notFound(`Commit ${target} not found`);
  if ((await reader.refs()).branches.has(name)) return apiError(400, `Branch "${name}" already exists`);
  try {
    if (!(await createBranch(req.state, req.repo, name, sha))) return apiError(400, `Could not create branch "${name}"`);
  } catch (e) {
    return apiError(400, (e as Error).message);
  }
  const b = await renderBranch(req, name, sha);
  return json(201, b);
}
