import { errorAnswer } from '../respond/errors';
import { callKey } from '../routes/call';
import type { ApiAnswer, ApiCall, CallContext, Source } from '../core/call';
import { budgetClassOf, type BudgetGovernor } from './budget';

export const BUDGET_MESSAGE = 'Rate limit for this resource has been exceeded';

/**
 * Runs every upstream REST call through the budget governor. A refused call becomes a 429 with an
 * exact `Retry-After`; an upstream 429 without `Retry-After` gets the governor's own value (we
 * will not call Bitbucket for that class before then). Background refreshes (`call.background`)
 * never wait. Writes go through here too: they count, and a refused write is reported, not sent.
 */
export function budgetSource(inner: Source, governor: BudgetGovernor): Source {
  return async (call: ApiCall, ctx?: CallContext): Promise<ApiAnswer> => {
    const cls = budgetClassOf(call);
    const admission = await governor.acquire(cls, call.background ? 'background' : 'foreground', callKey(call), call.background ? undefined : ctx?.client);
    if (!admission.ok) {
      return { ...errorAnswer(429, BUDGET_MESSAGE, { 'retry-after': String(admission.retryAfterSeconds) }), budgetRefused: admission.reason };
    }
    ctx?.onGranted?.();
    let answer: ApiAnswer;
    try {
      answer = await inner(call, ctx);
    } catch (e) {
      admission.release();
      throw e;
    }
    admission.release(answer);
    if (answer.status === 429 && !answer.headers['retry-after']) {
      const seconds = governor.retryAfterSeconds(cls);
      if (seconds > 0) answer = { ...answer, headers: { ...answer.headers, 'retry-after': String(seconds) } };
    }
    return { ...answer, upstream: true };
  };
}
