/**
 * The mirror as a source (docs/architecture.md), between the cache and the budget: the cache
 * asks it on a miss; it answers from the repository's mirror (or, for the repository object, from
 * the workspace listing) when it can, and otherwise passes the call on to the budget and upstream
 * unchanged. The scope gate has run before the cache, so nothing here decides who may read what;
 * `eligible` only keeps mirrors to repositories some client may read (a fork that is only the
 * source of a pull request is never mirrored: its few readable answers come from upstream).
 */
import type { Logger } from 'pino';
import type { ApiAnswer, ApiCall, CallContext, Source } from '../core/call';
import { answer, plan, type Outcome } from './answers';
import type { RepositoryIndex } from './derived';
import type { MirrorManager } from './manager';
import { MirrorRenderer, type RenderBases } from './render';

export interface SourceStats {
  /** Answers computed from a mirror, by route id. */
  answered: Record<string, number>;
  /** Calls a mirror could have answered that went upstream, by reason. */
  upstream: Record<string, number>;
}

export function mirrorSource(deps: { manager: MirrorManager; index: RepositoryIndex; bases: RenderBases; logger: Logger; stats: SourceStats }, inner: Source): Source {
  const { manager, index, bases, stats } = deps;
  const log = deps.logger.child({ component: 'mirror' });
  const up = (call: ApiCall, reason: string, ctx?: CallContext): Promise<ApiAnswer> => {
    stats.upstream[reason] = (stats.upstream[reason] ?? 0) + 1;
    return learnThrough(call, ctx);
  };
  const learnThrough = async (call: ApiCall, ctx?: CallContext): Promise<ApiAnswer> => {
    const a = await inner(call, ctx);
    index.learn(call, a);
    return a;
  };

  return async (call: ApiCall, ctx?: CallContext): Promise<ApiAnswer> => {
    const { ws, repo } = call.params;
    if (!ws || !repo || (call.method !== 'GET' && call.method !== 'HEAD')) return learnThrough(call, ctx);
    if (call.route.mirror === 'repository-index') {
      if (!manager.eligible(ws, repo)) return learnThrough(call, ctx);
      const derived = await index.answer(call, (c) => learnThrough(c, ctx));
      if (derived) {
        stats.answered.repository = (stats.answered.repository ?? 0) + 1;
        return derived;
      }
      return up(call, 'no-listing', ctx);
    }
    const p = plan(call);
    if (!p.ok) return p.reason === 'route' || p.reason === 'method' ? learnThrough(call, ctx) : up(call, p.reason, ctx);
    if (!manager.eligible(ws, repo)) return up(call, manager.enabledFor(ws) ? 'not-eligible' : 'off', ctx);

    const waitMs = manager.settings.waitSeconds * 1000;
    const st = manager.state(ws, repo);
    // Every answer computed from a mirror holds a walk slot (bounded memory in flight); with every
    // slot and queue place taken the call goes upstream like any other miss.
    const attempt = async (): Promise<Outcome> => {
      const ran = await manager.walks.run(() =>
        manager.using(st, () =>
          answer(call, { reader: manager.reader(st), render: new MirrorRenderer(bases, ws, repo, MirrorRenderer.mini(bases, ws, repo, index.peek(ws, repo))), apiUrl: bases.apiUrl, maxWalkCommits: manager.maxWalkCommits, maxContentBytes: manager.maxContentBytes }),
        ),
      );
      return ran ? ran.value : { kind: 'defer', reason: 'walks-busy' };
    };
    try {
      let fresh = manager.isFresh(st);
      if (p.fresh && !fresh) {
        fresh = await manager.ensureFresh(ws, repo, waitMs, call.background ? 'background' : 'foreground');
        if (!fresh) return up(call, 'not-fresh', ctx);
      }
      if (!st.exists) {
        if (!(await manager.ensureFresh(ws, repo, waitMs, call.background ? 'background' : 'foreground'))) return up(call, 'no-mirror', ctx);
        fresh = true;
      }
      let out = await attempt();
      if (out.kind === 'absent' && !fresh) {
        // The commit may be newer than the mirror: fetch once, then ask again.
        if (await manager.ensureFresh(ws, repo, waitMs, call.background ? 'background' : 'foreground')) out = await attempt();
      }
      if (out.kind === 'answer') {
        stats.answered[call.route.id] = (stats.answered[call.route.id] ?? 0) + 1;
        return out.answer;
      }
      return up(call, out.kind === 'absent' ? 'absent' : out.reason, ctx);
    } catch (e) {
      log.warn({ repository: `${ws}/${repo}`, route: call.route.id, err: (e as Error).message }, 'mirror could not answer; asking upstream');
      return up(call, 'error', ctx);
    }
  };
}
