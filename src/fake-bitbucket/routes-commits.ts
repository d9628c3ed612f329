/**
 * …/commit/{hash} (full hash, unambiguous prefix or ref; falls back to the fork network like Bitbucket's
 * shared storage), …/commits[/{revision}]?include=&exclude= (pagelen 30), and build statuses
 * …/commit/{hash}/statuses[/build[/{key}]].
 */
import { type RepoRequest, isApiResult, joinRest, listResult, methodNotAllowed, parseJsonBody } from './api-common';
import { isoMicros } from './ids';
import { apiError, json, notFound, type ApiResult } from './http-util';
import type { FakeBuildStatus } from './model';
import { parseQuery } from './request-target';

const COMMIT_PAGE = { defaultPagelen: 30, maxPagelen: 100, size: false, page: false };
const STATUS_PAGE = { defaultPagelen: 10, maxPagelen: 100 };
const STATES = new Set(['INPROGRESS', 'SUCCESSFUL', 'FAILED', 'STOPPED']);

function commitNotFound(id: string): ApiResult {
  return apiError(404, `Commit not found`, { data: { shas: [id] } });
}

export async function handleCommit(req: RepoRequest): Promise<ApiResult> {
  const [, id, sub, kind, ...keySegs] = req.rest;
  if (!id) return notFound('Resource not found');
  const { state, repo } = req;
  const reader = state.reader(repo);
  if (sub === undefined || sub === '') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
    let sha = await reader.resolveCommitish(id);
    let owner = repo;
    if (!sha) {
      for (const other of state.model.networkOf(repo)) {
        if (other === repo) continue;
        sha = await state.reader(other).lookupCommitPrefix(id);
        if (sha) {
          owner = other;
          break;
        }
      }
    }
    const c = sha ? await state.reader(owner).commit(sha) : undefined;
    return c ? json(200, state.render.commit(repo, c)) : commitNotFound(id);
  }
  if (sub !== 'statuses') return notFound('Resource not found');
  const sha = await reader.resolveCommitish(id);
  if (!sha) return commitNotFound(id);
  if (kind === undefined || kind === '') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
    const list = state.model.statusesOf(repo, sha).map((s) => state.render.status(s, repo));
    return listResult(req, list, STATUS_PAGE);
  }
  if (kind !== 'build') return notFound('Resource not found');
  const key = joinRest(keySegs);
  if (!key) {
    if (req.method !== 'POST') return methodNotAllowed();
    return upsertStatus(req, sha, undefined);
  }
  const existing = state.model.statuses.find((s) => s.repository === repo.uuid && s.commit === sha && s.key === key);
  if (req.method === 'PUT') return upsertStatus(req, sha, key);
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
  return existing ? json(200, state.render.status(existing, repo)) : notFound(`Build status ${key} not found`);
}

function upsertStatus(req: RepoRequest, sha: string, pathKey: string | undefined): ApiResult {
  const body = parseJsonBody(req);
  if (isApiResult(body)) return body;
  const key = pathKey ?? body.key;
  const st = body.state;
  const url = body.url;
  if (typeof key !== 'string' || !key) return apiError(400, 'key: This field is required.', { fields: { key: ['This field is required.'] } });
  if (typeof st !== 'string' || !STATES.has(st)) return apiError(400, `state: "${String(st)}" is not a valid choice.`, { fields: { state: ['Invalid state'] } });
  if (typeof url !== 'string' || !url) return apiError(400, 'url: This field is required.', { fields: { url: ['This field is required.'] } });
  const { model, render } = req.state;
  const now = isoMicros(Date.now(), `status:${sha}:${key}:${Date.now()}`);
  let s = model.statuses.find((x) => x.repository === req.repo.uuid && x.commit === sha && x.key === key);
  const fields = {
    state: st,
    name: typeof body.name === 'string' ? body.name : (s?.name ?? null),
    url,
    description: typeof body.description === 'string' ? body.description : (s?.description ?? null),
    refname: typeof body.refname === 'string' ? body.refname : null,
  };
  if (s) {
    Object.assign(s, fields, { updatedOn: now, body: Buffer.from(req.body), fields: body });
  } else {
    s = { repository: req.repo.uuid, commit: sha, key, ...fields, createdOn: now, updatedOn: now, body: Buffer.from(req.body), fields: body } satisfies FakeBuildStatus;
    model.statuses.push(s);
  }
  return json(201, render.status(s, req.repo));
}

export async function handleCommits(req: RepoRequest): Promise<ApiResult> {
  if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') return methodNotAllowed();
  const { state, repo } = req;
  const reader = state.reader(repo);
  const revision = joinRest(req.rest.slice(1));
  let include = [...(req.target.query.include ?? [])];
  let exclude = [...(req.target.query.exclude ?? [])];
  if (req.method === 'POST' && req.body.length) {
    const form = parseQuery(req.body.toString('utf8'));
    include = include.concat(form.include ?? []);
    exclude = exclude.concat(form.exclude ?? []);
  }
  if (revision) include.unshift(revision);
  const inc: string[] = [];
  if (include.length === 0) {
    inc.push(...new Set((await reader.refs()).branches.values()));
  }
  for (const r of include) {
    const sha = await reader.resolveCommitish(r);
    if (!sha) return commitNotFound(r);
    inc.push(sha);
  }
  const exc: string[] = [];
  for (const r of exclude) {
    const sha = await reader.resolveCommitish(r);
    if (!sha) return commitNotFound(r);
    exc.push(sha);
  }
  const hashes = await reader.revList(inc, exc);
  // only render the requested page (histories can be long)
  const pagelen = Math.min(Number(req.target.query.pagelen?.[0]) || COMMIT_PAGE.defaultPagelen, COMMIT_PAGE.maxPagelen);
  const page = Math.max(1, Number(req.target.query.page?.[0]) || 1);
  const q = req.target.query.q?.[0];
  const window = q ? hashes : hashes.slice((page - 1) * pagelen, page * pagelen);
  const rendered = await Promise.all(window.map(async (h) => {
    const c = await reader.commit(h);
    return c ? state.render.commit(repo, c) : undefined;
  }));
  const values = rendered.filter(Boolean) as unknown[];
  if (q) return listResult(req, values, COMMIT_PAGE);
  // a list of placeholders keeps listResult's paging arithmetic (next link) right without rendering all
  const all: unknown[] = new Array(hashes.length);
  values.forEach((v, i) => (all[(page - 1) * pagelen + i] = v));
  return listResult(req, all, COMMIT_PAGE);
}
