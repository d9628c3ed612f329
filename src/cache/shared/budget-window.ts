import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import type { BudgetClass } from '../../upstream/budget';
import { pruneWindow, type BudgetWindow } from '../../upstream/budget-window';
import type { RedisLink } from './connection';

interface Scripts {
  sidecarTake(keys: number, ...args: (string | number)[]): Promise<[number, string[], number]>;
}

/**
 * KEYS: the class's window (a sorted set: one member `{sidecar}:{n}` per call, scored by its
 * dispatch time). ARGV: now, window ms, limit, member. Drops the calls that left the window, adds
 * this one when the window holds fewer than `limit`, and answers (1 added / 0 full, every call's
 * time in the window, how many sidecars made them).
 */
const TAKE = `
  local now = tonumber(ARGV[1])
  local span = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
  local ok = 0
  if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], span)
    ok = 1
  end
  local r = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local times, seen, sharers = {}, {}, 0
  for i = 1, #r, 2 do
    times[#times + 1] = r[i + 1]
    local who = string.match(r[i], '^[^:]*')
    if not seen[who] then seen[who] = true; sharers = sharers + 1 end
  end
  return { ok, times, sharers }`;

export interface WindowDeps {
  link: RedisLink;
  keyPrefix: string;
  /** `credentialId` of the upstream credential: Bitbucket counts per credential, so do we. */
  credential: string;
  windowMs: number;
  /** Share of each limit this sidecar spends alone while Redis is unreachable. */
  fallbackShare: number;
  /** How often the view of the other sidecars' calls is refreshed when no call of ours refreshed it (ms, real time). */
  syncMs?: number;
}

const CLASSES: readonly BudgetClass[] = ['repository', 'webhook', 'other'];

/**
 * The budget governor's window in Redis (src/upstream/budget-window.ts): one sorted set per
 * rate-limit class and upstream credential, holding every sidecar's calls of the last hour.
 *
 * The governor decides on a local view (`calls`: the set as last read, plus this sidecar's calls
 * since), then `confirm` adds the call in one atomic script that refuses it when the set already
 * holds `limit` calls — so the sum over all sidecars never exceeds the limit, whatever the races.
 * Each answer brings the whole window back, which keeps the view (and the governor's pacing)
 * current; an idle sidecar refreshes it every `syncMs` when asked.
 *
 * While Redis is unreachable the view is this sidecar's own calls of the last hour and the limit is
 * `fallbackShare` of it. Calls made meanwhile are added to the set when Redis returns, so the other
 * sidecars see them too.
 */
export class RedisBudgetWindow implements BudgetWindow {
  /** Every sidecar's calls, as last read (plus ours since), ascending. */
  private readonly shared: Record<BudgetClass, number[]> = { repository: [], webhook: [], other: [] };
  /** This sidecar's calls. */
  private readonly own: Record<BudgetClass, number[]> = { repository: [], webhook: [], other: [] };
  /** Sidecars with calls in the window, as last read. */
  private readonly present: Record<BudgetClass, number> = { repository: 0, webhook: 0, other: 0 };
  /** Our calls Redis has not seen (made while it was unreachable). */
  private readonly unsynced: Record<BudgetClass, number[]> = { repository: [], webhook: [], other: [] };
  private readonly redis: Redis & Scripts;
  private readonly instance = randomBytes(6).toString('hex');
  private n = 0;
  private syncedAt = -Infinity;
  private syncing = false;
  /** Calls refused by the shared window (another sidecar took the last slot first). */
  refusedShared = 0;

  constructor(private readonly deps: WindowDeps) {
    this.redis = deps.link.cmd as Redis & Scripts;
    this.redis.defineCommand('sidecarTake', { lua: TAKE });
    deps.link.onChange((up) => {
      if (up) void this.catchUp();
    });
  }

  calls(cls: BudgetClass, t: number): readonly number[] {
    if (!this.deps.link.up) return pruneWindow(this.own[cls], t, this.deps.windowMs);
    if (performance.now() - this.syncedAt > (this.deps.syncMs ?? 500)) void this.sync(t);
    return pruneWindow(this.shared[cls], t, this.deps.windowMs);
  }

  add(cls: BudgetClass, t: number): void {
    insertSorted(this.own[cls], t);
    insertSorted(this.shared[cls], t);
  }

  limit(_cls: BudgetClass, limit: number): number {
    return this.deps.link.up ? limit : Math.floor(limit * this.deps.fallbackShare);
  }

  /** Sidecars drawing on the window: those with calls in it, this one included. */
  sharers(cls: BudgetClass, t: number): number {
    if (!this.deps.link.up) return 1;
    return Math.max(1, this.present[cls] + (pruneWindow(this.own[cls], t, this.deps.windowMs).length === 0 ? 1 : 0));
  }

  async confirm(cls: BudgetClass, t: number, limit: number): Promise<boolean> {
    if (!Number.isFinite(limit)) return true;
    if (!this.deps.link.up) {
      this.unsynced[cls].push(t);
      return true;
    }
    try {
      const [ok, times, sharers] = await this.redis.sidecarTake(1, this.key(cls), t, this.deps.windowMs, limit, this.member());
      this.shared[cls] = times.map(Number);
      this.present[cls] = sharers;
      if (ok === 1) return true;
      removeOne(this.own[cls], t);
      this.refusedShared++;
      return false;
    } catch (e) {
      // Unknown whether Redis counted it: count it again when it returns (too many is the safe side).
      this.unsynced[cls].push(t);
      this.deps.link.failed(e);
      return true;
    }
  }

  private key(cls: BudgetClass): string {
    return `${this.deps.keyPrefix}budget:${this.deps.credential}:${cls}`;
  }

  private member(): string {
    return `${this.instance}:${++this.n}`;
  }

  /** Reads every class's window (the other sidecars' calls since our last look). */
  private async sync(t: number): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    this.syncedAt = performance.now();
    try {
      const p = this.redis.pipeline();
      for (const cls of CLASSES) p.zrangebyscore(this.key(cls), `(${t - this.deps.windowMs}`, '+inf', 'WITHSCORES');
      const replies = (await p.exec()) ?? [];
      replies.forEach(([err, r], i) => {
        if (err || !Array.isArray(r)) return;
        const times: number[] = [];
        const who = new Set<string>();
        for (let j = 0; j + 1 < r.length; j += 2) {
          who.add(String(r[j]).split(':')[0]);
          times.push(Number(r[j + 1]));
        }
        this.shared[CLASSES[i]] = times;
        this.present[CLASSES[i]] = who.size;
      });
    } catch (e) {
      this.deps.link.failed(e);
    } finally {
      this.syncing = false;
    }
  }

  /** Redis is back: add the calls made without it, then read the window. */
  private async catchUp(): Promise<void> {
    try {
      const p = this.redis.pipeline();
      let any = false;
      for (const cls of CLASSES) {
        const times = this.unsynced[cls];
        if (times.length === 0) continue;
        const args: (string | number)[] = [];
        for (const t of times) args.push(t, this.member());
        p.zadd(this.key(cls), ...args);
        p.pexpire(this.key(cls), this.deps.windowMs);
        this.unsynced[cls] = [];
        any = true;
      }
      if (any) await p.exec();
    } catch (e) {
      this.deps.link.failed(e);
    }
    this.syncedAt = -Infinity;
  }
}

function insertSorted(log: number[], t: number): void {
  let i = log.length;
  while (i > 0 && log[i - 1] > t) i--;
  log.splice(i, 0, t);
}

function removeOne(log: number[], t: number): void {
  const i = log.lastIndexOf(t);
  if (i >= 0) log.splice(i, 1);
}
