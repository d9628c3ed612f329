/**
 * Clones and fetches from the mirror (docs/mirror.md): the git leg's handler, wrapped.
 * `info/refs?service=git-upload-pack` is answered from the repository's mirror when it is fresh —
 * fetched first when it is not (a webhook said the repository changed, or it is older than
 * `freshSeconds`), waiting at most `waitSeconds` — and the `git-upload-pack` POSTs that follow go
 * where their `info/refs` went: the wants a client sends are the ones it was advertised, so the
 * conversation stays with one side. A push through the sidecar marks the mirror stale. Everything else (pushes,
 * repositories without a mirror, a mirror that could not be refreshed) streams to Bitbucket as
 * before; fork sources of pull requests are answered before this handler (src/git/fork-git.ts).
 * The scope gate ran before this handler.
 *
 * Served by `git upload-pack --stateless-rpc` on the mirror (serve-pack.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { StreamContext, StreamHandler } from '../core/stream';
import type { GitBudget } from './budget';
import { serveUploadPack } from './serve-pack';
import type { MirrorManager, MirrorState } from './manager';
import { BoundedMap } from '../core/bounded-map';

/** How long a client's `info/refs` decides where its POSTs go. */
const STICKY_MS = 10 * 60_000;
export const MIRROR_GIT_STATUS = 'bitbucket-sidecar; hit; detail=mirror';

export interface UploadPackStats {
  infoRefs: number;
  uploadPacks: number;
  upstream: number;
}

export interface MirrorGitDeps {
  manager: MirrorManager;
  budget: GitBudget;
  logger: Logger;
  now?: () => number;
  /** upload-packs served from mirrors at once; more stream upstream. */
  maxServing?: number;
  stats: UploadPackStats;
}

type Decision = { mirror: boolean; at: number };

export function mirrorGitHandler(deps: MirrorGitDeps, upstream: StreamHandler): StreamHandler {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'mirror-git' });
  const bySocket = new WeakMap<Socket, Map<string, Decision>>();
  const byClient = new BoundedMap<string, Decision>(10_000);
  const maxServing = deps.maxServing ?? 16;
  let serving = 0;

  const toUpstream: StreamHandler = (req, res, ctx) => {
    deps.budget.note(1);
    deps.stats.upstream++;
    return upstream(req, res, ctx);
  };

  const remember = (req: IncomingMessage, ctx: StreamContext, key: string, mirror: boolean) => {
    const d = { mirror, at: now() };
    let m = bySocket.get(req.socket);
    if (!m) bySocket.set(req.socket, (m = new Map()));
    m.set(key, d);
    byClient.set(`${ctx.client?.id ?? ''}|${key}`, d);
  };
  const recall = (req: IncomingMessage, ctx: StreamContext, key: string): Decision | undefined => {
    const d = bySocket.get(req.socket)?.get(key) ?? byClient.get(`${ctx.client?.id ?? ''}|${key}`);
    return d && now() - d.at < STICKY_MS ? d : undefined;
  };

  return async (req, res, ctx) => {
    const call = ctx.call;
    const endpoint = call?.route.git;
    const ws = call?.params.ws;
    const repo = call?.params.repo;
    const uploadPack = endpoint === 'upload-pack' || (endpoint === 'advertise' && call!.query.some(([k, v]) => k === 'service' && v === 'git-upload-pack'));
    // A push through the sidecar changes the repository: its mirror is stale from now on.
    if (endpoint === 'receive-pack' && ws && repo) return toUpstream(req, res, ctx).finally(() => deps.manager.markStale(ws, repo));
    if (!call || !ws || !repo || !uploadPack || ctx.fork || !deps.manager.eligible(ws, repo)) return toUpstream(req, res, ctx);
    const key = `${ws}/${repo}`;

    if (endpoint === 'advertise') {
      const fresh = await deps.manager.ensureFresh(ws, repo, deps.manager.settings.waitSeconds * 1000);
      const st = deps.manager.peek(ws, repo);
      const use = fresh && st !== undefined && serving < maxServing;
      remember(req, ctx, key, use);
      if (!use) return toUpstream(req, res, ctx);
      deps.stats.infoRefs++;
      return serve(req, res, ctx, st, true);
    }
    const d = recall(req, ctx, key);
    const st = deps.manager.peek(ws, repo);
    const use = (d ? d.mirror : st !== undefined && deps.manager.isFresh(st)) && st !== undefined && st.exists;
    if (!use) return toUpstream(req, res, ctx);
    deps.stats.uploadPacks++;
    return serve(req, res, ctx, st, false);
  };

  function serve(req: IncomingMessage, res: ServerResponse, ctx: StreamContext, st: MirrorState, advertise: boolean): Promise<void> {
    ctx.audit.cache = MIRROR_GIT_STATUS;
    serving++;
    const failure = 'The sidecar could not serve this repository from its mirror; try again.';
    return deps.manager
      .using(st, () => serveUploadPack(req, res, { dir: st.dir, advertise, config: ['uploadpack.allowAnySHA1InWant=true'], log, repository: `${st.ws}/${st.repo}`, failure }))
      .finally(() => {
        serving--;
      });
  }
}
