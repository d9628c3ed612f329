import type { Logger } from 'pino';
import { Agent, request } from '../upstream/undici';
import type { Clock } from '../upstream/budget-clock';
import { parseRetryAfter } from '../upstream/budget';
import type { DeliveryQueue, PendingForward } from './queue';
import { sign } from './signature';

export interface ForwarderSettings {
  /** First retry delay; doubles per failed attempt up to `retryMaxMs`. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Per attempt: connect + answer. */
  timeoutMs: number;
  /** A delivery not forwarded by then is given up (logged as an error and counted). 0 = never. */
  maxAgeMs: number;
  /** Targets sent to at once (one delivery at a time per target). */
  concurrency: number;
}

export interface ForwarderDeps {
  clock: Clock;
  logger: Logger;
  userAgent: string;
  /** Jenkins' hook secret for a target URL under the current configuration. */
  secretFor(url: string): string | undefined;
}

export interface ForwarderStats {
  delivered: number;
  failedAttempts: number;
  expired: number;
}

/** Target URL without user info, for logs. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

/**
 * Sends queued deliveries to their targets until each answers 2xx. Per target one request at a
 * time, oldest delivery first. A failed attempt is retried after a delay that doubles up to
 * `retryMaxMs` (or Jenkins' `Retry-After`, within the same cap); when the target is unreachable or
 * answers 5xx/429 the whole target waits that long (one probe per backoff, not one per delivery);
 * a 4xx delays only that delivery, so one delivery Jenkins refuses does not hold up the others.
 *
 * Exactly once on the success path: a pair is in flight at most once, its success is committed
 * before anything else happens to it, and a committed success is never sent again. (A crash between
 * Jenkins' 2xx and that commit sends it once more after the restart: the one window left.)
 */
export class Forwarder {
  readonly stats: ForwarderStats = { delivered: 0, failedAttempts: 0, expired: 0 };
  private readonly agent: Agent;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly busyUrls = new Set<string>();
  private readonly cooldown = new Map<string, number>();
  /** Delivered but the success could not be written: never sent again by this process. */
  private readonly unrecorded = new Map<string, PendingForward>();
  private wake?: { at: number; cancel(): void };
  private closed = false;
  private listeners: (() => void)[] = [];

  constructor(
    private readonly queue: DeliveryQueue,
    private readonly settings: ForwarderSettings,
    private readonly deps: ForwarderDeps,
  ) {
    this.agent = new Agent({
      connect: { timeout: settings.timeoutMs },
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 4_000,
    });
  }

  /** Something was queued (or the process started): look for due work now. */
  kick(): void {
    this.pump();
  }

  /** Resolves after the next forward attempt finishes (tests, benchmarks). */
  nextAttempt(): Promise<void> {
    return new Promise((resolve) => this.listeners.push(resolve));
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.cancel();
    this.wake = undefined;
    // In-flight attempts finish (each bounded by timeoutMs) so their outcome is recorded.
    await Promise.allSettled([...this.inflight.values()]);
    await this.agent.close();
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.deps.clock.now();
    this.retryUnrecorded(now);
    if (this.settings.maxAgeMs > 0) {
      const n = this.queue.expire(now - this.settings.maxAgeMs);
      if (n > 0) {
        this.stats.expired += n;
        this.deps.logger.error({ forwards: n, maxAgeSeconds: this.settings.maxAgeMs / 1000 }, 'webhook deliveries given up: not forwarded within webhooks.queue.maxAgeSeconds');
      }
    }
    let wakeAt = Infinity;
    for (const row of this.queue.due(now, 500)) {
      if (this.inflight.size >= this.settings.concurrency) break;
      const key = pairKey(row);
      if (this.busyUrls.has(row.url) || this.unrecorded.has(key)) continue;
      const until = this.cooldown.get(row.url) ?? 0;
      if (until > now) {
        wakeAt = Math.min(wakeAt, until);
        continue;
      }
      this.start(row);
    }
    const next = this.queue.nextDue();
    if (next !== undefined && next > now) wakeAt = Math.min(wakeAt, next);
    this.schedule(wakeAt, now);
  }

  private schedule(at: number, now: number): void {
    if (this.wake && this.wake.at <= at) return;
    this.wake?.cancel();
    this.wake = undefined;
    if (!Number.isFinite(at)) return;
    const cancel = this.deps.clock.setTimer(Math.max(0, at - now), () => {
      if (this.wake?.at === at) this.wake = undefined;
      this.pump();
    });
    this.wake = { at, cancel };
  }

  private start(row: PendingForward): void {
    const key = pairKey(row);
    this.busyUrls.add(row.url);
    const p = this.attempt(row)
      .catch((e: unknown) => this.deps.logger.error({ err: (e as Error).message }, 'webhook forwarder failed'))
      .finally(() => {
        this.inflight.delete(key);
        this.busyUrls.delete(row.url);
        const waiting = this.listeners;
        this.listeners = [];
        for (const l of waiting) l();
        this.pump();
      });
    this.inflight.set(key, p);
  }

  private async attempt(row: PendingForward): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': row.contentType,
      'x-event-key': row.eventKey,
      'x-request-uuid': row.requestUuid,
      'user-agent': row.userAgent ?? this.deps.userAgent,
    };
    if (row.hookUuid) headers['x-hook-uuid'] = row.hookUuid;
    // Bitbucket's own signature never leaves the relay: whoever runs a tenant's Jenkins would hold
    // bodies signed for the relay's door (and checking it would need Bitbucket's secret there).
    // A target with a secret of its own gets the body signed with that; any other, no signature.
    const secret = this.deps.secretFor(row.url);
    if (secret) headers['x-hub-signature'] = sign(row.body, secret, 'sha256');

    let status: number | undefined;
    let retryAfter: string | undefined;
    let error: string;
    try {
      const res = await request(row.url, this.agent, { method: 'POST', headers, body: row.body });
      status = res.statusCode;
      const ra = res.headers['retry-after'];
      retryAfter = typeof ra === 'string' ? ra : undefined;
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      error = `HTTP ${status}`;
    } catch (e) {
      error = (e as { code?: string }).code ?? (e as Error).message;
    }
    const now = this.deps.clock.now();
    if (status !== undefined && status >= 200 && status < 300) {
      this.recordDelivered(row, now);
      return;
    }
    this.stats.failedAttempts++;
    const attempts = row.attempts + 1;
    let delay = Math.min(this.settings.retryMinMs * 2 ** Math.min(attempts - 1, 30), this.settings.retryMaxMs);
    const asked = parseRetryAfter(retryAfter, Date.now());
    if (asked !== undefined) delay = Math.min(Math.max(delay, asked), this.settings.retryMaxMs);
    const nextAt = now + delay;
    this.queue.failed(row.deliveryId, row.url, nextAt, error);
    const targetDown = status === undefined || status >= 500 || status === 429;
    if (targetDown) this.cooldown.set(row.url, nextAt);
    this.deps.logger.warn(
      { target: shownUrl(row.url), requestUuid: row.requestUuid, event: row.eventKey, attempts, status, error, retryInSeconds: delay / 1000 },
      'webhook forward failed; will retry',
    );
  }

  private recordDelivered(row: PendingForward, now: number): void {
    this.cooldown.delete(row.url);
    this.stats.delivered++;
    try {
      this.queue.delivered(row.deliveryId, row.url, now);
    } catch (e) {
      this.unrecorded.set(pairKey(row), row);
      this.deps.logger.error({ err: (e as Error).message, requestUuid: row.requestUuid }, 'webhook delivered but the queue could not record it; not sending it again');
      return;
    }
    this.deps.logger.info({ target: shownUrl(row.url), requestUuid: row.requestUuid, event: row.eventKey, repository: row.repository, attempts: row.attempts + 1 }, 'webhook forwarded');
  }

  private retryUnrecorded(now: number): void {
    for (const [key, row] of this.unrecorded) {
      try {
        this.queue.delivered(row.deliveryId, row.url, now);
        this.unrecorded.delete(key);
      } catch {
        return;
      }
    }
  }
}

function pairKey(row: Pick<PendingForward, 'deliveryId' | 'url'>): string {
  return `${row.deliveryId} ${row.url}`;
}
