import type { Source } from '../core/call';
import type { StreamHandler } from '../core/stream';
import type { GitBudget } from './budget';
import type { RepositoryIndex } from './derived';
import type { MirrorManager } from './manager';
import type { SourceStats } from './source';
import type { UploadPackStats } from './upload-pack';

/** What the sidecar holds of the git mirrors (src/mirror/index.ts builds it). */
export interface Mirrors {
  manager: MirrorManager;
  index: RepositoryIndex;
  budget: GitBudget;
  stats: SourceStats;
  git: UploadPackStats;
  /** The REST source in front of `inner` (budget → upstream). */
  source(inner: Source): Source;
  /** The git handler in front of `upstream` (the streaming proxy). */
  gitHandler(upstream: StreamHandler): StreamHandler;
  markStale(ws: string, repo: string): void;
  refresh(ws: string, repo: string): Promise<boolean>;
  /** Cache invalidation tags (`refs:`, `ref:`, `repo:`, `ws:`) → mirrors and derived objects marked stale. */
  onInvalidatedTags(tags: readonly string[]): void;
  close(): Promise<void>;
}
