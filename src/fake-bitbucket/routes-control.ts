/**
 * `/_fake/…` control endpoints for tests that run the sidecar as a child process (never logged, no auth,
 * no faults):
 *   GET    /_fake/requests      → the request log (bodies base64 in `body`)
 *   POST   /_fake/clear         → clear the log
 *   POST   /_fake/faults        → add a Fault (or an array of them)
 *   DELETE /_fake/faults        → remove all faults
 *   POST   /_fake/rate-limit    → {"perHour": n | null}
 *   POST   /_fake/push          → {"workspace","repo","branch","files":{path:content},"message"} → {"hash"}
 *   POST   /_fake/rename        → {"workspace","repo","newSlug"}
 *   GET    /_fake/model         → workspaces/projects/repositories/pullRequests/hooks/statuses
 */
import { validateFault } from './faults';
import { apiError, json, type ApiResult } from './http-util';
import { pushCommit } from './push';
import type { ParsedTarget } from './request-target';
import type { FakeState } from './state';
import type { Fault } from './types';

function parse(body: Buffer): unknown {
  return body.length ? (JSON.parse(body.toString('utf8')) as unknown) : undefined;
}

export async function handleControl(state: FakeState, method: string, t: ParsedTarget, body: Buffer): Promise<ApiResult> {
  const what = t.segments.slice(1).filter(Boolean).join('/');
  try {
    if (what === 'requests' && method === 'GET') return json(200, state.log.toJSON());
    if (what === 'clear' && method === 'POST') {
      state.log.clear();
      return { status: 204 };
    }
    if (what === 'faults' && method === 'POST') {
      const v = parse(body);
      const list = (Array.isArray(v) ? v : [v]).map((f) => validateFault(f));
      list.forEach((f: Fault) => state.faults.add(f));
      return json(201, { added: list.length, active: state.faults.size });
    }
    if (what === 'faults' && method === 'DELETE') {
      state.faults.clear();
      return { status: 204 };
    }
    if (what === 'rate-limit' && method === 'POST') {
      const v = parse(body) as { perHour?: number | null } | undefined;
      state.rateLimiter.set(v?.perHour ?? null);
      return json(200, { perHour: state.rateLimiter.limit });
    }
    if (what === 'push' && method === 'POST') {
      const v = parse(body) as { workspace: string; repo: string; branch: string; files: Record<string, string>; message?: string };
      const repo = state.model.findRepository(v.workspace, v.repo);
      if (!repo) return apiError(404, `no repository ${v.workspace}/${v.repo}`);
      return json(200, { hash: await pushCommit(state, repo, v.branch, v.files ?? {}, v.message) });
    }
    if (what === 'rename' && method === 'POST') {
      const v = parse(body) as { workspace: string; repo: string; newSlug: string };
      const r = state.model.renameRepository(v.workspace, v.repo, v.newSlug);
      return json(200, { full_name: `${r.workspace}/${r.slug}` });
    }
    if (what === 'model' && method === 'GET') {
      const m = state.model;
      return json(200, {
        currentUser: m.currentUser,
        workspaces: m.workspaces,
        projects: m.projects,
        repositories: m.repositories,
        pullRequests: m.pullRequests,
        hooks: m.hooks.map((h) => ({ ...h, body: h.body.toString('utf8') })),
        statuses: m.statuses.map((s) => ({ ...s, body: s.body.toString('utf8') })),
      });
    }
  } catch (e) {
    return apiError(400, (e as Error).message);
  }
  return apiError(404, `unknown control endpoint ${method} ${t.path}`);
}
