import type { StreamHandler } from '../core/stream';
import { sendText } from './proxy';

const HOUR_MS = 3_600_000;

export interface GitShareSettings {
  /** Bitbucket's git limit for the credential (`mirror.gitRequestsPerHour`). */
  requestsPerHour: number;
  now?: () => number;
}

/**
 * A fair share of Bitbucket's hourly git limit per client, for git requests streamed to Bitbucket:
 * one client cloning in a loop must not spend the credential's hour and get every other tenant's
 * checkouts (and the mirrors' refreshes) refused. A client may use `weight / (sum of the weights of
 * the clients that streamed in the hour, itself included)` of the limit, like the REST budget; past
 * it its git requests get 429 with the seconds until its oldest leaves the hour, the others are
 * served. The counts are per configured client (bounded), one timestamp per request in the hour.
 */
export function gitClientShare(inner: StreamHandler, settings: GitShareSettings): StreamHandler {
  const now = settings.now ?? Date.now;
  const calls = new Map<string, { weight: number; times: number[] }>();

  const prune = (t: number) => {
    for (const [id, c] of calls) {
      let i = 0;
      while (i < c.times.length && c.times[i] <= t - HOUR_MS) i++;
      if (i > 0) c.times.splice(0, i);
      if (c.times.length === 0) calls.delete(id);
    }
  };

  return (req, res, ctx) => {
    const client = ctx.client;
    if (!client) return inner(req, res, ctx);
    const t = now();
    prune(t);
    const weight = client.budgetWeight ?? 1;
    const mine = calls.get(client.id) ?? { weight, times: [] };
    mine.weight = weight;
    let total = weight;
    for (const [id, c] of calls) if (id !== client.id) total += c.weight;
    const share = Math.max(1, Math.floor((settings.requestsPerHour * weight) / total));
    if (mine.times.length >= share) {
      const retry = Math.max(1, Math.ceil((mine.times[mine.times.length - share] + HOUR_MS - t) / 1000));
      ctx.audit.decision = 'rate-limited';
      sendText(res, 429, "This client's share of the hour's git requests to Bitbucket is spent; try again later.", req.method === 'HEAD', { 'retry-after': String(retry) });
      return Promise.resolve();
    }
    mine.times.push(t);
    calls.set(client.id, mine);
    return inner(req, res, ctx);
  };
}
