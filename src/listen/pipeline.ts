import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BodyMemo } from '../core/body-memo';
import type { Logger } from 'pino';
import type { ApiAnswer, Method, Source } from '../core/call';
import type { AuditRecord } from '../core/audit';
import type { CanonicalTarget } from '../core/target';
import type { Client } from '../core/client';
import type { RouteDef } from '../core/route';
import type { StreamHandler } from '../core/stream';
import { BodyTooLarge, readBody } from '../core/body';
import type { ClientDirectory } from '../auth/clients';
import { parseAuthorization } from '../auth/credentials';
import { grantCovers, type LfsGrant } from '../auth/lfs-tokens';
import { syntheticUser } from '../auth/identity';
import { createAuditLog } from '../ops/audit';
import { BASIC_CHALLENGE, errorAnswer, sendError } from '../respond/errors';
import { shapeAnswer, writeAnswer } from '../respond/answer';
import { isNarrowed, visibleListing } from '../respond/listing';
import { upstreamPath } from '../routes/call';
import { checkBody } from '../routes/bodies';
import { BadTarget, encodeQuery, encodeSegment } from '../routes/canonical';
import type { ScopeFacts } from '../scope/facts';
import { requiredPermission, type ScopeGate } from '../scope/gate';
import { sendLfsError } from '../lfs/answer';
import { clientBases, parseHost, selectFace, type FaceNames } from './face';
import { recentTargets } from './recent-targets';
import { followRedirects } from './redirects';

const METHODS = new Set<Method>(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);
/** Refusals of `/_sidecar/*`, the webhook door's included (413 too large, 408 too slow, 503 busy). */
const OPS_REFUSALS: Record<number, string> = { 400: 'bad-request', 401: 'unauthenticated', 403: 'forbidden', 404: 'no-route', 408: 'timeout', 413: 'too-large', 415: 'bad-request', 503: 'busy' };

export interface PipelineDeps {
  /** The current clients; a configuration reload swaps the directory. */
  clients: () => ClientDirectory;
  /** Extra authenticator (OAuth-issued access tokens); consulted after the configured tokens. */
  authenticateIssued?: (secret: string) => Client | undefined;
  /** Short-lived LFS tokens (src/auth/lfs-tokens.ts): consulted last, and on the LFS routes only. */
  authenticateLfs?: (secret: string) => { client: Client; grant: LfsGrant } | undefined;
  facts: ScopeFacts;
  gate: ScopeGate;
  source: Source;
  /** The sidecar's body memo (shaping and narrowed listings read parses from it). */
  memo: BodyMemo;
  names: FaceNames;
  upstream: { api: string; web: string };
  limits: { maxUrlLength: number; maxBodyBytes: number };
  handlers: Partial<Record<'git' | 'oauth' | 'avatar' | 'lfs', StreamHandler>>;
  ops: (req: IncomingMessage, res: ServerResponse) => void;
  logger: Logger;
  /** Called once per finished request (metrics). */
  onFinished?: (record: AuditRecord, seconds: number) => void;
}

/** Stages 1-7 for one request. Every refusal is Bitbucket-shaped and reaches no later stage. */
export function createPipeline(deps: PipelineDeps) {
  const audit = createAuditLog(deps.logger);
  const targets = recentTargets(deps.limits.maxUrlLength);

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const record: AuditRecord = { method: req.method ?? '?', decision: 'error' };
    const asked: AskedTarget = {};
    // A connection holds a slot only for clients that proved who they are: any answer given before
    // that (401, 400, avatars, webhooks) closes it, so strangers cannot keep connections open.
    res.setHeader('connection', 'close');
    res.once('finish', () => {
      record.status = res.statusCode;
      // Operations endpoints are audited only when they refuse (a stranger reading metrics, say).
      if (record.route === 'ops') {
        const refusal = OPS_REFUSALS[res.statusCode];
        // A readiness probe answering 503 (not ready) refuses nobody.
        if (!refusal || (res.statusCode === 503 && /^\/_sidecar\/ready\/?$/i.test((req.url ?? '').split('?')[0]))) return;
        record.decision = refusal;
      }
      // Refusals name what was asked (allowed requests carry the upstream path already).
      record.path ??= describeTarget(asked, req.url);
      record.ms = Math.round((performance.now() - started) * 1000) / 1000;
      audit(record);
      deps.onFinished?.(record, record.ms / 1000);
    });
    try {
      await run(req, res, record, asked);
    } catch (e) {
      deps.logger.error({ err: { message: (e as Error).message, stack: (e as Error).stack } }, 'request failed');
      record.decision = 'error';
      sendError(res, 500, 'The sidecar failed to handle this request');
    }
  };

  async function run(req: IncomingMessage, res: ServerResponse, record: AuditRecord, asked: AskedTarget): Promise<void> {
    const method = (req.method ?? '').toUpperCase() as Method;
    const head = method === 'HEAD';
    let target: CanonicalTarget;
    try {
      target = asked.target = targets.parse(req.url ?? '');
    } catch (e) {
      record.decision = 'bad-request';
      if (e instanceof BadTarget) return sendError(res, e.status, e.message, {}, head);
      throw e;
    }
    const host = parseHost(target.absoluteHost ?? req.headers.host);
    if (!host) {
      record.decision = 'bad-request';
      return sendError(res, 400, 'Missing or invalid Host header', {}, head);
    }
    const face = selectFace(host, target.segments[0], deps.names);
    if (face === 'ops') {
      record.route = 'ops';
      // A refusal's audit line names the client whose token was presented (403 without ops:read).
      const presented = parseAuthorization(req.headers.authorization);
      if (presented.kind === 'basic' || presented.kind === 'bearer') record.client = (deps.clients().authenticate(presented.secret) ?? deps.authenticateIssued?.(presented.secret))?.id;
      return deps.ops(req, res);
    }
    if (!METHODS.has(method)) {
      record.decision = 'bad-method';
      return sendError(res, 405, `Method ${method || '?'} is not supported`, { allow: 'GET, HEAD, POST, PUT, DELETE' });
    }
    const found = targets.match(face, method, target);
    const route = found.kind === 'match' ? found.match.route : undefined;

    let client: Client | undefined;
    let lfsGrant: LfsGrant | undefined;
    if (!route || route.permission !== 'none') {
      const presented = parseAuthorization(req.headers.authorization);
      if (presented.kind === 'malformed') {
        record.decision = 'bad-credentials';
        return sendError(res, 400, presented.reason, {}, head);
      }
      client = presented.kind === 'basic' || presented.kind === 'bearer' ? deps.clients().authenticate(presented.secret) ?? deps.authenticateIssued?.(presented.secret) : undefined;
      if (!client && route?.handler === 'lfs' && (presented.kind === 'basic' || presented.kind === 'bearer')) {
        const byLfs = deps.authenticateLfs?.(presented.secret);
        if (byLfs) ({ client, grant: lfsGrant } = byLfs);
      }
      if (!client) {
        record.decision = 'unauthenticated';
        return fail(res, route, 401, 'Invalid or missing credentials', { 'www-authenticate': BASIC_CHALLENGE }, head);
      }
      record.client = client.id;
      res.removeHeader('connection');
    }
    if (found.kind === 'method') {
      record.decision = 'bad-method';
      return sendError(res, 405, `Method ${method} is not allowed here`, { allow: found.allowed.join(', ') }, head);
    }
    if (found.kind === 'none') {
      record.decision = 'no-route';
      return fail(res, undefined, 404, 'Resource not found', {}, head);
    }
    const match = found.match;
    record.route = match.route.id;
    const bases = clientBases(host, isSecure(req), deps.names, deps.upstream);

    if (match.route.handler === 'oauth' || match.route.handler === 'avatar') {
      const h = deps.handlers[match.route.handler];
      if (!h) return fail(res, match.route, 404, 'Resource not found', {}, head);
      record.decision = 'delegated';
      return h(req, res, { client, match, target, bases, audit: record });
    }

    let body: { data: Buffer; contentType?: string } | undefined;
    if ((method === 'POST' || method === 'PUT') && match.route.handler !== 'git' && !match.route.streamed) {
      try {
        body = { data: await readBody(req, deps.limits.maxBodyBytes), contentType: req.headers['content-type'] };
      } catch (e) {
        if (e instanceof BodyTooLarge) {
          record.decision = 'too-large';
          // Close afterwards: otherwise Node would go on reading (and discarding) the rest of the body.
          return sendError(res, 413, 'Request body is too large', { connection: 'close' });
        }
        // The client went away (or was cut off by the request timeout) mid-body: nobody to answer.
        if (req.destroyed) {
          record.decision = 'client-gone';
          return;
        }
        throw e;
      }
    }

    const verdict = await deps.gate.admit(client!, match, method, target.query, body);
    if (!verdict.ok) {
      record.decision = verdict.status === 403 ? 'forbidden' : verdict.status === 404 ? 'out-of-scope' : 'scope-error';
      const message = verdict.status === 404 && (match.route.handler === 'git' || match.route.handler === 'lfs') ? 'Repository not found' : verdict.message;
      return fail(res, match.route, verdict.status, message, {}, head);
    }
    // An LFS token reaches only its repository, and pushes only when it was issued for an upload.
    if (lfsGrant && !grantCovers(lfsGrant, verdict.call.params.ws, verdict.call.params.repo, requiredPermission(match, target.query, body?.data))) {
      record.decision = lfsGrant.ws === verdict.call.params.ws && lfsGrant.repo === verdict.call.params.repo ? 'forbidden' : 'out-of-scope';
      return record.decision === 'forbidden' ? fail(res, match.route, 403, 'This Git LFS token was issued for downloads only.', {}, head) : fail(res, match.route, 404, 'Repository not found', {}, head);
    }
    if (body && match.route.body) {
      const problem = checkBody(match.route.body, body.data, body.contentType);
      if (problem) {
        record.decision = 'invalid-body';
        return fail(res, match.route, 400, problem, {}, head);
      }
    }
    record.decision = verdict.fork ? 'allow-fork' : 'allow';
    record.path = upstreamPath(verdict.call);

    if (match.route.handler === 'git') {
      const h = deps.handlers.git;
      if (!h) return fail(res, match.route, 404, 'Repository not found', {}, head);
      return h(req, res, { client, call: verdict.call, fork: verdict.fork, forkGrants: verdict.forkGrants, match, target, bases, audit: record });
    }
    if (match.route.handler === 'lfs') {
      const h = deps.handlers.lfs;
      if (!h) return fail(res, match.route, 404, 'Repository not found', {}, head);
      return h(req, res, { client, call: verdict.call, match, target, bases, audit: record });
    }
    if (match.route.handler === 'identity') {
      const user = Buffer.from(JSON.stringify(syntheticUser(client!, bases.clientApi)));
      return writeAnswer(res, { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: user }, head);
    }

    const listing = match.route.shape === 'repository-listing' && isNarrowed(client!, verdict.call.params.ws!);
    let answer: ApiAnswer = listing
      ? await visibleListing(verdict.call, client!, deps.source, deps.upstream.api, deps.memo)
      : await followRedirects(verdict.call, deps.source, async (next) => {
          const again = await deps.gate.admit(client!, next.match, 'GET', next.target.query);
          return again.ok ? again.call : undefined;
        }, deps.upstream.api, { client: client!.id });
    record.cache = answer.cacheStatus;
    // A budget refusal made no call: it has no upstream status (the cache detail says budget-refused).
    if (answer.upstreamError !== undefined) record.upstreamError = answer.upstreamError;
    else if (answer.budgetRefused === undefined) record.upstreamStatus = answer.status;
    answer = shapeAnswer(answer, verdict.call, client!, deps.facts, bases, deps.memo);
    writeAnswer(res, answer, head);
  }
}

/** What a request asked for, for its audit line: the canonical target once it parsed. */
interface AskedTarget {
  target?: CanonicalTarget;
}

const MAX_AUDITED_TARGET = 1024;

/**
 * The canonical path (and query) of a refused request, or its raw target with everything outside
 * visible ASCII percent-encoded when it did not parse; cut to a bound either way.
 */
export function describeTarget(asked: AskedTarget, raw: string | undefined): string {
  const t = asked.target;
  let text: string;
  if (t) {
    text = `/${t.segments.map(encodeSegment).join('/')}${t.trailingSlash && t.segments.length > 0 ? '/' : ''}`;
    if (t.query.length > 0) text += `?${encodeQuery(t.query)}`;
    if (t.absoluteHost !== undefined) text = `//${encodeSegment(t.absoluteHost)}${text}`;
  } else {
    text = Buffer.from((raw ?? '').slice(0, MAX_AUDITED_TARGET * 3), 'utf8').toString('latin1').replace(/[^\x21-\x7e]|%/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  }
  return text.length > MAX_AUDITED_TARGET ? `${text.slice(0, MAX_AUDITED_TARGET)}…` : text;
}

function isSecure(req: IncomingMessage): boolean {
  return Boolean((req.socket as { encrypted?: boolean }).encrypted);
}

/** Git prints text/plain error bodies to the user ("remote: ..."), git-lfs the `message` of its JSON; the API speaks Bitbucket JSON. */
function fail(res: ServerResponse, route: RouteDef | undefined, status: number, message: string, headers: Record<string, string>, head: boolean): void {
  if (route?.handler === 'lfs') return sendLfsError(res, status, message, headers, head);
  if (route?.handler === 'git') {
    const body = Buffer.from(`${message}\n`);
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, ...headers });
    res.end(head ? undefined : body);
    return;
  }
  const a = errorAnswer(status, message, headers);
  writeAnswer(res, a, head);
}
