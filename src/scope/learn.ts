import type { ApiAnswer, ApiCall, CallContext, Source } from '../core/call';
import type { BodyMemo } from '../core/body-memo';
import { reconcileOpenPullRequests, type ScopeFacts } from './facts';

export function isJson(answer: ApiAnswer): boolean {
  return /json/i.test(answer.headers['content-type'] ?? '');
}


/**
 * A cached body teaches the same facts on every hit; walking it again only refreshes their age, so
 * that is done once a minute per body (facts about projects live five minutes).
 */
const RELEARN_MS = 60_000;

/** Wraps a source so that every successful JSON answer teaches the scope facts. */
export function learningSource(inner: Source, facts: ScopeFacts, memo: BodyMemo): Source {
  const learnedAt = new WeakMap<Buffer, number>();
  return async (call: ApiCall, ctx?: CallContext) => {
    const answer = await inner(call, ctx);
    // A projection (`fields=`) may leave out what a decision reads: what is shared between
    // clients is learned only from whole objects.
    if (answer.status === 200 && call.method !== 'POST' && !call.query.some(([k]) => k === 'fields')) {
      const now = facts.now();
      const last = learnedAt.get(answer.body);
      if (last === undefined || now - last >= RELEARN_MS || now < last) {
        learnedAt.set(answer.body, now);
        learnFrom(facts, call, isJson(answer) ? memo.parse(answer.body) : undefined);
      }
    }
    return answer;
  };
}

function learnFrom(facts: ScopeFacts, call: ApiCall, json: unknown): void {
  if (json === undefined) return;
  const { ws, repo } = call.params;
  const target = ws && repo ? `${ws}/${repo}` : undefined;
  const teaches = call.route.teaches ?? [];
  facts.learn(json, teaches.includes('pull-requests') ? target : undefined);
  // A fork's source branch or `commit/{short}` names the full hash of a PR's source commit.
  const commitAt = teaches.includes('commit-hash') ? 'hash' : teaches.includes('ref-target') ? 'target' : undefined;
  if (target && commitAt && facts.forkGrants(target).length > 0) {
    const j = json as { hash?: unknown; target?: { hash?: unknown } };
    const hash = commitAt === 'hash' ? j.hash : j.target?.hash;
    if (typeof hash === 'string') facts.confirmForkCommit(target, hash);
  }
  if (teaches.includes('open-pull-requests') && target && isCompleteOpenList(call, json)) {
    const ids = ((json as { values: { id?: unknown }[] }).values ?? []).map((v) => v.id).filter((id): id is number => typeof id === 'number');
    reconcileOpenPullRequests(facts, target, new Set(ids));
  }
}

function isCompleteOpenList(call: ApiCall, json: unknown): boolean {
  const q = call.query;
  const states = q.filter(([k]) => k === 'state').map(([, v]) => v.toUpperCase());
  const onlyOpen = states.length === 0 || states.every((s) => s === 'OPEN');
  const page = q.find(([k]) => k === 'page')?.[1];
  const filtered = q.some(([k]) => k === 'q' || k === 'fields');
  const j = json as { values?: unknown; next?: unknown };
  return onlyOpen && !filtered && (page === undefined || page === '1') && Array.isArray(j.values) && j.next === undefined;
}
