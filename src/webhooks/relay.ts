import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Client } from '../core/client';
import type { Clock } from '../upstream/budget-clock';
import { BadDelivery, FORWARDED_EVENTS, parseDelivery, type Delivery } from './delivery';
import { Forwarder, type ForwarderStats } from './forwarder';
import { pullRequestClosedTag, sourceBranchDeletedTag } from '../scope/facts';
import { InFlightBytes, readDeliveryBody } from './intake';
import { invalidateFor, type Invalidator } from './invalidate';
import { DeliveryQueue } from './queue';
import { verifySignature } from './signature';
import { chooseTargets, secretFor } from './targets';

/** The `webhooks:` configuration section, resolved (src/config/schema.ts). */
export interface RelaySettings {
  secret?: string;
  forwardTo?: string;
  path: string;
  maxBodyBytes: number;
  /** Bytes of delivery bodies held at once, all connections together. */
  maxInFlightBytes: number;
  /** Time a delivery has to send its body once its head is in. */
  bodyTimeoutMs: number;
  queue: {
    maxEntries: number;
    retryMinSeconds: number;
    retryMaxSeconds: number;
    timeoutSeconds: number;
    maxAgeSeconds: number;
    dedupSeconds: number;
    dedupMaxEntries?: number;
  };
}

export interface RelayDeps {
  /** `state.dir`: the queue lives in `{dir}/webhooks.sqlite`. */
  stateDir: string;
  /** The current clients (a configuration reload swaps them). */
  clients: () => readonly Client[];
  /** Projects learned from upstream answers (preferred over the delivery body's claim). */
  facts?: { projectOf(fullName: string): string | null | undefined };
  cache: Invalidator;
  clock: Clock;
  logger: Logger;
  userAgent: string;
  /** A verified delivery arrived (the warm refresher counts it as confirmation). */
  onDelivery?: (d: Delivery, at: number) => void;
}

export interface RelayStats {
  received: number;
  queued: number;
  duplicates: number;
  /** A body already accepted, re-sent under another X-Request-UUID: acknowledged, not forwarded. */
  replays: number;
  /** Refused 413: over `webhooks.maxBodyBytes`. */
  tooLarge: number;
  /** Refused 503: `webhooks.maxInFlightBytes` of bodies were being received. */
  busy: number;
  /** Refused 408: the body did not arrive within `webhooks.bodyTimeoutMs`. */
  bodyTimeouts: number;
  /** For a repository in no client's scope: acknowledged, not forwarded. */
  droppedOutOfScope: number;
  /** In scope, but none of those clients has a target. */
  droppedNoTarget: number;
  /** An event Jenkins does not process (not forwarded; still invalidates). */
  ignoredEvents: number;
  /** Refused with 503 because `webhooks.queue.maxEntries` deliveries were waiting. */
  queueFull: number;
  badSignature: number;
  badRequest: number;
  invalidated: number;
}

/** `close`: the connection is closed after the answer (the rest of the body is never read). */
type Outcome = { status: number; body: Record<string, unknown>; headers?: Record<string, string>; close?: boolean };

/** Every acknowledged delivery gets the same answer: whoever posts learns nothing about scopes. */
const ACCEPTED: Outcome = { status: 200, body: { status: 'accepted' } };

/**
 * The webhook relay (docs/webhooks.md): Bitbucket posts to `webhooks.path`; the relay checks the
 * signature, marks stale what changed, and queues the delivery durably for every in-scope client's
 * Jenkins before answering 200. The forwarder then delivers it, body bytes unchanged.
 */
export class WebhookRelay {
  readonly stats: RelayStats = { received: 0, queued: 0, duplicates: 0, replays: 0, tooLarge: 0, busy: 0, bodyTimeouts: 0, droppedOutOfScope: 0, droppedNoTarget: 0, ignoredEvents: 0, queueFull: 0, badSignature: 0, badRequest: 0, invalidated: 0 };
  readonly queue: DeliveryQueue;
  readonly forwarder: Forwarder;
  /** Bodies being received, against `maxInFlightBytes`. */
  readonly inFlight: InFlightBytes;
  private readonly log: Logger;
  private closed = false;

  constructor(
    readonly settings: RelaySettings,
    private readonly deps: RelayDeps,
  ) {
    this.log = deps.logger.child({ component: 'webhooks' });
    this.inFlight = new InFlightBytes(settings.maxInFlightBytes);
    this.queue = new DeliveryQueue({ dir: deps.stateDir, maxEntries: settings.queue.maxEntries, dedupSeconds: settings.queue.dedupSeconds, dedupMaxEntries: settings.queue.dedupMaxEntries });
    this.forwarder = new Forwarder(
      this.queue,
      {
        retryMinMs: settings.queue.retryMinSeconds * 1000,
        retryMaxMs: settings.queue.retryMaxSeconds * 1000,
        timeoutMs: settings.queue.timeoutSeconds * 1000,
        maxAgeMs: settings.queue.maxAgeSeconds * 1000,
        concurrency: 4,
      },
      { clock: deps.clock, logger: this.log, userAgent: deps.userAgent, secretFor: (url) => secretFor(deps.clients(), settings.forwardTo, url) },
    );
    if (!settings.secret) this.log.warn('webhooks.secret is not set: deliveries are not authenticated (anyone who reaches the relay can trigger cache invalidations and Jenkins scans)');
    // Deliveries queued before a restart.
    const waiting = this.queue.depth();
    if (waiting > 0) this.log.info({ deliveries: waiting }, 'webhook deliveries waiting from before the restart');
    this.forwarder.kick();
  }

  /** Deliveries waiting to be forwarded (the `webhook_queue_depth` gauge). */
  queueDepth(): number {
    return this.queue.depth();
  }

  /** Request handler for `POST {webhooks.path}` (mounted on the ops router, no client credentials). */
  readonly handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let outcome: Outcome;
    try {
      outcome = await this.receive(req);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'webhook delivery could not be queued');
      outcome = { status: 503, body: { status: 'error', message: 'The delivery could not be stored; retry later' }, headers: { 'retry-after': '60' } };
    }
    const body = Buffer.from(JSON.stringify(outcome.body));
    // `connection: close` makes Node close the socket once the answer is out.
    res.writeHead(outcome.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'no-store',
      ...outcome.headers,
      ...(outcome.close ? { connection: 'close' } : {}),
    });
    res.end(body);
  };

  private async receive(req: IncomingMessage): Promise<Outcome> {
    if (this.closed) return { status: 503, body: { status: 'closing' }, headers: { 'retry-after': '10' } };
    this.stats.received++;
    const intake = await readDeliveryBody(req, this.settings, this.inFlight);
    if (!intake.ok) {
      const at = { requestUuid: header(req, 'x-request-uuid'), contentLength: header(req, 'content-length') };
      switch (intake.reason) {
        case 'too-large':
          this.stats.tooLarge++;
          this.log.warn({ ...at, maxBodyBytes: this.settings.maxBodyBytes }, 'webhook delivery refused: body over webhooks.maxBodyBytes');
          return { status: 413, body: { status: 'refused', message: 'The delivery body is too large' }, close: true };
        case 'busy':
          this.stats.busy++;
          this.log.warn({ ...at, maxInFlightBytes: this.settings.maxInFlightBytes }, 'webhook delivery refused: webhooks.maxInFlightBytes of bodies are being received');
          return { status: 503, body: { status: 'busy', message: 'Too many deliveries are being received; retry later' }, headers: { 'retry-after': '10' }, close: true };
        case 'timeout':
          this.stats.bodyTimeouts++;
          this.log.warn({ ...at, bodyTimeoutMs: this.settings.bodyTimeoutMs }, 'webhook delivery refused: body not received within webhooks.bodyTimeoutMs');
          return { status: 408, body: { status: 'refused', message: 'The delivery body was not received in time' }, close: true };
        case 'aborted':
          this.stats.badRequest++;
          return { status: 400, body: { status: 'refused', message: 'The delivery was cut off' }, close: true };
      }
    }
    try {
      return this.accept(req, intake.body);
    } finally {
      intake.release();
    }
  }

  private accept(req: IncomingMessage, raw: Buffer): Outcome {
    const verified = this.settings.secret !== undefined;
    if (this.settings.secret !== undefined) {
      const check = verifySignature(raw, header(req, 'x-hub-signature'), this.settings.secret);
      if (!check.ok) {
        this.stats.badSignature++;
        this.log.warn({ reason: check.reason, requestUuid: header(req, 'x-request-uuid') }, 'webhook delivery refused: signature');
        return { status: check.status, body: { status: 'refused', message: check.status === 400 ? 'X-Hub-Signature is not hex' : 'Invalid or missing X-Hub-Signature' } };
      }
    }
    let d: Delivery;
    try {
      d = parseDelivery(req.headers, raw);
    } catch (e) {
      if (!(e instanceof BadDelivery)) throw e;
      this.stats.badRequest++;
      return { status: 400, body: { status: 'refused', message: e.message } };
    }
    if (this.queue.isDuplicate(d.requestUuid)) {
      this.stats.duplicates++;
      return ACCEPTED;
    }
    // The signature covers the body only, so a captured delivery re-sent with fresh headers would
    // verify: a body accepted once is acknowledged again, never invalidated or forwarded again.
    if (this.queue.hasBody(raw)) {
      this.stats.replays++;
      this.log.warn({ event: d.eventKey, requestUuid: d.requestUuid, repository: `${d.workspace}/${d.repository}` }, 'webhook delivery not forwarded: this body was already accepted (replay or re-sent)');
      return ACCEPTED;
    }
    const now = this.deps.clock.now();
    const full = `${d.workspace}/${d.repository}`;
    const project = this.deps.facts?.projectOf(full) ?? d.projectKey;
    const { inScope, targets } = chooseTargets(this.deps.clients(), this.settings.forwardTo, d.workspace, d.repository, project);

    // Before anything is forwarded: Jenkins' follow-up requests must not see the old state.
    const marked = invalidateFor(this.deps.cache, d);
    this.stats.invalidated += marked;
    // A signed word that a pull request was declined or merged ends its fork grant at once, on
    // every sidecar sharing state (the tag travels with the invalidations).
    if (verified && d.pullRequest && (d.eventKey === 'pullrequest:rejected' || d.eventKey === 'pullrequest:fulfilled')) {
      this.deps.cache.invalidateTags([pullRequestClosedTag(full, d.pullRequest.id)]);
    }
    // A signed push that deleted a branch ends the fork grants whose source it was.
    if (verified && d.deletedBranches.length > 0) this.deps.cache.invalidateTags(d.deletedBranches.map((b) => sourceBranchDeletedTag(full, b)));
    if (verified && inScope.length > 0) this.deps.onDelivery?.(d, now);

    const base = { event: d.eventKey, requestUuid: d.requestUuid, repository: full };
    const forward = FORWARDED_EVENTS.has(d.eventKey) ? targets.map((t) => t.url) : [];
    const result = this.queue.enqueue(
      { requestUuid: d.requestUuid, eventKey: d.eventKey, hookUuid: d.hookUuid, contentType: d.contentType, userAgent: d.userAgent, repository: full, body: raw },
      forward,
      now,
    );
    switch (result) {
      case 'duplicate':
        this.stats.duplicates++;
        return ACCEPTED;
      case 'full':
        this.stats.queueFull++;
        this.log.error({ ...base, maxEntries: this.settings.queue.maxEntries }, 'webhook queue full: delivery refused with 503 (Bitbucket retries it)');
        return { status: 503, body: { status: 'queue-full', message: 'The relay queue is full; retry later' }, headers: { 'retry-after': '60' } };
      case 'queued':
        this.stats.queued++;
        this.log.info({ ...base, targets: forward.length, invalidated: marked }, 'webhook delivery queued');
        this.forwarder.kick();
        return ACCEPTED;
      case 'recorded':
        if (inScope.length === 0) {
          this.stats.droppedOutOfScope++;
          this.log.info(base, 'webhook delivery dropped: repository in no client scope');
        } else if (!FORWARDED_EVENTS.has(d.eventKey)) {
          this.stats.ignoredEvents++;
          this.log.debug({ ...base, invalidated: marked }, 'webhook event not forwarded (Jenkins does not process it)');
        } else {
          this.stats.droppedNoTarget++;
          this.log.info(base, 'webhook delivery not forwarded: no in-scope client has a webhooks.forwardTo target');
        }
        return ACCEPTED;
    }
  }

  /** Forwarder statistics, for metrics and tests. */
  get forwarding(): ForwarderStats {
    return this.forwarder.stats;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.forwarder.close();
    this.queue.close();
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
