import { errorAnswer } from '../respond/errors';
import type { ApiCall, Source } from '../core/call';
import { UpstreamClient, UpstreamError } from './client';

/** The REST upstream as a Source: network failures become Bitbucket-shaped 502/504 answers that say they are no answer of Bitbucket's. */
export function upstreamSource(client: UpstreamClient): Source {
  return async (call: ApiCall) => {
    try {
      return await client.send(call);
    } catch (e) {
      if (e instanceof UpstreamError) return { ...errorAnswer(e.status, e.message), upstreamError: e.code };
      throw e;
    }
  };
}
