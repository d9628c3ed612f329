/** /2.0/user, /2.0/users/{id}, /2.0/workspaces…, and the repository listings /2.0/repositories[/{ws}]. */
import { type ApiRequest, listResult, methodNotAllowed, q1 } from './api-common';
import { apiError, json, notFound, type ApiResult } from './http-util';
import type { FakeRepository, RepoRole } from './model';

const ROLE_RANK: Record<RepoRole, number> = { member: 1, contributor: 2, admin: 3, owner: 4 };

const REPO_PERMISSION: Record<RepoRole, string> = { member: 'read', contributor: 'write', admin: 'admin', owner: 'admin' };

/** /2.0/user, /2.0/user/permissions/workspaces, /2.0/user/permissions/repositories */
export function handleUser(req: ApiRequest, rest: string[]): ApiResult {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
  const { model, render } = req.state;
  const me = render.userMini(model.currentUser);
  if (rest.length === 0) return json(200, render.user(model.currentUser));
  if (rest[0] === 'permissions' && rest[1] === 'workspaces' && rest.length === 2) {
    const values = model.workspaces.map((w) => {
      const own = w.kind === 'personal' && w.owner === model.currentUser.nickname;
      const admin = model.repositoriesOf(w.slug).some((r) => ROLE_RANK[r.role] >= ROLE_RANK.admin);
      return { type: 'workspace_membership', permission: own ? 'owner' : admin ? 'collaborator' : 'member', user: me, workspace: render.workspaceMini(w) };
    });
    return listResult(req, values, { defaultPagelen: 10, maxPagelen: 100 });
  }
  if (rest[0] === 'permissions' && rest[1] === 'repositories' && rest.length === 2) {
    const values = model.repositories.map((r) => ({ type: 'repository_permission', permission: REPO_PERMISSION[r.role], user: me, repository: render.repoMini(r) }));
    return listResult(req, values, { defaultPagelen: 10, maxPagelen: 100 });
  }
  return notFound('Resource not found');
}

export function handleUsers(req: ApiRequest, rest: string[]): ApiResult {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
  const u = rest[0] ? req.state.model.findUser(rest[0]) : undefined;
  if (!u || rest.length > 1) return notFound(`User ${rest[0] ?? ''} not found`);
  return json(200, req.state.render.userMini(u));
}

export function handleWorkspaces(req: ApiRequest, rest: string[]): ApiResult {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
  const { model, render } = req.state;
  if (rest.length === 0) {
    return listResult(req, model.workspaces.map((w) => render.workspace(w)), { defaultPagelen: 10, maxPagelen: 100 });
  }
  const ws = model.findWorkspace(rest[0] as string);
  if (!ws) return notFound(`No workspace with identifier '${rest[0]}'.`);
  if (rest.length === 1) return json(200, render.workspace(ws));
  if (rest[1] === 'projects') {
    if (rest.length === 2) {
      return listResult(req, model.projectsOf(ws.slug).map((p) => render.project(p)), { defaultPagelen: 10, maxPagelen: 100 });
    }
    const p = model.findProject(ws.slug, rest[2] as string);
    if (!p || rest.length > 3) return notFound(`Project ${rest[2]} not found`);
    return json(200, render.project(p));
  }
  return notFound('Resource not found');
}

export function handleRepositoryList(req: ApiRequest, workspace: string | undefined): ApiResult {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
  const { model, render } = req.state;
  let repos: FakeRepository[];
  if (workspace === undefined) {
    repos = [...model.repositories];
  } else {
    const ws = model.findWorkspace(workspace);
    if (!ws) return notFound(`No workspace with identifier '${workspace}'.`);
    repos = model.repositoriesOf(ws.slug);
  }
  const role = q1(req, 'role');
  if (role !== undefined && role !== '') {
    const min = ROLE_RANK[role as RepoRole];
    if (!min) return apiError(400, `Invalid role: ${role}. Valid roles are: owner, admin, contributor, member`);
    repos = repos.filter((r) => ROLE_RANK[r.role] >= min);
  }
  return listResult(req, repos.map((r) => render.repository(r)), { defaultPagelen: 10, maxPagelen: 100 });
}
