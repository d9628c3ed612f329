import type { Logger } from 'pino';
import type { ApiAnswer, Source } from '../core/call';
import { errorAnswer } from '../respond/errors';

/**
 * Whether Bitbucket accepts the sidecar's own credential, from the answers it gives. A 401 to our
 * credential is never a client's fault, so clients are told so (a 502 naming the cause, never a
 * 401 that reads as "your sidecar token is wrong"), the operator gets one warning per change, and
 * readiness says not ready until a call succeeds again.
 */
export class CredentialHealth {
  /** Configuration key of each credential Bitbucket rejected → when it last did. */
  private readonly rejected = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records what Bitbucket answered a call made with the credential configured at `key`
   * (`upstream.auth`, `upstream.gitAuth`); `name` says which credential, never its secret.
   */
  note(status: number, key: string, name: string): void {
    if (status === 401) {
      if (!this.rejected.has(key)) this.logger.warn({ credential: name, upstreamStatus: 401 }, `Bitbucket rejected the upstream credential (${key}): fix or renew it; clients get 502 until then`);
      this.rejected.set(key, this.now());
    } else if (status >= 200 && status < 300 && this.rejected.delete(key)) {
      this.logger.info({ credential: name }, 'Bitbucket accepts the upstream credential again');
    }
  }

  /** For readiness: not ready while Bitbucket's last word on a credential was a rejection. */
  check(): { ok: boolean; detail: string } {
    if (this.rejected.size === 0) return { ok: true, detail: 'not rejected by Bitbucket' };
    const which = [...this.rejected].map(([key, at]) => `${key} since ${new Date(at).toISOString()}`).join(', ');
    return { ok: false, detail: `rejected by Bitbucket (401): ${which}; fix it (clients get 502 until a call succeeds)` };
  }
}

export const CREDENTIAL_REJECTED_MESSAGE =
  "Bitbucket rejected the sidecar's own upstream credential (upstream.auth). This is a sidecar configuration problem, not a problem with your token; tell the sidecar operator.";

/** The REST layer above the upstream: a 401 to our credential becomes a 502 that says so. */
export function credentialSource(inner: Source, health: CredentialHealth, name: string): Source {
  return async (call, ctx) => {
    const answer: ApiAnswer = await inner(call, ctx);
    health.note(answer.status, 'upstream.auth', name);
    return answer.status === 401 ? errorAnswer(502, CREDENTIAL_REJECTED_MESSAGE) : answer;
  };
}

/** How logs name the configured credential: its kind and user, never its secret. */
export function credentialName(auth: { type: 'basic'; username: string } | { type: 'bearer' }): string {
  return auth.type === 'basic' ? `upstream.auth (basic, ${auth.username})` : 'upstream.auth (bearer token)';
}
