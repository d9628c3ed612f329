/**
 * …/pullrequests (pagelen ≤ 50, else 400; `state` repeatable, default OPEN), …/pullrequests/{id},
 * …/pullrequests/{id}/commits, plus POST create and POST …/{id}/decline for tests. Source/destination
 * commits are the live branch heads (12-char in the JSON, like Bitbucket).
 */
import { type RepoRequest, isApiResult, listResult, methodNotAllowed, parseJsonBody, q1 } from './api-common';
import { fieldsRequest } from '../core/fields';
import { isoMicros } from './ids';
import { apiError, json, notFound, type ApiResult } from './http-util';
import type { FakePullRequest, PullRequestState } from './model';
import type { PullRequestContext } from './render';
import type { FakeState } from './state';

const STATES: PullRequestState[] = ['OPEN', 'MERGED', 'DECLINED', 'SUPERSEDED'];

export async function pullRequestContext(state: FakeState, pr: FakePullRequest): Promise<PullRequestContext | undefined> {
  const destination = state.model.repositoryByUuid(pr.repository);
  const source = state.model.repositoryByUuid(pr.source.repository);
  if (!destination || !source) return undefined;
  const live = pr.state === 'OPEN';
  const srcHead = (await state.reader(source).refs()).branches.get(pr.source.branch);
  const dstHead = (await state.reader(destination).refs()).branches.get(pr.destination.branch);
  const sourceHash = (live ? (srcHead ?? pr.source.commit) : (pr.source.commit ?? srcHead));
  const destinationHash = (live ? (dstHead ?? pr.destination.commit) : (pr.destination.commit ?? dstHead));
  if (!sourceHash || !destinationHash) return undefined;
  return { destination, source, sourceHash, destinationHash };
}

async function renderPr(state: FakeState, pr: FakePullRequest, withParticipants: boolean): Promise<Record<string, unknown> | undefined> {
  const ctx = await pullRequestContext(state, pr);
  return ctx ? state.render.pullRequest(pr, ctx, withParticipants) : undefined;
}

/** Commits on the PR's source that are not on its destination, newest first. */
export async function pullRequestCommits(state: FakeState, pr: FakePullRequest): Promise<string[] | undefined> {
  const ctx = await pullRequestContext(state, pr);
  if (!ctx) return undefined;
  const srcReader = state.reader(ctx.source);
  try {
    return await srcReader.revList([ctx.sourceHash], [ctx.destinationHash]);
  } catch {
    // destination head not in the source's object store (e.g. pushed to the origin after forking)
    const onDest = await state.reader(ctx.destination).reachable();
    return (await srcReader.revList([ctx.sourceHash], [])).filter((h) => !onDest.has(h));
  }
}

export async function handlePullRequests(req: RepoRequest): Promise<ApiResult> {
  const [, idSeg, sub, ...more] = req.rest;
  const { state, repo } = req;
  if (idSeg === undefined || idSeg === '') {
    if (req.method === 'POST') return createPullRequest(req);
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
    const wanted = (req.target.query.state ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean);
    for (const s of wanted) if (!STATES.includes(s as PullRequestState)) return apiError(400, `Invalid state: ${s}`);
    const states = wanted.length ? wanted : ['OPEN'];
    const prs = state.model
      .pullRequestsOf(repo)
      .filter((p) => states.includes(p.state))
      .sort((a, b) => b.id - a.id);
    const withParticipants = fieldsRequest(q1(req, 'fields'), 'values.participants') || fieldsRequest(q1(req, 'fields'), 'values.reviewers');
    const rendered = (await Promise.all(prs.map((p) => renderPr(state, p, withParticipants)))).filter(Boolean) as unknown[];
    return listResult(req, rendered, { defaultPagelen: 10, maxPagelen: 50, overMax: 'error' });
  }
  const id = Number(idSeg);
  const pr = Number.isInteger(id) ? state.model.findPullRequest(repo, id) : undefined;
  if (!pr) return notFound(`Pull request ${idSeg} not found`);
  if (sub === undefined || sub === '') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
    const r = await renderPr(state, pr, true);
    return r ? json(200, r) : notFound(`Pull request ${idSeg} not found`);
  }
  if (sub === 'commits' && (more.length === 0 || (more.length === 1 && more[0] === ''))) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
    const hashes = await pullRequestCommits(state, pr);
    if (!hashes) return notFound(`Pull request ${idSeg} not found`);
    const source = state.model.repositoryByUuid(pr.source.repository)!;
    const reader = state.reader(source);
    const values = (await Promise.all(hashes.map(async (h) => {
      const c = await reader.commit(h);
      return c ? state.render.commit(source, c) : undefined;
    }))).filter(Boolean) as unknown[];
    return listResult(req, values, { defaultPagelen: 10, maxPagelen: 100, size: false });
  }
  if (sub === 'decline' && req.method === 'POST') {
    if (pr.state !== 'OPEN') return apiError(400, 'Only open pull requests can be declined');
    const ctx = await pullRequestContext(state, pr);
    pr.source.commit = ctx?.sourceHash;
    pr.destination.commit = ctx?.destinationHash;
    pr.state = 'DECLINED';
    pr.closedBy = state.model.currentUser.nickname;
    pr.updatedOn = isoMicros(Date.now(), `decline:${pr.repository}:${pr.id}`);
    return json(200, await renderPr(state, pr, true));
  }
  return notFound('Resource not found');
}

async function createPullRequest(req: RepoRequest): Promise<ApiResult> {
  const body = parseJsonBody(req);
  if (isApiResult(body)) return body;
  const { state, repo } = req;
  const title = body.title;
  const source = body.source as { branch?: { name?: unknown }; repository?: { full_name?: unknown } } | undefined;
  const dest = body.destination as { branch?: { name?: unknown } } | undefined;
  const srcBranch = source?.branch?.name;
  if (typeof title !== 'string' || !title) return apiError(400, 'title: This field is required.');
  if (typeof srcBranch !== 'string') return apiError(400, 'source.branch.name: This field is required.');
  let srcRepo = repo;
  const full = source?.repository?.full_name;
  if (typeof full === 'string') {
    const [ws, slug] = full.split('/');
    const found = ws && slug ? state.model.findRepository(ws, slug) : undefined;
    if (!found) return apiError(400, `source.repository: repository ${full} not found`);
    srcRepo = found;
  }
  const dstBranch = typeof dest?.branch?.name === 'string' ? dest.branch.name : repo.mainBranch;
  if (!(await state.reader(srcRepo).refs()).branches.has(srcBranch)) return apiError(400, `source.branch: branch ${srcBranch} not found`);
  if (!(await state.reader(repo).refs()).branches.has(dstBranch)) return apiError(400, `destination.branch: branch ${dstBranch} not found`);
  const pr = state.model.addPullRequest(repo, {
    title,
    description: typeof body.description === 'string' ? body.description : '',
    draft: body.draft === true,
    source: { repository: srcRepo, branch: srcBranch },
    destination: { branch: dstBranch },
    closeSourceBranch: body.close_source_branch === true,
  });
  return json(201, await renderPr(state, pr, true));
}
