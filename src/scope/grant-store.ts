/**
 * Fork grants survive a restart: they are kept in `{state.dir}/fork-grants.json` with the time each
 * was learned, so that a build queued across a rolling restart still checks out its fork pull
 * request without the new sidecar having read the pull request list again. A grant past its TTL is
 * not loaded; the file is written atomically (temporary file and rename) a moment after a change,
 * and once more on close. It holds names and commits, never a credential.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../core/write-file';
import { MAX_GRANTED_FORKS, MAX_GRANTS_PER_FORK, type ScopeFacts, type StoredForkGrant } from './facts';

const FILE_VERSION = 1;
/** Changes within this long are written together. */
const WRITE_DELAY_MS = 200;
const MAX_ENTRIES = MAX_GRANTED_FORKS * MAX_GRANTS_PER_FORK;
const SLUG = /^[a-z0-9._-]{1,128}$/;
const FULL = /^[a-z0-9._-]{1,128}\/[a-z0-9._-]{1,128}$/;

export interface GrantStore {
  /** Writes pending changes now (close, tests). */
  flush(): Promise<void>;
  /** Called on every grant change; schedules a write. */
  changed(): void;
  close(): Promise<void>;
}

/** Loads the persisted grants into `facts` and keeps the file in step with them from then on. */
export function persistForkGrants(facts: ScopeFacts, file: string, logger: Logger): GrantStore {
  const log = logger.child({ component: 'fork-grants' });
  const loaded = load(file, log);
  const restored = facts.restoreForkGrants(loaded);
  if (loaded.length) log.info({ restored, expiredOrInvalid: loaded.length - restored }, 'fork grants restored');
  let lastWritten = serialize(facts.allForkGrants());
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  let closed = false;

  const write = (): Promise<void> => {
    timer = undefined;
    writing = writing.then(async () => {
      const text = serialize(facts.allForkGrants());
      if (text === lastWritten) return;
      try {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        await writeFileAtomic(file, text, 0o600);
        lastWritten = text;
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'fork grants could not be written; they will not survive a restart');
      }
    });
    return writing;
  };

  return {
    changed() {
      if (closed || timer) return;
      timer = setTimeout(() => void write(), WRITE_DELAY_MS);
      timer.unref();
    },
    flush() {
      if (timer) clearTimeout(timer);
      return write();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await write();
    },
  };
}

function serialize(grants: StoredForkGrant[]): string {
  const sorted = grants.map((g) => ({ fork: g.fork, target: g.target, prId: g.prId, branch: g.branch, commit: g.commit, ...(g.fullCommit ? { fullCommit: g.fullCommit } : {}), learnedAt: g.learnedAt }));
  sorted.sort((a, b) => (a.fork === b.fork ? (a.target === b.target ? a.prId - b.prId : a.target < b.target ? -1 : 1) : a.fork < b.fork ? -1 : 1));
  return `${JSON.stringify({ version: FILE_VERSION, grants: sorted })}\n`;
}

/** The grants of the file, each checked field by field (a damaged or edited file restores nothing wrong). */
function load(file: string, log: Logger): StoredForkGrant[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: (e as Error).message }, 'fork grants file could not be read');
    return [];
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    log.warn('fork grants file is not JSON; starting without grants');
    return [];
  }
  const j = json as { version?: unknown; grants?: unknown };
  if (j?.version !== FILE_VERSION || !Array.isArray(j.grants)) return [];
  return j.grants.slice(0, MAX_ENTRIES).filter(isStoredGrant);
}

function isStoredGrant(v: unknown): v is StoredForkGrant {
  const g = v as Record<string, unknown>;
  return (
    g !== null &&
    typeof g === 'object' &&
    typeof g.fork === 'string' &&
    FULL.test(g.fork) &&
    typeof g.target === 'string' &&
    FULL.test(g.target) &&
    g.fork !== g.target &&
    g.target.split('/').every((s) => SLUG.test(s)) &&
    typeof g.prId === 'number' &&
    Number.isSafeInteger(g.prId) &&
    g.prId > 0 &&
    typeof g.branch === 'string' &&
    g.branch.length > 0 &&
    g.branch.length <= 1024 &&
    !/[\x00-\x1f\x7f]/.test(g.branch) &&
    typeof g.commit === 'string' &&
    /^[0-9a-f]{7,40}$/.test(g.commit) &&
    (g.fullCommit === undefined || (typeof g.fullCommit === 'string' && /^[0-9a-f]{40}$/.test(g.fullCommit) && g.fullCommit.startsWith(g.commit))) &&
    typeof g.learnedAt === 'number' &&
    Number.isFinite(g.learnedAt)
  );
}
