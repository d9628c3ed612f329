import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { pruneWindow, type BudgetClass, type BudgetWindow } from '../../upstream/budget-window';
import type { RedisLink } from './connection';

interface Scripts {
  sidecarWindow(keys: number, ...args: (string | number)[]): Promise<[number, number, string[], string, number]>;
}

/**
 * KEYS: the class's window (a sorted set: one member per call, scored by its dispatch time) and
 * its sidecar register (a hash: sidecar → its latest call). ARGV: now, window ms, limit, member
 * ('' = only look), sidecar, slack. Drops the calls that left the window; adds this one when the
 * window holds fewer than `limit`; answers (1 added / 0 not, how many calls are in the window, the
 * times of the oldest of them — as many as a decision near the limit needs —, the newest time, how
 * many sidecars called within the window). Bounded work, whatever the limit.
 */
const WINDOW = `
  local now, span, limit, slack = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
  local n = redis.call('ZCARD', KEYS[1])
  local ok = 0
  if ARGV[4] ~= '' and n < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], span)
    redis.call('HSET', KEYS[2], ARGV[5], now)
    redis.call('PEXPIRE', KEYS[2], span)
    n = n + 1
    ok = 1
  end
  local times, newest = {}, '0'
  if n > 0 then
    local k = math.min(n, math.max(0, n - limit) + 1 + slack)
    local oldest = redis.call('ZRANGE', KEYS[1], 0, k - 1, 'WITHSCORES')
    for i = 2, #oldest, 2 do times[#times + 1] = oldest[i] end
    newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
  end
  local sharers = 0
  local who = redis.call('HGETALL', KEYS[2])
  for i = 1, #who, 2 do
    if tonumber(who[i + 1]) > now - span then sharers = sharers + 1 else redis.call('HDEL', KEYS[2], who[i]) end
  end
  return { ok, n, times, newest, sharers }`;

/** Calls queued behind a decision, at most, that the view still knows the exact times for. */
const SLACK = 256;

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
 * Each answer brings the window's count, its oldest times and its newest back, which keeps the
 * view (and the governor's pacing) current; an idle sidecar refreshes it every `syncMs` when asked.
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
  /**
   * Scripts run in the order they are sent (one connection); replies may be handled out of order
   * (awaits resume in any order), so a view is taken only from a reply newer than the last one taken.
   */
  private sent = 0;
  private readonly taken: Record<BudgetClass, number> = { repository: 0, webhook: 0, other: 0 };
  /** The limit last confirmed against, per class (how many oldest times a look needs). */
  private readonly limits: Record<BudgetClass, number> = { repository: Infinity, webhook: Infinity, other: Infinity };
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
    this.redis.defineCommand('sidecarWindow', { lua: WINDOW });
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
    this.limits[cls] = limit;
    try {
      const ticket = ++this.sent;
      const ok = this.view(cls, ticket, await this.redis.sidecarWindow(2, ...this.keys(cls), t, this.deps.windowMs, limit, this.member(), this.instance, SLACK));
      if (ok) return true;
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

  private keys(cls: BudgetClass): [string, string] {
    const k = `${this.deps.keyPrefix}budget:${this.deps.credential}:${cls}`;
    return [k, `${k}:sidecars`];
  }

  /**
   * Takes a script answer as the view: the oldest times it returned, then the calls in between
   * counted at the newest time (they leave the window no earlier than that: a conservative view).
   */
  private view(cls: BudgetClass, ticket: number, [ok, n, oldest, newest, sharers]: [number, number, string[], string, number]): boolean {
    if (ticket < this.taken[cls]) return ok === 1;
    this.taken[cls] = ticket;
    const times = oldest.map(Number);
    const known = times.length;
    if (n > known) {
      times.length = n;
      times.fill(Number(newest), known);
    }
    this.shared[cls] = times;
    this.present[cls] = sharers;
    return ok === 1;
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
      await Promise.all(
        CLASSES.map(async (cls) => {
          const ticket = ++this.sent;
          this.view(cls, ticket, await this.redis.sidecarWindow(2, ...this.keys(cls), t, this.deps.windowMs, Number.isFinite(this.limits[cls]) ? this.limits[cls] : 1e15, '', this.instance, SLACK));
        }),
      );
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
        const [key, sidecars] = this.keys(cls);
        const args: (string | number)[] = [];
        for (const t of times) args.push(t, this.member());
        p.zadd(key, ...args);
        p.pexpire(key, this.deps.windowMs);
        p.hset(sidecars, this.instance, Math.max(...times));
        p.pexpire(sidecars, this.deps.windowMs);
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
