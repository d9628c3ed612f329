import type { IncomingHttpHeaders } from 'node:http';

/**
 * What the relay reads of one Bitbucket Cloud delivery: the headers the Branch Source plugin reads
 * (as Bitbucket Cloud sends them) and, from the body, the repository and what changed. The body itself is kept as
 * raw bytes and forwarded unchanged.
 */
export interface Delivery {
  eventKey: string;
  requestUuid: string;
  hookUuid?: string;
  contentType: string;
  userAgent?: string;
  /** Lower-case slugs from `repository.full_name`. */
  workspace: string;
  repository: string;
  /** `repository.project.key` as the body says; null when the body says there is none. */
  projectKey: string | null | undefined;
  /** repo:push: every ref named by `push.changes[].new` / `.old`. */
  refs: ChangedRef[];
  /** repo:push: branches the push deleted (`new` is null). */
  deletedBranches: string[];
  /** repo:push with no changes: the plugin re-indexes every matching project. */
  emptyPush: boolean;
  /** pullrequest:*: the pull request and the refs it names. */
  pullRequest?: { id: number; source?: { workspace: string; repository: string; branch?: string }; destinationBranch?: string };
}

export interface ChangedRef {
  type: 'branch' | 'tag';
  name: string;
}

/** The event keys Jenkins' Cloud processors accept (HookEventType); others would be answered 400. */
export const FORWARDED_EVENTS: ReadonlySet<string> = new Set(['repo:push', 'pullrequest:created', 'pullrequest:updated', 'pullrequest:fulfilled', 'pullrequest:rejected']);

export class BadDelivery extends Error {
  constructor(message: string) {
    super(message);
  }
}

const TOKEN = /^[\x21-\x7e]{1,200}$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function splitFullName(v: unknown): { workspace: string; repository: string } | undefined {
  if (typeof v !== 'string') return undefined;
  const parts = v.split('/');
  if (parts.length !== 2 || !/^[A-Za-z0-9._-]+$/.test(parts[0]) || !/^[A-Za-z0-9._-]+$/.test(parts[1])) return undefined;
  return { workspace: parts[0].toLowerCase(), repository: parts[1].toLowerCase() };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);

/**
 * What a body is about. Only repo:push bodies carry a top-level `push`, only pullrequest:* bodies
 * a top-level `pullrequest`; every other event (repo:updated, issue:*, ...) carries neither.
 */
type Kind = 'push' | 'pullrequest' | 'other';

function bodyKind(json: Json): Kind | undefined {
  const push = 'push' in json;
  const pr = 'pullrequest' in json;
  if (push && pr) return undefined;
  if (push) return obj(json.push) ? 'push' : undefined;
  if (pr) return obj(json.pullrequest) ? 'pullrequest' : undefined;
  return 'other';
}

function keyKind(eventKey: string): Kind {
  if (eventKey === 'repo:push') return 'push';
  return eventKey.startsWith('pullrequest:') ? 'pullrequest' : 'other';
}

const CLOSED_STATE: Record<string, string | undefined> = { 'pullrequest:rejected': 'DECLINED', 'pullrequest:fulfilled': 'MERGED' };

function ref(v: unknown): ChangedRef | undefined {
  const o = obj(v);
  if (!o || typeof o.name !== 'string' || o.name === '') return undefined;
  if (o.type !== 'branch' && o.type !== 'tag') return undefined;
  return { type: o.type, name: o.name };
}

/** Reads one delivery; throws BadDelivery (→ 400) when it is not one Jenkins could process either. */
export function parseDelivery(headers: IncomingHttpHeaders, body: Buffer): Delivery {
  const eventKey = header(headers, 'x-event-key');
  if (!eventKey || !TOKEN.test(eventKey)) throw new BadDelivery('X-Event-Key is missing');
  const requestUuid = header(headers, 'x-request-uuid');
  if (!requestUuid || !TOKEN.test(requestUuid)) throw new BadDelivery('X-Request-UUID is missing');
  const hookUuid = header(headers, 'x-hook-uuid');
  if (body.length === 0) throw new BadDelivery('The delivery has no body');
  let json: Json | undefined;
  try {
    json = obj(JSON.parse(body.toString('utf8')));
  } catch {
    json = undefined;
  }
  if (!json) throw new BadDelivery('The delivery body is not a JSON object');
  // The signature covers the body only: a signed body re-sent under another event key must not
  // reach Jenkins as an event it is not (a pull request body read as a push with no changes
  // would re-index every matching project).
  if (bodyKind(json) !== keyKind(eventKey)) throw new BadDelivery('X-Event-Key does not match the delivery body');
  // A declined or merged event ends fork grants, so its body must say so too: an open pull
  // request's signed body re-sent as pullrequest:rejected would otherwise end a live grant.
  const closedAs = CLOSED_STATE[eventKey];
  if (closedAs && obj(json.pullrequest)?.state !== closedAs) throw new BadDelivery(`X-Event-Key ${eventKey} does not match the pull request's state`);
  const repo = obj(json.repository);
  const names = splitFullName(repo?.full_name);
  if (!names) throw new BadDelivery('The delivery names no repository (repository.full_name)');
  const project = repo && 'project' in repo ? obj(repo.project) : undefined;
  const projectKey = repo && 'project' in repo ? (typeof project?.key === 'string' ? project.key.toUpperCase() : null) : undefined;

  const refs: ChangedRef[] = [];
  const deletedBranches: string[] = [];
  let emptyPush = false;
  if (eventKey === 'repo:push') {
    const changes = obj(json.push)?.changes;
    const list = Array.isArray(changes) ? changes : [];
    for (const c of list) {
      const change = obj(c);
      for (const r of [ref(change?.new), ref(change?.old)]) {
        if (r && !refs.some((x) => x.type === r.type && x.name === r.name)) refs.push(r);
      }
      const old = ref(change?.old);
      if (change && change.new === null && old?.type === 'branch') deletedBranches.push(old.name);
    }
    emptyPush = list.length === 0;
  }

  let pullRequest: Delivery['pullRequest'];
  if (eventKey.startsWith('pullrequest:')) {
    const pr = obj(json.pullrequest);
    if (pr && typeof pr.id === 'number' && Number.isInteger(pr.id)) {
      const src = obj(pr.source);
      const srcRepo = splitFullName(obj(src?.repository)?.full_name);
      const srcBranch = obj(src?.branch)?.name;
      const dstBranch = obj(obj(pr.destination)?.branch)?.name;
      pullRequest = {
        id: pr.id,
        source: srcRepo ? { ...srcRepo, branch: typeof srcBranch === 'string' ? srcBranch : undefined } : undefined,
        destinationBranch: typeof dstBranch === 'string' ? dstBranch : undefined,
      };
    }
  }

  return {
    eventKey,
    requestUuid,
    hookUuid,
    contentType: header(headers, 'content-type') ?? 'application/json',
    userAgent: header(headers, 'user-agent'),
    workspace: names.workspace,
    repository: names.repository,
    projectKey,
    refs,
    deletedBranches,
    emptyPush,
    pullRequest,
  };
}
