/**
 * Git mirrors (docs/mirror.md): local bare mirrors of in-scope
 * repositories that answer refs, commits and `src` without REST calls, derived repository objects
 * from the workspace listing, and clones served from the mirror.
 *
 *   learning → cache → **mirror source** → budget → upstream          (REST)
 *   gate → **mirror git handler** → upload-pack on the mirror | proxy   (git)
 *
 * Invalidation API for the webhook relay: `markStale(ws, repo)` (no ref answers from the mirror
 * until a fetch that started afterwards; one is started in the background) and `refresh(ws, repo)`
 * (fetch now, resolve when fresh). The sidecar also calls `onInvalidatedTags` for every cache
 * invalidation, so the relay's cache invalidation reaches the mirrors without further wiring.
 */
import { join } from 'node:path';
import type { OutboundProxy } from '../upstream/proxy';
import type { Logger } from 'pino';
import type { Client } from '../core/client';
import type { ScopeFacts } from '../scope/facts';
import { decideRepository } from '../scope/policy';
import { GitBudget } from './budget';
import { RepositoryIndex } from './derived';
import { MirrorManager, type MirrorSettings } from './manager';
import { mirrorSource, type SourceStats } from './source';
import { mirrorGitHandler, type UploadPackStats } from './upload-pack';
import type { Mirrors } from './mirrors';

export { MirrorManager, SYNC_COST, type MirrorSettings, type MirrorState } from './manager';
export { RepositoryIndex } from './derived';
export { GitBudget } from './budget';
export { MIRROR_GIT_STATUS } from './upload-pack';
export { registerMirrorMetrics, MIRROR_METRICS } from './metrics';
export type { Mirrors } from './mirrors';

/** The `mirror:` configuration section as validated (`dir` optional: `{state.dir}/mirrors`). */
export type MirrorConfig = Omit<MirrorSettings, 'dir'> & { dir?: string };

export interface MirrorDeps {
  stateDir: string;
  apiUrl: string;
  webUrl: string;
  gitAuthorization: string;
  /** The outbound proxy for the web origin. */
  proxy?: OutboundProxy;
  /** Whether some client may read the repository ('unknown' while its project is not known). */
  inScope: (ws: string, repo: string) => 'yes' | 'no' | 'unknown';
  /** `cache.freshness.metadataSeconds`: how long a listed repository object stands for the repository. */
  metadataSeconds: number;
  logger: Logger;
  now?: () => number;
  onSpawn?: (pid: number, args: readonly string[]) => void;
}

export function createMirrors(config: MirrorConfig, deps: MirrorDeps): Mirrors {
  const now = deps.now ?? Date.now;
  const settings: MirrorSettings = { ...config, dir: config.dir ?? join(deps.stateDir, 'mirrors') };
  const budget = new GitBudget({ requestsPerHour: settings.gitRequestsPerHour, backgroundShare: settings.backgroundShare }, now);
  // The index is built after the manager (it uses the manager's memory); HEAD-following asks it later.
  let indexOf: RepositoryIndex | undefined;
  const manager = new MirrorManager(settings, {
    webUrl: deps.webUrl,
    gitAuthorization: deps.gitAuthorization,
    proxy: deps.proxy,
    inScope: deps.inScope,
    mainBranch: (ws, repo) => indexOf?.mainBranch(ws, repo),
    budget,
    logger: deps.logger,
    now,
    onSpawn: deps.onSpawn,
  });
  const index = new RepositoryIndex(now, deps.metadataSeconds * 1000, manager.memory.repositories);
  indexOf = index;
  const stats: SourceStats = { answered: {}, upstream: {} };
  const git: UploadPackStats = { infoRefs: 0, uploadPacks: 0, upstream: 0 };
  const bases = { apiUrl: deps.apiUrl.replace(/\/+$/, ''), webUrl: deps.webUrl.replace(/\/+$/, '') };
  manager.start();
  if (settings.enabled) deps.logger.child({ component: 'mirror' }).info({ dir: settings.dir, maxBytes: settings.maxBytes, freshSeconds: settings.freshSeconds }, 'git mirrors on');

  return {
    manager,
    index,
    budget,
    stats,
    git,
    source: (inner) => (settings.enabled ? mirrorSource({ manager, index, bases, logger: deps.logger, stats }, inner) : inner),
    gitHandler: (upstream) => (settings.enabled ? mirrorGitHandler({ manager, budget, logger: deps.logger, now, stats: git }, upstream) : upstream),
    markStale: (ws, repo) => manager.markStale(ws, repo),
    refresh: (ws, repo) => manager.refresh(ws, repo),
    onInvalidatedTags(tags) {
      for (const t of tags) {
        const m = /^(refs|ref|repo):([^/]+)\/([^:]+)/.exec(t);
        if (m) {
          manager.markStale(m[2], m[3]);
          if (m[1] === 'repo') index.forgetRepository(m[2], m[3]);
          continue;
        }
        const w = /^ws:(.+)$/.exec(t);
        if (w) {
          manager.markWorkspaceStale(w[1]);
          index.forgetWorkspace(w[1]);
        }
      }
    },
    close: () => manager.close(),
  };
}

/**
 * Whether some client may read a repository: 'yes' when a scope rule allows it, 'unknown' while a
 * project rule waits for the repository's project, 'no' otherwise (its mirror is then deleted).
 */
export function mirrorScope(clients: readonly Client[], facts: Pick<ScopeFacts, 'projectOf'>, ws: string, repo: string): 'yes' | 'no' | 'unknown' {
  let unknown = false;
  const project = facts.projectOf(`${ws}/${repo}`);
  for (const c of clients) {
    const d = decideRepository(c, ws, repo, project);
    if (d === 'allow') return 'yes';
    if (d === 'needs-project') unknown = true;
  }
  return unknown ? 'unknown' : 'no';
}
