/**
 * …/src[/{hashOrRef}[/{path…}]][?format=meta][&at={ref}] — file metadata, raw content and paged directory
 * listings straight from the git trees. `{hashOrRef}` may be a full/short hash or a branch/tag name (one
 * %2F segment or several literal segments); with `at=` and no hash the segments are all path.
 */
import { type RepoRequest, listResult, methodNotAllowed, q1 } from './api-common';
import type { TreeEntry } from '../git-objects/parse';
import { attributesFor, mimetypeFor } from '../git-objects/render';
import type { RepoReader } from './git-reader';
import { apiError, json, type ApiResult } from './http-util';
import type { FakeRepository } from './model';
import type { Renderer } from './render';

function noSuchFile(path: string): ApiResult {
  return apiError(404, `No such file or directory: ${path}`);
}

async function renderEntry(reader: RepoReader, render: Renderer, repo: FakeRepository, commit: string, dir: string, e: TreeEntry): Promise<Record<string, unknown>> {
  const path = dir ? `${dir}/${e.name}` : e.name;
  if (e.kind === 'tree') return render.srcDirectory(repo, commit, path);
  const size = e.kind === 'blob' ? ((await reader.blobSize(e.sha)) ?? 0) : 0;
  return render.srcFile(repo, commit, path, attributesFor(e.mode), size, e.kind === 'blob' ? mimetypeFor(path) : null);
}

async function locate(req: RepoRequest, reader: RepoReader): Promise<{ commit: string; path: string } | ApiResult> {
  const parts = req.rest.slice(1).filter((p) => p !== '');
  const at = q1(req, 'at');
  if (at !== undefined && at !== '') {
    const atCommit = await reader.resolveCommitish(at);
    if (!atCommit) return noSuchFile(parts.join('/'));
    const first = parts[0];
    if (first && /^[0-9a-f]{7,40}$/i.test(first)) {
      const hash = await reader.lookupCommitPrefix(first);
      if (hash) return { commit: hash, path: parts.slice(1).join('/') };
    }
    return { commit: atCommit, path: parts.join('/') };
  }
  if (parts.length === 0) {
    const main = (await reader.refs()).branches.get(req.repo.mainBranch);
    return main ? { commit: main, path: '' } : noSuchFile('');
  }
  for (let k = 1; k <= parts.length; k++) {
    const name = parts.slice(0, k).join('/');
    const sha = await reader.resolveCommitish(name);
    if (sha) return { commit: sha, path: parts.slice(k).join('/') };
  }
  return noSuchFile(parts.slice(1).join('/') || (parts[0] as string));
}

export async function handleSrc(req: RepoRequest): Promise<ApiResult> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed();
  const { state, repo } = req;
  const reader = state.reader(repo);
  const loc = await locate(req, reader);
  if ('status' in loc) return loc;
  const entry = await reader.entryAt(loc.commit, loc.path);
  if (!entry) return noSuchFile(loc.path);
  const meta = q1(req, 'format') === 'meta';
  if (entry.kind === 'root' || entry.kind === 'tree') {
    const dir = entry.kind === 'root' ? '' : entry.path;
    if (meta) return json(200, state.render.srcDirectory(repo, loc.commit, dir));
    const entries = (await reader.tree(entry.kind === 'root' ? entry.tree : entry.sha)) ?? [];
    const values = await Promise.all(entries.map((e) => renderEntry(reader, state.render, repo, loc.commit, dir, e)));
    return listResult(req, values, { defaultPagelen: 10, maxPagelen: 100 });
  }
  if (meta) return json(200, await renderEntry(reader, state.render, repo, loc.commit, entry.path.split('/').slice(0, -1).join('/'), entry));
  if (entry.kind === 'commit') return noSuchFile(loc.path);
  const content = await reader.blob(entry.sha);
  if (!content) return noSuchFile(loc.path);
  return { status: 200, body: content, headers: { 'content-type': 'text/plain' } };
}
